"""VLMEvalKit model classes over MedFM-Robust's own model wrappers (MedGemma, LLaVA-Med).

VLMEvalKit hands a model an interleaved message (``[{"type": "image", "value": path}, {"type":
"text", "value": prompt}]``); these classes pass its images and text to the wrapper that the native
runner uses, so the two hosts run one model implementation. Imported by ``register()`` only.
"""

from __future__ import annotations

from typing import Any

from vlmeval.vlm.base import BaseModel

DEFAULT_MAX_NEW_TOKENS = 256


class MedFMRobustVLM(BaseModel):
    """A MedFM-Robust model (``medfm_robust_plugin.models.load_model`` name) as a VLMEvalKit model.

    Args:
        model_name: the registered model (``medgemma``, ``medgemma-1.5``, ``llava-med``, ``hf``).
        model_path: a hub id or local directory instead of the model's default checkpoint.
        max_new_tokens: the answer length limit.
        **options: the wrapper's options (``device``, ``dtype``, ``batch_size`` ...).
    """

    INSTALL_REQ = False
    INTERLEAVE = False
    DEFAULT_MODEL = "hf"
    _medfm_robust = True

    def __init__(
        self,
        model_path: str | None = None,
        model_name: str | None = None,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        **options: Any,
    ) -> None:
        from ..models.base import load_model

        super().__init__()
        self.model_name = model_name or self.DEFAULT_MODEL
        if model_path:
            options["model_id"] = model_path
        self.model = load_model(self.model_name, **options)
        self.max_new_tokens = int(max_new_tokens)

    def generate_inner(self, message: list[dict[str, Any]], dataset: str | None = None) -> str:
        from PIL import Image

        images = []
        for item in message:
            if item["type"] == "image":
                with Image.open(item["value"]) as image:
                    images.append(image.convert("RGB"))
        prompt = "\n".join(m["value"] for m in message if m["type"] == "text")
        output = self.model.generate(
            [(images, prompt)], max_new_tokens=self.max_new_tokens, temperature=0.0
        )[0]
        return getattr(output, "text", str(output))


class MedFMRobustMedGemma(MedFMRobustVLM):
    """MedGemma 4B-it (or ``model_path``) through MedFM-Robust's transformers wrapper."""

    DEFAULT_MODEL = "medgemma"


class MedFMRobustLLaVAMed(MedFMRobustVLM):
    """LLaVA-Med v1.5 in transformers' LLaVA format (or ``model_path``) through MedFM-Robust."""

    DEFAULT_MODEL = "llava-med"


def model_classes() -> list[type]:
    return [MedFMRobustVLM, MedFMRobustMedGemma, MedFMRobustLLaVAMed]
