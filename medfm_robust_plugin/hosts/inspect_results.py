"""Inspect AI's eval logs read back as MedFM-Robust records, so that reports treat them like our runs.

``inspect eval medfm_robust/<kind> ...`` writes one log per task run into its log folder
(``./logs``, ``--log-dir`` or ``$INSPECT_LOG_DIR``): a ``.eval`` file, or ``.json`` with
``--log-format json``. Each logged sample carries the record fields in its metadata
(``hosts.inspect_tasks.item_metadata``), the model's answer and, in the score's metadata, the
per-sample state of every card metric, which is all a ``records.Record`` needs. The corruption
parameters and SSIM are not in Inspect's logs: they stay null.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..errors import MedFMRobustError

HOST = "inspect"
TASK_PREFIX = "medfm_robust/"
SCORER = "card_score"
STATE = "medfm_state"  # hosts.inspect_tasks.STATE (not imported: that module imports inspect_ai)
# Inspect names its logs <ISO time>_<task>_<id>.eval / .json
_WRAPPED_ERROR = re.compile(r"^\w+\('(?P<text>.*)'\)$", re.DOTALL)
_LOG_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}T[\d-]+.*\.(eval|json)$")


class InspectLogError(MedFMRobustError):
    """An Inspect log (or log folder) that cannot be turned into records."""


def log_files(path: str | Path) -> list[Path]:
    """The Inspect logs at ``path`` (a log file, or a log folder and its subfolders), oldest first."""
    path = Path(path)
    if path.is_file():
        return [path] if _LOG_NAME.match(path.name) else []
    if not path.is_dir():
        return []
    found = [p for p in path.rglob("*") if p.is_file() and _LOG_NAME.match(p.name)]
    return sorted(found, key=lambda p: p.name)  # names start with the run's time


def is_inspect_log(path: str | Path) -> bool:
    """Whether ``path`` is an Inspect log or a folder of them (read without importing Inspect)."""
    return bool(log_files(path))


def _tokens(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    if not usage:
        return None
    totals = {"input": 0, "output": 0}
    for model_usage in usage.values():
        totals["input"] += model_usage.input_tokens or 0
        totals["output"] += model_usage.output_tokens or 0
    return totals


def error_summary(message: str, limit: int = 300) -> str:
    """The cause of a sample's error: its last line (Inspect's model errors start with the whole
    request and end with the API's answer)."""
    text = str(message).strip()
    wrapped = _WRAPPED_ERROR.match(text)  # ModelGenerateError('...') holds its text escaped
    if wrapped:
        text = wrapped["text"].replace("\\n", "\n").replace("\\'", "'")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    last = lines[-1] if lines else "unknown error"
    return last if len(last) <= limit else last[: limit - 3] + "..."


def sample_to_record(sample: Any, model: str) -> dict[str, Any] | None:
    """One logged Inspect sample as a MedFM-Robust record; None when it is not one of our items."""
    from ..metrics.base import get_metric
    from ..records import Record
    from ..tasks import get_task

    meta = sample.metadata or {}
    if "medfm_task" not in meta or "key" not in meta:
        return None
    card = get_task(meta["medfm_task"])
    score = (sample.scores or {}).get(SCORER)
    output = getattr(sample, "output", None)
    prediction = score.answer if score is not None and score.answer is not None else None
    if prediction is None and output is not None:
        prediction = output.completion
    record = Record(
        key=meta["key"],
        task=card.name,
        model=model,
        sample_id=meta["sample_id"],
        dataset=meta["dataset"],
        modality=meta.get("modality"),
        condition=meta.get("condition", "clean"),
        corruption=meta.get("corruption"),
        severity=meta.get("severity"),
        family=meta.get("family"),
        seed=meta.get("seed"),
        prediction=prediction,
        tokens=_tokens(getattr(sample, "model_usage", None)),
        host=HOST,
    )
    if sample.error is not None:
        record.error = f"Inspect: {error_summary(sample.error.message)}"
        return record.to_dict()
    states = (score.metadata or {}).get(STATE, {}) if score is not None else {}
    for name in card.metrics:
        if name not in states:
            record.error = f"Inspect's log has no '{name}' state for this sample (scorer {SCORER})"
            continue
        record.state[name] = states[name]
        value = get_metric(name).per_sample(states[name])
        record.score[name] = None if math.isnan(value) else value
    return record.to_dict()


def read_logs(path: str | Path) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(task card, model) -> records of every medfm_robust log at ``path``; for a key logged more
    than once (a retry, a rerun) the newest log's record wins, an error never over a score."""
    from inspect_ai.log import read_eval_log

    files = log_files(path)
    if not files:
        raise InspectLogError(
            f"'{path}' holds no Inspect logs (*.eval, *.json); pass the --log-dir of "
            "`inspect eval medfm_robust/...` (default ./logs) or one log file"
        )
    runs: dict[tuple[str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
    for file in files:
        header = read_eval_log(str(file), header_only=True)
        ours = str(header.eval.task).startswith(TASK_PREFIX)
        if not ours and "medfm_task" not in (header.eval.metadata or {}):
            continue  # another task's log: its samples are not read
        log = read_eval_log(str(file))
        model = str(log.eval.model)
        for sample in log.samples or []:
            record = sample_to_record(sample, model)
            if record is None:
                continue
            known = runs[(record["task"], model)]
            previous = known.get(record["key"])
            if previous is None or record["error"] is None or previous["error"] is not None:
                known[record["key"]] = record
    if not runs:
        raise InspectLogError(
            f"'{path}' has Inspect logs but none of {TASK_PREFIX}* tasks with samples"
        )
    return {run: list(records.values()) for run, records in runs.items()}


def single_run(path: str | Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The records and a run configuration of Inspect logs holding exactly one (card, model)."""
    from .base import one_run

    split = "report on one log file, or give each run its own --log-dir"
    return one_run(read_logs(path), path, HOST, InspectLogError, split)
