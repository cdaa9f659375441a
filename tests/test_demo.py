"""The README's demo: it runs offline, every task kind shows real drops that grow with severity,
and its explorable report works in a real browser (headless Chromium through Playwright, with
the network off)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from medfm_robust_plugin.cli import main
from tests.browser import open_page


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    result = CliRunner().invoke(main, ["demo", "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "index.html" in result.output
    return out


def test_every_task_kind_shows_non_zero_drops_that_grow_with_severity(demo):
    summaries = sorted(demo.glob("runs/*/*/summary.json"))
    kinds = {path.parts[-3].split("-")[2] for path in summaries}
    assert kinds == {"VQA", "Caption", "Grounding", "Seg"}
    for path in summaries:
        summary = json.loads(path.read_text())
        metric = next(iter(summary["metrics"]))
        by_severity: dict[int, list[float]] = {}
        for condition in summary["conditions"]:
            drop = condition["absolute_drop"][metric]
            if drop is not None:
                by_severity.setdefault(condition["severity"], []).append(drop)
        mean = {s: sum(v) / len(v) for s, v in by_severity.items()}
        assert sorted(mean) == [1, 3, 5], path
        assert 0 < mean[1] < mean[3] < mean[5], (path.parts[-3], metric, mean)


@pytest.fixture(scope="module")
def page(demo):
    with open_page(demo / "report" / "index.html") as page:
        yield page


def names(page):
    return [text.split()[0] for text in page.locator("#heatmap tbody td.name").all_inner_texts()]


def test_the_demo_report_opens_offline_without_errors(page):
    assert page.locator("#leaderboard tbody tr").count() == 4  # one row per task
    assert page.problems == []


def test_a_modality_filter_changes_the_rows_shown(page):
    page.select_option("#f-task", "MedFMRobust-Mini-VQA-Lite")
    everything = names(page)
    page.select_option("#f-modality", "mri")
    mri = names(page)
    assert set(mri) < set(everything)
    assert any(n.startswith("mri_") for n in mri) and not any(n.startswith("ct_") for n in mri)
    page.select_option("#f-modality", "all")
    assert names(page) == everything


def test_sorting_a_column_sorts(page):
    page.select_option("#f-task", "all")
    header = page.locator("#leaderboard th[data-key='rel_drop']")
    for _ in range(2):
        header.click()
        values = [
            float(v) for v in page.locator("#leaderboard td[data-key='rel_drop']").all_inner_texts()
        ]
        direction = "sorted-asc" in (header.get_attribute("class") or "")
        assert values == sorted(values, reverse=not direction)
        header = page.locator("#leaderboard th[data-key='rel_drop']")


def test_clicking_a_heatmap_cell_shows_that_conditions_example_image(page):
    page.select_option("#f-task", "MedFMRobust-Mini-Seg-Lite")
    page.locator("#heatmap td.cell[data-c='gaussian_noise'][data-s='3']").click()
    current = page.locator("#examples .example.current")
    assert current.count() == 1
    assert current.get_attribute("data-severity") == "3"
    assert "gaussian_noise 3" in current.inner_text() and "SSIM" in current.inner_text()
    image = current.locator("img")
    assert image.evaluate("(img) => img.complete && img.naturalWidth") > 0
    # every image of the page renders
    assert page.evaluate(
        "() => [...document.images].every((img) => img.complete && img.naturalWidth > 0)"
    )
    assert page.problems == []
