"""The native runner: the grid of conditions, records flushed per item, resume, failures, config changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from medfm_robust_plugin.runner import (
    Run,
    RunConfig,
    RunError,
    latest_records,
    mask_to_rle,
    read_records,
    rle_to_mask,
)

from .plugin_helpers import add_entry_point_plugin

PLUGIN = '''
import json, os
import numpy as np
from medfm_robust_plugin import hookimpl
from medfm_robust_plugin.metrics.base import Metric
from medfm_robust_plugin.models.base import Capabilities, Generation, ModelSpec
from medfm_robust_plugin.tasks import parse_card

CALLS = os.environ.get("RUNNER_TEST_CALLS")


class Instant:
    """Answers 'A' at once; fails on count questions; logs every prompt it is asked."""

    name = "test:instant"
    capabilities = Capabilities(max_batch=4)

    def generate(self, items, max_new_tokens=256, temperature=0.0, system=None):
        if CALLS:
            with open(CALLS, "a") as log:
                for images, prompt in items:
                    log.write(json.dumps([prompt, int(np.asarray(images[0]).sum())]) + "\\n")
        out = []
        for images, prompt in items:
            assert np.asarray(images[0]).dtype == np.uint8
            if "How many" in prompt:
                raise RuntimeError("model refused to count")
            out.append(Generation("The answer is A", input_tokens=10, output_tokens=3, cost_usd=0.001))
        return out


class Vague:
    name = "test:vague"
    capabilities = Capabilities(max_batch=4)

    def generate(self, items, max_new_tokens=256, temperature=0.0, system=None):
        return [Generation("Hard to say, I would lean towards the first one.") for _ in items]


class Thresholder:
    name = "test:threshold"

    def segment(self, image, boxes=None, points=None, point_labels=None):
        masks = []
        for x1, y1, x2, y2 in boxes.astype(int):
            mask = np.zeros(image.shape[:2], bool)
            mask[y1:y2, x1:x2] = True
            masks.append(mask)
        return np.stack(masks)


def letter(prediction, sample):
    return float(prediction.strip()[-1] == sample.answer)


def overlap(prediction, sample):
    truth = sample.load_mask()
    return float((prediction & truth).sum() / max((prediction | truth).sum(), 1))


@hookimpl
def register_models(register):
    register(ModelSpec("test:instant", "vlm", lambda **kw: Instant()))
    register(ModelSpec("test:threshold", "segmenter", lambda **kw: Thresholder()))
    register(ModelSpec("test:vague", "vlm", lambda **kw: Vague()))


@hookimpl
def register_metrics(register):
    register(Metric("letter_match", ("vqa",), letter))
    register(Metric("box_iou", ("segmentation",), overlap))


@hookimpl
def register_tasks(register):
    base = {"dataset": {"name": "medfm_robust_mini", "options": {"task": "vqa", "per_modality": 4}},
            "needs_data_root": False, "prompt": "{question}\\n{options}", "severities": [1, 3]}
    for card in parse_card({**base, "task": "Test-VQA", "kind": "vqa", "metrics": ["letter_match"]}):
        register(card)
    for card in parse_card({**base, "task": "Test-VQA-Acc", "kind": "vqa", "metrics": ["accuracy"]}):
        register(card)
    seg = {**base, "dataset": {"name": "medfm_robust_mini", "options": {"task": "segmentation", "per_modality": 4}}}
    for card in parse_card({**seg, "task": "Test-Seg", "kind": "segmentation", "metrics": ["box_iou"]}):
        register(card)
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    root = tmp_path / "plugin"
    add_entry_point_plugin(root, "runner_test", "runner_test_plugin", PLUGIN)
    monkeypatch.setenv("PYTHONPATH", f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    calls = tmp_path / "calls.jsonl"
    monkeypatch.setenv("RUNNER_TEST_CALLS", str(calls))
    sys.modules.pop("runner_test_plugin", None)
    return calls


def config(tmp_path, **kw):
    base = {
        "task": "Test-VQA",
        "model": "test:instant",
        "out": str(tmp_path / "runs"),
        "corruptions": ["gaussian_noise", "contrast"],
        "limit": 10,
    }
    return RunConfig(**{**base, **kw})


def load(name):
    from medfm_robust_plugin.models.base import load_model

    return load_model(name)


def test_grid_records_and_failures(tmp_path, plugin):
    job = Run(config(tmp_path))
    result = job.execute(load("test:instant"))
    records = list(read_records(result.run_dir))
    expected = len(job.work())
    assert len(records) == expected == result.written + result.failed
    assert {r["condition"] for r in records} >= {"clean", "gaussian_noise_s1", "contrast_s3"}
    failures = [r for r in records if r["error"]]
    assert failures and all("refused to count" in r["error"] for r in failures)
    ok = [r for r in records if not r["error"]]
    assert all(
        r["prediction"] == "The answer is A" and r["tokens"] == {"input": 10, "output": 3}
        for r in ok
    )
    assert all(r["score"]["letter_match"] in (0.0, 1.0) for r in ok)
    corrupted = [r for r in ok if r["corruption"]]
    assert all(
        0 < r["ssim"] < 1 and r["params"]["seed"] == r["seed"] and r["family"] for r in corrupted
    )


def test_rerun_resumes_without_repeating_calls(tmp_path, plugin):
    job = Run(config(tmp_path))
    job.execute(load("test:instant"))
    first = plugin.read_text().count("\n")
    again = Run(config(tmp_path)).execute(load("test:instant"))
    prompts = [json.loads(line)[0] for line in plugin.read_text().splitlines()[first:]]
    # only the failed (count) items are retried; nothing that succeeded is asked again
    assert prompts and all("How many" in p for p in prompts)
    assert (
        again.skipped_done
        == len([r for r in read_records(again.run_dir) if not r["error"]]) - again.written
    )


def test_killed_run_resumes_where_it_stopped(tmp_path, plugin):
    code = (
        "import sys, os\n"
        "from medfm_robust_plugin.models.base import load_model\n"
        "from medfm_robust_plugin.runner import Run, RunConfig\n"
        f"cfg = RunConfig(task='Test-VQA', model='test:instant', out={str(tmp_path / 'runs')!r}, "
        "corruptions=['gaussian_noise', 'contrast'], limit=10)\n"
        "seen = []\n"
        "def stop(n, usage):\n"
        "    seen.append(n)\n"
        "    if len(seen) == 9: os._exit(9)\n"
        "Run(cfg).execute(load_model('test:instant'), progress=stop)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 9, done.stderr
    job = Run(config(tmp_path))
    assert len(list(read_records(job.run_dir))) == 9
    result = job.execute(load("test:instant"))
    keys = [r["key"] for r in latest_records(job.run_dir)]
    assert len(keys) == len(set(keys)) == len(job.work())
    assert result.skipped_done == len(
        [r for r in list(read_records(job.run_dir))[:9] if not r["error"]]
    )


def test_changed_config_is_refused_unless_allowed(tmp_path, plugin):
    Run(config(tmp_path)).execute(load("test:instant"))
    with pytest.raises(RunError, match="changed: severities"):
        Run(config(tmp_path, severities=[5])).execute(load("test:instant"))
    Run(config(tmp_path, severities=[5]), allow_config_change=True).execute(load("test:instant"))


def test_segmentation_records_masks(tmp_path, plugin):
    job = Run(
        config(tmp_path, task="Test-Seg", model="test:threshold", corruptions=["gaussian_noise"])
    )
    job.execute(load("test:threshold"))
    records = list(read_records(job.run_dir))
    assert records and all(r["error"] is None for r in records)
    clean = next(r for r in records if r["condition"] == "clean")
    mask = rle_to_mask(clean["prediction"]["mask_rle"])
    assert mask.sum() == clean["prediction"]["area"] > 0
    assert 0 < clean["score"]["box_iou"] <= 1


def test_views_are_prepared_ahead_by_workers_with_the_same_results(tmp_path, plugin):
    """In this process or in 1 or 3 worker processes: the same records (written as they finish)."""
    runs = [Run(config(tmp_path, out=str(tmp_path / f"w{n}"), workers=n)) for n in (0, 1, 3)]
    for job in runs:
        job.execute(load("test:instant"))

    def records(job):
        strip = lambda r: {k: v for k, v in r.items() if k != "seconds"}  # noqa: E731
        return sorted((strip(r) for r in read_records(job.run_dir)), key=lambda r: r["key"])

    assert len(records(runs[0])) == len(runs[0].work())
    assert records(runs[0]) == records(runs[1]) == records(runs[2])


def test_rle_round_trip():
    rng = np.random.default_rng(0)
    for shape in [(5, 7), (1, 1), (16, 3)]:
        mask = rng.random(shape) > 0.5
        np.testing.assert_array_equal(rle_to_mask(mask_to_rle(mask)), mask)


def test_cli_dry_run_and_run(tmp_path, plugin):
    base = [
        sys.executable,
        "-m",
        "medfm_robust_plugin",
        "run",
        "--task",
        "Test-VQA",
        "--model",
        "test:instant",
        "--limit",
        "5",
        "--corruptions",
        "contrast",
        "--out",
        str(tmp_path / "cli"),
    ]
    dry = subprocess.run([*base, "--dry-run"], capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
    assert "5 samples" in dry.stdout and "model calls to make" in dry.stdout
    assert not plugin.exists()
    real = subprocess.run(base, capture_output=True, text=True)
    assert real.returncode == 0, real.stderr
    assert "records written" in real.stdout


def test_judge_reads_answers_the_rules_cannot(tmp_path, plugin, monkeypatch):
    from medfm_robust_plugin.report import build_report

    from .fake_api_servers import FakeOpenAIServer

    with FakeOpenAIServer(reply="A") as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-judge")
        monkeypatch.setenv("MEDFM_ROBUST_CACHE", str(tmp_path / "cache"))
        cfg = config(
            tmp_path, task="Test-VQA-Acc", model="test:vague", judge="gpt-4o-mini", limit=4
        )
        job = Run(cfg)
        job.execute(load("test:vague"))
        asked = len(server.requests)
    records = list(read_records(job.run_dir))
    # the judge sees text only: one call per distinct question, the rest from its response cache
    assert asked == len({r["sample_id"] for r in records}) < len(records)
    assert all(r["score"]["accuracy"] == 0.0 for r in records)  # the rules read nothing
    expected = [float(r["prediction"] and _answer(job, r) == "A") for r in records]
    assert [r["score"]["accuracy_judge"] for r in records] == expected
    paths = build_report([job.run_dir], tmp_path / "report", thumbnails=False)
    assert "accuracy_judge" in paths.files["headline_csv"].read_text()


def _answer(job, record):
    return next(s.answer for s in job.samples() if s.id == record["sample_id"])


def test_config_json_keeps_no_credentials_of_a_url_option():
    from medfm_robust_plugin.runner import _without_credentials

    assert (
        _without_credentials("https://user:s3cret@proxy.example:8443/v1?api_key=sk-abc&x=1")
        == "https://proxy.example:8443/v1?api_key=%5Bredacted%5D&x=1"
    )
    assert _without_credentials("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"
    assert _without_credentials(7) == 7


def test_views_made_ahead_overlap_the_model_and_give_the_same_records(tmp_path, plugin):
    """``_records(..., ahead=True)`` (a model actor of run --executor ray): one thread makes the
    next views while the model works on a batch, and the records are those made in order."""
    import threading
    import time

    from medfm_robust_plugin.metrics.base import get_metric
    from medfm_robust_plugin.models.base import Capabilities, Generation

    job = Run(config(tmp_path, workers=0, severities=[1, 3, 5]))
    metrics = [get_metric(name) for name in job.card.metrics]
    calls: list[tuple[float, float]] = []
    made: list[tuple[float, int]] = []

    class Slow:
        name = "test:slow"
        capabilities = Capabilities(max_batch=4)

        def generate(self, items, max_new_tokens=256, temperature=0.0, system=None):
            start = time.perf_counter()
            time.sleep(0.05)
            calls.append((start, time.perf_counter()))
            return [Generation("The answer is A") for _ in items]

    def records(ahead):
        views = job.evaluation.views()
        get = views.get

        def timed_get(*args, **kwargs):
            view = get(*args, **kwargs)
            made.append((time.perf_counter(), threading.get_ident()))
            return view

        views.get = timed_get
        out = list(job._records(Slow(), metrics, views, job.work(), 4, ahead=ahead))
        return {r.key: (r.prediction, r.score, r.error, r.params, r.ssim) for r in out}

    in_order = records(False)
    calls.clear()
    made.clear()
    made_ahead = records(True)
    assert made_ahead == in_order and len(in_order) > 20
    here = threading.get_ident()
    assert all(thread != here for _, thread in made)
    during = [t for t, _ in made if any(start < t < end for start, end in calls)]
    assert len(during) >= len(calls) // 2  # views kept coming while the model worked
