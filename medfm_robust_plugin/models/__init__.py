"""Model wrappers: medical vision-language models, API models, promptable segmenters, baselines.

Heavy libraries (torch, transformers, SDKs) are imported inside the wrappers, when a model is built.
"""

from .base import (
    Capabilities,
    Generation,
    GenerationError,
    ModelError,
    ModelSpec,
    ModelUnavailableError,
    PromptableSegmenter,
    VisionLanguageModel,
    load_model,
    resolve,
)

__all__ = [
    "Capabilities",
    "Generation",
    "GenerationError",
    "ModelError",
    "ModelSpec",
    "ModelUnavailableError",
    "PromptableSegmenter",
    "VisionLanguageModel",
    "load_model",
    "resolve",
]
