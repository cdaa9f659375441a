"""How big the explorable report gets, and how fast it opens in a headless browser.

Two reports: the demo's (``medfm-robust demo``: four tasks, one floor each), and a large one,
5 models x every registered corruption (70) x 5 severities on the Mini VQA samples, with records
made up from seeded random answers (scored by the real metric) so that no model has to run. For
each: the size of ``index.html`` and of ``report.html``, the time ``report`` takes, and the time
Chromium takes to open ``index.html`` from file:// until the leaderboard and heatmap are drawn
(median and max of ``--opens``, wall clock, a fresh page each time). The goal: under 10 MB and
under 2 s.

    python benchmarks/report_size.py [--samples 10] [--opens 5] [--skip-demo]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MODELS = ("model-a", "model-b", "model-c", "model-d", "model-e")
TASK = "MedFMRobust-Mini-VQA-Lite"


def large_runs(root: Path, samples: int) -> list[Path]:
    """Run folders of 5 made-up models over every registered corruption at severities 1-5."""
    from medfm_robust_plugin.jsonl import write_jsonl
    from medfm_robust_plugin.lookup import list_corruptions
    from medfm_robust_plugin.metrics.base import get_metric
    from medfm_robust_plugin.plan import EvaluationPlan, WorkItem, condition_grid, item_key
    from medfm_robust_plugin.records import Record

    plan = EvaluationPlan.from_card(TASK, limit=samples)
    metric = get_metric("accuracy")
    # every registered corruption for every sample (a suite would keep its modality's own)
    grid = condition_grid(sorted(list_corruptions(), key=lambda c: c.name), range(1, 6))
    folders = []
    for index, model in enumerate(MODELS):
        rng = np.random.default_rng(index)
        folder = root / TASK / model
        folder.mkdir(parents=True)
        skill = 0.9 - 0.08 * index
        records = []
        for sample in plan.samples():
            for condition, spec in grid:
                level = condition.severity or 0
                right = rng.random() < skill - 0.06 * level * rng.random()
                prediction = sample.answer if right else "Z"
                state = metric.score(prediction, sample)
                item = WorkItem(
                    sample, condition, item_key(sample.dataset, sample.id, condition), spec
                )
                record = Record.of(
                    item,
                    task=TASK,
                    model=model,
                    prediction=prediction,
                    state={"accuracy": state},
                    score={"accuracy": metric.per_sample(state)},
                    ssim=None if spec is None else round(1 - 0.08 * level, 3),
                )
                records.append(record.to_dict())
        write_jsonl(folder / "records.jsonl", records)
        config = {"task": TASK, "model": model, "seed": 0, "data_root": None}
        (folder / "config.json").write_text(json.dumps({"fingerprint": None, "config": config}))
        folders.append(folder)
    return folders


def open_times(index: Path, opens: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("no chromium executable (Debian: apt-get install chromium)")
    times = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        context = browser.new_context(offline=True)
        for _ in range(opens):
            page = context.new_page()
            started = time.perf_counter()
            page.goto(index.as_uri())
            page.wait_for_selector("#heatmap tbody tr")
            times.append(time.perf_counter() - started)
            page.close()
        browser.close()
    return times


def measure(name: str, run_dirs: list[Path], out: Path, opens: int) -> None:
    from medfm_robust_plugin.report import build_report

    started = time.perf_counter()
    paths = build_report(run_dirs, out)
    seconds = time.perf_counter() - started
    index = paths.files["index"]
    data = json.loads(
        index.read_text().split('type="application/json">', 1)[1].split("</script>", 1)[0]
    )
    times = open_times(index, opens)
    print(
        f"{name}: index.html {index.stat().st_size / 1e6:.2f} MB "
        f"({len(data['conditions'])} condition rows, {len(data['images'])} images), "
        f"report.html {paths.files['html'].stat().st_size / 1e6:.2f} MB; report built in "
        f"{seconds:.1f} s; opens in {statistics.median(times):.2f} s median, "
        f"{max(times):.2f} s max of {len(times)} (goal: < 10 MB, < 2 s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10, help="Mini VQA samples per model")
    parser.add_argument("--opens", type=int, default=5)
    parser.add_argument("--skip-demo", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if not args.skip_demo:
            from click.testing import CliRunner

            from medfm_robust_plugin.cli import main as cli

            result = CliRunner().invoke(cli, ["demo", "--out", str(root / "demo")])
            if result.exit_code != 0:
                sys.exit(result.output)
            runs = sorted((root / "demo" / "runs").glob("*/*"))
            measure("demo (4 tasks x 1 model)", runs, root / "demo-report", args.opens)
        runs = large_runs(root / "large", args.samples)
        measure(
            f"5 models x 70 corruptions x 5 severities ({args.samples} samples)",
            runs,
            root / "large-report",
            args.opens,
        )


if __name__ == "__main__":
    main()
