"""Write a task's clean and corrupted samples to disk, for tools that want files.

Streaming: each (sample, condition) item is made and written by a worker process and appended to
``manifest.jsonl`` as soon as it is done, so memory does not grow with the dataset, an interrupted
run resumes where it stopped, and an item that runs past the per-item time limit is recorded in
``errors.jsonl`` while the others go on. One process writes into an output directory at a time
(see ``outdir``). Items are written under ``items/<dataset>/<sample>/<condition>`` in the image's
own dtype, with names that never collide (``path_part``); ``--format tsv`` (VLMEvalKit style) and
``--format hf`` (``datasets.load_from_disk``) are exported from them. ``--format parquet`` writes
the same items into Parquet shards instead, each with a completion marker (see ``shards``).

The items are made by worker processes here (``executor="local"``) or by the tasks of a Ray
cluster (``executor="ray"``, see ``on_ray``); either way an item's bytes depend only on the plan
and the item, never on which process made it, and only this process appends to the manifest.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from . import materialize_worker as worker
from . import shards
from .data.sample import Sample
from .errors import MedFMRobustError
from .jsonl import JsonlAppender, read_jsonl, write_json
from .materialize_worker import (
    Job,
    ShardResult,
    _conditions,
    _failure,
    _init_worker,
    _write_job,
    make_job,
    make_shard,
    plan_settings,
)
from .outdir import OutputDirLock
from .plan import EvaluationPlan
from .shards import DEFAULT_SHARD_SIZE
from .time_limit import DEFAULT_ITEM_TIMEOUT, ItemPool, Outcome

FORMATS = ("folder", "tsv", "hf", "parquet")
EXECUTORS = ("local", "ray")
MANIFEST = "manifest.jsonl"
ERRORS = "errors.jsonl"
SETTINGS = "materialize.json"


# What to write: the task, which samples and conditions, how severities are set (see ``plan``).
Plan = EvaluationPlan


def _work_items(plan: Plan, samples: list[Sample], done: set[str]) -> Iterator[Job]:
    """One job per unfinished item, so that a slow or hanging item holds back nothing else."""
    for index, sample in enumerate(samples):
        for position, item in enumerate(_conditions(plan, sample)):
            if item.key not in done:
                yield index, position, item.key


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
    executor: str = "local",
    ray_address: str | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
) -> dict[str, Any]:
    """Write every (sample, condition) of ``plan`` under ``out``; return counts.

    ``num_proc`` worker processes make the items, each under ``item_timeout`` seconds (None: no
    limit); ``num_proc=0`` works in this process, without the time limit. ``executor="ray"``
    makes them on a Ray cluster instead (``ray_address``: ``auto``, ``host:port``, or None to
    start one on this machine), ``shard_size`` items per task. ``fmt="parquet"`` writes Parquet
    shards of ``shard_size`` items (see ``shards``). When another process is writing into
    ``out``, this one refuses (``OutputDirBusyError`` naming it) or, with ``wait``, waits for it.
    """
    if fmt not in FORMATS:
        raise MedFMRobustError(f"format '{fmt}' is unknown; use one of {', '.join(FORMATS)}")
    if executor not in EXECUTORS:
        raise MedFMRobustError(
            f"executor '{executor}' is unknown; use one of {', '.join(EXECUTORS)}"
        )
    if shard_size < 1:
        raise MedFMRobustError(f"shard size {shard_size} must be at least 1 item")
    out = Path(out)
    command = f"medfm-robust materialize --task {plan.card.name}"
    with OutputDirLock(out, command, wait=wait):
        _check_settings(plan, out)
        if fmt == "parquet":
            return _materialize_shards(
                plan, out, num_proc, progress, item_timeout, executor, ray_address, shard_size
            )
        result = _materialize(
            plan, out, num_proc, progress, item_timeout, executor, ray_address, shard_size
        )
        if fmt == "tsv":
            result["tsv"] = str(export_tsv(out, plan))
        elif fmt == "hf":
            result["hf"] = str(export_hf(out))
        return result


def _check_settings(plan: Plan, out: Path) -> None:
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


def _materialize(
    plan: Plan,
    out: Path,
    num_proc: int,
    progress: Any,
    item_timeout: float | None,
    executor: str = "local",
    ray_address: str | None = None,
    batch_size: int = DEFAULT_SHARD_SIZE,
) -> dict[str, Any]:
    done = {r["key"] for r in read_manifest(out)}
    samples = worker._samples(plan)
    jobs = _work_items(plan, samples, done)
    if executor == "ray":
        from .on_ray.materialize import write_items

        stream = write_items(plan, out, list(jobs), batch_size, item_timeout, ray_address)
    else:
        stream = _run(plan, out, samples, jobs, num_proc, item_timeout)
    written = failed = timed_out = 0
    finished = set(done)
    with (
        JsonlAppender(out / MANIFEST) as manifest,
        JsonlAppender(out / ERRORS) as errors,
        contextlib.closing(stream) as records,
    ):
        for record, late in records:
            if "error" in record:
                errors.write(record)
                failed += 1
            elif record["key"] not in finished:  # one line per item, whatever was retried
                manifest.write(record)
                finished.add(record["key"])
                written += 1
            timed_out += late
            if progress is not None:
                progress(1)
    return {
        "written": written,
        "failed": failed,
        "timed_out": timed_out,
        "skipped_done": len(done),
        "out": str(out),
    }


def _materialize_shards(
    plan: Plan,
    out: Path,
    num_proc: int,
    progress: Any,
    item_timeout: float | None,
    executor: str,
    ray_address: str | None,
    shard_size: int,
) -> dict[str, Any]:
    """Parquet shards: the shards without a clean marker are made (whole), the others kept."""
    samples = worker._samples(plan)
    jobs = list(_work_items(plan, samples, set()))  # every item: a job's position is its index
    layout = shards.cut(len(jobs), shard_size)
    shards.check_layout(out, shard_size, len(jobs))
    todo = shards.pending(out, layout)
    skipped = len(jobs) - sum(s.stop - s.start for s in todo)
    written = failed = timed_out = 0
    with (
        JsonlAppender(out / MANIFEST) as manifest,
        JsonlAppender(out / ERRORS) as errors,
    ):
        listed = {r["key"] for r in read_manifest(out)}
        # a run killed between a shard's marker and its manifest lines: add them now
        for record in shards.finished_records(out, layout):
            if record["key"] not in listed:
                manifest.write(record)
                listed.add(record["key"])
        if executor == "ray":
            from .on_ray.materialize import write_shards

            stream = write_shards(plan, out, todo, jobs, item_timeout, ray_address)
        else:
            stream = _local_shards(plan, out, samples, todo, jobs, num_proc, item_timeout)
        with contextlib.closing(stream) as finished:
            for records, failures, late in finished:
                for record in records:
                    if record["key"] not in listed:
                        manifest.write(record)
                        listed.add(record["key"])
                for failure in failures:
                    errors.write(failure)
                written += len(records)
                failed += len(failures)
                timed_out += late
                if progress is not None:
                    progress(len(records) + len(failures))
    return {
        "written": written,
        "failed": failed,
        "timed_out": timed_out,
        "skipped_done": skipped,
        "shards": len(layout),
        "out": str(out),
    }


def _local_shards(
    plan: Plan,
    out: Path,
    samples: list[Sample],
    todo: list[shards.Shard],
    jobs: list[Job],
    num_proc: int,
    item_timeout: float | None,
) -> Iterator[ShardResult]:
    """Each pending shard, written here once its last item is made (items come from workers)."""
    position_of = {job[2]: position for position, job in enumerate(jobs)}
    shard_of = {p: shard for shard in todo for p in range(shard.start, shard.stop)}
    open_shards: dict[int, list[tuple[int, Any, bool]]] = {}

    def made_items() -> Iterator[tuple[int, Any, bool]]:
        pending_jobs = (jobs[p] for shard in todo for p in range(shard.start, shard.stop))
        if num_proc <= 0:  # in this process: no worker start-up, and no time limit
            _init_worker(plan, str(out))
            for job in pending_jobs:
                yield position_of[job[2]], make_job(job), False
            return
        pool = ItemPool(
            num_proc,
            make_job,
            initializer=_init_worker,
            initargs=(plan, str(out)),
            timeout=item_timeout or None,
            describe=lambda job: f"item {job[2]}",
        )
        with pool:
            for outcome in pool.map_unordered(pending_jobs):
                position = position_of[outcome.job[2]]
                if outcome.error is None:
                    yield position, outcome.value, outcome.timed_out
                else:
                    failure = _outcome_record(plan, samples, outcome)
                    yield position, (failure, {}), outcome.timed_out

    for position, value, late in made_items():
        shard = shard_of[position]
        items = open_shards.setdefault(shard.index, [])
        items.append((position, value, late))
        if len(items) == shard.stop - shard.start:
            yield make_shard(out, shard, open_shards.pop(shard.index))


def count_items(plan: Plan) -> int:
    return sum(len(_conditions(plan, s)) for s in worker._samples(plan))


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
    order = {item.key: rank for rank, item in enumerate(plan.items(worker._samples(plan)))}
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
