"""What a worker makes: one materialized item (or one Parquet shard) of a plan, in any process.

``materialize`` (this machine's worker processes) and ``on_ray`` (the tasks of a Ray cluster) both
call these, so an item's bytes depend only on the plan and the item, never on which process or
executor made it. A worker is set up once per process and plan (``ensure_worker``) and then makes
items from small jobs: (sample index, condition position, item key).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from . import shards
from .atomic_files import replacing
from .data.sample import Sample
from .errors import MedFMRobustError
from .file_names import path_part
from .plan import EvaluationPlan, WorkItem
from .views import CorruptedViews

# What to write: the task, which samples and conditions, how severities are set (see ``plan``).
Plan = EvaluationPlan


def plan_settings(plan: Plan) -> dict[str, Any]:
    """What a materialization folder was written with; a rerun into it must match."""
    return {
        "task": plan.card.name,
        "limit": plan.limit,
        "corruptions": list(plan.corruptions) if plan.corruptions else None,
        "severities": list(plan.levels),
        "severity_mode": plan.mode,
        "seed": plan.seed,
    }


# One state per worker process, set by the pool initializer.
_worker: dict[str, Any] = {}


def _samples(plan: Plan) -> list[Sample]:
    """The plan's samples; ``limit`` keeps a stratified, seeded subset (every modality stays)."""
    return plan.samples()


def _conditions(plan: Plan, sample: Sample) -> list[WorkItem]:
    """The items of one sample, in the plan's order."""
    return plan.items_of(sample)


def _init_worker(plan: Plan, out: str) -> None:
    _worker["plan"] = plan
    _worker["out"] = Path(out)
    _worker["samples"] = _samples(plan)
    _worker["views"] = plan.views(memory_items=4)
    _worker["token"] = _plan_token(plan, out)


def _plan_token(plan: Plan, out: str) -> str:
    options = [plan.data_root, plan.limit_seed, str(out)]
    return json.dumps([plan_settings(plan), *options], sort_keys=True, default=str)


def ensure_worker(plan: Plan, out: str) -> None:
    """Set up this process to make the items of ``plan`` (once per process and plan): the
    tasks of a cluster reuse their worker processes."""
    if _worker.get("token") != _plan_token(plan, out):
        _init_worker(plan, out)


Job = tuple[int, int, str]  # (sample index, condition position, item key): small to send


def _job_item(job: Job) -> WorkItem:
    plan: Plan = _worker["plan"]
    index, position, key = job
    item = _conditions(plan, _worker["samples"][index])[position]
    if item.key != key:
        raise MedFMRobustError(
            f"item {key}: this worker loaded the task's samples in another order "
            f"(found {item.key}); the dataset loader must be deterministic"
        )
    return item


def _write_job(job: Job) -> dict[str, Any]:
    """Make one item and write its files into the folder layout; its manifest record."""
    return _write_item(_job_item(job))


def _write_item(item: WorkItem) -> dict[str, Any]:
    out: Path = _worker["out"]
    try:
        record, files = _made_item(item, _worker["views"])
        for relative, data in files.items():
            with replacing(out / relative, readable=True) as tmp:
                tmp.write_bytes(data)
        return record
    except Exception as exc:  # recorded, and the run goes on
        return _failure(item, f"{type(exc).__name__}: {exc}")


def make_job(job: Job) -> tuple[dict[str, Any], dict[str, bytes]]:
    """One item, made but not written: (manifest record or failure, files by relative name).

    Every item of a segmentation sample carries the sample's mask (a shard is read row by row)."""
    item = _job_item(job)
    try:
        return _made_item(item, _worker["views"], every_mask=True)
    except Exception as exc:  # recorded, and the run goes on
        return _failure(item, f"{type(exc).__name__}: {exc}"), {}


def _made_item(
    item: WorkItem, views: CorruptedViews, every_mask: bool = False
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """An item's manifest record and its encoded files (the image; the mask with the clean item,
    or with every item when ``every_mask``), by their paths relative to the output folder."""
    sample, condition = item.sample, item.condition
    view = views.get(sample, condition, corruption=item.spec)
    image = view.image
    suffix = ".png" if image.dtype in (np.uint8, np.uint16) else ".tif"
    folder = sample_folder(sample)
    relative = str(folder / f"{path_part(condition.key)}{suffix}")
    data = encode_image(np.ascontiguousarray(image), suffix)
    files = {relative: data}
    record: dict[str, Any] = {
        "key": item.key,
        **view.record(),
        "image": relative,
        "sha256": hashlib.sha256(data).hexdigest(),
        "ssim": (view.params or {}).get("ssim"),  # on the presented image
        "window": list(views.window(sample)),
    }
    if (condition.is_clean or every_mask) and sample.mask is not None:
        mask = encode_image(sample.load_mask().astype(np.uint8) * 255, ".png")
        record["mask"] = str(folder / "mask.png")
        record["mask_sha256"] = hashlib.sha256(mask).hexdigest()
        files[record["mask"]] = mask
    record["label"] = _label(sample)
    return record, files


def encode_image(image: np.ndarray, suffix: str) -> bytes:
    """The bytes of ``image`` saved as ``suffix`` (as ``save_image`` writes them)."""
    from .image import save_image

    with tempfile.TemporaryDirectory(prefix="medfm-robust-item-") as folder:
        path = Path(folder) / f"item{suffix}"
        save_image(path, image)
        return path.read_bytes()


def _failure(item: WorkItem, error: str) -> dict[str, Any]:
    return {
        "key": item.key,
        "error": error,
        "sample_id": item.sample.id,
        "condition": item.condition.key,
    }


def sample_folder(sample: Sample) -> Path:
    """Where a sample's items go: ``items/<dataset>/<sample id>``, one folder per (dataset, id)."""
    return Path("items") / path_part(sample.dataset) / path_part(sample.id)


def _label(sample: Sample) -> dict[str, Any]:
    return {
        k: v
        for k, v in {
            "question": sample.question,
            "options": sample.options,
            "answer": sample.answer,
            "box": list(sample.box) if sample.box else None,
        }.items()
        if v is not None
    }


ShardResult = tuple[list[dict[str, Any]], list[dict[str, Any]], int]  # records, failures, late


def make_shard(
    out: Path, shard: shards.Shard, made: Iterable[tuple[int, Any, bool]]
) -> ShardResult:
    """Write one shard from its items' ``(position, (record, files), timed out)``; what it holds."""
    items: list[shards.Made] = []
    failures: list[dict[str, Any]] = []
    late = 0
    for position, (record, files), timed_out in made:
        late += timed_out
        if "error" in record:
            failures.append(record)
        else:
            items.append((position, record, files))
    records = shards.write_shard(out, shard, items, [f["key"] for f in failures])
    return records, failures, late
