"""VLMEvalKit's results read back into our records.

When VLMEvalKit evaluates one of our task-card datasets, our scoring writes the per-row records
(``records.Record``, host ``vlmeval``) beside VLMEvalKit's own result files, as
``<model>_<dataset>_medfm_robust_records.jsonl``. ``read_output`` finds them under a work folder
(VLMEvalKit keeps a copy in a dated subfolder: the newest file of each (card, model) is read), and
``medfm-robust report <work-dir>/<model>`` or ``medfm-robust vlmeval-records`` read them as runs.
Nothing here imports VLMEvalKit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import MedFMRobustError
from ..jsonl import read_jsonl, write_jsonl

SUFFIX = "_medfm_robust_records.jsonl"


class VLMEvalKitOutputError(MedFMRobustError, ValueError):
    """A folder that holds no MedFM-Robust records of VLMEvalKit, or several runs where one is asked."""


def records_path(eval_file: str | Path) -> Path:
    """Where the records of one VLMEvalKit result file go: beside it, named after it."""
    eval_file = Path(eval_file)
    return eval_file.with_name(eval_file.stem + SUFFIX)


def write_records(eval_file: str, records: list[dict[str, Any]], about: dict[str, Any]) -> Path:
    """Write the scored rows of ``eval_file`` (``<model>_<dataset>.<ext>``) with the model named."""
    stem, dataset = Path(eval_file).stem, str(about.get("dataset", ""))
    model = stem[: -len(dataset) - 1] if dataset and stem.endswith("_" + dataset) else stem
    path = records_path(eval_file)
    write_jsonl(path, [{**r, "model": model} for r in records])
    return path


def record_files(path: str | Path) -> list[Path]:
    return sorted(Path(path).rglob("*" + SUFFIX)) if Path(path).is_dir() else []


def read_output(path: str | Path) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(card, model) -> records, from the newest records file of each under ``path``."""
    newest: dict[tuple[str, str], tuple[float, list[dict[str, Any]]]] = {}
    for file in record_files(path):
        records = list(read_jsonl(file))
        if not records:
            continue
        key = (str(records[0].get("task")), str(records[0].get("model")))
        stamp = file.stat().st_mtime
        if key not in newest or stamp > newest[key][0]:
            newest[key] = (stamp, records)
    if not newest:
        raise VLMEvalKitOutputError(
            f"'{path}' holds no MedFM-Robust records of VLMEvalKit (*{SUFFIX}); pass VLMEvalKit's "
            "--work-dir (or its model folder) after it evaluated a MedFMRobust-* dataset"
        )
    return {key: records for key, (_, records) in sorted(newest.items())}


def single_run(path: str | Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The records and a run configuration of a VLMEvalKit folder holding one (card, model)."""
    from .base import one_run

    split = "split them into run folders with `medfm-robust vlmeval-records` and report on those"
    return one_run(read_output(path), path, "vlmeval", VLMEvalKitOutputError, split)


def write_run_dirs(path: str | Path, out: str | Path) -> list[Path]:
    """Write each (card, model) of a VLMEvalKit work folder as a run folder ``out/<task>/<model>``."""
    from .base import write_run_folders

    return write_run_folders(read_output(path), out, "vlmeval", path)
