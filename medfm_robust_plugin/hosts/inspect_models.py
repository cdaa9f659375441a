"""Our local vision-language models as an Inspect AI model provider: ``--model medfm/<model>``.

    inspect eval medfm_robust/vqa -T task=MedFMRobust-Mini-VQA --model medfm/medgemma
    inspect eval medfm_robust/vqa --model medfm/llava-med -M model_id=/models/llava-med-hf
    inspect eval medfm_robust/vqa --model medfm/hf/google/gemma-3-4b-it -M device=cuda

``<model>`` is any model registered with MedFM-Robust (``medfm-robust models list``): ``medgemma``,
``llava-med``, ``hf`` and the others; what follows its first ``/`` is the model id (a hub id or
a local directory), like ``hf:<id>`` of our own runner. ``-M key=value`` options go to the model
(``model_id``, ``device``, ``dtype``, ``batch_size``...). Inspect finds the provider by its name
``medfm`` once it has loaded our ``inspect_ai`` entry point. A model that learns from its task's
samples (``baseline:majority``, ``baseline:template-caption``) is fitted on the samples of the
task built last (the one ``inspect eval`` runs), as our runner fits it on its plan's samples.
"""

from __future__ import annotations

import base64
import io
import threading
from typing import Any

import anyio
from inspect_ai.model import (
    ChatMessage,
    ChatMessageSystem,
    ContentImage,
    ContentText,
    GenerateConfig,
    ModelAPI,
    ModelOutput,
    ModelUsage,
    modelapi,
)
from inspect_ai.tool import ToolChoice, ToolInfo

PROVIDER = "medfm"
MAX_TOKENS = 256  # the native runner's default


def model_spec(model_name: str) -> tuple[str, str | None]:
    """``hf/google/gemma-3-4b-it`` -> ``("hf", "google/gemma-3-4b-it")``; ``medgemma`` -> ``("medgemma", None)``."""
    name, _, model_id = model_name.partition("/")
    return name, model_id or None


def decode_image(image: str) -> Any:
    """The RGB array of an Inspect image (a data URL or base64 of the view's PNG)."""
    import numpy as np
    from PIL import Image

    data = image.split(",", 1)[1] if image.startswith("data:") else image
    with Image.open(io.BytesIO(base64.b64decode(data))) as decoded:
        return np.asarray(decoded.convert("RGB"))


def vlm_item(messages: list[ChatMessage]) -> tuple[list[Any], str, str | None]:
    """(images, prompt, system) of a conversation: the images and text of its messages in order."""
    images: list[Any] = []
    texts: list[str] = []
    system: list[str] = []
    for message in messages:
        target = system if isinstance(message, ChatMessageSystem) else texts
        if isinstance(message.content, str):
            target.append(message.content)
            continue
        for part in message.content:
            if isinstance(part, ContentImage):
                images.append(decode_image(part.image))
            elif isinstance(part, ContentText):
                target.append(part.text)
    return images, "\n".join(texts), "\n".join(system) or None


@modelapi(name=PROVIDER)
class MedFMModelAPI(ModelAPI):
    """A MedFM-Robust model (``load_model``) answering Inspect's conversations, one at a time."""

    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig | None = None,
        **model_args: Any,
    ) -> None:
        super().__init__(
            model_name, base_url=base_url, api_key=api_key, config=config or GenerateConfig()
        )
        self.name, model_id = model_spec(model_name)
        if model_id and "model_id" not in model_args:
            model_args["model_id"] = model_id
        self.options = model_args
        self._vlm: Any = None
        self._lock = threading.Lock()

    @property
    def vlm(self) -> Any:
        """The model, loaded at the first answer: Inspect also builds providers only to look up
        a model's description (with none of the -M options), which must load nothing."""
        with self._lock:
            if self._vlm is None:
                from ..models.base import load_model

                vlm = load_model(self.name, **self.options)
                if hasattr(vlm, "fit"):  # the baselines learn from the task's samples
                    from .inspect_tasks import task_samples

                    vlm.fit(task_samples())
                self._vlm = vlm
            return self._vlm

    def max_connections(self) -> int:
        return 1  # one local model: requests wait for it rather than contend for its memory

    async def generate(
        self,
        input: list[ChatMessage],
        tools: list[ToolInfo],
        tool_choice: ToolChoice,
        config: GenerateConfig,
    ) -> ModelOutput:
        images, prompt, system = vlm_item(input)
        max_tokens = config.max_tokens or MAX_TOKENS
        temperature = config.temperature or 0.0

        def answer() -> Any:
            vlm = self.vlm
            (generation,) = vlm.generate(
                [(images, prompt)],
                max_new_tokens=max_tokens,
                temperature=temperature,
                system=system,
            )
            return generation

        generation = await anyio.to_thread.run_sync(answer)
        output = ModelOutput.from_content(model=self.model_name, content=generation.text)
        input_tokens = generation.input_tokens or 0
        output_tokens = generation.output_tokens or 0
        output.usage = ModelUsage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            total_tokens=input_tokens + output_tokens,
        )
        return output
