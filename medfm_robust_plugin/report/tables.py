"""Report tables: one headline row per (run, metric), and a corruption x severity table per run,
written as Markdown, CSV, JSON and LaTeX (booktabs, ready for a paper)."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .runs import RunData

HEADLINE_COLUMNS = (
    ("task", "Task"),
    ("model", "Model"),
    ("metric", "Metric"),
    ("clean", "Clean"),
    ("paired_clean", "Paired clean"),
    ("corrupted", "Corrupted"),
    ("absolute_drop", "Abs. drop"),
    ("relative_drop", "Rel. drop"),
    ("base_drop", "Base drop"),
    ("medical_drop", "Medical drop"),
    ("adversarial_drop", "Attack drop"),
    ("worst", "Worst corruption"),
    ("mce", "mCE"),
    ("relative_mce", "Rel. mCE"),
    ("failures", "Failures"),
    ("note", "Note"),
)


def headline_rows(runs: Sequence[RunData], reference: RunData | None) -> list[dict[str, Any]]:
    """Per run and metric: clean vs mean corrupted score, drops, worst corruption, mCE, and a note
    on what is left out (conditions without paired clean samples, an mCE between other samples)."""
    from ..metrics.robustness import mce, relative_mce

    rows = []
    for run in runs:
        summary = run.summary
        comparable = None if reference is None else mce_comparability(run, reference)
        for metric in run.metrics:
            name = metric.name
            row = {
                "task": run.task,
                "model": run.label,
                "metric": name,
                "clean": summary.clean.get(name),
                # the clean scores of the samples each condition applies to, averaged as the
                # corrupted scores are: paired clean - corrupted = the absolute drop
                "paired_clean": summary.overall.clean_scores.get(name),
                "corrupted": summary.overall.scores.get(name),
                "absolute_drop": summary.overall.absolute_drop.get(name),
                "relative_drop": summary.overall.relative_drop.get(name),
                "base_drop": _group_drop(summary, "base", name),
                "medical_drop": _group_drop(summary, "medical", name),
                # FGSM / PGD, apart from the corruptions' headline (None when not attacked)
                "adversarial_drop": _group_drop(summary, "adversarial", name),
                "worst": _worst(summary.worst.get(name)),
                "mce": None,
                "relative_mce": None,
                "failures": summary.failures.get("total", 0),
                "note": None,
            }
            notes = [unpaired_note(summary)] if summary.overall.unpaired else []
            if summary.worst.get(name) is None and summary.conditions:
                notes.append("no worst corruption: no corruption lowers the score")
            if reference is not None and reference is not run and reference.task == run.task:
                if comparable is None:
                    row["mce"] = mce(summary, reference.summary, name).value
                    row["relative_mce"] = relative_mce(summary, reference.summary, name).value
                else:
                    notes.append(comparable)
            row["note"] = "; ".join(notes) or None
            rows.append(row)
    return rows


def _worst(names: str | None, shown: int = 3) -> str | None:
    """The worst corruption; of many tied ones, the first few and how many more."""
    if names is None:
        return None
    tied = names.split(", ")
    if len(tied) <= shown:
        return names
    return f"{', '.join(tied[:shown])} (+{len(tied) - shown} tied)"


def unpaired_note(summary: Any) -> str:
    """Which conditions have no drop because none of their samples was scored clean."""
    unpaired = summary.overall.unpaired
    total = len(summary.conditions)
    shown = ", ".join(unpaired[:3]) + (", ..." if len(unpaired) > 3 else "")
    return (
        f"{len(unpaired)} of {total} conditions have no drop (no paired clean samples: {shown}); "
        "drops are over the other conditions"
    )


def mce_comparability(run: RunData, reference: RunData) -> str | None:
    """None when ``run`` and ``reference`` scored the same samples (mCE compares them); else why
    their mCE is not given."""
    ours, theirs = _samples(run), _samples(reference)
    if ours == theirs:
        return None
    return (
        f"no mCE: {len(ours)} samples here, {len(theirs)} in the reference '{reference.label}' "
        f"({len(ours & theirs)} shared); mCE compares runs on the same samples: rerun one of "
        "them with the other's --limit"
    )


def _samples(run: RunData) -> set[tuple[str, str]]:
    return {(str(r.get("dataset")), str(r.get("sample_id"))) for r in run.records}


def _group_drop(summary: Any, group: str, metric: str) -> float | None:
    result = summary.by_family.get(group)
    return None if result is None else result.absolute_drop.get(metric)


def condition_rows(run: RunData) -> list[dict[str, Any]]:
    """One row per (corruption, severity) of a run, for its primary metric."""
    metric = run.primary
    return [
        {
            "corruption": c.corruption,
            "family": c.family,
            "severity": c.severity,
            "score": c.scores.get(metric),
            "absolute_drop": c.absolute_drop.get(metric),
            "relative_drop": c.relative_drop.get(metric),
            "interval": c.absolute_interval.get(metric),
            "n": c.n,
            "n_paired": c.n_paired,
            "failed": c.failed,
            "note": c.note,
        }
        for c in run.summary.conditions
    ]


def fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, tuple | list) and len(value) == 2:
        return f"[{fmt(value[0], digits)}, {fmt(value[1], digits)}]"
    return str(value)


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    head = "| " + " | ".join(label for _, label in columns) + " |"
    rule = "| " + " | ".join("---" for _ in columns) + " |"
    body = ["| " + " | ".join(fmt(row.get(key)) for key, _ in columns) + " |" for row in rows]
    return "\n".join([head, rule, *body])


def latex_escape(text: str) -> str:
    for char, repl in (
        ("\\", r"\textbackslash{}"),
        ("_", r"\_"),
        ("%", r"\%"),
        ("&", r"\&"),
        ("#", r"\#"),
    ):
        text = text.replace(char, repl)
    return text


def latex_table(
    rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], caption: str, label: str
) -> str:
    """A booktabs table; numbers right-aligned, text left."""
    numeric = [
        all(isinstance(r.get(k), float | int) or r.get(k) is None for r in rows) for k, _ in columns
    ]
    spec = "".join("r" if n else "l" for n in numeric)
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{latex_escape(caption)}}}",
        rf"\label{{{label}}}",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(latex_escape(label_) for _, label_ in columns) + r" \\",
        r"\midrule",
    ]
    for row in rows:
        lines.append(" & ".join(latex_escape(fmt(row.get(key))) for key, _ in columns) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines)


def write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    if not rows:
        path.write_text("")
        return path
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if _missing(v) else v) for k, v in row.items()})
    return path


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


CONDITION_COLUMNS = (
    ("corruption", "Corruption"),
    ("family", "Family"),
    ("severity", "Severity"),
    ("score", "Score"),
    ("absolute_drop", "Abs. drop"),
    ("relative_drop", "Rel. drop"),
    ("interval", "95% CI (abs.)"),
    ("n", "n"),
    ("n_paired", "Paired"),
    ("failed", "Failed"),
    ("note", "Note"),
)


LEVEL_COLUMNS = (
    ("corruption", "Corruption"),
    ("severity", "Severity"),
    ("views", "Views"),
    ("in_band", "In band"),
    ("out_of_band", "Out of band"),
    ("unreachable", "Unreachable"),
)


def level_rows(run: Any) -> list[dict[str, Any]]:
    """Per (corruption, severity): how many views have their presented SSIM in the paper's band.

    In SSIM mode a view the calibration could not bring into band is counted as unreachable (its
    record says why); in table mode a view outside its level's band is out of band. Only
    (corruption, severity) with at least one view outside its band are listed, so that no level
    is silently off its band.
    """
    from ..calibration import PAPER_BANDS

    counts: dict[tuple[str, int], dict[str, Any]] = {}
    for record in run.records:
        severity = record.get("severity")
        if record.get("condition") == "clean" or severity not in PAPER_BANDS:
            continue
        if record.get("family") == "adversarial":  # an attack is bounded by epsilon, not SSIM
            continue
        params = record.get("params") or {}
        calibration = params.get("calibration")
        ssim = record.get("ssim")
        if calibration is None and ssim is None:
            continue
        row = counts.setdefault(
            (record["corruption"], severity),
            {
                "corruption": record["corruption"],
                "severity": severity,
                "views": 0,
                "in_band": 0,
                "out_of_band": 0,
                "unreachable": 0,
            },
        )
        row["views"] += 1
        if calibration is not None:
            if calibration.get("in_band"):
                row["in_band"] += 1
            elif not calibration.get("reachable", True):
                row["unreachable"] += 1
            else:
                row["out_of_band"] += 1
        else:
            lo, hi = PAPER_BANDS[severity]
            row["in_band" if lo <= float(ssim) <= hi else "out_of_band"] += 1
    return [row for _, row in sorted(counts.items()) if row["out_of_band"] or row["unreachable"]]
