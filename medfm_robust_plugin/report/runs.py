"""Reading run directories back: records, configuration, task card and robustness summary."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import MedFMRobustError
from ..runner import CONFIG, RECORDS, latest_records


class ReportError(MedFMRobustError):
    """A run directory that cannot be reported on."""


@dataclass
class RunData:
    """One (task, model) run as a report sees it."""

    path: Path
    task: str
    model: str
    config: dict[str, Any]
    records: list[dict[str, Any]]
    metrics: list[Any]  # Metric objects, in the card's order
    summary: Any  # metrics.robustness.Summary

    @property
    def label(self) -> str:
        return self.model

    @property
    def primary(self) -> str:
        """The metric a headline talks about: the card's first."""
        return self.metrics[0].name


def load_run(path: str | Path) -> RunData:
    """Read ``records.jsonl`` and ``config.json`` of a run (or a host's output) and summarize it."""
    from ..lookup import host_reading

    path = Path(path)
    host = None if (path / RECORDS).exists() else host_reading(path)
    if host is not None:
        records, config = host.read_records(path)  # e.g. an lm-eval --output_path
        return _run_data(path, records, config)
    if not (path / RECORDS).exists():
        raise ReportError(
            f"'{path}' is not a run directory (no {RECORDS}); pass the folder `medfm-robust run` "
            "printed, e.g. runs/<task>/<model>, or an lm-eval --output_path"
        )
    records = latest_records(path)
    if not records:
        raise ReportError(f"'{path}' has no records yet; run the task first")
    config_path = path / CONFIG
    config = json.loads(config_path.read_text())["config"] if config_path.exists() else {}
    return _run_data(path, records, config)


def _run_data(path: Path, records: list[dict[str, Any]], config: dict[str, Any]) -> RunData:
    from ..metrics.base import get_metric
    from ..metrics.robustness import summarize
    from ..tasks import get_task

    task = config.get("task") or records[0].get("task")
    model = config.get("model") or records[0].get("model") or path.name
    if not task:
        raise ReportError(f"'{path}': its records do not say which task they belong to")
    card = get_task(task)
    metrics = [get_metric(name) for name in card.metrics]
    metrics += [_recorded_metric(name) for name in _extra_states(records, card.metrics)]
    return RunData(path, card.name, model, config, records, metrics, summarize(records, metrics))


def _extra_states(records: list[dict[str, Any]], known: tuple[str, ...]) -> list[str]:
    """Metrics a run recorded beyond its card's (e.g. ``accuracy_judge`` with ``--judge``)."""
    names: dict[str, None] = {}
    for record in records:
        for name in record.get("state") or {}:
            if name not in known:
                names[name] = None
    return list(names)


def _recorded_metric(name: str) -> Any:
    """A registered metric, or a plain mean of the recorded per-sample values."""
    from ..metrics.base import Metric, MetricError, get_metric

    try:
        return get_metric(name)
    except MetricError:
        return Metric(
            name, (), score=lambda prediction, sample: float("nan"), description="recorded"
        )
