"""Write a task's clean and corrupted samples to disk, for tools that want files.

Streaming: each (sample, condition) item is made and written by a worker process and appended to
``manifest.jsonl`` as soon as it is done, so memory does not grow with the dataset, an interrupted
run resumes where it stopped, and an item that runs past the per-item time limit is recorded in
``errors.jsonl`` while the others go on. One process writes into an output directory at a time
(see ``outdir``). Items are written under ``items/<dataset>/<sample>/<condition>`` in the image's
own dtype, with names that never collide (``path_part``); ``--format tsv`` (VLMEvalKit style) and
``--format hf`` (``datasets.load_from_disk``) are exported from them.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .atomic_files import replacing
from .data.sample import Sample
from .errors import MedFMRobustError
from .file_names import path_part
from .jsonl import JsonlAppender, read_jsonl, write_json
from .outdir import OutputDirLock
from .plan import EvaluationPlan, WorkItem
from .time_limit import DEFAULT_ITEM_TIMEOUT, ItemPool, Outcome
from .views import CorruptedViews

FORMATS = ("folder", "tsv", "hf")
MANIFEST = "manifest.jsonl"
ERRORS = "errors.jsonl"
SETTINGS = "materialize.json"


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


Job = tuple[int, int, str]  # (sample index, condition position, item key): small to send


def _work_items(plan: Plan, samples: list[Sample], done: set[str]) -> Iterator[Job]:
    """One job per unfinished item, so that a slow or hanging item holds back nothing else."""
    for index, sample in enumerate(samples):
        for position, item in enumerate(_conditions(plan, sample)):
            if item.key not in done:
                yield index, position, item.key


def _write_job(job: Job) -> dict[str, Any]:
    plan: Plan = _worker["plan"]
    index, position, key = job
    item = _conditions(plan, _worker["samples"][index])[position]
    if item.key != key:
        raise MedFMRobustError(
            f"item {key}: this worker loaded the task's samples in another order "
            f"(found {item.key}); the dataset loader must be deterministic"
        )
    return _write_item(item)


def _write_item(item: WorkItem) -> dict[str, Any]:
    from .image import save_image

    out: Path = _worker["out"]
    views: CorruptedViews = _worker["views"]
    sample, condition = item.sample, item.condition
    try:
        view = views.get(sample, condition, corruption=item.spec)
        image = view.image
        suffix = ".png" if image.dtype in (np.uint8, np.uint16) else ".tif"
        folder = sample_folder(sample)
        relative = folder / f"{path_part(condition.key)}{suffix}"
        record: dict[str, Any] = {
            "key": item.key,
            **view.record(),
            "image": str(relative),
            "sha256": _write_atomic(out / relative, np.ascontiguousarray(image), save_image),
            "ssim": (view.params or {}).get("ssim"),  # on the presented image
            "window": list(views.window(sample)),
        }
        if condition.is_clean and sample.mask is not None:
            mask = sample.load_mask().astype(np.uint8) * 255
            record["mask_sha256"] = _write_atomic(out / folder / "mask.png", mask, save_image)
            record["mask"] = str(folder / "mask.png")
        record["label"] = _label(sample)
        return record
    except Exception as exc:  # recorded, and the run goes on
        return _failure(item, f"{type(exc).__name__}: {exc}")


def _failure(item: WorkItem, error: str) -> dict[str, Any]:
    return {
        "key": item.key,
        "error": error,
        "sample_id": item.sample.id,
        "condition": item.condition.key,
    }


def _write_atomic(path: Path, image: np.ndarray, save_image: Any) -> str:
    """Write ``image`` to ``path`` through a temporary file; return the SHA-256 of what is there."""
    with replacing(path, readable=True) as tmp:
        save_image(tmp, image)
        digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    return digest


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


def read_manifest(out: Path) -> Iterator[dict[str, Any]]:
    """The manifest's records, streamed. Each finished item has exactly one: a record is appended
    once, when its file is in place, and a rerun skips keys already there."""
    return read_jsonl(out / MANIFEST)


def materialize(
    plan: Plan,
    out: str | os.PathLike,
    fmt: str = "folder",
    num_proc: int = 1,
    progress: Any = None,
    *,
    wait: bool = False,
    item_timeout: float | None = DEFAULT_ITEM_TIMEOUT,
) -> dict[str, Any]:
    """Write every (sample, condition) of ``plan`` under ``out``; return counts.

    ``num_proc`` worker processes make the items, each under ``item_timeout`` seconds (None: no
    limit); ``num_proc=0`` works in this process, without the time limit. When another process is
    writing into ``out``, this one refuses (``OutputDirBusyError`` naming it) or, with ``wait``,
    waits for it to finish.
    """
    if fmt not in FORMATS:
        raise MedFMRobustError(f"format '{fmt}' is unknown; use one of {', '.join(FORMATS)}")
    out = Path(out)
    command = f"medfm-robust materialize --task {plan.card.name}"
    with OutputDirLock(out, command, wait=wait):
        return _materialize(plan, out, fmt, num_proc, progress, item_timeout)


def _materialize(
    plan: Plan,
    out: Path,
    fmt: str,
    num_proc: int,
    progress: Any,
    item_timeout: float | None,
) -> dict[str, Any]:
    settings_path = out / SETTINGS
    settings = plan_settings(plan)
    if settings_path.exists():
        previous = json.loads(settings_path.read_text())
        if previous != settings:
            raise MedFMRobustError(
                f"'{out}' holds a materialization with other settings ({previous}); "
                "use another --out, or delete it to start over"
            )
    else:
        write_json(settings_path, settings)

    done = {r["key"] for r in read_manifest(out)}
    samples = _samples(plan)
    jobs = _work_items(plan, samples, done)
    written = failed = timed_out = 0
    with (
        JsonlAppender(out / MANIFEST) as manifest,
        JsonlAppender(out / ERRORS) as errors,
        contextlib.closing(_run(plan, out, samples, jobs, num_proc, item_timeout)) as records,
    ):
        for record, late in records:
            (errors if "error" in record else manifest).write(record)
            failed += "error" in record
            written += "error" not in record
            timed_out += late
            if progress is not None:
                progress(1)
    result = {
        "written": written,
        "failed": failed,
        "timed_out": timed_out,
        "skipped_done": len(done),
        "out": str(out),
    }
    if fmt == "tsv":
        result["tsv"] = str(export_tsv(out, plan))
    elif fmt == "hf":
        result["hf"] = str(export_hf(out))
    return result


def count_items(plan: Plan) -> int:
    return sum(len(_conditions(plan, s)) for s in _samples(plan))


def _run(
    plan: Plan,
    out: Path,
    samples: list[Sample],
    jobs: Iterable[Job],
    num_proc: int,
    item_timeout: float | None,
) -> Iterator[tuple[dict[str, Any], bool]]:
    """(record, timed out) per item, as items finish."""
    if num_proc <= 0:  # in this process: no worker start-up, and no time limit
        _init_worker(plan, str(out))
        for job in jobs:
            yield _write_job(job), False
        return

    pool = ItemPool(
        num_proc,
        _write_job,
        initializer=_init_worker,
        initargs=(plan, str(out)),
        timeout=item_timeout or None,
        describe=lambda job: f"item {job[2]}",
    )
    with pool:
        for outcome in pool.map_unordered(jobs):
            yield _outcome_record(plan, samples, outcome), outcome.timed_out


def _outcome_record(plan: Plan, samples: list[Sample], outcome: Outcome) -> dict[str, Any]:
    if outcome.error is None:
        return outcome.value
    sample = samples[outcome.job[0]]
    return _failure(_conditions(plan, sample)[outcome.job[1]], outcome.error)


# ---------------------------------------------------------------------- exports


def _in_plan_order(records: Iterable[dict[str, Any]], plan: Plan) -> list[dict[str, Any]]:
    """Records in the plan's order (sample, then condition), whatever order workers finished in,
    so that an export's row indices are the same on every run; keys the plan lacks go last."""
    order = {item.key: rank for rank, item in enumerate(plan.items(_samples(plan)))}
    return sorted(records, key=lambda r: order.get(r["key"], len(order)))


def export_tsv(out: Path, plan: Plan) -> Path:
    """A VLMEvalKit-style TSV: index, base64 PNG of what a model sees, question, options, answer."""
    import csv

    import cv2

    from .image import load_image
    from .presentation import Presentation, presentation_for
    from .preview import display_uint8

    def shown(record: dict[str, Any], image: np.ndarray) -> np.ndarray:
        """What the view layer sends a model: the clean item's window (recorded per item)."""
        if record.get("window"):
            presentation = Presentation(tuple(record["window"]), "recorded window")
        else:
            presentation = presentation_for(image, record.get("modality"))
        return display_uint8(presentation.to_uint8(image))

    path = out / f"{plan.card.name}.tsv"
    letters = "ABCDEFGH"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(
            [
                "index",
                "image",
                "question",
                *letters[:4],
                "answer",
                "category",
                "modality",
                "corruption",
                "severity",
                "sample_id",
                "condition",
            ]
        )
        for index, record in enumerate(_in_plan_order(read_manifest(out), plan)):
            image = load_image(out / record["image"]).array
            ok, png = cv2.imencode(".png", cv2.cvtColor(shown(record, image), cv2.COLOR_RGB2BGR))
            label = record.get("label", {})
            options = label.get("options") or {}
            writer.writerow(
                [
                    index,
                    base64.b64encode(png.tobytes()).decode(),
                    label.get("question", ""),
                    *[options.get(letter, "") for letter in letters[:4]],
                    label.get("answer", ""),
                    record["condition"],
                    record["modality"],
                    record["corruption"] or "",
                    record["severity"] or "",
                    record["sample_id"],
                    record["condition"],
                ]
            )
    return path


def export_hf(out: Path) -> Path:
    """A ``datasets`` dataset on disk (``datasets.load_from_disk``), built by streaming the items."""
    try:
        import datasets
    except ImportError:
        raise MedFMRobustError(
            "--format hf needs the 'datasets' package: pip install 'medfm-robust-plugin[data]'"
        ) from None

    # A segmentation sample's mask is written once, with its clean item; every item of the sample
    # (clean and corrupted) carries it, as every condition is scored against it.
    masks = {
        (r["dataset"], r["sample_id"]): str(out / r["mask"])
        for r in read_manifest(out)
        if r.get("mask")
    }

    def rows() -> Iterator[dict[str, Any]]:
        for record in read_manifest(out):
            label = record.get("label", {})
            mask = {"mask": masks.get((record["dataset"], record["sample_id"]))} if masks else {}
            yield {
                **mask,
                "image": str(out / record["image"]),
                "sample_id": record["sample_id"],
                "dataset": record["dataset"],
                "modality": record["modality"],
                "condition": record["condition"],
                "corruption": record["corruption"] or "",
                "severity": record["severity"] or 0,
                "seed": record["seed"] if record["seed"] is not None else -1,
                "ssim": record["ssim"] if record["ssim"] is not None else 1.0,
                "sha256": record["sha256"],
                "params": json.dumps(record["params"]),
                "label": json.dumps(label),
            }

    features = datasets.Features(
        {
            **({"mask": datasets.Image()} if masks else {}),
            "image": datasets.Image(),
            "sample_id": datasets.Value("string"),
            "dataset": datasets.Value("string"),
            "modality": datasets.Value("string"),
            "condition": datasets.Value("string"),
            "corruption": datasets.Value("string"),
            "severity": datasets.Value("int32"),
            "seed": datasets.Value("int64"),
            "ssim": datasets.Value("float64"),
            "sha256": datasets.Value("string"),
            "params": datasets.Value("string"),
            "label": datasets.Value("string"),
        }
    )
    target = out / "hf"
    cache = out / ".hf-cache"
    dataset = datasets.Dataset.from_generator(rows, features=features, cache_dir=str(cache))
    dataset.save_to_disk(str(target))
    del dataset
    shutil.rmtree(cache, ignore_errors=True)
    return target
