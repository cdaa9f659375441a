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

# Options that change how a model is run, not what it answers: a run resumes when they change
# (lowering concurrency is the answer to a rate limit). Where a model is served (base_url, the key's
# variable) is not what it answers either: its model id is.
RUN_OPTIONS = frozenset(
    {
        "concurrency",
        "timeout",
        "max_retries",
        "retry_delay",
        "retry_budget",
        "max_consecutive_failures",
        "cache",
        "cache_dir",
        "share_cache_across_endpoints",
        "base_url",
        "api_key_env",
        "device",
        "batch_size",
    }
)


def answer_options(options: dict) -> dict:
    """The model options that may change its answers (what a run's identity holds)."""
    return {k: v for k, v in options.items() if k not in RUN_OPTIONS}


__all__ = [
    "RUN_OPTIONS",
    "answer_options",
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
