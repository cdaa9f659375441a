"""``medfm-robust report``: one or more run directories -> Markdown, CSV, JSON and LaTeX tables,
PNG plots, a self-contained HTML page (figures and thumbnails embedded), and ``index.html``, the
same results as one page to explore (sortable leaderboard, filters, heatmap, curves, examples;
see ``explore``). Both open offline.

Runs of one task are compared side by side; the first run of a task is the reference model of its
mCE unless another is named.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..file_names import path_part
from ..jsonl import write_json
from . import plots, tables
from .runs import ReportError, RunData, load_run

__all__ = ["ReportError", "ReportPaths", "RunData", "build_report", "load_run"]


@dataclass
class Section:
    """The part of a report about one task: its runs, tables, figures and thumbnails."""

    task: str
    runs: list[RunData]
    rows: list[dict[str, Any]]
    figures: dict[str, Path]
    per_run: list[tuple[RunData, list[dict[str, Any]]]]
    thumbs: dict[str, dict[int, str]]
    reference: RunData | None


@dataclass
class ReportPaths:
    out: Path
    files: dict[str, Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # also on stderr and in summary.json


PAIRING = (
    "Drops are clean minus corrupted (positive = worse) and paired: each condition is compared "
    "with the clean score of the samples it applies to (a modality's own corruptions apply to "
    "that modality only), so Clean minus Corrupted in a headline can differ from its mean drop. "
    "A condition none of whose samples was scored clean (e.g. a --limit that kept other samples) "
    "has no drop, says so, and is left out of every mean drop. Paired clean is the mean of those "
    "clean scores, taken as Corrupted is: Paired clean minus Corrupted is the absolute drop."
)


def build_report(
    run_dirs: Sequence[str | Path],
    out: str | Path,
    reference: str | None = None,
    thumbnails: bool = True,
) -> ReportPaths:
    """Write the report of ``run_dirs`` into ``out``; ``reference`` names the mCE reference model."""
    runs = [load_run(path) for path in run_dirs]
    out = Path(out)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    paths = ReportPaths(out)
    by_task: dict[str, list[RunData]] = defaultdict(list)
    for run in runs:
        by_task[run.task].append(run)

    headline: list[dict[str, Any]] = []
    sections = []
    latex = []
    for task, task_runs in by_task.items():
        ref = (
            next((r for r in task_runs if r.label == reference), task_runs[0])
            if len(task_runs) > 1
            else None
        )
        rows = tables.headline_rows(task_runs, ref)
        headline.extend(rows)
        paths.warnings += _warnings(task, task_runs, ref)
        figures = {
            "score_vs_severity": plots.score_vs_severity(
                task_runs, out / "plots" / f"{path_part(task)}_severity.png"
            )
        }
        if len(task_runs) > 1:
            figures["comparison"] = plots.model_comparison(
                task_runs, out / "plots" / f"{path_part(task)}_models.png"
            )
        per_run = []
        for run in task_runs:
            stem = f"{path_part(task)}_{path_part(run.label)}"
            figures[f"heatmap:{run.label}"] = plots.drop_heatmap(
                run, out / "plots" / f"{stem}_heatmap.png"
            )
            conditions = tables.condition_rows(run)
            paths.files[f"conditions:{stem}"] = tables.write_csv(
                out / f"conditions_{stem}.csv", conditions
            )
            per_run.append((run, conditions))
            levels = tables.level_rows(run)
            paths.files[f"levels:{stem}"] = tables.write_csv(out / f"levels_{stem}.csv", levels)
            latex.append(
                tables.latex_table(
                    conditions,
                    tables.CONDITION_COLUMNS,
                    f"{task}, {run.label}: {run.primary} per corruption and severity",
                    f"tab:{stem}",
                )
            )
        thumbs = _thumbnails(task_runs[0]) if thumbnails else {}
        sections.append(Section(task, task_runs, rows, figures, per_run, thumbs, ref))

    latex.insert(
        0,
        tables.latex_table(
            headline, tables.HEADLINE_COLUMNS, "Robustness summary", "tab:medfm-robust"
        ),
    )
    paths.files["headline_csv"] = tables.write_csv(out / "headline.csv", headline)
    (out / "tables.tex").write_text("\n\n".join(latex) + "\n")
    paths.files["latex"] = out / "tables.tex"
    summary = {
        "warnings": paths.warnings,
        "headline": headline,
        "runs": [
            {"task": r.task, "model": r.label, "path": str(r.path), "summary": r.summary.to_dict()}
            for r in runs
        ],
    }
    write_json(out / "summary.json", summary)  # strict JSON: NaN written as null
    paths.files["json"] = out / "summary.json"
    (out / "report.md").write_text(_markdown(sections, out))
    paths.files["markdown"] = out / "report.md"
    from .explore import explore_data, render_explorer

    mce: dict[tuple[str, str], dict[str, Any]] = defaultdict(lambda: {"mce": {}, "rel_mce": {}})
    for row in headline:
        mce[(row["task"], row["model"])]["mce"][row["metric"]] = _finite(row["mce"])
        mce[(row["task"], row["model"])]["rel_mce"][row["metric"]] = _finite(row["relative_mce"])
    explorer = explore_data(runs, mce, examples=thumbnails)
    (out / "index.html").write_text(render_explorer(explorer, PAIRING), encoding="utf-8")
    paths.files["index"] = out / "index.html"
    from .html import render_html

    (out / "report.html").write_text(render_html(sections), encoding="utf-8")
    paths.files["html"] = out / "report.html"
    for warning in paths.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return paths


def _finite(value: Any) -> float | None:
    return None if value is None or value != value else float(value)


def _warnings(task: str, runs: list[RunData], reference: RunData | None) -> list[str]:
    """What a reader must know before trusting a number: drops left out, mCE not given."""
    warnings = []
    for run in runs:
        if run.summary.overall.unpaired:
            warnings.append(f"{task}, {run.label}: {tables.unpaired_note(run.summary)}")
        if reference is not None and run is not reference:
            why = tables.mce_comparability(run, reference)
            if why is not None:
                warnings.append(f"{task}, {run.label}: {why}")
    return warnings


def _markdown(sections: list[Section], out: Path) -> str:
    lines = ["# MedFM-Robust report", "", PAIRING, ""]
    for section in sections:
        lines += [f"## {section.task}", ""]
        if section.reference is not None:
            lines += [f"mCE and relative mCE are relative to `{section.reference.label}`.", ""]
        lines += [tables.markdown_table(section.rows, tables.HEADLINE_COLUMNS), ""]
        for name, path in section.figures.items():
            lines += [f"![{name}]({path.relative_to(out)})", ""]
        for run, conditions in section.per_run:
            lines += [f"### {run.label}: {run.primary} per corruption and severity", ""]
            lines += [tables.markdown_table(conditions, tables.CONDITION_COLUMNS), ""]
            levels = tables.level_rows(run)
            if levels:
                lines += [
                    f"### {run.label}: levels off the paper's SSIM band",
                    "",
                    "Views whose presented SSIM (over the imaged region: the scan, the "
                    "aperture, the body, the collimated field) is outside their level's band "
                    "(table mode), or that calibration could not bring into it (SSIM mode: "
                    "unreachable).",
                    "",
                    tables.markdown_table(levels, tables.LEVEL_COLUMNS),
                    "",
                ]
    return "\n".join(lines)


def _thumbnails(run: RunData, size: int = 96) -> dict[str, dict[int, str]]:
    """Base64 PNG thumbnails of one sample under each corruption and severity of a run."""
    import base64

    import cv2

    from ..errors import MedFMRobustError
    from ..tasks import Condition, get_task
    from ..views import CorruptedViews

    card = get_task(run.task)
    try:
        samples = {s.id: s for s in card.load(run.config.get("data_root")).samples}
    except MedFMRobustError:
        return {}  # the data is not on this machine: the report says so instead
    record = next(
        (r for r in run.records if r["condition"] == "clean" and r["sample_id"] in samples), None
    )
    if record is None:
        return {}
    sample = samples[record["sample_id"]]
    mode = run.config.get("severity_mode") or card.severity_mode
    views = CorruptedViews(global_seed=run.config.get("seed", 0), mode=mode)
    specs = {spec.name: spec for spec in card.corruptions_for(sample.modality)}

    def encode(view: Any) -> str:
        rgb = cv2.resize(views.display(view), (size, size), interpolation=cv2.INTER_AREA)
        ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        return base64.b64encode(png.tobytes()).decode()

    thumbs: dict[str, dict[int, str]] = {"clean": {0: encode(views.get(sample))}}
    for condition in run.summary.conditions:
        spec = specs.get(condition.corruption)
        if spec is None:
            continue
        view = views.get(
            sample, Condition(condition.corruption, condition.severity), corruption=spec
        )
        thumbs.setdefault(condition.corruption, {})[condition.severity] = encode(view)
    return thumbs
