"""lmms-eval's output read back as MedFM-Robust records, so that reports treat it like our own runs.

``lmms-eval ... --output_path OUT --log_samples`` writes ``OUT/<model>/<time>_results.json`` and
one ``<time>_samples_<task>.jsonl`` per task. lmms-eval leaves the document out of a logged
sample; our ``process_results`` returns it under ``medfm_robust_item``
(``hosts.lmms_eval_conditions.ITEM``), beside the per-sample state of every card metric, and the
records are made as for lm-eval (``lm_eval_results.sample_to_record``). Corruption parameters and
SSIM are not in the logs: they stay null.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..errors import MedFMRobustError
from ..jsonl import read_jsonl
from .lm_eval_results import sample_to_record
from .lmms_eval_conditions import ITEM

HOST = "lmms-eval"
RESULTS_GLOB = "*_results.json"
SAMPLES_MARK = "_samples_"


class LmmsEvalOutputError(MedFMRobustError):
    """An lmms-eval output folder that cannot be turned into records."""


def model_folders(path: str | Path) -> list[Path]:
    """The folders under ``path`` (itself, or its model subfolders) that hold lmms-eval results."""
    path = Path(path)
    if any(path.glob(RESULTS_GLOB)):
        return [path]
    if not path.is_dir():
        return []
    return sorted(p for p in path.iterdir() if p.is_dir() and any(p.glob(RESULTS_GLOB)))


def is_lmms_eval_output(path: str | Path) -> bool:
    """Whether ``path`` is an lmms-eval ``--output_path`` folder (or one model's folder in it)."""
    return bool(model_folders(path))


def _model_name(folder: Path) -> str:
    newest = sorted(folder.glob(RESULTS_GLOB))[-1]
    data = json.loads(newest.read_text(encoding="utf-8"))
    return str(data.get("model_name") or folder.name)


def _sample_files(folder: Path) -> list[Path]:
    """The newest samples file of each task (a rerun into the same folder supersedes older ones)."""
    newest: dict[str, Path] = {}
    for path in sorted(folder.glob(f"*{SAMPLES_MARK}*.jsonl")):  # names start with a timestamp
        newest[path.stem.split(SAMPLES_MARK, 1)[1]] = path
    return [newest[task] for task in sorted(newest)]


def read_folder(folder: str | Path) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(task card, model) -> records of one model folder (one record per key: the newest)."""
    folder = Path(folder)
    model = _model_name(folder)
    runs: dict[tuple[str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
    for path in _sample_files(folder):
        for logged in read_jsonl(path):  # a line cut short by a killed lmms-eval is skipped
            if not isinstance(logged.get(ITEM), dict):
                continue
            responses = logged.get("filtered_resps", logged.get("resps", ""))
            record = sample_to_record(
                {**logged, "doc": logged[ITEM], "filtered_resps": [responses]}, model, host=HOST
            )
            if record is not None:
                runs[(record["task"], model)][record["key"]] = record
    return {run: list(records.values()) for run, records in runs.items()}


def read_output(path: str | Path) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Every (task card, model) run in an lmms-eval output folder."""
    from .base import read_harness_output

    return read_harness_output(
        path, model_folders(path), read_folder, "lmms-eval", RESULTS_GLOB, LmmsEvalOutputError
    )


def single_run(path: str | Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The records and a run configuration of an output holding exactly one (card, model)."""
    from .base import one_run

    split = "split them into run folders with `medfm-robust lmms-eval-records` and report on those"
    return one_run(read_output(path), path, HOST, LmmsEvalOutputError, split)


def write_run_dirs(path: str | Path, out: str | Path) -> list[Path]:
    """Write each (card, model) of an lmms-eval output as a run folder ``out/<task>/<model>``."""
    from .base import write_run_folders

    return write_run_folders(read_output(path), out, HOST, path)
