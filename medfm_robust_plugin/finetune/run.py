"""A fine-tuning run: data split, epochs, checkpoints, resume, and the output directory.

The output directory (``--out``) holds

    finetune.json          what was run: base model, strategy, options, parameter counts, the
                           sample ids trained on / validated on / held out, loss and Dice per epoch
    tuned.safetensors      the trained parameters of the best epoch (validation Dice), by name
    checkpoints/last.pt    the last finished epoch: trained parameters, optimizer, history

and loads as a model of the family it was trained from (``medsam:<out>``): the base model is built
again, the strategy's structure (adapters, LoRA) added, and ``tuned.safetensors`` loaded on top.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic_files import replacing, write_atomic
from .saved import (  # noqa: F401  (handed on: RUN_FILE, TUNED_FILE are public here)
    RUN_FILE,
    TUNED_FILE,
    _load_trained,
    finetuned_sample_ids,
    is_finetuned_dir,
    load_finetuned,
)
from .strategies import FinetuneError, StrategyOptions

FAMILIES = ("sam", "medsam", "sam-med2d")
CHECKPOINT = Path("checkpoints") / "last.pt"
# what must be equal for --resume to go on with a checkpoint
RESUME_KEYS = (
    "model",
    "strategy",
    "task",
    "lr",
    "weight_decay",
    "batch_size",
    "seed",
    "limit",
    "val_fraction",
    "eval_fraction",
    "options",
    "data_root",
)


@dataclass
class FinetuneConfig:
    """Everything a fine-tuning run depends on (the command's options)."""

    model: str  # family[:model id], e.g. "medsam" or "sam:/weights/sam-dir"
    strategy: str
    task: str
    out: str
    epochs: int = 10
    lr: float = 1e-4
    weight_decay: float = 0.01
    batch_size: int = 2
    seed: int = 0
    limit: int | None = None
    val_fraction: float = 0.2
    eval_fraction: float = 0.3
    options: StrategyOptions = field(default_factory=StrategyOptions)
    data_root: str | None = None
    device: str | None = None
    bf16: bool = False
    box_jitter: float | None = None  # None: MedSAM's 20 px at 1024 (training.BOX_JITTER)


def split_ids(
    ids: list[str], *, seed: int, val_fraction: float, eval_fraction: float, limit: int | None
) -> dict[str, list[str]]:
    """A deterministic split of sample ids into held-out (evaluation), train and validation.

    The held-out part is set aside first and never trained or validated on; ``limit`` then takes
    the first N of the rest. The split depends on the ids and the seed only, not on their order.
    """
    for name, value in (("val_fraction", val_fraction), ("eval_fraction", eval_fraction)):
        if not 0 <= value < 1:
            raise FinetuneError(f"--{name.replace('_', '-')} {value} must be in [0, 1)")
    if len(set(ids)) != len(ids):
        raise FinetuneError("the task's samples repeat ids; the split needs unique sample ids")
    ordered = sorted(ids)  # the same split whatever order the loader gave
    order = [ordered[i] for i in np.random.default_rng(seed).permutation(len(ordered))]
    n_eval = int(round(len(order) * eval_fraction))
    held_out, rest = order[:n_eval], order[n_eval:]
    if limit is not None:
        rest = rest[:limit]
    n_val = int(round(len(rest) * val_fraction))
    if val_fraction > 0 and n_val == 0 and len(rest) >= 2:
        n_val = 1
    validation, train = rest[:n_val], rest[n_val:]
    if not train:
        raise FinetuneError(
            f"no training samples left ({len(ids)} samples, {n_eval} held out, {n_val} for "
            "validation); lower --eval-fraction / --val-fraction or raise --limit"
        )
    return {"train": train, "validation": validation, "held_out": held_out}


def resolve_family(model: str) -> tuple[str, str]:
    """(family, model id) of ``--model``; the id is the family's default when none is given."""
    from ..models.base import resolve

    spec, model_id = resolve(model)
    if spec.name not in FAMILIES:
        raise FinetuneError(
            f"--model {model}: fine-tuning works on the SAM family ({', '.join(FAMILIES)}), "
            f"not on '{spec.name}'"
        )
    model_id = model_id or spec.default_id
    if model_id is None:
        raise FinetuneError(f"--model {spec.name} needs a model id: {spec.name}:<path>")
    if os.path.exists(model_id):
        model_id = os.path.abspath(model_id)
    return spec.name, model_id


def build_segmenter(family: str, model_id: str, device: str | None) -> Any:
    from ..models.base import load_model

    return load_model(f"{family}:{model_id}", device=device)


def _task_samples(config: FinetuneConfig) -> list[Any]:
    from ..lookup import get_task

    card = get_task(config.task)
    if card.kind != "segmentation":
        raise FinetuneError(f"--task {card.name} is a {card.kind} task; give a segmentation card")
    samples = card.load(config.data_root).samples
    usable = [s for s in samples if s.mask is not None]
    if not usable:
        raise FinetuneError(f"task '{card.name}' has no samples with a ground-truth mask")
    return usable


def finetune(
    config: FinetuneConfig,
    *,
    resume: bool = False,
    on_start: Callable[[dict[str, Any]], None] | None = None,
    on_step: Callable[[float], None] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Fine-tune ``config.model`` on ``config.task``; the run's record (as in finetune.json)."""
    from .strategies import STRATEGIES, parameter_counts, trainable_state
    from .training import BOX_JITTER, train_epoch, validation_dice

    if config.strategy not in STRATEGIES:
        raise FinetuneError(f"unknown strategy '{config.strategy}'; one of {', '.join(STRATEGIES)}")
    if config.box_jitter is not None and not 0 <= config.box_jitter <= 0.5:
        raise FinetuneError(f"--box-jitter {config.box_jitter} must be in [0, 0.5]")
    if config.epochs < 1 or config.batch_size < 1:
        raise FinetuneError("--epochs and --batch-size must be 1 or more")
    out = Path(config.out)
    family, model_id = resolve_family(config.model)
    settings = _settings(config, family, model_id)
    checkpoint = _read_checkpoint(out, settings, resume)

    split, train, validation = _split_data(config)
    segmenter, optimizer = _prepare_model(config, family, model_id)
    record: dict[str, Any] = {
        **settings,
        "family": family,
        "base_model_id": model_id,
        "parameters": parameter_counts(segmenter.model),
        "samples": split,
        "history": [],
        "best": None,
    }
    start = 1
    if checkpoint is not None:
        _load_trained(segmenter.model, checkpoint["tuned"], str(out / CHECKPOINT))
        optimizer.load_state_dict(checkpoint["optimizer"])
        record["history"] = json.loads(checkpoint["history"])
        record["best"] = json.loads(checkpoint["best"])
        start = int(checkpoint["epoch"]) + 1
    if on_start is not None:
        on_start(record)
    autocast = _autocast(config, segmenter.device)
    for epoch in range(start, config.epochs + 1):
        loss = train_epoch(
            segmenter,
            optimizer,
            train,
            seed=config.seed,
            epoch=epoch,
            batch_size=config.batch_size,
            autocast=autocast,
            on_step=on_step,
            jitter=BOX_JITTER if config.box_jitter is None else config.box_jitter,
        )
        dice = validation_dice(segmenter, validation)
        entry = {"epoch": epoch, "loss": loss, "validation_dice": dice}
        record["history"].append(entry)
        state = trainable_state(segmenter.model)
        best = record["best"]
        if dice is None or best is None or dice > best["validation_dice"]:
            record["best"] = {"epoch": epoch, "validation_dice": dice}
            _save_tuned(out / TUNED_FILE, state)
        _save_checkpoint(out / CHECKPOINT, epoch, state, optimizer, record)
        write_atomic(out / RUN_FILE, json.dumps(record, indent=2).encode())
        if on_epoch is not None:
            on_epoch(entry)
    write_atomic(out / RUN_FILE, json.dumps(record, indent=2).encode())
    return record


def _split_data(config: FinetuneConfig) -> tuple[dict[str, list[str]], Any, Any]:
    """The split of the task's sample ids, and the training and validation data."""
    from .training import TrainingData

    samples = _task_samples(config)
    split = split_ids(
        [s.id for s in samples],
        seed=config.seed,
        val_fraction=config.val_fraction,
        eval_fraction=config.eval_fraction,
        limit=config.limit,
    )
    by_id = {s.id: s for s in samples}
    train = TrainingData([by_id[i] for i in split["train"]])
    validation = TrainingData([by_id[i] for i in split["validation"]])
    return split, train, validation


def _prepare_model(config: FinetuneConfig, family: str, model_id: str) -> tuple[Any, Any]:
    """The segmenter with the strategy applied, and AdamW over what it trains."""
    import torch

    from .strategies import apply_strategy

    torch.manual_seed(config.seed)
    segmenter = build_segmenter(family, model_id, config.device)
    apply_strategy(segmenter.model, config.strategy, config.options, seed=config.seed)
    segmenter.model.to(segmenter.device)
    trainable = [p for p in segmenter.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    return segmenter, optimizer


def _settings(config: FinetuneConfig, family: str, model_id: str) -> dict[str, Any]:
    settings = {k: getattr(config, k) for k in RESUME_KEYS}
    settings["options"] = dataclasses.asdict(config.options)
    settings["options"]["lora_targets"] = list(config.options.lora_targets)
    settings["model"] = f"{family}:{model_id}"
    settings["epochs"] = config.epochs
    if config.box_jitter is not None:  # runs with MedSAM's jitter keep the settings they had
        settings["box_jitter"] = config.box_jitter
    return settings


def _autocast(config: FinetuneConfig, device: Any) -> Callable[[], Any]:
    import torch

    if not config.bf16:
        return nullcontext
    if device.type != "cuda":
        raise FinetuneError("--bf16 needs a CUDA device; on CPU, train in float32")
    return lambda: torch.autocast("cuda", dtype=torch.bfloat16)


def _read_checkpoint(out: Path, settings: dict[str, Any], resume: bool) -> dict[str, Any] | None:
    import torch

    path = out / CHECKPOINT
    if not path.exists():
        return None
    if not resume:
        raise FinetuneError(
            f"'{out}' holds a fine-tuning run already; pass --resume to go on with it, or "
            "choose another --out"
        )
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    previous = json.loads(checkpoint["settings"])
    changed = sorted(k for k in RESUME_KEYS if previous.get(k) != settings.get(k))
    if changed:
        raise FinetuneError(
            f"'{out}' was trained with other settings (changed: {', '.join(changed)}); resume "
            "with the same options, or choose another --out"
        )
    return checkpoint


def _save_checkpoint(path: Path, epoch: int, state: dict, optimizer: Any, record: dict) -> None:
    import torch

    settings = {k: record[k] for k in RESUME_KEYS}
    payload = {
        "epoch": epoch,
        "tuned": state,
        "optimizer": optimizer.state_dict(),
        # plain strings: torch.load(weights_only=True) reads them back without any pickle code
        "settings": json.dumps(settings),
        "history": json.dumps(record["history"]),
        "best": json.dumps(record["best"]),
    }
    with replacing(path) as tmp:
        torch.save(payload, tmp)


def _save_tuned(path: Path, state: dict) -> None:
    from safetensors.torch import save_file

    with replacing(path) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})
