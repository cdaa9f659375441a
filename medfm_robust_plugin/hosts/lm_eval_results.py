"""lm-eval's output read back as MedFM-Robust records, so that reports treat it like our own runs.

``lm_eval ... --output_path OUT --log_samples`` writes ``OUT/<model>/results_<time>.json`` and one
``samples_<task>_<time>.jsonl`` per task. Each logged sample carries the document of our condition
task (sample, dataset, modality, condition, corruption, severity, family, seed), the model's answer
and the per-sample state of every card metric, which is all a ``records.Record`` needs. The
corruption parameters and SSIM are not in lm-eval's logs: they stay null (``medfm-robust
materialize`` or our runner records them).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..errors import MedFMRobustError
from ..jsonl import read_jsonl

RESULTS_GLOB = "results_*.json"
SAMPLES_PREFIX = "samples_"


class LmEvalOutputError(MedFMRobustError):
    """An lm-eval output folder that cannot be turned into records."""


def model_folders(path: str | Path) -> list[Path]:
    """The folders under ``path`` (itself, or its model subfolders) that hold lm-eval results."""
    path = Path(path)
    if any(path.glob(RESULTS_GLOB)):
        return [path]
    if not path.is_dir():
        return []
    return sorted(p for p in path.iterdir() if p.is_dir() and any(p.glob(RESULTS_GLOB)))


def is_lm_eval_output(path: str | Path) -> bool:
    """Whether ``path`` is an lm-eval ``--output_path`` folder (or one model's folder in it)."""
    return bool(model_folders(path))


def _model_name(folder: Path) -> str:
    newest = sorted(folder.glob(RESULTS_GLOB))[-1]
    data = json.loads(newest.read_text(encoding="utf-8"))
    name = data.get("model_name")
    if name:
        return str(name)
    args = (data.get("config") or {}).get("model_args") or {}
    if isinstance(args, dict):
        for key in ("model", "pretrained"):
            if args.get(key):
                return str(args[key])
    return folder.name


def _sample_files(folder: Path) -> list[Path]:
    """The newest samples file of each task (a rerun into the same folder supersedes older ones)."""
    newest: dict[str, Path] = {}
    for path in sorted(folder.glob(f"{SAMPLES_PREFIX}*.jsonl")):
        task = path.stem[len(SAMPLES_PREFIX) :].rsplit("_", 1)[0]
        newest[task] = path  # names end in a sortable timestamp
    return [newest[task] for task in sorted(newest)]


def sample_to_record(
    logged: dict[str, Any], model: str, host: str = "lm-eval"
) -> dict[str, Any] | None:
    """One logged lm-eval sample as a MedFM-Robust record; None when it is not one of our tasks.

    ``host`` names the harness in the record (lmms-eval's logs are read through here too).
    """
    from ..metrics.base import get_metric
    from ..records import Record
    from ..tasks import get_task

    doc = logged.get("doc") or {}
    if "medfm_task" not in doc or "condition" not in doc:
        return None
    card = get_task(doc["medfm_task"])
    responses = logged.get("filtered_resps") or logged.get("resps") or [""]
    prediction = responses[0]
    while isinstance(prediction, list):  # resps nest one list per request
        prediction = prediction[0] if prediction else ""
    record = Record(
        key=doc["key"],
        task=card.name,
        model=model,
        sample_id=doc["sample_id"],
        dataset=doc["dataset"],
        modality=doc["modality"],
        condition=doc["condition"],
        corruption=doc.get("corruption"),
        severity=doc.get("severity"),
        family=doc.get("family"),
        seed=doc.get("seed"),
        prediction=prediction,
        host=host,
    )
    for name in card.metrics:
        if name not in logged:
            record.error = f"{host}'s log has no '{name}' for this sample"
            continue
        state = logged[name]
        record.state[name] = state
        value = get_metric(name).per_sample(state)
        record.score[name] = None if math.isnan(value) else value
    return record.to_dict()


def read_folder(folder: str | Path) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(task card, model) -> records of one model folder (one record per key: the newest)."""
    folder = Path(folder)
    model = _model_name(folder)
    runs: dict[tuple[str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
    for path in _sample_files(folder):
        for logged in read_jsonl(path):  # a line cut short by a killed lm-eval is skipped
            record = sample_to_record(logged, model)
            if record is not None:
                runs[(record["task"], model)][record["key"]] = record
    return {run: list(records.values()) for run, records in runs.items()}


def read_output(path: str | Path) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Every (task card, model) run in an lm-eval output folder."""
    from .base import read_harness_output

    return read_harness_output(
        path, model_folders(path), read_folder, "lm-eval", RESULTS_GLOB, LmEvalOutputError
    )


def single_run(path: str | Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The records and a run configuration of an lm-eval output holding exactly one (card, model)."""
    from .base import one_run

    split = "split them into run folders with `medfm-robust lm-eval-records` and report on those"
    return one_run(read_output(path), path, "lm-eval", LmEvalOutputError, split)


def write_run_dirs(path: str | Path, out: str | Path) -> list[Path]:
    """Write each (card, model) of an lm-eval output as a run folder ``out/<task>/<model>``."""
    from .base import write_run_folders

    return write_run_folders(read_output(path), out, "lm-eval", path)
