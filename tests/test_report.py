"""Reports: tables in four formats, plots, and one HTML page that needs nothing but itself."""

from __future__ import annotations

import csv
import re
import subprocess
import sys

import numpy as np
import pytest

from medfm_robust_plugin.models.base import load_model
from medfm_robust_plugin.report import ReportError, build_report
from medfm_robust_plugin.runner import Run, RunConfig


class BoxFill:
    """A floor below the floor: the whole box is the mask."""

    name = "box-fill"

    def segment(self, image, boxes=None, points=None, point_labels=None):
        masks = np.zeros((len(boxes), *image.shape[:2]), bool)
        for k, (x1, y1, x2, y2) in enumerate(np.asarray(boxes).astype(int)):
            masks[k, y1:y2, x1:x2] = True
        return masks


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    corruptions = ["gaussian_noise", "contrast", "mri_motion", "ct_ring_artifact"]

    def run(task, label, model):
        config = RunConfig(task=task, model=label, out=str(out), corruptions=corruptions, limit=10)
        return Run(config).execute(model).run_dir

    return {
        "otsu": run(
            "MedFMRobust-Mini-Seg-Lite", "baseline:box-otsu", load_model("baseline:box-otsu")
        ),
        "fill": run("MedFMRobust-Mini-Seg-Lite", "box-fill", BoxFill()),
        "vqa": run(
            "MedFMRobust-Mini-VQA-Lite", "baseline:majority", load_model("baseline:majority")
        ),
    }


def test_report_has_every_format(runs, tmp_path):
    paths = build_report([runs["otsu"], runs["fill"], runs["vqa"]], tmp_path / "report")
    out = tmp_path / "report"
    with open(out / "headline.csv", newline="") as handle:
        headline = list(csv.DictReader(handle))
    assert {(r["task"], r["model"], r["metric"]) for r in headline} == {
        ("MedFMRobust-Mini-Seg-Lite", "baseline:box-otsu", "dice"),
        ("MedFMRobust-Mini-Seg-Lite", "baseline:box-otsu", "iou"),
        ("MedFMRobust-Mini-Seg-Lite", "box-fill", "dice"),
        ("MedFMRobust-Mini-Seg-Lite", "box-fill", "iou"),
        ("MedFMRobust-Mini-VQA-Lite", "baseline:majority", "accuracy"),
    }
    fill = next(r for r in headline if r["model"] == "box-fill" and r["metric"] == "dice")
    otsu = next(r for r in headline if r["model"] == "baseline:box-otsu" and r["metric"] == "dice")
    assert float(otsu["clean"]) > float(fill["clean"]) > 0
    # the second model of a task gets an mCE against the first
    assert fill["mce"] and not otsu["mce"]
    latex = (out / "tables.tex").read_text()
    assert (
        latex.count(r"\begin{tabular}") == 1 + 3
        and r"\toprule" in latex
        and r"box\_otsu" not in latex
    )
    assert "baseline:box-otsu" in (out / "report.md").read_text()
    for png in (out / "plots").glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list((out / "plots").glob("*.png"))) == 2 + 1 + 3  # per task, comparison, heatmaps
    assert set(paths.files) >= {"html", "markdown", "json", "latex", "headline_csv"}


def test_html_is_self_contained(runs, tmp_path):
    build_report([runs["otsu"], runs["fill"]], tmp_path / "r")
    page = (tmp_path / "r" / "report.html").read_text()
    assert not re.search(r"""(src|href)=["'](?!data:)""", page), "the page must not load anything"
    assert page.count("data:image/png;base64,") >= 3 + 4  # figures and thumbnails
    assert "What each corruption looks like" in page and "ct_ring_artifact" in page


def test_drop_table_matches_the_records(runs, tmp_path):
    import json

    from medfm_robust_plugin.runner import latest_records

    build_report([runs["otsu"]], tmp_path / "r")
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())["runs"][0]["summary"]
    records = latest_records(runs["otsu"])
    clean = [r["score"]["dice"] for r in records if r["condition"] == "clean"]
    assert summary["clean"]["scores"]["dice"] == pytest.approx(np.mean(clean))


def test_not_a_run_directory(tmp_path):
    with pytest.raises(ReportError, match="not a run directory"):
        build_report([tmp_path], tmp_path / "out")


def test_cli_report(runs, tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "medfm_robust_plugin",
            "report",
            str(runs["vqa"]),
            "-o",
            str(tmp_path / "r"),
            "--no-thumbnails",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "html:" in done.stdout and (tmp_path / "r" / "report.html").exists()


def test_levels_off_their_band_are_listed(tmp_path):
    """Records carry the presented SSIM in table and SSIM mode; levels off band are reported."""
    from medfm_robust_plugin.report.runs import load_run
    from medfm_robust_plugin.report.tables import level_rows

    dirs = {}
    for mode in ("table", "ssim"):
        config = RunConfig(
            task="MedFMRobust-Mini-VQA-Lite",
            model="baseline:majority",
            out=str(tmp_path / mode),
            corruptions=["contrast", "ct_ring_artifact"],
            limit=4,
            severity_mode=mode,
        )
        dirs[mode] = Run(config).execute(load_model("baseline:majority")).run_dir
    for mode, path in dirs.items():
        run = load_run(path)
        corrupted = [r for r in run.records if r["condition"] != "clean"]
        assert corrupted and all(isinstance(r["ssim"], float) for r in corrupted), mode
        if mode == "ssim":
            assert all("calibration" in r["params"] for r in corrupted)
        rows = level_rows(run)
        for row in rows:
            assert row["out_of_band"] + row["unreachable"] > 0
            assert row["in_band"] + row["out_of_band"] + row["unreachable"] == row["views"]
        build_report([path], tmp_path / f"report_{mode}")
        text = (tmp_path / f"report_{mode}" / "report.md").read_text()
        assert ("levels off the paper's SSIM band" in text) == bool(rows)


def test_models_whose_names_differ_only_in_punctuation_get_their_own_plot(tmp_path):
    dirs = []
    for k, label in enumerate(("lab/fill", "lab_fill")):
        config = RunConfig(
            task="MedFMRobust-Mini-Seg-Lite",
            model=label,
            out=str(tmp_path / f"runs{k}"),
            corruptions=["contrast"],
            limit=4,
            workers=0,
        )
        dirs.append(Run(config).execute(BoxFill()).run_dir)
    build_report(dirs, tmp_path / "r")
    heatmaps = sorted(p.name for p in (tmp_path / "r" / "plots").glob("*heatmap*"))
    assert len(heatmaps) == 2, heatmaps


def _copy_run(source, target, keep):
    """A copy of a run directory with only the records ``keep`` accepts."""
    import json
    import shutil

    shutil.copytree(source, target)
    lines = (target / "records.jsonl").read_text().splitlines()
    kept = [line for line in lines if keep(json.loads(line))]
    (target / "records.jsonl").write_text("\n".join(kept) + "\n")
    return target


def test_a_condition_without_paired_clean_samples_has_no_drop_anywhere(runs, tmp_path, capfd):
    """As an lm-eval --limit that kept only CT documents clean: MRI corruptions have no drop."""
    import json

    unpaired = _copy_run(
        runs["vqa"],
        tmp_path / "run",
        lambda r: r["condition"] != "clean" or r["modality"] != "mri",
    )
    build_report([unpaired], tmp_path / "r")
    warned = capfd.readouterr().err
    assert "no paired clean samples" in warned and "mri_motion_s" in warned
    report = json.loads((tmp_path / "r" / "summary.json").read_text())
    conditions = report["runs"][0]["summary"]["conditions"]
    motion = [c for c in conditions if c["corruption"] == "mri_motion"]
    assert motion and all(c["n_paired"] == 0 and c["n"] > 0 for c in motion)
    assert all(c["absolute_drop"]["accuracy"] is None for c in motion)
    assert all(c["note"] == "no paired clean samples" for c in motion)
    paired = [c for c in conditions if c["n_paired"]]
    assert paired and all(c["note"] is None for c in paired)
    # the headline drop is the mean over the paired conditions only
    mean = np.mean([c["absolute_drop"]["accuracy"] for c in paired])
    (headline,) = report["headline"]
    assert headline["absolute_drop"] == pytest.approx(mean)
    assert "no paired clean samples" in headline["note"] and report["warnings"]
    assert report["runs"][0]["summary"]["worst"]["accuracy"] != "mri_motion"
    with open(next((tmp_path / "r").glob("conditions_*.csv")), newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["corruption"] == "mri_motion"]
    assert rows and all(r["absolute_drop"] == "" and r["note"] for r in rows)
    markdown = (tmp_path / "r" / "report.md").read_text()
    assert "| mri_motion | mri | 1 |" in markdown and "no paired clean samples" in markdown
    assert "no paired clean samples" in (tmp_path / "r" / "report.html").read_text()


def test_no_worst_corruption_when_nothing_lowers_the_score(tmp_path):
    """The majority baseline never looks at the image: every drop is 0, so no corruption is the
    worst (not the first by name)."""
    from medfm_robust_plugin.report.runs import load_run

    config = RunConfig(
        task="MedFMRobust-Mini-VQA-Lite",
        model="baseline:majority",
        out=str(tmp_path / "runs"),
        corruptions=["contrast", "gaussian_noise"],
        limit=4,
        workers=0,
    )
    path = Run(config).execute(load_model("baseline:majority")).run_dir
    run = load_run(path)
    assert all(c.absolute_drop["accuracy"] == 0 for c in run.summary.conditions)
    assert run.summary.worst == {"accuracy": None}
    build_report([path], tmp_path / "r", thumbnails=False)
    with open(tmp_path / "r" / "headline.csv", newline="") as handle:
        (row,) = csv.DictReader(handle)
    assert row["worst"] == "" and "no corruption lowers the score" in row["note"]


def test_mce_between_runs_of_different_samples_is_refused_with_a_warning(runs, tmp_path, capfd):
    small = tmp_path / "small"
    config = RunConfig(
        task="MedFMRobust-Mini-Seg-Lite",
        model="box-fill",
        out=str(small),
        corruptions=["gaussian_noise", "contrast", "mri_motion", "ct_ring_artifact"],
        limit=2,
    )
    small_run = Run(config).execute(BoxFill()).run_dir
    build_report([runs["otsu"], small_run], tmp_path / "r", thumbnails=False)
    warned = capfd.readouterr().err
    assert "no mCE" in warned and "'baseline:box-otsu'" in warned
    with open(tmp_path / "r" / "headline.csv", newline="") as handle:
        fill = [r for r in csv.DictReader(handle) if r["model"] == "box-fill"]
    assert fill and all(r["mce"] == "" and r["relative_mce"] == "" for r in fill)
    assert all("samples here" in r["note"] and "--limit" in r["note"] for r in fill)


def test_the_severity_plot_title_clears_the_panel_titles(tmp_path, monkeypatch):
    """With 40 corruptions (seven rows of panels) the figure's title overlaps no panel title."""
    from types import SimpleNamespace

    from matplotlib.figure import Figure

    from medfm_robust_plugin.metrics.robustness import summarize
    from medfm_robust_plugin.report import plots

    def record(sample, corruption=None, severity=None, accuracy=1.0):
        return dict(
            sample_id=str(sample),
            dataset="d",
            modality="ct",
            condition="clean" if corruption is None else f"{corruption}_s{severity}",
            corruption=corruption,
            severity=severity,
            family=None if corruption is None else "natural",
            state={"accuracy": accuracy},
            error=None,
        )

    records = [record(k) for k in range(2)] + [
        record(k, f"corruption_{c}", s, 0.5) for k in range(2) for c in range(40) for s in (1, 3, 5)
    ]
    run = SimpleNamespace(
        summary=summarize(records, ["accuracy"], resamples=0),
        primary="accuracy",
        label="model",
        task="MedFMRobust-Mini-VQA-Lite",
    )
    overlaps = {}
    original = Figure.savefig

    def measure(fig, *args, **kwargs):
        original(fig, *args, **kwargs)
        renderer = fig.canvas.get_renderer()
        title = fig._suptitle.get_window_extent(renderer)
        for ax in fig.axes:
            if ax.get_title():
                overlaps[ax.get_title()] = title.overlaps(ax.title.get_window_extent(renderer))

    monkeypatch.setattr(Figure, "savefig", measure)
    plots.score_vs_severity([run], tmp_path / "severity.png")
    assert len(overlaps) == 40 and not any(overlaps.values()), overlaps


def test_worst_corruption_names_ties_together_and_nothing_when_no_drop():
    from medfm_robust_plugin.metrics.robustness import summarize

    def records(drops):
        rows = []
        for k in range(2):
            rows.append(
                dict(sample_id=str(k), dataset="d", modality="ct", condition="clean",
                     corruption=None, severity=None, family=None, state={"accuracy": 1.0},
                     error=None)
            )  # fmt: skip
            for name, accuracy in drops.items():
                rows.append(
                    dict(sample_id=str(k), dataset="d", modality="ct", condition=f"{name}_s1",
                         corruption=name, severity=1, family="natural",
                         state={"accuracy": accuracy}, error=None)
                )  # fmt: skip
        return rows

    tied = summarize(records({"blur": 0.5, "noise": 0.5, "jpeg": 1.0}), ["accuracy"], resamples=0)
    assert tied.worst == {"accuracy": "blur, noise"}
    from medfm_robust_plugin.report.tables import _worst

    assert _worst("a, b, c, d, e") == "a, b, c (+2 tied)" and _worst("a, b") == "a, b"
    flat = summarize(records({"blur": 1.0, "noise": 1.0}), ["accuracy"], resamples=0)
    assert flat.worst == {"accuracy": None}
