"""The lmms-eval host: task YAML built at run time, the real lmms-eval on our tasks, reports.

lmms-eval runs through its own command line (``medfm-robust lmms-eval`` hands the arguments to it)
on the embedded Mini suite, its OpenAI-compatible chat model pointed at a fake server on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from medfm_robust_plugin.hosts import lm_eval
from medfm_robust_plugin.hosts.lmms_eval import generate_tasks, tasks_dir, with_include_path

from .fake_api_servers import FakeOpenAIServer

MINI = "medfm_robust_mini_vqa"
CARD = "MedFMRobust-Mini-VQA"
TASKS = [f"{MINI}_clean", f"{MINI}_gaussian_noise_s3"]
LIMIT = 5

needs_lmms_eval = pytest.mark.skipif(
    importlib.util.find_spec("lmms_eval") is None,
    reason="lmms-eval is not installed (pip install 'medfm-robust-plugin[lmms-eval]')",
)


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # lmms-eval's datasets cache
    monkeypatch.setenv("MEDFM_ROBUST_CACHE", str(tmp_path / "cache"))


def test_tasks_have_the_lm_eval_hosts_names_and_one_condition_file_each(tmp_path):
    folder = tasks_dir()
    assert folder.parent == tmp_path / "cache" / "lmms_eval_tasks"
    assert tasks_dir() == folder  # the same cards: the same folder
    files = generate_tasks()
    yaml_names = {Path(p).name for p in files if p.endswith(".yaml")}
    assert yaml_names == {Path(p).name for p in lm_eval.generate_tasks() if p.endswith(".yaml")}
    condition = json.loads((folder / MINI / f"{MINI}_gaussian_noise_s3.jsonl").read_text())
    assert condition == {"medfm_task": CARD, "medfm_condition": "gaussian_noise_s3"}
    task = json.loads(
        (folder / MINI / f"{MINI}_gaussian_noise_s3.yaml").read_text().split("\n", 1)[1]
    )
    assert task["tag"] == [f"{MINI}_s3"]
    assert task["dataset_kwargs"] == {"data_files": {"test": f"{MINI}_gaussian_noise_s3.jsonl"}}


def test_the_launcher_adds_our_folder_to_evaluations_only():
    assert with_include_path(["--model", "openai"], "/t") == [
        "--include_path",
        "/t",
        "--model",
        "openai",
    ]
    assert with_include_path(["eval", "--model", "x"], "/t")[:3] == ["eval", "--include_path", "/t"]
    assert with_include_path(["--include_path", "/mine", "--model", "x"], "/t")[1] == "/mine"
    assert with_include_path(["tasks", "list"], "/t") == ["tasks", "list"]
    assert with_include_path(["--help"], "/t") == ["--help"]


@needs_lmms_eval
def test_lmms_eval_indexes_groups_tasks_and_severity_tags():
    from lmms_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(tasks_dir()), include_defaults=False)
    names = set(manager.all_tasks)
    assert {MINI, f"{MINI}_clean", f"{MINI}_gaussian_noise", f"{MINI}_gaussian_noise_s3"} <= names
    assert f"{MINI}_s3" in manager.all_tags


def bright_or_dark(image: np.ndarray) -> str:
    """The fake model's answer: A for a bright image, B for a dark one (so answers vary)."""
    return "A" if float(image.mean()) > 60 else "B"


def expected_views():
    """(task, doc, display image) of each condition task under ``--limit LIMIT``: the documents
    of LIMIT whole samples (one of each of the five modalities)."""
    from medfm_robust_plugin.hosts.lm_eval_tasks import conditions

    for task in TASKS:
        for doc in conditions.condition_documents(CARD, task[len(MINI) + 1 :], samples=LIMIT):
            views, view = conditions.view_of(doc)
            yield task, doc, views.display(view)


@needs_lmms_eval
def test_openai_chat_model_gets_our_images_and_scores_and_report_follow(tmp_path):
    from medfm_robust_plugin.cli import main
    from medfm_robust_plugin.hosts.lm_eval_tasks.conditions import _sample

    server = FakeOpenAIServer(reply=lambda request: bright_or_dark(server.images(request)[0]))
    out = tmp_path / "out"
    with server:
        result = CliRunner().invoke(
            main,
            [
                "lmms-eval",
                "--model",
                "openai",
                "--model_args",
                f"model=fake,base_url={server.base_url},api_key=none,num_concurrent=1,"
                "max_retries=1",
                "--tasks",
                ",".join(TASKS),
                "--limit",
                str(LIMIT),
                "--log_samples",
                "--output_path",
                str(out),
            ],
            catch_exceptions=False,
        )
        received = [server.images(r) for r in server.api_requests()]
    assert result.exit_code == 0, result.output

    expected = list(expected_views())
    assert len(received) == len(expected) == 2 * LIMIT
    assert all(len(images) == 1 for images in received)
    digest = lambda a: hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()  # noqa: E731
    assert sorted(digest(images[0]) for images in received) == sorted(
        digest(image) for _, _, image in expected
    )

    correct: dict[str, list[float]] = {}
    for task, doc, image in expected:
        correct.setdefault(task, []).append(float(bright_or_dark(image) == _sample(doc).answer))
    (results_file,) = out.glob("*/*_results.json")
    results = json.loads(results_file.read_text())["results"]
    for task in TASKS:
        assert results[task]["accuracy,none"] == pytest.approx(np.mean(correct[task])), task

    from medfm_robust_plugin.report.runs import load_run

    run = load_run(out)
    assert (run.task, run.model) == (CARD, "fake")
    assert {r["host"] for r in run.records} == {"lmms-eval"} and len(run.records) == 2 * LIMIT
    rows = {
        (r["corruption"], r["severity"]): r["score"]
        for r in run.summary.rows()
        if r["scope"] == "all"
        and r["metric"] == "accuracy"
        and r["level"] in ("clean", "condition")
    }
    assert rows[(None, None)] == pytest.approx(np.mean(correct[f"{MINI}_clean"]))
    assert rows[("gaussian_noise", 3)] == pytest.approx(
        np.mean(correct[f"{MINI}_gaussian_noise_s3"])
    )

    report = CliRunner().invoke(main, ["report", str(out), "-o", str(tmp_path / "r")])
    assert report.exit_code == 0, report.output
    assert "gaussian_noise" in (tmp_path / "r" / "report.md").read_text()
    split = CliRunner().invoke(main, ["lmms-eval-records", str(out), "-o", str(tmp_path / "runs")])
    assert split.exit_code == 0, split.output
    (records,) = (tmp_path / "runs").glob("*/*/records.jsonl")
    assert len(records.read_text().splitlines()) == 2 * LIMIT


@needs_lmms_eval
def test_our_models_are_found_through_the_entry_point_manifests():
    from lmms_eval.models import get_model

    from medfm_robust_plugin.hosts.lmms_eval_models import LlavaMedLMMS, MedFMRobustLMMS

    assert get_model("medfm-robust") is MedFMRobustLMMS
    assert get_model("medfm-llava-med") is LlavaMedLMMS


@needs_lmms_eval
def test_a_tiny_random_weight_vlm_runs_through_our_manifest(tmp_path):
    pytest.importorskip("transformers")
    from medfm_robust_plugin.cli import main
    from medfm_robust_plugin.report.runs import load_run

    from .tiny_models import build_tiny_gemma3

    path = build_tiny_gemma3(tmp_path / "gemma3")
    out = tmp_path / "out"
    lite = "medfm_robust_mini_vqa_lite"
    result = CliRunner().invoke(
        main,
        [
            "lmms-eval",
            "--model",
            "medfm-robust",
            "--model_args",
            f"model=hf:{path},device=cpu,dtype=float32",
            "--tasks",
            f"{lite}_clean,{lite}_ct_metal_streaks_s3",
            "--limit",
            "2",
            "--log_samples",
            "--output_path",
            str(out),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "--limit 2: 2 samples of each MedFM-Robust task card" in result.output
    (results_file,) = out.glob("*/*_results.json")
    results = json.loads(results_file.read_text())["results"]
    run = load_run(out)
    assert (run.task, run.model) == ("MedFMRobust-Mini-VQA-Lite", f"hf:{path}")
    assert all(isinstance(r["prediction"], str) for r in run.records)
    # --limit 2: whole samples (2, and one of each modality they leave out, as lm-eval's host);
    # the CT samples of the clean task are those under the CT-only corruption: paired
    clean = [r for r in run.records if r["condition"] == "clean"]
    metal = [r for r in run.records if r["condition"] == "ct_metal_streaks_s3"]
    assert len(clean) == 5 and {r["modality"] for r in metal} == {"ct"}
    assert {r["sample_id"] for r in metal} == {
        r["sample_id"] for r in clean if r["modality"] == "ct"
    }
    for condition in ("clean", "ct_metal_streaks_s3"):
        mine = [r["score"]["accuracy"] for r in run.records if r["condition"] == condition]
        assert results[f"{lite}_{condition}"]["accuracy,none"] == pytest.approx(np.mean(mine))


@needs_lmms_eval
def test_a_failed_evaluation_is_a_failed_command(tmp_path):
    # lmms-eval's own command line logs the error and exits 0; ours says so and exits 1
    from medfm_robust_plugin.cli import main

    result = CliRunner().invoke(
        main,
        [
            "lmms-eval",
            "--model",
            "medfm-robust",
            "--model_args",
            "model=no-such-model",
            "--tasks",
            f"{MINI}_clean",
            "--limit",
            "1",
            "--output_path",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 1
    assert "1 evaluation(s) failed" in result.output and "no-such-model" in result.output


@needs_lmms_eval
def test_report_over_lmms_eval_and_our_runner_gives_the_same_summary(tmp_path):
    # the same model, items and views: lmms-eval with our model class, and our own runner
    from medfm_robust_plugin.cli import main
    from medfm_robust_plugin.models.base import load_model
    from medfm_robust_plugin.report.runs import load_run
    from medfm_robust_plugin.runner import Run, RunConfig

    lite = "medfm_robust_mini_vqa_lite"
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        [
            "lmms-eval",
            "--model",
            "medfm-robust",
            "--model_args",
            "model=baseline:majority",
            "--tasks",
            f"{lite}_clean,{lite}_gaussian_noise,{lite}_mri_bias_field",
            "--log_samples",
            "--output_path",
            str(out),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    config = RunConfig(
        task="MedFMRobust-Mini-VQA-Lite",
        model="baseline:majority",
        out=str(tmp_path / "runs"),
        corruptions=["gaussian_noise", "mri_bias_field"],
        workers=0,
    )
    run_dir = Run(config).execute(load_model("baseline:majority")).run_dir
    hosted, ours = load_run(out), load_run(run_dir)
    assert {r["host"] for r in hosted.records} == {"lmms-eval"}
    keys = sorted(r["key"] for r in ours.records)
    assert len(keys) > 10 and sorted(r["key"] for r in hosted.records) == keys
    assert hosted.summary == ours.summary
