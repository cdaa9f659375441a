"""The native runner: a task's samples, clean and under every chosen condition, through one model.

Every (sample, condition) becomes one JSON line in ``records.jsonl``, appended and flushed as soon as
it is scored, so nothing finished is lost. A rerun of the same command skips finished records (and the
API response cache makes a retried call free); a changed configuration is refused unless asked.
Corrupted views are prepared by worker threads ahead of the model, so inference never waits on them.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .data.sample import Sample
from .errors import MedFMRobustError
from .jsonl import read_jsonl
from .models.base import ModelUnavailableError
from .tasks import Condition, Sampling, TaskCard, get_task, select
from .views import CorruptedViews, View

RECORDS = "records.jsonl"
CONFIG = "config.json"
SUMMARY = "summary.json"


class RunError(MedFMRobustError):
    """A run that cannot start as asked."""


@dataclass
class RunConfig:
    task: str
    model: str
    out: str = "runs"
    corruptions: list[str] | None = None
    severities: list[int] | None = None
    limit: int | None = None
    seed: int = 0
    severity_mode: str | None = None  # default: the task card's
    data_root: str | None = None
    model_options: dict[str, Any] = field(default_factory=dict)
    max_new_tokens: int = 256
    batch_size: int | None = None  # default: the model's max_batch
    workers: int = 2  # threads preparing corrupted views ahead of the model
    judge: str | None = None  # a model that reads VQA answers the rules cannot (accuracy_judge)

    def fingerprint(self, card: TaskCard) -> dict[str, Any]:
        """What must match for a rerun to resume (paths and performance knobs excluded)."""
        return {
            "task": self.task,
            "card": _card_digest(card),
            "model": self.model,
            "model_options": {
                k: v for k, v in sorted(self.model_options.items()) if "key" not in k.lower()
            },
            "corruptions": self.corruptions,
            "severities": self.severities,
            "limit": self.limit,
            "seed": self.seed,
            "severity_mode": self.severity_mode or card.severity_mode,
            "max_new_tokens": self.max_new_tokens,
            "judge": self.judge,
        }


def _card_digest(card: TaskCard) -> str:
    data = asdict(card)
    data.pop("source", None)
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


@dataclass
class WorkItem:
    sample: Sample
    condition: Condition
    spec: Any  # the suite's Corruption (None when clean)

    @property
    def key(self) -> str:
        return f"{self.sample.dataset}/{self.sample.id}/{self.condition.key}"


@dataclass
class RunResult:
    run_dir: Path
    written: int
    failed: int
    skipped_done: int
    summary: dict[str, Any] | None


class Run:
    """One (task, model) run in ``<out>/<task>/<model>/``."""

    def __init__(self, config: RunConfig, allow_config_change: bool = False) -> None:
        self.config = config
        self.card = get_task(config.task)
        if config.severity_mode:
            self.card = self.card.with_overrides(severity_mode=config.severity_mode)
        self.run_dir = Path(config.out) / _slug(self.card.name) / _slug(config.model)
        self.allow_config_change = allow_config_change
        self._samples: list[Sample] | None = None

    # ------------------------------------------------------------------ planning

    def samples(self) -> list[Sample]:
        if self._samples is None:
            loaded = self.card.load(self.config.data_root).samples
            if self.config.limit is not None:
                loaded = select(
                    loaded, Sampling(size=self.config.limit, seed=self.card.sampling.seed)
                )
            self._samples = loaded
        return self._samples

    def work(self) -> list[WorkItem]:
        levels = self.config.severities or list(self.card.severities)
        items = []
        for sample in self.samples():
            items.append(WorkItem(sample, Condition(None, None), None))
            for spec in self.card.corruptions_for(sample.modality):
                if self.config.corruptions and spec.name not in self.config.corruptions:
                    continue
                items.extend(WorkItem(sample, Condition(spec.name, k), spec) for k in levels)
        return items

    def finished_keys(self) -> set[str]:
        """Keys with a record that did not fail (failed ones are retried on a rerun)."""
        done: dict[str, bool] = {}
        for record in read_records(self.run_dir):
            done[record["key"]] = record.get("error") is None
        return {k for k, ok in done.items() if ok}

    def check_config(self) -> None:
        path = self.run_dir / CONFIG
        fingerprint = self.config.fingerprint(self.card)
        if path.exists():
            previous = json.loads(path.read_text())["fingerprint"]
            if previous != fingerprint and not self.allow_config_change:
                changed = sorted(k for k in fingerprint if previous.get(k) != fingerprint[k])
                raise RunError(
                    f"'{self.run_dir}' holds a run with another configuration (changed: "
                    f"{', '.join(changed)}); use another --out, or pass --allow-config-change to continue it"
                )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(
                {"fingerprint": fingerprint, "config": asdict(self.config)}, indent=2, default=str
            )
        )

    def plan(self) -> dict[str, Any]:
        """What a run would do, without calling the model: for --dry-run."""
        done = self.finished_keys() if (self.run_dir / RECORDS).exists() else set()
        pending = [item for item in self.work() if item.key not in done]
        conditions = {item.condition.key for item in pending}
        return {
            "task": self.card.name,
            "model": self.config.model,
            "samples": len(self.samples()),
            "conditions": len(conditions),
            "items": len(pending),
            "already_done": len(done),
            "run_dir": str(self.run_dir),
        }

    def prompts(self, limit: int | None = None) -> list[tuple[list[Any], str]]:
        """The (images, prompt) requests of the pending items (clean images stand in for sizes)."""
        views = CorruptedViews(global_seed=self.config.seed, mode=self.card.severity_mode)
        requests = []
        for item in self.work()[:limit]:
            image = views.display(views.get(item.sample))
            requests.append(
                ([image], self.card.render_prompt(item.sample, (image.shape[1], image.shape[0])))
            )
        return requests

    # ------------------------------------------------------------------ running

    def execute(
        self,
        model: Any,
        progress: Callable[[int, dict[str, Any]], None] | None = None,
    ) -> RunResult:
        self.check_config()
        from .metrics.base import get_metric

        metrics = [get_metric(name) for name in self.card.metrics]
        if self.config.judge and self.card.kind == "vqa":
            from .metrics.vqa import make_judge_accuracy
            from .models.base import load_model

            metrics.append(make_judge_accuracy(load_model(self.config.judge)))
        done = self.finished_keys()
        pending = [item for item in self.work() if item.key not in done]
        if hasattr(model, "fit"):
            model.fit([s for s in self.samples()])
        views = CorruptedViews(global_seed=self.config.seed, mode=self.card.severity_mode)
        self._views = views
        batch_size = (
            self.config.batch_size
            or getattr(getattr(model, "capabilities", None), "max_batch", 1)
            or 1
        )
        written = failed = 0
        with (self.run_dir / RECORDS).open("a", encoding="utf-8") as out:
            for record in self._records(model, metrics, views, pending, batch_size):
                out.write(json.dumps(record, default=_json_default) + "\n")
                out.flush()
                failed += record["error"] is not None
                written += record["error"] is None
                if progress is not None:
                    progress(1, getattr(model, "usage", {}) or {})
        summary = write_summary(self.run_dir, self.card)
        return RunResult(self.run_dir, written, failed, len(done), summary)

    def _records(
        self,
        model: Any,
        metrics: Sequence[Any],
        views: CorruptedViews,
        pending: list[WorkItem],
        batch_size: int,
    ) -> Iterator[dict[str, Any]]:
        for batch in _batches(self._prepared(views, pending), batch_size):
            ready = [(item, view, seconds) for item, view, seconds, error in batch if error is None]
            for item, _, seconds, error in batch:
                if error is not None:
                    yield self._record(item, None, None, metrics, error=error, prep_seconds=seconds)
            if not ready:
                continue
            yield from self._scored(model, metrics, views, ready)

    def _scored(
        self, model: Any, metrics: Sequence[Any], views: CorruptedViews, ready: list[tuple]
    ):
        """Predict a batch; when it fails, predict its items one by one so one bad item fails alone."""
        try:
            started = time.perf_counter()
            outputs = self._predict(model, views, ready)
            share = (time.perf_counter() - started) / len(ready)
        except Exception as exc:
            stop = isinstance(exc, ModelUnavailableError)  # no further item can succeed
            outcomes = getattr(exc, "outcomes", None)
            if outcomes is not None and len(outcomes) == len(ready):
                # The model says how each item went (each had its retries): record, resend nothing.
                for (item, view, seconds), outcome in zip(ready, outcomes, strict=True):
                    if isinstance(outcome, BaseException):
                        error = _describe(outcome)
                        yield self._record(
                            item, view, None, metrics, error=error, prep_seconds=seconds
                        )
                    elif outcome is not None:  # None: not sent
                        yield self._record(item, view, outcome, metrics, prep_seconds=seconds)
            elif stop:
                pass
            elif len(ready) > 1:
                for single in ready:
                    yield from self._scored(model, metrics, views, [single])
            else:
                item, view, seconds = ready[0]
                yield self._record(
                    item, view, None, metrics, error=_describe(exc), prep_seconds=seconds
                )
            if stop:
                raise exc  # the run ends here with the model's message; what is written stays
            return
        for (item, view, seconds), output in zip(ready, outputs, strict=True):
            yield self._record(
                item, view, output, metrics, model_seconds=share, prep_seconds=seconds
            )

    def _prepared(self, views: CorruptedViews, pending: list[WorkItem]) -> Iterator[tuple]:
        """Views computed by worker threads, in order, a bounded distance ahead of the model."""

        def prepare(item: WorkItem) -> tuple:
            started = time.perf_counter()
            try:
                view = views.get(item.sample, item.condition, corruption=item.spec)
                return item, view, time.perf_counter() - started, None
            except Exception as exc:
                return item, None, time.perf_counter() - started, _describe(exc)

        workers = max(1, self.config.workers)
        if workers == 1:
            yield from map(prepare, pending)
            return
        ahead: queue.Queue = queue.Queue(maxsize=workers * 8)
        stop = threading.Event()

        def feed() -> None:
            with ThreadPoolExecutor(workers) as pool:
                for result in pool.map(prepare, pending):
                    while not stop.is_set():
                        try:
                            ahead.put(result, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
            ahead.put(None)

        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        try:
            while (result := ahead.get()) is not None:
                yield result
        finally:
            stop.set()

    def _predict(self, model: Any, views: CorruptedViews, ready: list[tuple]) -> list[Any]:
        if self.card.kind == "segmentation":
            outputs = []
            for item, view, _ in ready:
                box = np.asarray([item.sample.box], dtype=np.float32)
                outputs.append(model.segment(np.asarray(view.image), boxes=box)[0])
            return outputs
        requests = []
        for item, view, _ in ready:
            image = views.display(view)
            prompt = self.card.render_prompt(item.sample, (image.shape[1], image.shape[0]))
            requests.append(([image], prompt))
        return model.generate(requests, max_new_tokens=self.config.max_new_tokens, temperature=0.0)

    def _record(
        self,
        item: WorkItem,
        view: View | None,
        output: Any,
        metrics: Sequence[Any],
        error: str | None = None,
        model_seconds: float = 0.0,
        prep_seconds: float = 0.0,
    ) -> dict[str, Any]:
        sample = item.sample
        record: dict[str, Any] = {
            "key": item.key,
            "task": self.card.name,
            "model": self.config.model,
            "sample_id": sample.id,
            "dataset": sample.dataset,
            "modality": sample.modality,
            "condition": item.condition.key,
            "corruption": item.condition.corruption,
            "severity": item.condition.severity,
            "family": item.spec.family if item.spec is not None else None,
            "seed": view.seed if view is not None else None,
            "params": view.params if view is not None else None,
            "ssim": None,
            "prediction": None,
            "state": {},
            "score": {},
            "tokens": None,
            "cost_usd": None,
            "cached": None,
            "seconds": {"view": round(prep_seconds, 6), "model": round(model_seconds, 6)},
            "error": error,
        }
        if view is not None and view.params is not None:
            record["ssim"] = view.params.get("ssim")  # measured on the presented image
        if error is not None or output is None:
            return record
        if self.card.kind == "segmentation":
            prediction = np.asarray(output, dtype=bool)
            record["prediction"] = {
                "mask_rle": mask_to_rle(prediction),
                "area": int(prediction.sum()),
            }
        else:
            prediction = getattr(output, "text", output)
            record["prediction"] = prediction
            record["tokens"] = {
                "input": getattr(output, "input_tokens", None),
                "output": getattr(output, "output_tokens", None),
            }
            record["cost_usd"] = getattr(output, "cost_usd", None)
            record["cached"] = getattr(output, "cached", None)
        try:
            for metric in metrics:
                state = metric.score(prediction, sample)
                record["state"][metric.name] = state
                value = metric.per_sample(state)
                # a corpus metric has no per-sample number (NaN): JSON gets null, not a NaN token
                record["score"][metric.name] = None if value != value else value
        except ModelUnavailableError:
            raise  # a judge model whose server stopped answering stops the run
        except Exception as exc:
            record["error"] = f"scoring failed: {_describe(exc)}"
        return record


def _batches(items: Iterator[tuple], size: int) -> Iterator[list[tuple]]:
    batch: list[tuple] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def mask_to_rle(mask: np.ndarray) -> dict[str, Any]:
    """Uncompressed run-length encoding in row-major order, starting with a background run."""
    flat = mask.ravel().astype(np.int8)
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0, *counts]
    return {"size": list(mask.shape), "counts": counts}


def rle_to_mask(rle: dict[str, Any]) -> np.ndarray:
    values = np.zeros(int(np.prod(rle["size"])), dtype=bool)
    position, on = 0, False
    for count in rle["counts"]:
        if on:
            values[position : position + count] = True
        position += count
        on = not on
    return values.reshape(rle["size"])


def read_records(run_dir: Path) -> Iterator[dict[str, Any]]:
    """The records of a run, in the order they were written."""
    return read_jsonl(Path(run_dir) / RECORDS)


def latest_records(run_dir: Path) -> list[dict[str, Any]]:
    """One record per key: the last one written (a retried failure replaces the failure)."""
    latest: dict[str, dict[str, Any]] = {}
    for record in read_records(run_dir):
        latest[record["key"]] = record
    return list(latest.values())


def write_summary(run_dir: Path, card: TaskCard) -> dict[str, Any] | None:
    """The robustness summary of a run directory, written next to its records."""
    from .metrics.base import get_metric

    try:
        from .metrics.robustness import summarize
    except ImportError:
        return None
    records = latest_records(run_dir)
    if not records:
        return None
    metrics = [get_metric(name) for name in card.metrics]
    summary = summarize(records, metrics).to_dict()
    (Path(run_dir) / SUMMARY).write_text(json.dumps(summary, indent=2, default=_json_default))
    return summary
