"""The explorable report (index.html) in a real browser: headless Chromium through Playwright.

The page is opened from file:// with every request that is not file: or data: recorded (there must
be none), and used as a reader would: sort the leaderboard, filter, hover the heatmap, click a
corruption for its curves (one line per model) and its example images.
"""

from __future__ import annotations

import json

import pytest

from medfm_robust_plugin.models.base import load_model
from medfm_robust_plugin.report import build_report
from medfm_robust_plugin.runner import Run, RunConfig
from tests.browser import open_page

TASK = "MedFMRobust-Mini-VQA-Lite"
MODELS = ("baseline:lesion-finder", "baseline:majority")
CORRUPTIONS = ["gaussian_noise", "defocus_blur", "ct_low_dose_noise", "mri_bias_field"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("explore")
    run_dirs = []
    for model in MODELS:
        run = Run(
            RunConfig(
                task=TASK,
                model=model,
                out=str(out / "runs"),
                corruptions=CORRUPTIONS,
                severities=[1, 3, 5],
                workers=0,
            )
        )
        run_dirs.append(run.execute(load_model(model)).run_dir)
    seg = Run(
        RunConfig(
            task="MedFMRobust-Mini-Seg-Lite",
            model="baseline:box-otsu",
            out=str(out / "runs"),
            corruptions=["gaussian_noise"],
            severities=[1, 5],
            limit=5,
            workers=0,
        )
    )
    run_dirs.append(seg.execute(load_model("baseline:box-otsu")).run_dir)
    paths = build_report(run_dirs, out / "report")
    return paths.files["index"]


@pytest.fixture(scope="module")
def page(report):
    with open_page(report) as page:
        yield page


def cells(page, selector):
    return page.locator(selector).all_inner_texts()


def test_the_page_is_one_offline_file_with_its_data_embedded(report, page):
    text = report.read_text()
    assert "<script src" not in text and "<link" not in text  # nothing to fetch
    data = json.loads(page.locator("#medfm-data").text_content())
    assert {r["model"] for r in data["runs"]} == {*MODELS, "baseline:box-otsu"}
    assert page.problems == []


def test_the_leaderboard_lists_every_run_and_sorts_by_any_column(page):
    rows = page.locator("#leaderboard tbody tr")
    assert rows.count() == 3  # all tasks
    page.locator("#leaderboard th[data-key='clean']").click()
    first = [float(v) for v in cells(page, "#leaderboard td[data-key='clean']")]
    page.locator("#leaderboard th[data-key='clean']").click()
    second = [float(v) for v in cells(page, "#leaderboard td[data-key='clean']")]
    assert first == sorted(first, reverse=True) and second == sorted(second)
    assert len(set(first)) > 1
    page.select_option("#f-task", TASK)
    assert rows.count() == 2
    # paired clean - corrupted = absolute drop, as the page says
    for index in range(2):
        row = rows.nth(index)
        paired = float(row.locator("td[data-key='paired_clean']").inner_text())
        corrupted = float(row.locator("td[data-key='corrupted']").inner_text())
        drop = float(row.locator("td[data-key='abs_drop']").inner_text())
        assert paired - corrupted == pytest.approx(drop, abs=0.0015)
    assert page.problems == []


def test_filters_narrow_the_heatmap_and_the_leaderboard(page):
    page.select_option("#f-task", TASK)
    page.select_option("#f-modality", "all")
    heat_rows = page.locator("#heatmap tbody tr")
    everything = heat_rows.count()
    assert everything == len(CORRUPTIONS)
    page.select_option("#f-modality", "ct")
    names = [t.split()[0] for t in cells(page, "#heatmap tbody td.name")]
    assert "ct_low_dose_noise" in names and "mri_bias_field" not in names
    page.select_option("#f-modality", "all")
    page.select_option("#f-family", "base")
    names = [t.split()[0] for t in cells(page, "#heatmap tbody td.name")]
    assert sorted(names) == ["defocus_blur", "gaussian_noise"]
    page.select_option("#f-family", "all")
    page.fill("#f-corruption", "blur")
    assert [t.split()[0] for t in cells(page, "#heatmap tbody td.name")] == ["defocus_blur"]
    page.fill("#f-corruption", "")
    page.select_option("#f-severity", "5")
    assert page.locator("#heatmap thead th").count() == 2  # the name and severity 5
    page.select_option("#f-severity", "all")
    assert heat_rows.count() == everything
    assert page.problems == []


def test_a_heatmap_cell_shows_its_value_on_hover_and_a_row_its_curves_and_examples(page):
    page.select_option("#f-task", TASK)
    cell = page.locator("#heatmap td.cell[data-c='gaussian_noise'][data-s='5']")
    cell.hover()
    tooltip = page.locator("#tooltip")
    assert tooltip.is_visible()
    assert "gaussian_noise, severity 5" in tooltip.inner_text()
    cell.click()
    assert page.locator("#detail-title").inner_text() == "gaussian_noise"
    legend = page.locator("#curves .legend").inner_text()
    assert all(model in legend for model in MODELS)  # one line per model of the task
    assert page.locator("#curves polyline").count() == 2
    examples = page.locator("#examples .example")
    assert examples.count() == 4  # clean, severities 1, 3, 5
    assert "SSIM" in examples.nth(3).inner_text()
    images = page.locator("#examples img")
    assert all(
        (images.nth(i).get_attribute("src") or "").startswith("data:image/jpeg;base64,")
        for i in range(images.count())
    )
    assert page.evaluate("() => [...document.images].every((i) => i.complete && i.naturalWidth)")
    assert page.problems == []
