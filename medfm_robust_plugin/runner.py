"""The native runner: a task's samples, clean and under every chosen condition, through one model.

Every (sample, condition) becomes one JSON line in ``records.jsonl``, appended and flushed as soon as
it is scored, so nothing finished is lost. A rerun of the same command skips finished records (and the
API response cache makes a retried call free); a changed configuration is refused unless asked, and
a second process writing into the same run directory is refused (or waits, with ``wait``).

Corrupted views are prepared by worker processes ahead of the model, each under the per-item time
limit (``item_timeout``), and reach the model as they finish: a slow or hanging corruption fails
alone and holds back no other item; clean images are read in this process meanwhile. Model calls
run in this process under a watchdog with the same limit per item (see ``time_limit``).
``workers=0`` prepares every view here, in order: no process start-up, but no time limit on
corruptions either.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .data.sample import Sample
from .errors import ItemTimeoutError, MedFMRobustError
from .jsonl import JsonlAppender, json_default, read_jsonl, write_json
from .lookup import canonical_model_name
from .models import answer_options
from .models.base import ModelUnavailableError
from .outdir import OutputDirLock
from .plan import EvaluationPlan, WorkItem
from .records import Record, normalized
from .tasks import TaskCard
from .time_limit import DEFAULT_ITEM_TIMEOUT, ItemPool, call_with_time_limit
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
    workers: int = 2  # processes preparing corrupted views ahead of the model (0: this process)
    judge: str | None = None  # a model that reads VQA answers the rules cannot (accuracy_judge)
    item_timeout: float | None = DEFAULT_ITEM_TIMEOUT  # s per view, per item of a model call
    wait: bool = False  # wait for another process writing into the run directory, not refuse
    # sample ids left out of the task (a fine-tuned model's training and validation samples)
    exclude_samples: tuple[str, ...] = ()
    # white-box attacks after the corruptions (see ``attacks``): names, epsilons of 255, PGD options
    attacks: list[str] | None = None
    epsilons: list[int] | None = None
    attack_steps: int = 10
    attack_step_size: float = 1.0
    attack_seed: int = 0

    def fingerprint(self, card: TaskCard) -> dict[str, Any]:
        """What must match for a rerun to resume (paths and performance knobs excluded)."""
        excluded = {"exclude_samples": sorted(self.exclude_samples)} if self.exclude_samples else {}
        if self.attacks:  # a run without attacks keeps the fingerprint it always had
            excluded["attacks"] = {
                "names": list(self.attacks),
                "epsilons": list(self.epsilons or ()),
                "steps": self.attack_steps,
                "step_size": self.attack_step_size,
                "seed": self.attack_seed,
            }
        return {
            **excluded,
            "task": self.task,
            "card": _card_digest(card),
            "model": self.model,
            "model_options": {
                k: _without_credentials(v)
                for k, v in sorted(answer_options(self.model_options).items())
                if "key" not in k.lower()
            },
            "corruptions": self.corruptions,
            "severities": self.severities,
            "limit": self.limit,
            "seed": self.seed,
            "severity_mode": self.severity_mode or card.severity_mode,
            "max_new_tokens": self.max_new_tokens,
            "judge": self.judge,
        }


def _without_credentials(value: Any) -> Any:
    """A URL option as it may be written down: no ``user:password@``, no secret query values."""
    if not isinstance(value, str) or "://" not in value:
        return value
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(value)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = urlencode(
        [
            (k, "[redacted]" if any(w in k.lower() for w in ("key", "token", "secret")) else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ]
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _card_digest(card: TaskCard) -> str:
    data = asdict(card)
    data.pop("source", None)
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


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
        from .attacks import AttackError, parse_attacks

        try:
            attacks, epsilons = parse_attacks(
                config.attacks,
                config.epsilons,
                steps=config.attack_steps,
                step_size=config.attack_step_size,
                seed=config.attack_seed,
            )
        except AttackError as exc:
            raise RunError(str(exc)) from exc
        # one model, one folder and one report row, however its name is written (gpt-4o)
        config = replace(config, model=canonical_model_name(config.model))
        self.config = config
        self.evaluation = EvaluationPlan.from_card(
            config.task,
            data_root=config.data_root,
            limit=config.limit,
            corruptions=config.corruptions,
            severities=config.severities,
            seed=config.seed,
            severity_mode=config.severity_mode,
            attacks=attacks,
            epsilons=epsilons,
        )
        self.card = self.evaluation.card
        if config.exclude_samples:
            excluded = set(config.exclude_samples)
            loaded = self.card.load(config.data_root).samples
            self.evaluation = self.evaluation.with_samples(
                s for s in loaded if s.id not in excluded
            )
        self.run_dir = Path(config.out) / _slug(self.card.name) / _slug(config.model)
        if config.item_timeout is not None and not config.item_timeout >= 0:
            raise RunError(
                f"item_timeout {config.item_timeout!r} must be seconds >= 0 (0 or None: no limit)"
            )
        self.allow_config_change = allow_config_change

    # ------------------------------------------------------------------ planning

    def samples(self) -> list[Sample]:
        return self.evaluation.samples()

    def work(self) -> list[WorkItem]:
        """Every item of the run, in the plan's order."""
        return list(self.evaluation.items())

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
            previous = json.loads(path.read_text())["fingerprint"] or {}
            if isinstance(previous.get("model_options"), dict):  # written before RUN_OPTIONS
                previous["model_options"] = answer_options(previous["model_options"])
            for name in ("task", "model"):
                if previous.get(name) not in (None, fingerprint[name]):
                    # one folder per (task, model): another name here means two names that map
                    # to one folder, whose records must never mix
                    raise RunError(
                        f"'{self.run_dir}' holds the run of {name} '{previous[name]}', not "
                        f"'{fingerprint[name]}' (both names map to this folder); use another --out"
                    )
            if previous != fingerprint and not self.allow_config_change:
                changed = sorted(k for k in fingerprint if previous.get(k) != fingerprint[k])
                raise RunError(
                    f"'{self.run_dir}' holds a run with another configuration (changed: "
                    f"{', '.join(changed)}); use another --out, or pass --allow-config-change to continue it"
                )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_json(path, {"fingerprint": fingerprint, "config": asdict(self.config)})

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
        views = self.evaluation.views()
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
        """Run every pending item through ``model``, holding the run directory meanwhile."""
        command = f"medfm-robust run --task {self.card.name} --model {self.config.model}"
        with OutputDirLock(self.run_dir, command, wait=self.config.wait):
            return self._execute(model, progress)

    def _execute(
        self, model: Any, progress: Callable[[int, dict[str, Any]], None] | None
    ) -> RunResult:
        self.refuse_finetuned_samples(model)
        self.check_config()
        from .metrics.base import get_metric

        metrics = [get_metric(name) for name in self.card.metrics]
        self._objective = self._attack_objective(model)
        if self.config.judge and self.card.kind == "vqa":
            from .metrics.vqa import make_judge_accuracy
            from .models.base import load_model

            metrics.append(make_judge_accuracy(load_model(self.config.judge)))
        done = self.finished_keys()
        pending = [item for item in self.work() if item.key not in done]
        if hasattr(model, "fit"):
            model.fit([s for s in self.samples()])
        views = self.evaluation.views()
        self._views = views
        batch_size = (
            self.config.batch_size
            or getattr(getattr(model, "capabilities", None), "max_batch", 1)
            or 1
        )
        written = failed = 0
        with JsonlAppender(self.run_dir / RECORDS, default=_json_default) as out:
            for record in self._records(model, metrics, views, pending, batch_size):
                out.write(record.to_dict())
                failed += record.failed
                written += not record.failed
                if progress is not None:
                    progress(1, getattr(model, "usage", {}) or {})
        summary = write_summary(self.run_dir, self.card)
        return RunResult(self.run_dir, written, failed, len(done), summary)

    def _attack_objective(self, model: Any) -> Any:
        """The model's attack objective builder when the run attacks (refused when it has none)."""
        if not self.evaluation.attacks:
            return None
        from .attacks import AttackError, attack_objective

        try:
            return attack_objective(model, self.config.model)
        except AttackError as exc:
            raise RunError(str(exc)) from exc

    def refuse_finetuned_samples(self, model: Any) -> None:
        """A fine-tuned model is never scored on the samples it was trained or validated on."""
        seen = getattr(model, "finetuned_sample_ids", None)
        overlap = sorted({s.id for s in self.samples()} & set(seen or ()))
        if overlap:
            shown = ", ".join(overlap[:4]) + (", ..." if len(overlap) > 4 else "")
            raise RunError(
                f"model '{self.config.model}' was fine-tuned on {len(overlap)} sample(s) of task "
                f"'{self.card.name}' ({shown}); its scores on them would not measure it. Pass "
                "--skip-finetuned-samples to score it on the others, or evaluate another task"
            )

    def _records(
        self,
        model: Any,
        metrics: Sequence[Any],
        views: CorruptedViews,
        pending: list[WorkItem],
        batch_size: int,
        ahead: bool = False,
    ) -> Iterator[Record]:
        """Records of ``pending``, batch by batch. With ``workers=0`` the views are made in this
        process: in order before each batch, or with ``ahead`` by one thread while the model works
        on the batch before (how a model actor of ``run --executor ray`` keeps its GPU busy)."""
        if self.config.workers <= 0 and ahead:
            feed = _Feed(capacity=2 * batch_size)
            feed.add(lambda: (_prepare(views, item) for item in pending))
            batches = _fed(feed, batch_size)
        elif self.config.workers <= 0:
            batches = _batches((_prepare(views, item) for item in pending), batch_size)
        else:
            batches = self._ready_batches(views, pending, batch_size)
        for batch in batches:
            ready = [(item, view, seconds) for item, view, seconds, error in batch if error is None]
            for item, _, seconds, error in batch:
                if error is not None:
                    yield self._record(item, None, None, metrics, error=error, prep_seconds=seconds)
            if not ready:
                continue
            yield from self._scored(model, metrics, views, ready)

    def _scored(
        self, model: Any, metrics: Sequence[Any], views: CorruptedViews, ready: list[tuple]
    ) -> Iterator[Record]:
        """Predict a batch; when it fails, predict its items one by one so one bad item fails alone.

        A call past the time limit (``item_timeout`` per item) fails its whole batch at once:
        asking again item by item would wait as long again for each.
        """
        if any(item.is_attack for item, _, _ in ready):
            attacked = []
            for entry in ready:
                outcome = self._attacked(views, *entry) if entry[0].is_attack else entry
                if isinstance(outcome, Record):
                    yield outcome
                else:
                    attacked.append(outcome)
            ready = attacked
            if not ready:
                return
        limit = self.config.item_timeout * len(ready) if self.config.item_timeout else None
        try:
            started = time.perf_counter()
            outputs = call_with_time_limit(
                lambda: self._predict(model, views, ready),
                limit,
                f"the model call for {len(ready)} item(s) ({ready[0][0].key}, ...)",
            )
            share = (time.perf_counter() - started) / len(ready)
        except ItemTimeoutError as exc:
            for item, view, seconds in ready:
                yield self._record(
                    item, view, None, metrics, error=_describe(exc), prep_seconds=seconds
                )
            return
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

    def _attacked(self, views: CorruptedViews, item: WorkItem, view: View, seconds: float):
        """(item, attacked view, seconds) of an attacked item, or its failed record.

        The attack starts from the clean view as the model reads it (a segmenter's 8-bit RGB, a
        VLM's presented image) and runs under the item's time limit; its seconds count as the
        item's preparation."""
        from .attacks import perturb

        started = time.perf_counter()
        try:
            image = np.asarray(view.image) if self.card.kind == "segmentation" else None
            if image is None:
                image = views.display(view)
            prompt = None
            if self.card.kind != "segmentation":
                prompt = self.card.render_prompt(item.sample, (image.shape[1], image.shape[0]))

            def attack() -> tuple[np.ndarray, dict[str, Any]]:
                objective = self._objective(image, item.sample, prompt=prompt)
                return perturb(item.spec, item.condition.severity, objective, item.key)

            adversarial, params = call_with_time_limit(
                attack, self.config.item_timeout or None, f"the attack {item.key}"
            )
        except Exception as exc:
            spent = seconds + time.perf_counter() - started
            return self._record(item, None, None, [], error=_describe(exc), prep_seconds=spent)
        params["image_size"] = [int(image.shape[1]), int(image.shape[0])]
        attacked = View(item.sample, item.condition, adversarial, view.seed, params, item.key)
        return item, attacked, seconds + time.perf_counter() - started

    def _ready_batches(
        self, views: CorruptedViews, pending: list[WorkItem], size: int
    ) -> Iterator[list[tuple]]:
        """Batches of up to ``size`` prepared items, of whatever is ready: none waits to fill.

        Clean views are read here by one thread; corrupted views come from worker processes
        under the time limit, a bounded distance ahead of the model.
        """
        index = {item.key: i for i, item in enumerate(self.work())}
        # attacked items start from the clean view; the model attacks them here
        clean = [item for item in pending if item.spec is None or item.is_attack]
        jobs = [
            (index[item.key], item.key)
            for item in pending
            if item.spec is not None and not item.is_attack
        ]
        by_key = {item.key: item for item in pending}
        feed = _Feed(capacity=max(size * 2, self.config.workers * 4))

        def clean_views() -> Iterable[tuple]:
            return (_prepare(views, item) for item in clean)

        def corrupted_views() -> Iterable[tuple]:
            pool = ItemPool(
                self.config.workers,
                _compute_view,
                initializer=_init_view_worker,
                # what plans the items: nothing of the model (its options may hold clients)
                initargs=(replace(self.config, model_options={}, judge=None),),
                timeout=self.config.item_timeout or None,
                describe=lambda job: f"the view {job[1]}",
            )
            with pool:
                for outcome in pool.map_unordered(jobs, cancel=feed.stop):
                    item = by_key[outcome.job[1]]
                    if outcome.error is not None:
                        yield item, None, outcome.seconds, outcome.error
                        continue
                    image, params, seed, key = outcome.value
                    view = View(item.sample, item.condition, image, seed, params, key)
                    yield item, view, outcome.seconds, None

        if clean:
            feed.add(clean_views)
        if jobs:
            feed.add(corrupted_views)
        yield from _fed(feed, size)

    def _predict(self, model: Any, views: CorruptedViews, ready: list[tuple]) -> list[Any]:
        if self.card.kind == "segmentation":
            outputs = []
            for item, view, _ in ready:
                box = np.asarray([item.sample.box], dtype=np.float32)
                outputs.append(model.segment(np.asarray(view.image), boxes=box)[0])
            return outputs
        requests = []
        for item, view, _ in ready:
            if item.is_attack:  # attacked in the model's own frame, already 8-bit RGB
                image = np.asarray(view.image)
                size = tuple(view.params["image_size"])  # the prompt speaks of the presented image
            else:
                image = views.display(view)
                size = (image.shape[1], image.shape[0])
            requests.append(([image], self.card.render_prompt(item.sample, size)))
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
    ) -> Record:
        record = Record.of(
            item,
            task=self.card.name,
            model=self.config.model,
            seed=view.seed if view is not None else None,
            params=view.params if view is not None else None,
            seconds={"view": round(prep_seconds, 6), "model": round(model_seconds, 6)},
            error=error,
        )
        if view is not None and view.params is not None:
            record.ssim = view.params.get("ssim")  # measured on the presented image
        if error is not None or output is None:
            return record
        if self.card.kind == "segmentation":
            prediction = np.asarray(output, dtype=bool)
            record.prediction = {"mask_rle": mask_to_rle(prediction), "area": int(prediction.sum())}
        else:
            prediction = getattr(output, "text", output)
            record.prediction = prediction
            record.tokens = {
                "input": getattr(output, "input_tokens", None),
                "output": getattr(output, "output_tokens", None),
            }
            record.cost_usd = getattr(output, "cost_usd", None)
            record.cached = getattr(output, "cached", None)
        try:
            for metric in metrics:
                state = metric.score(prediction, item.sample)
                record.state[metric.name] = state
                value = metric.per_sample(state)
                # a corpus metric has no per-sample number (NaN): JSON gets null, not a NaN token
                record.score[metric.name] = None if value != value else value
        except ModelUnavailableError:
            raise  # a judge model whose server stopped answering stops the run
        except Exception as exc:
            record.error = f"scoring failed: {_describe(exc)}"
        return record


def _prepare(views: CorruptedViews, item: WorkItem) -> tuple:
    """(item, view, seconds, error) for one item, made in this process."""
    started = time.perf_counter()
    try:
        if item.is_attack:  # the attack starts from the clean view
            view = views.get(item.sample)
            view = View(item.sample, item.condition, view.image, view.seed, None, item.key)
        else:
            view = views.get(item.sample, item.condition, corruption=item.spec)
        return item, view, time.perf_counter() - started, None
    except Exception as exc:
        return item, None, time.perf_counter() - started, _describe(exc)


# One state per view worker process, set by its initializer.
_view_worker: dict[str, Any] = {}


def _init_view_worker(config: RunConfig) -> None:
    run = Run(config)
    _view_worker["work"] = run.work()
    _view_worker["views"] = run.evaluation.views(memory_items=16)


def _compute_view(job: tuple[int, str]) -> tuple[Any, Any, Any, str]:
    """(image, params, seed, view key) of one work item, computed in a worker process."""
    position, key = job
    item: WorkItem = _view_worker["work"][position]
    if item.key != key:
        raise MedFMRobustError(
            f"{key}: this worker process planned other items (found {item.key}); "
            "the task's dataset loader must list samples in the same order every time"
        )
    view = _view_worker["views"].get(item.sample, item.condition, corruption=item.spec)
    return np.asarray(view.image), view.params, view.seed, view.key


class _Feed:
    """Prepared items from several sources (each on its own thread) through one bounded queue."""

    _DONE = object()

    def __init__(self, capacity: int) -> None:
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, capacity))
        self.stop = threading.Event()
        self._sources: list[Callable[[], Iterable[tuple]]] = []

    def add(self, source: Callable[[], Iterable[tuple]]) -> None:
        self._sources.append(source)

    def __enter__(self) -> _Feed:
        for source in self._sources:
            threading.Thread(target=self._run, args=(source,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()

    def _run(self, source: Callable[[], Iterable[tuple]]) -> None:
        try:
            for result in source():
                if not self._put(result):
                    return
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put(exc)
        finally:
            self._put(self._DONE)

    def _put(self, value: Any) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def batches(self, size: int) -> Iterator[list[tuple]]:
        running = len(self._sources)
        while running:
            batch: list[tuple] = []
            value = self.queue.get()
            while True:
                if value is self._DONE:
                    running -= 1
                elif isinstance(value, BaseException):
                    raise value
                else:
                    batch.append(value)
                if len(batch) >= size or not running:
                    break
                try:
                    value = self.queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                yield batch


def _fed(feed: _Feed, size: int) -> Iterator[list[tuple]]:
    with feed:
        yield from feed.batches(size)


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


_json_default = json_default  # the name other modules import


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
    """The records of a run, in the order they were written, as this version writes them
    (records written before the ``schema`` field read as schema 1)."""
    return (normalized(raw) for raw in read_jsonl(Path(run_dir) / RECORDS))


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
    write_json(Path(run_dir) / SUMMARY, summary)
    return summary
