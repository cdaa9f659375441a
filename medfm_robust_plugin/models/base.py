"""What a model is to the benchmark: a vision-language model that answers (images, prompt) items,
or a promptable segmenter that turns box/point prompts into masks.

Models are registered as ``ModelSpec`` through ``register_models`` and built by name with
``load_model``. A spec with ``prefix=True`` takes the rest of the name as its model id, so
``openai:gpt-4o`` builds the ``openai`` spec with ``model_id="gpt-4o"``; aliases such as ``gpt-4o``
point at a full name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from ..errors import ModelError
from ..lookup import resolve_model

ImageInput = Any  # numpy array (H x W x 3 uint8 for VLMs) or PIL image
VLMItem = tuple[Sequence[ImageInput], str]  # (images, prompt)


class GenerationError(ModelError):
    """Some items of one ``generate()`` call failed.

    ``outcomes`` says how each item went, in item order: its ``Generation``, the error it failed
    with, or None when it was not sent. A runner records each item from it and resends nothing
    (each item has already had its retries).
    """

    def __init__(self, message: str, outcomes: Sequence[Any] | None = None) -> None:
        super().__init__(message)
        self.outcomes = list(outcomes) if outcomes is not None else None


class ModelUnavailableError(GenerationError):
    """The model's server keeps failing (timeouts, network or server errors, a refused key): no
    further item can succeed. A run stops here with this message, keeping every finished item."""


@dataclass
class Generation:
    """One answer of a vision-language model, with what it cost."""

    text: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached: bool = False  # served from the response cache: no call was made
    cost_usd: float = 0.0
    seconds: float = 0.0


@dataclass(frozen=True)
class Capabilities:
    multi_image: bool = False
    system_prompt: bool = True
    max_batch: int = 1


@runtime_checkable
class VisionLanguageModel(Protocol):
    name: str
    capabilities: Capabilities

    def generate(
        self,
        items: Sequence[VLMItem],
        *,
        max_new_tokens: int = 512,
        temperature: float = 0.0,
        system: str | None = None,
    ) -> list[Generation]:
        """Answer each (images, prompt) item; results in the order of ``items``."""
        ...


@runtime_checkable
class PromptableSegmenter(Protocol):
    name: str

    def segment(
        self,
        image: np.ndarray,
        boxes: np.ndarray | None = None,
        points: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
    ) -> np.ndarray:
        """Boolean masks (N x H x W) at the input's size, one per box (or per point set).

        ``boxes`` is N x 4 (x1, y1, x2, y2 pixels); ``points`` is N x P x 2 (x, y) with
        ``point_labels`` N x P (1 foreground, 0 background). The image embedding is computed once
        per image and reused for all its prompts.
        """
        ...


ModelKind = Literal["vlm", "segmenter"]


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: how to build it and what it is."""

    name: str
    kind: ModelKind
    factory: Callable[..., Any]
    description: str = ""
    prefix: bool = False  # "name:<model id>" passes the id to the factory as model_id
    default_id: str | None = None  # the hub id or path used when none is given
    extra: str | None = None  # the pip extra it needs ("api", "models")
    options: dict[str, str] = field(default_factory=dict)  # option -> what it does

    def build(self, model_id: str | None = None, **options: Any) -> Any:
        kwargs = dict(options)
        if model_id is not None or self.default_id is not None:
            kwargs["model_id"] = model_id if model_id is not None else self.default_id
        label = f"{self.name}:{model_id}" if self.prefix and model_id else self.name
        self._check_option_names(label, options)
        try:
            return self.factory(**kwargs)
        except TypeError as exc:
            unknown = _unexpected_keyword(exc)
            if unknown is not None and unknown in options:
                raise self._unknown_option(label, unknown) from None
            raise
        except ImportError as exc:
            hint = (
                f"pip install 'medfm-robust-plugin[{self.extra}]'" if self.extra else "install it"
            )
            raise ModelError(f"model '{self.name}' needs {exc.name or exc}: {hint}") from exc

    def _check_option_names(self, label: str, options: dict[str, Any]) -> None:
        """Options the factory cannot take, named before anything is built."""
        import inspect

        try:
            parameters = inspect.signature(self.factory).parameters.values()
        except (TypeError, ValueError):
            return
        if any(p.kind is p.VAR_KEYWORD for p in parameters):
            return  # checked when the factory passes them on (see build)
        accepted = {p.name for p in parameters if p.kind is not p.VAR_POSITIONAL}
        for name in options:
            if name not in accepted:
                raise self._unknown_option(label, name)

    def _unknown_option(self, label: str, option: str) -> ModelError:
        import difflib

        known = sorted(self.options)
        close = difflib.get_close_matches(option, known, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        listing = f"its options: {', '.join(known)}" if known else "it takes no options"
        return ModelError(f"model '{label}' has no option '{option}'; {hint}{listing}")


def _unexpected_keyword(exc: TypeError) -> str | None:
    """The argument name of Python's "got an unexpected keyword argument 'x'" error, if it is one."""
    import re

    match = re.search(r"unexpected keyword argument '([^']+)'", str(exc))
    return match.group(1) if match else None


def resolve(name: str) -> tuple[ModelSpec, str | None]:
    """The spec and model id a model name stands for (aliases followed, prefixes split)."""
    return resolve_model(name)


def load_model(name: str, **options: Any) -> Any:
    """Build the model registered as ``name`` (e.g. ``medsam``, ``openai:gpt-4o``, ``hf:./my-model``)."""
    spec, model_id = resolve(name)
    model_id = options.pop("model_id", None) or model_id
    model = spec.build(model_id, **options)
    if not getattr(model, "name", None):
        model.name = name
    return model
