"""Write a task's clean and corrupted samples to disk, for tools that want files.

Streaming: work items flow through a process pool and each finished item is appended to
``manifest.jsonl`` at once, so memory does not grow with the dataset and an interrupted run resumes
where it stopped. Items are written under ``items/`` in the image's own dtype; ``--format tsv``
(VLMEvalKit style) and ``--format hf`` (``datasets.load_from_disk``) are exported from them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import multiprocessing
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .data.sample import Sample
from .errors import MedFMRobustError
from .jsonl import read_jsonl
from .tasks import Condition, TaskCard
from .views import CorruptedViews

FORMATS = ("folder", "tsv", "hf")
MANIFEST = "manifest.jsonl"
ERRORS = "errors.jsonl"
SETTINGS = "materialize.json"


@dataclass(frozen=True)
class Plan:
    """What to write: the task, which samples and conditions, how severities are set."""

    card: TaskCard
    data_root: str | None = None
    limit: int | None = None
    corruptions: tuple[str, ...] | None = None
    severities: tuple[int, ...] | None = None
    seed: int = 0

    def settings(self) -> dict[str, Any]:
        return {
            "task": self.card.name,
            "limit": self.limit,
            "corruptions": list(self.corruptions) if self.corruptions else None,
            "severities": list(self.severities or self.card.severities),
            "severity_mode": self.card.severity_mode,
            "seed": self.seed,
        }


# One state per worker process, set by the pool initializer.
_worker: dict[str, Any] = {}


def _samples(plan: Plan) -> list[Sample]:
    """The task's samples; ``limit`` keeps a stratified, seeded subset (every modality stays)."""
    from .tasks import Sampling, select

    samples = plan.card.load(plan.data_root).samples
    if plan.limit is None:
        return samples
    return select(samples, Sampling(size=plan.limit, seed=plan.card.sampling.seed))


def _conditions(plan: Plan, sample: Sample) -> list[tuple[Condition, Any]]:
    levels = plan.severities or plan.card.severities
    specs = plan.card.corruptions_for(sample.modality)
    if plan.corruptions is not None:
        specs = [s for s in specs if s.name in plan.corruptions]
    return [(Condition(None, None), None)] + [
        (Condition(s.name, k), s) for s in specs for k in levels
    ]


def _init_worker(plan: Plan, out: str) -> None:
    _worker["plan"] = plan
    _worker["out"] = Path(out)
    _worker["samples"] = _samples(plan)
    _worker["views"] = CorruptedViews(
        global_seed=plan.seed, mode=plan.card.severity_mode, memory_items=4
    )


def _work_items(
    plan: Plan, samples: list[Sample], done: set[str]
) -> Iterator[tuple[int, tuple[int, ...]]]:
    """One job per sample with its unfinished conditions, so that a worker loads each clean image once."""
    for index, sample in enumerate(samples):
        pending = tuple(
            position
            for position, (condition, _) in enumerate(_conditions(plan, sample))
            if item_key(sample, condition) not in done
        )
        if pending:
            yield index, pending


def item_key(sample: Sample, condition: Condition) -> str:
    return f"{sample.dataset}/{sample.id}/{condition.key}"


def _write_sample(job: tuple[int, tuple[int, ...]]) -> list[dict[str, Any]]:
    plan: Plan = _worker["plan"]
    sample = _worker["samples"][job[0]]
    conditions = _conditions(plan, sample)
    return [_write_item(sample, *conditions[position]) for position in job[1]]


def _write_item(sample: Sample, condition: Condition, spec: Any) -> dict[str, Any]:
    from .image import save_image

    out: Path = _worker["out"]
    views: CorruptedViews = _worker["views"]
    key = item_key(sample, condition)
    try:
        view = views.get(sample, condition, corruption=spec)
        image = view.image
        suffix = ".png" if image.dtype in (np.uint8, np.uint16) else ".tif"
        relative = (
            Path("items") / _safe(sample.dataset) / _safe(sample.id) / f"{condition.key}{suffix}"
        )
        path = out / relative
        tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
        save_image(tmp, np.ascontiguousarray(image))
        os.replace(tmp, path)
        record: dict[str, Any] = {
            "key": key,
            **view.record(),
            "image": str(relative),
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "ssim": (view.params or {}).get("ssim"),  # on the presented image
            "window": list(views.window(sample)),
        }
        if condition.is_clean and sample.mask is not None:
            mask_rel = Path("items") / _safe(sample.dataset) / _safe(sample.id) / "mask.png"
            save_image(out / mask_rel, sample.load_mask().astype(np.uint8) * 255)
            record["mask"] = str(mask_rel)
        record["label"] = _label(sample)
        return record
    except Exception as exc:  # recorded, and the run goes on
        return {"key": key, "error": f"{type(exc).__name__}: {exc}", "sample_id": sample.id}


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


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name))


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
) -> dict[str, Any]:
    """Write every (sample, condition) of ``plan`` under ``out``; return counts."""
    if fmt not in FORMATS:
        raise MedFMRobustError(f"format '{fmt}' is unknown; use one of {', '.join(FORMATS)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings_path = out / SETTINGS
    settings = plan.settings()
    if settings_path.exists():
        previous = json.loads(settings_path.read_text())
        if previous != settings:
            raise MedFMRobustError(
                f"'{out}' holds a materialization with other settings ({previous}); "
                "use another --out, or delete it to start over"
            )
    else:
        settings_path.write_text(json.dumps(settings, indent=2))

    done = {r["key"] for r in read_manifest(out)}
    samples = _samples(plan)
    jobs = _work_items(plan, samples, done)
    written = failed = 0
    with (
        (out / MANIFEST).open("a", encoding="utf-8") as manifest,
        (out / ERRORS).open("a") as errors,
    ):
        for record in _run(plan, out, jobs, num_proc):
            target = errors if "error" in record else manifest
            target.write(json.dumps(record, default=str) + "\n")
            target.flush()
            failed += "error" in record
            written += "error" not in record
            if progress is not None:
                progress(1)
    result = {"written": written, "failed": failed, "skipped_done": len(done), "out": str(out)}
    if fmt == "tsv":
        result["tsv"] = str(export_tsv(out, plan))
    elif fmt == "hf":
        result["hf"] = str(export_hf(out))
    return result


def count_items(plan: Plan) -> int:
    return sum(len(_conditions(plan, s)) for s in _samples(plan))


def _run(
    plan: Plan, out: Path, jobs: Iterator[tuple[int, tuple[int, ...]]], num_proc: int
) -> Iterator[dict[str, Any]]:
    if num_proc <= 1:
        _init_worker(plan, str(out))
        for records in map(_write_sample, jobs):
            yield from records
        return
    context = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
    with context.Pool(num_proc, initializer=_init_worker, initargs=(plan, str(out))) as pool:
        for records in pool.imap(_write_sample, jobs, chunksize=2):
            yield from records


# ---------------------------------------------------------------------- exports


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
        for index, record in enumerate(read_manifest(out)):
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

    def rows() -> Iterator[dict[str, Any]]:
        for record in read_manifest(out):
            label = record.get("label", {})
            yield {
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
