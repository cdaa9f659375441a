"""``materialize --executor ray``: Ray Data tasks make the plan's items, this process lists them.

The rows of the dataset are groups of work items (a shard of the plan for ``--format parquet``,
else a batch of the pending items); a task makes its group's items with their per-item seeds (the
same code and the same bytes as the local executor), writes them (the folder layout, or the
shard's Parquet file and its marker) and returns their manifest records as one JSON row. This
process appends those records to the manifest as the tasks finish, skipping any key it has listed
already. When a worker process dies, Ray runs its task again from the start: the task rewrites the
same files through temporary files, and only the task's group is made twice. A group whose
worker dies on every one of its WORKER_DEATH_RETRIES + 1 tries (an item that crashes the process,
or runs it out of memory) is given up: its items are recorded as failed, the others go on, and a
rerun tries the group again.

``--out`` (and ``--data-root``) must be one folder that every node of the cluster sees.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import ItemTimeoutError
from ..jsonl import parse_record_line, record_line
from ..time_limit import call_with_time_limit
from .cluster import connect

# How often a group is run again after its worker process died (Ray Data's own default retries
# without end, so one item that kills its worker would hold the job for ever).
WORKER_DEATH_RETRIES = 2


def write_items(
    plan: Any,
    out: Path,
    jobs: list[Any],
    batch_size: int,
    item_timeout: float | None,
    address: str | None,
) -> Iterator[tuple[dict[str, Any], bool]]:
    """(record, timed out) per pending item of the folder layout, as the cluster writes them."""
    groups = [
        {"jobs": json.dumps(jobs[start : start + batch_size])}
        for start in range(0, len(jobs), batch_size)
    ]
    options = {"plan": plan, "out": str(out), "item_timeout": item_timeout, "shard": None}
    for row in _stream(groups, options, address):
        if "lost" in row:
            for failure in _lost(plan, out, json.loads(groups[row["lost"]]["jobs"])):
                yield failure, False
            continue
        result = json.loads(row["result"])
        for line, late in result["failures"]:
            yield parse_record_line(line), late
        for line in result["records"]:
            yield parse_record_line(line), False


def write_shards(
    plan: Any,
    out: Path,
    todo: list[Any],
    jobs: list[Any],
    item_timeout: float | None,
    address: str | None,
) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]], int]]:
    """(records, failures, timed out) per pending Parquet shard, as the cluster writes them."""
    groups = [
        {
            "jobs": json.dumps(jobs[shard.start : shard.stop]),
            "shard": json.dumps([shard.index, shard.start, shard.stop]),
        }
        for shard in todo
    ]
    options = {"plan": plan, "out": str(out), "item_timeout": item_timeout, "shard": True}
    for row in _stream(groups, options, address):
        if "lost" in row:
            yield [], _lost(plan, out, json.loads(groups[row["lost"]]["jobs"])), 0
            continue
        result = json.loads(row["result"])
        yield result["records"], result["failures"], result["late"]


def _stream(groups: list[dict[str, str]], options: dict[str, Any], address: str | None):
    """The rows of the finished groups as they come, then ``{"lost": index}`` for each group
    whose worker died on every try."""
    if not groups:
        return
    ray = connect(address)
    from ray.data import DataContext

    # a group given up is one errored block: recorded here, not the end of the job (set for
    # this job only: the process's context may serve the caller's own pipelines too)
    context = DataContext.get_current()
    before = context.max_errored_blocks
    context.max_errored_blocks = -1
    numbered = [{**group, "group": index} for index, group in enumerate(groups)]
    dataset = ray.data.from_items(numbered, override_num_blocks=len(numbered))
    # Ray Data runs a task again when its worker process or node dies (not when it raises)
    dataset = dataset.map(
        make_group, fn_kwargs=options, num_cpus=1, max_retries=WORKER_DEATH_RETRIES
    )
    returned = set()
    try:
        for row in dataset.iter_rows():
            returned.add(row["group"])
            yield row
    finally:
        context.max_errored_blocks = before
    for index in range(len(groups)):
        if index not in returned:
            yield {"lost": index}


def _lost(plan: Any, out: Path, jobs: list[Any]) -> list[dict[str, Any]]:
    """Failure records for the items of a group given up after its worker died on every try."""
    from .. import materialize_worker as mat

    mat.ensure_worker(plan, str(out))
    error = (
        f"WorkerDied: the worker process making this item's group died on all "
        f"{WORKER_DEATH_RETRIES + 1} tries (an item of the group crashes it or runs it out of "
        "memory); a rerun tries the group again"
    )
    return [mat._failure(mat._job_item(tuple(job)), error) for job in jobs]


def make_group(row: dict[str, Any], plan: Any, out: str, item_timeout: Any, shard: Any) -> dict:
    """In a task: make and write one group of items; its records as one JSON row."""
    from .. import materialize_worker as mat
    from ..shards import Shard

    mat.ensure_worker(plan, out)
    jobs = [tuple(job) for job in json.loads(row["jobs"])]
    if not shard:
        results = [_timed(mat._write_job, job, item_timeout) for job in jobs]
        # each record as the line the manifest gets (strict JSON, NaN noted): parsed and written
        # again by the driver, it is the same line the local executor writes
        records = [record_line(r) for r, _ in results if "error" not in r]
        failures = [(record_line(r), late) for r, late in results if "error" in r]
        result = {"records": records, "failures": failures}
        return {"group": row["group"], "result": json.dumps(result)}
    index, start, stop = json.loads(row["shard"])
    made = []
    for position, job in zip(range(start, stop), jobs, strict=True):
        value, late = _timed(mat.make_job, job, item_timeout)
        made.append((position, value, late))
    records, failures, late = mat.make_shard(Path(out), Shard(index, start, stop), made)
    failures = [json.loads(record_line(f)) for f in failures]
    result = {"records": records, "failures": failures, "late": late}
    return {"group": row["group"], "result": json.dumps(result)}


def _timed(function: Any, job: Any, seconds: Any) -> tuple[Any, bool]:
    """``function(job)`` under the per-item time limit; (result, timed out)."""
    from .. import materialize_worker as mat

    try:
        return call_with_time_limit(lambda: function(job), seconds, f"item {job[2]}"), False
    except ItemTimeoutError as exc:
        failure = mat._failure(mat._job_item(job), f"{type(exc).__name__}: {exc}")
        return (failure if function is mat._write_job else (failure, {})), True
