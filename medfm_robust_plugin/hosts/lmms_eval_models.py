"""Our vision-language models as lmms-eval models, found through its ``lmms_eval.models`` group.

lmms-eval 0.7 reads that entry-point group when ``lmms_eval.models`` is imported
(``ModelRegistryV2.load_entrypoint_manifests``); ``manifests`` gives one ``ModelManifest`` per
name, each pointing at a simple (non-chat) model class here:

    lmms-eval --model medfm-robust --model_args model=<any registered model> ...
    lmms-eval --model medfm-medgemma [--model_args pretrained=<id or path>] ...
    lmms-eval --model medfm-llava-med ...

A request's image is the condition's view, asked of the task's ``doc_to_visual``; the prompt is
lmms-eval's context (our card's prompt). This module imports lmms-eval: only lmms-eval loads it.
"""

from __future__ import annotations

from typing import Any

from lmms_eval.api.model import lmms

from .lmms_eval import LMMS_EVAL_MODELS


def manifests() -> list[Any]:
    """The ``lmms_eval.models`` entry point: one manifest per model name."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return [
        ModelManifest(model_id=name, simple_class_path=f"{__name__}.{class_name}")
        for name, class_name in LMMS_EVAL_MODELS.items()
    ]


class MedFMRobustLMMS(lmms):
    """Any registered MedFM-Robust vision-language model: ``--model_args model=NAME,...``.

    The other model arguments go to ``load_model`` (``model_id``, ``device``, ``base_url``...).
    Only generation is supported: the benchmark's tasks are all ``generate_until``.
    """

    is_simple = True
    default_model: str | None = None

    def __init__(
        self,
        model: str | None = None,
        pretrained: str | None = None,
        batch_size: int | str | None = None,
        device: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        from .lm_eval import harness_model

        self.vlm, self.batch = harness_model(
            model or self.default_model, pretrained, batch_size, device, options
        )
        self._fitted: set[str] = set()

    def _doc(self, request: Any) -> dict[str, Any]:
        _, _, _, doc_id, task, split = request.args
        return self.task_dict[task][split][doc_id]

    def generate_until(self, requests: list[Any]) -> list[str]:
        self._fit(requests)
        answers: list[str] = []
        step = max(1, int(self.batch or 1))
        for start in range(0, len(requests), step):
            answers += self._generate(requests[start : start + step])
        return answers

    def _fit(self, requests: list[Any]) -> None:
        """A model that learns from the task's samples (the baselines) sees them, as in our runner."""
        if not hasattr(self.vlm, "fit"):
            return
        from .lm_eval_tasks.conditions import card_samples

        cards = {self._doc(request).get("medfm_task") for request in requests}
        for card in sorted(c for c in cards if c and c not in self._fitted):
            self.vlm.fit(card_samples(card))
            self._fitted.add(card)

    def _generate(self, requests: list[Any]) -> list[str]:
        import numpy as np

        items, settings = [], []
        for request in requests:
            context, gen_kwargs, doc_to_visual, *_ = request.args
            visuals = doc_to_visual(self._doc(request)) or []
            images = [np.asarray(image.convert("RGB")) for image in visuals]
            items.append((images, context))
            settings.append(gen_kwargs or {})
        first = settings[0]
        outputs = self.vlm.generate(
            items,
            max_new_tokens=int(first.get("max_new_tokens", 256)),
            temperature=float(first.get("temperature", 0.0)),
        )
        answers = []
        for output, setting in zip(outputs, settings, strict=True):
            text = getattr(output, "text", output)
            for stop in setting.get("until") or []:
                if stop:
                    text = text.split(stop)[0]
            answers.append(text)
        return answers

    def loglikelihood(self, requests: list[Any]) -> list[Any]:
        raise NotImplementedError(
            "MedFM-Robust models only generate; run generate_until tasks (all medfm_robust_*)"
        )

    def generate_until_multi_round(self, requests: list[Any]) -> list[str]:
        raise NotImplementedError(
            "MedFM-Robust models answer one round; run the medfm_robust_* tasks"
        )


class MedGemmaLMMS(MedFMRobustLMMS):
    """MedGemma through our wrapper (``--model_args pretrained=<id or path>`` to change it)."""

    default_model = "medgemma"


class LlavaMedLMMS(MedFMRobustLMMS):
    """LLaVA-Med v1.5 through our wrapper (its own prompt format when there is no template)."""

    default_model = "llava-med"
