"""``run --executor ray``: model actors on a Ray cluster, records written here as batches finish.

Each actor (one per GPU of the cluster, else one per CPU slot, or ``--ray-workers``) loads the model
once, plans the run as this process does, and takes batches of item keys: it makes the corrupted
views (one thread a batch ahead of the model, so a GPU does not wait for the CPU between
batches), calls the model and scores the answers with the runner's own code (``Run``), so a
record is the one the local executor writes (timings aside). This process holds the run
directory, skips finished keys (resume as for a local run), hands out batches and appends each
finished batch's records to ``records.jsonl``, skipping keys it has written already.

An actor whose process or node dies is restarted (the model loaded again) and its batch sent
again; nothing of that batch was written. API models are sent from every actor under one limit
for the whole cluster: at most the model's ``concurrency`` requests in flight at once, counted by a
``RequestSlots`` actor (a slot that an actor died holding comes back after the item time limit).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

from .cluster import connect

ACTOR_RESTARTS = 3  # an actor whose process dies is started again this often, its batch resent
LEASE_SECONDS = 600.0  # a request slot held longer than this (its holder died) is taken back


class ModelWorker:
    """One copy of the model on the cluster: loads it once, evaluates batches of keys."""

    def __init__(self, config: Any, model_name: str, options: dict[str, Any], slots: Any) -> None:
        from ..metrics.base import get_metric
        from ..models.base import load_model
        from ..runner import Run

        # views are made in this actor, by one thread a batch ahead of the model (no view
        # worker processes: the actor is the cluster's worker)
        self.run = Run(replace(config, workers=0))
        self.model = load_model(model_name, **options)
        if slots is not None:
            share_request_slots(self.model, slots, config.item_timeout or LEASE_SECONDS)
        self.metrics = [get_metric(name) for name in self.run.card.metrics]
        if config.judge and self.run.card.kind == "vqa":
            from ..metrics.vqa import make_judge_accuracy

            self.metrics.append(make_judge_accuracy(load_model(config.judge)))
        self.items = {item.key: item for item in self.run.work()}
        self.views = self.run.evaluation.views()
        self.fitted = False

    def describe(self) -> dict[str, Any]:
        """What the driver needs before it hands out work: batch size, excluded samples."""
        capabilities = getattr(self.model, "capabilities", None)
        return {
            "batch_size": self.run.config.batch_size or getattr(capabilities, "max_batch", 1) or 1,
            "finetuned_sample_ids": sorted(getattr(self.model, "finetuned_sample_ids", ()) or ()),
        }

    def evaluate(self, keys: list[str], batch_size: int) -> dict[str, Any]:
        """The records of ``keys`` (as JSON lines), and the error that stopped them, if any."""
        from ..jsonl import record_line
        from ..models.base import ModelUnavailableError
        from ..runner import _json_default

        if not self.fitted:
            if hasattr(self.model, "fit"):
                self.model.fit(list(self.run.samples()))
            # the runner's own per-run state, set as its local path sets it
            self.run._objective = self.run._attack_objective(self.model)
            self.fitted = True
        items = [self.items[key] for key in keys]
        lines: list[str] = []
        try:
            for record in self.run._records(
                self.model, self.metrics, self.views, items, batch_size, ahead=True
            ):
                lines.append(record_line(record.to_dict(), _json_default))
        except ModelUnavailableError as exc:  # no further item can succeed: the run stops
            return {"records": lines, "stop": str(exc), "usage": self._usage()}
        return {"records": lines, "stop": None, "usage": self._usage()}

    def _usage(self) -> dict[str, Any]:
        usage = getattr(self.model, "usage", None)
        if usage is None:
            return {}
        return dict(usage) if isinstance(usage, dict) else dict(vars(usage))


class RequestSlots:
    """At most ``slots`` requests in flight across the cluster; a lease ends on release or after
    ``lease`` seconds (its holder may have died)."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.leases: dict[str, float] = {}
        self.changed = asyncio.Condition()

    async def acquire(self, lease: float) -> str:
        async with self.changed:
            while True:
                now = time.monotonic()
                for token in [t for t, until in self.leases.items() if until < now]:
                    del self.leases[token]
                if len(self.leases) < self.slots:
                    token = uuid.uuid4().hex
                    self.leases[token] = now + lease
                    return token
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), timeout=1.0)

    async def release(self, token: str) -> None:
        async with self.changed:
            self.leases.pop(token, None)
            self.changed.notify()

    async def in_flight(self) -> int:
        return len(self.leases)


def share_request_slots(model: Any, slots: Any, lease: float) -> None:
    """Send each of ``model``'s requests (every retry included) under a slot of ``slots``."""
    import ray

    send = model._send  # the provider hook: one HTTP request

    def limited(*args: Any, **kwargs: Any) -> Any:
        token = ray.get(slots.acquire.remote(lease))
        try:
            return send(*args, **kwargs)
        finally:
            slots.release.remote(token)

    model._send = limited


def execute_on_ray(
    job: Any,
    model_name: str,
    options: dict[str, Any],
    *,
    address: str | None = None,
    workers: int | None = None,
    progress: Callable[[int, dict[str, Any]], None] | None = None,
) -> Any:
    """Run every pending item of ``job`` (a ``runner.Run``) on the cluster; a ``RunResult``."""
    from ..outdir import OutputDirLock

    command = f"medfm-robust run --task {job.card.name} --model {job.config.model} --executor ray"
    with OutputDirLock(job.run_dir, command, wait=job.config.wait):
        return _execute(job, model_name, options, address, workers, progress)


def _execute(job, model_name, options, address, workers, progress) -> Any:
    from ..jsonl import JsonlAppender
    from ..models.base import ModelUnavailableError, resolve
    from ..runner import RECORDS, RunError, RunResult, _json_default, write_summary

    ray = connect(address)
    spec, _ = resolve(model_name)
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    count = workers or gpus or max(1, int(resources.get("CPU", 1)))
    slots = None
    if getattr(spec, "extra", None) == "api":
        concurrency = int(options.get("concurrency", 4))
        slots = ray.remote(RequestSlots).options(max_concurrency=1000).remote(concurrency)
    actor = ray.remote(ModelWorker).options(
        num_gpus=1 if gpus else 0,
        num_cpus=0 if gpus else 1,
        max_restarts=ACTOR_RESTARTS,
        max_task_retries=ACTOR_RESTARTS,
    )
    config = replace(job.config, model_options={})  # the options travel apart (keys stay out)
    actors = [actor.remote(config, model_name, options, slots) for _ in range(count)]
    try:
        info = ray.get(actors[0].describe.remote())
    except ray.exceptions.RayError as exc:
        raise RunError(
            f"model '{model_name}' could not start on the cluster: {_cause(exc)}"
        ) from None
    job.refuse_finetuned_samples(SimpleNamespace(finetuned_sample_ids=info["finetuned_sample_ids"]))
    job.check_config()
    done = job.finished_keys()
    pending = [item.key for item in job.work() if item.key not in done]
    size = int(info["batch_size"])
    batches = [pending[start : start + size] for start in range(0, len(pending), size)]
    written = failed = 0
    seen: set[str] = set()
    stop = None
    with JsonlAppender(job.run_dir / RECORDS, default=_json_default) as out:
        for result in _results(ray, actors, batches, size):
            for line in result["records"]:
                record = _parsed(line)
                if record["key"] in seen:  # a resent batch: its first records are kept
                    continue
                seen.add(record["key"])
                out.write(record)
                failed += record.get("error") is not None
                written += record.get("error") is None
                if progress is not None:
                    progress(1, result["usage"])
            if result["stop"]:
                stop = result["stop"]
                break
    for handle in actors:
        ray.kill(handle)
    if stop:
        raise ModelUnavailableError(stop)
    summary = write_summary(job.run_dir, job.card)
    return RunResult(job.run_dir, written, failed, len(done), summary)


def _results(ray: Any, actors: list[Any], batches: list[list[str]], size: int) -> Iterator[dict]:
    """Each batch's result, as the actors finish them (each actor one batch at a time)."""
    from ray.util import ActorPool

    pool = ActorPool(actors)
    yield from pool.map_unordered(lambda a, keys: a.evaluate.remote(keys, size), batches)


def _parsed(line: str) -> dict[str, Any]:
    from ..jsonl import parse_record_line

    return parse_record_line(line)


def _cause(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None) or exc
    return f"{type(cause).__name__}: {cause}".splitlines()[0]
