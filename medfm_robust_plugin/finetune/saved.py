"""A fine-tuning run's directory as it is read back: its record, its tuned weights, the model.

``models.segmenters`` loads a fine-tuned directory through this module, which imports nothing
above it; ``finetune.run`` writes the directory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .strategies import FinetuneError, StrategyOptions

RUN_FILE = "finetune.json"
TUNED_FILE = "tuned.safetensors"


def _load_trained(model: Any, state: dict, source: str) -> None:
    expected = {n for n, p in model.named_parameters() if p.requires_grad}
    missing, extra = expected - set(state), set(state) - expected
    if missing or extra:
        raise FinetuneError(
            f"'{source}' does not fit the model and strategy: missing {sorted(missing)[:4]}, "
            f"unexpected {sorted(extra)[:4]}"
        )
    model.load_state_dict(state, strict=False)


def is_finetuned_dir(path: str) -> bool:
    return os.path.isfile(os.path.join(path, RUN_FILE))


def finetuned_sample_ids(path: str | None) -> frozenset[str]:
    """The ids a fine-tuning run in ``path`` trained and validated on (read from its record)."""
    if not path or not is_finetuned_dir(path):
        raise FinetuneError(
            f"'{path}' is not the output directory of `medfm-robust finetune` (no {RUN_FILE}); "
            "--skip-finetuned-samples is for fine-tuned models"
        )
    samples = json.loads(Path(path, RUN_FILE).read_text())["samples"]
    return frozenset(samples["train"]) | frozenset(samples["validation"])


def load_finetuned(path: str, load_base: Callable[[str], Any]) -> Any:
    """The SamModel of a fine-tuning run's directory: base model + strategy + tuned weights.

    ``load_base`` loads the base model from its id (``models.segmenters.load_sam_model``, which
    hands itself in, so that this module needs nothing above it). The model carries
    ``finetuned_sample_ids``: the ids it was trained and validated on.
    """
    from safetensors.torch import load_file

    from .strategies import apply_strategy

    record = json.loads(Path(path, RUN_FILE).read_text())
    tuned = Path(path, TUNED_FILE)
    if not tuned.is_file():
        raise FinetuneError(f"'{path}' has no {TUNED_FILE}: its first epoch did not finish")
    model = load_base(record["base_model_id"])
    options = StrategyOptions(
        **{**record["options"], "lora_targets": tuple(record["options"]["lora_targets"])}
    )
    apply_strategy(model, record["strategy"], options, seed=record["seed"])
    _load_trained(model, load_file(str(tuned)), str(tuned))
    model.requires_grad_(False)
    model.finetuned_sample_ids = finetuned_sample_ids(path)
    return model
