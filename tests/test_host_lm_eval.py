"""The lm-evaluation-harness host: task YAML built at run time, the real lm-eval on our tasks, reports.

lm-eval runs through its own command line (``medfm-robust lm-eval`` hands the arguments to it) on
the embedded Mini suite: against a fake OpenAI server on 127.0.0.1 (``local-chat-completions``), on
a tiny random-weight LLaVA (``hf-multimodal``) and on our own registered model class.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from medfm_robust_plugin.hosts.lm_eval import (
    card_corruptions,
    generate_tasks,
    host_cards,
    task_prefix,
    tasks_dir,
)

from .fake_api_servers import FakeOpenAIServer
from .plugin_helpers import add_entry_point_plugin

LITE = "medfm_robust_mini_vqa_lite"
CARD = "MedFMRobust-Mini-VQA-Lite"


def test_task_folder_is_built_from_the_registry_once_per_card_set(tmp_path):
    first = tasks_dir(root=tmp_path)
    files = generate_tasks()
    on_disk = {
        path.relative_to(first).as_posix(): path.read_text(encoding="utf-8")
        for path in first.glob("medfm_robust*/*")
    }
    assert on_disk == files
    stamp = (first / "medfm_robust_vqa" / "medfm_robust_vqa_clean.yaml").stat().st_mtime_ns
    assert tasks_dir(root=tmp_path) == first  # the same cards: the same folder, not rewritten
    assert (first / "medfm_robust_vqa" / "medfm_robust_vqa_clean.yaml").stat().st_mtime_ns == stamp
    fewer = [c for c in host_cards() if "Mini" in c.name]
    other = tasks_dir(fewer, root=tmp_path)
    assert other != first and other.parent == first.parent
    assert sorted(p.name for p in other.iterdir()) == sorted(task_prefix(c.name) for c in fewer)
    assert not list(tmp_path.glob(".*partial"))


def test_no_generated_task_file_is_kept_in_the_package():
    import medfm_robust_plugin.hosts as hosts

    folder = Path(hosts.__file__).parent
    assert not [p for p in folder.rglob("*") if p.name.endswith(("yaml", "yml"))]


def test_every_language_task_card_has_a_group_and_the_mini_grid_is_complete():
    from medfm_robust_plugin.tasks import get_task

    prefixes = {task_prefix(card.name) for card in host_cards()}
    assert {"medfm_robust_vqa", "medfm_robust_mini_vqa", "medfm_robust_report"} <= prefixes
    assert not any("seg" in prefix for prefix in prefixes)  # segmenters do not generate text
    card = get_task(CARD)
    corruptions = card_corruptions(card)
    modalities = {s.modality for s in card.load().samples}
    expected = {s.name for m in modalities for s in card.corruptions_for(m)}
    assert set(corruptions) == expected
    files = generate_tasks([card])
    tasks = [k for k in files if k.endswith(".yaml")]
    # clean + a task per condition + a group per corruption + the card's group
    assert len(tasks) == 1 + len(corruptions) * len(card.severities) + len(corruptions) + 1


def test_the_launcher_takes_limit_as_whole_samples_of_our_cards():
    from medfm_robust_plugin.hosts.lm_eval import whole_sample_limit

    ours = ["--model", "m", "--tasks", f"{LITE},{LITE}_clean"]
    for limit in (["--limit", "3"], ["-L", "3"], ["--limit=3"], ["--limit", "3.0"]):
        args, samples, note = whole_sample_limit([*ours, *limit, "--log_samples"])
        assert (args, samples) == ([*ours, "--log_samples"], 3) and "3 samples" in note
    args, samples, _ = whole_sample_limit(["-t", LITE, "medfm_robust_vqa_s1", "-L", "0.25"])
    assert (args, samples) == (["-t", LITE, "medfm_robust_vqa_s1"], 0.25)
    # beside one of lm-eval's own tasks lm-eval's limit stays (for it, and so for ours too)
    mixed = ["--tasks", f"{LITE},mmmu_val", "--limit", "3"]
    args, samples, note = whole_sample_limit(mixed)
    assert (args, samples) == (mixed, 3) and "Run the MedFM-Robust tasks apart" in note
    assert whole_sample_limit(["--tasks", "mmmu_val", "--limit", "3"])[1:] == (None, None)
    assert whole_sample_limit(["--tasks", LITE])[1:] == (None, None)


needs_lm_eval = pytest.mark.skipif(
    importlib.util.find_spec("lm_eval") is None,
    reason="lm-eval is not installed (pip install 'medfm-robust-plugin[lm-eval]')",
)


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def run_lm_eval(args: list[str]) -> Any:
    from medfm_robust_plugin.cli import main

    result = CliRunner().invoke(main, ["lm-eval", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def results_of(out: Path) -> dict:
    (path,) = sorted(out.glob("*/results_*.json"))[-1:]
    return json.loads(path.read_text())["results"]


@needs_lm_eval
def test_index_has_groups_subgroups_tasks_and_severity_tags():
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(tasks_dir()))
    names = set(manager.all_tasks)
    assert {LITE, f"{LITE}_clean", f"{LITE}_gaussian_noise", f"{LITE}_gaussian_noise_s3"} <= names
    assert f"{LITE}_s3" in manager.all_tags
    tagged = set(manager.load([f"{LITE}_s5"])["tasks"])
    assert {f"{LITE}_gaussian_noise_s5", f"{LITE}_ct_metal_streaks_s5"} <= tagged
    assert not any(name.endswith(("_s1", "_s3", "_clean")) for name in tagged)
    # a group and a tag that share tasks cannot be combined in one run (docs/lm_eval.md says so)
    with pytest.raises(ValueError, match="Duplicate task"):
        manager.load([f"{LITE}_gaussian_noise", f"{LITE}_s5"])


def expected_views(task_names: list[str], limit: int):
    """(task name, doc, display image) of each condition task under ``--limit limit``: the
    documents of ``limit`` whole samples of the card."""
    from medfm_robust_plugin.hosts.lm_eval_tasks import conditions

    for name in task_names:
        condition = name[len(LITE) + 1 :]
        docs = conditions.load_condition(CARD, condition, samples=limit)["test"]
        for doc in docs:
            views, view = conditions.view_of(doc)
            yield name, doc, views.display(view)


def bright_or_dark(image: np.ndarray) -> str:
    """The fake model's answer: A for a bright image, B for a dark one (so answers vary)."""
    return "A" if float(image.mean()) > 60 else "B"


@needs_lm_eval
def test_chat_completions_get_our_corrupted_images_and_groups_aggregate_known_answers(tmp_path):
    server = FakeOpenAIServer(reply=lambda request: bright_or_dark(server.images(request)[0]))
    tasks = [f"{LITE}_clean", f"{LITE}_gaussian_noise", f"{LITE}_mri_bias_field"]
    limit = 3
    with server:
        run_lm_eval(
            [
                "--model",
                "local-chat-completions",
                "--model_args",
                f"model=fake,base_url={server.base_url}/chat/completions,num_concurrent=1,"
                "max_retries=1,tokenized_requests=False",
                "--apply_chat_template",
                "--tasks",
                ",".join(tasks),
                "--limit",
                str(limit),
                "--log_samples",
                "--output_path",
                str(tmp_path / "out"),
            ]
        )
        received = [server.images(r) for r in server.api_requests()]
    assert all(len(images) == 1 for images in received)
    conditions = [f"{LITE}_clean"] + [
        f"{LITE}_{c}_s{k}" for c in ("gaussian_noise", "mri_bias_field") for k in (1, 3, 5)
    ]
    expected = list(expected_views(conditions, limit))
    # every condition holds samples of the clean task: each drop is measured on the same samples
    by_task: dict[str, set] = {}
    for name, doc, _ in expected:
        by_task.setdefault(name, set()).add(doc["sample_id"])
    assert all(ids <= by_task[f"{LITE}_clean"] for ids in by_task.values())
    assert by_task[f"{LITE}_mri_bias_field_s5"]
    digest = lambda a: hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()  # noqa: E731
    assert sorted(digest(images[0]) for images in received) == sorted(
        digest(image) for _, _, image in expected
    )

    from medfm_robust_plugin.hosts.lm_eval_tasks.conditions import _sample

    correct: dict[str, list[float]] = {}
    for name, doc, image in expected:
        correct.setdefault(name, []).append(float(bright_or_dark(image) == _sample(doc).answer))
    results = results_of(tmp_path / "out")
    for name, values in correct.items():
        assert results[name]["accuracy,none"] == pytest.approx(np.mean(values)), name
    for corruption in ("gaussian_noise", "mri_bias_field"):
        levels = [correct[f"{LITE}_{corruption}_s{k}"] for k in (1, 3, 5)]
        group = results[f"{LITE}_{corruption}"]["accuracy,none"]
        assert group == pytest.approx(np.mean([v for level in levels for v in level]))

    # our report reads lm-eval's output and finds the same numbers
    from medfm_robust_plugin.report.runs import load_run

    run = load_run(tmp_path / "out")
    assert (run.task, run.model) == (CARD, "fake")
    rows = {
        (r["corruption"], r["severity"]): r
        for r in run.summary.rows()
        if r["scope"] == "all"
        and r["metric"] == "accuracy"
        and r["level"] in ("clean", "condition")
    }
    assert rows[(None, None)]["score"] == pytest.approx(np.mean(correct[f"{LITE}_clean"]))
    assert rows[("mri_bias_field", 5)]["score"] == pytest.approx(
        np.mean(correct[f"{LITE}_mri_bias_field_s5"])
    )
    from medfm_robust_plugin.cli import main

    report = CliRunner().invoke(main, ["report", str(tmp_path / "out"), "-o", str(tmp_path / "r")])
    assert report.exit_code == 0, report.output
    assert "mri_bias_field" in (tmp_path / "r" / "report.md").read_text()


@needs_lm_eval
def test_limit_takes_whole_paired_samples_as_the_docs_quick_test_runs_it(tmp_path):
    # docs/lm_eval.md: an API model on the Mini card, --limit 3 for a quick test; the model
    # always answers "A", so no condition may show a drop that only a change of samples made
    from medfm_robust_plugin.cli import main
    from medfm_robust_plugin.hosts.lm_eval_results import single_run
    from medfm_robust_plugin.plan import EvaluationPlan

    with FakeOpenAIServer(reply="A") as server:
        result = run_lm_eval(
            [
                "--model",
                "local-chat-completions",
                "--apply_chat_template",
                "--model_args",
                f"model=gpt-4o,base_url={server.base_url}/chat/completions,num_concurrent=4,"
                "max_retries=1,tokenized_requests=False",
                "--tasks",
                LITE,
                "--limit",
                "3",
                "--log_samples",
                "--output_path",
                str(tmp_path / "out"),
            ]
        )
    assert "--limit 3: 3 samples of each MedFM-Robust task card" in result.stderr
    records, _ = single_run(tmp_path / "out")
    clean = {r["sample_id"] for r in records if r["condition"] == "clean"}
    # the runner's 3 samples, and one of each modality they leave out (no task may be empty)
    chosen = {s.id for s in EvaluationPlan.from_card(CARD, limit=3).samples()}
    assert chosen < clean and len(clean) == 5
    assert {r["modality"] for r in records} == {"ct", "mri", "xray", "dermoscopy", "endoscopy"}
    assert all(r["sample_id"] in clean for r in records)
    # each sample under every condition of its suite
    card = EvaluationPlan.from_card(CARD).card
    for sample_id in clean:
        mine = [r for r in records if r["sample_id"] == sample_id]
        suite = card.corruptions_for(mine[0]["modality"])
        assert len(mine) == 1 + len(suite) * len(card.severities)

    report = CliRunner().invoke(main, ["report", str(tmp_path / "out"), "-o", str(tmp_path / "r")])
    assert report.exit_code == 0, report.output
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    conditions = [c for run in summary["runs"] for c in run["summary"]["conditions"]]
    assert conditions and all(c["n_paired"] == c["n"] > 0 for c in conditions)
    assert all(c["absolute_drop"]["accuracy"] == 0 for c in conditions)
    # lm-eval's gpt-4o is the model our runner calls openai:gpt-4o: one report row, one folder
    assert [r["model"] for r in summary["runs"]] == ["openai:gpt-4o"]
    runs = str(tmp_path / "runs")
    split = CliRunner().invoke(main, ["lm-eval-records", str(tmp_path / "out"), "-o", runs])
    assert split.exit_code == 0 and split.output.strip().endswith("openai_gpt-4o"), split.output


@needs_lm_eval
def test_severity_tag_runs_every_corruption_at_that_level_with_our_model_class(tmp_path):
    # baseline:majority answers the most common option letter; its answers are known per sample
    run_lm_eval(
        [
            "--model",
            "medfm-robust",
            "--model_args",
            "model=baseline:majority",
            "--tasks",
            f"{LITE}_s5",
            "--limit",
            "2",
            "--log_samples",
            "--output_path",
            str(tmp_path / "out"),
        ]
    )
    from medfm_robust_plugin.hosts.lm_eval_results import read_output
    from medfm_robust_plugin.tasks import get_task

    results = results_of(tmp_path / "out")
    card = get_task(CARD)
    assert {n for n in results} == {f"{LITE}_{c}_s5" for c in card_corruptions(card)}
    ((task, model), records), *others = read_output(tmp_path / "out").items()
    assert not others and (task, model) == (CARD, "baseline:majority")
    assert {r["severity"] for r in records} == {5}
    for name, values in results.items():
        mine = [r["score"]["accuracy"] for r in records if f"{LITE}_{r['condition']}" == name]
        assert values["accuracy,none"] == pytest.approx(np.mean(mine))


@needs_lm_eval
def test_hf_multimodal_runs_a_tiny_llava_on_the_mini_suite(tmp_path):
    pytest.importorskip("transformers")
    from .tiny_models import LLAVA_CHAT_TEMPLATE, build_tiny_llava

    path = build_tiny_llava(tmp_path / "llava", chat_template=LLAVA_CHAT_TEMPLATE)
    run_lm_eval(
        [
            "--model",
            "hf-multimodal",
            "--model_args",
            f"pretrained={path},dtype=float32,max_images=1",
            "--device",
            "cpu",
            "--tasks",
            f"{LITE}_clean,{LITE}_ct_metal_streaks",
            "--limit",
            "2",
            "--gen_kwargs",
            "max_gen_toks=4",
            "--log_samples",
            "--output_path",
            str(tmp_path / "out"),
        ]
    )
    results = results_of(tmp_path / "out")
    assert 0.0 <= results[f"{LITE}_ct_metal_streaks"]["accuracy,none"] <= 1.0

    def logged(condition: str) -> list[dict]:
        return [
            json.loads(line)
            for file in (tmp_path / "out").glob(f"*/samples_*{condition}*.jsonl")
            for line in file.read_text().splitlines()
        ]

    metal = logged("ct_metal_streaks_s3")
    assert metal and all(s["doc"]["condition"] == "ct_metal_streaks_s3" for s in metal)
    assert all(s["doc"]["modality"] == "ct" for s in metal)  # only the CT suite has it
    # --limit 2: whole samples; the CT ones among the clean task's are the metal streaks' ones
    clean_ct = {s["doc"]["sample_id"] for s in logged("clean") if s["doc"]["modality"] == "ct"}
    assert {s["doc"]["sample_id"] for s in metal} == clean_ct


@needs_lm_eval
def test_lm_eval_and_our_runner_give_the_same_records_and_summary(tmp_path):
    from medfm_robust_plugin.hosts.lm_eval_results import single_run
    from medfm_robust_plugin.models.base import load_model
    from medfm_robust_plugin.report.runs import load_run
    from medfm_robust_plugin.runner import Run, RunConfig, latest_records

    run_lm_eval(
        [
            "--model",
            "medfm-robust",
            "--model_args",
            "model=baseline:majority",
            "--tasks",
            f"{LITE}_clean,{LITE}_gaussian_noise,{LITE}_xray_scatter",
            "--log_samples",
            "--output_path",
            str(tmp_path / "out"),
        ]
    )
    config = RunConfig(
        task=CARD,
        model="baseline:majority",
        out=str(tmp_path / "runs"),
        corruptions=["gaussian_noise", "xray_scatter"],
    )
    native = Run(config).execute(load_model("baseline:majority")).run_dir
    ours = {r["key"]: r for r in latest_records(native)}
    theirs = {r["key"]: r for r in single_run(tmp_path / "out")[0]}
    assert ours.keys() == theirs.keys() and len(ours) == 40 + 3 * 40 + 3 * 8
    fields = ("condition", "family", "seed", "prediction", "state", "score")
    for key, record in ours.items():
        assert {f: theirs[key][f] for f in fields} == {f: record[f] for f in fields}, key
    assert load_run(tmp_path / "out").summary.rows() == load_run(native).summary.rows()


@needs_lm_eval
def test_a_downloaded_dataset_is_read_from_the_metadata_data_root(tmp_path, monkeypatch):
    from .fixtures_datasets import make_omnimedvqa

    monkeypatch.delenv("MEDFM_ROBUST_DATA", raising=False)
    root = make_omnimedvqa(tmp_path)
    run_lm_eval(
        [
            "--model",
            "medfm-robust",
            "--model_args",
            "model=baseline:majority",
            "--tasks",
            "medfm_robust_vqa_lite_clean",
            "--metadata",
            f"data_root={root}",
            "--log_samples",
            "--output_path",
            str(tmp_path / "out"),
        ]
    )
    results = results_of(tmp_path / "out")
    assert results["medfm_robust_vqa_lite_clean"]["sample_len"] > 0


@needs_lm_eval
def test_our_medgemma_class_runs_a_tiny_gemma3_checkpoint(tmp_path):
    pytest.importorskip("transformers")
    from .tiny_models import build_tiny_gemma3

    path = build_tiny_gemma3(tmp_path / "gemma3")
    run_lm_eval(
        [
            "--model",
            "medfm-medgemma",
            "--model_args",
            f"pretrained={path}",  # lm-eval's default --device cuda:0 falls back without a GPU
            "--tasks",
            f"{LITE}_clean",
            "--limit",
            "2",
            "--gen_kwargs",
            "max_gen_toks=3",
            "--output_path",
            str(tmp_path / "out"),
        ]
    )
    from medfm_robust_plugin.hosts.lm_eval_tasks.conditions import paired_samples
    from medfm_robust_plugin.tasks import get_task

    expected = len(paired_samples(get_task(CARD), None, 2))  # 2, and one of each other modality
    assert results_of(tmp_path / "out")[f"{LITE}_clean"]["sample_len"] == expected


LAB_PLUGIN = """
import dataclasses

from medfm_robust_plugin import hookimpl
from medfm_robust_plugin.resources import bundled_files
from medfm_robust_plugin.tasks import Sampling, load_card_file


@hookimpl
def register_tasks(register):
    (path,) = [p for p in bundled_files("tasks") if p.name == "MedFMRobust-Mini-VQA.yaml"]
    base = next(c for c in load_card_file(path) if c.name == "MedFMRobust-Mini-VQA")
    register(
        dataclasses.replace(
            base,
            name="Lab-CT-VQA",
            severities=(2,),
            corruptions=("gaussian_noise", "ct_ring_artifact"),
            sampling=Sampling(per_group=2, seed=0),
        )
    )
"""


@needs_lm_eval
def test_a_plugin_task_card_runs_through_lm_eval(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDFM_ROBUST_CACHE", str(tmp_path / "cache"))
    add_entry_point_plugin(tmp_path / "site", "lab", "lab_tasks_plugin", LAB_PLUGIN)
    from medfm_robust_plugin.tasks import get_task

    card = get_task("Lab-CT-VQA")
    assert task_prefix(card.name) in {task_prefix(c.name) for c in host_cards()}
    run_lm_eval(
        [
            "--model",
            "medfm-robust",
            "--model_args",
            "model=baseline:majority",
            "--tasks",
            "lab_ct_vqa",
            "--log_samples",
            "--output_path",
            str(tmp_path / "out"),
        ]
    )
    results = results_of(tmp_path / "out")
    expected = {
        "lab_ct_vqa_clean",
        "lab_ct_vqa_gaussian_noise_s2",
        "lab_ct_vqa_ct_ring_artifact_s2",
    }
    assert expected <= set(results)
    assert not [n for n in results if n.endswith(("_s1", "_s3"))]
    # its folder is the one the command printed, in the cache the environment names
    assert tasks_dir().parent == tmp_path / "cache" / "lm_eval_tasks"
    from medfm_robust_plugin.hosts.lm_eval_results import read_output

    ((task, model), records), *others = read_output(tmp_path / "out").items()
    assert not others and (task, model) == ("Lab-CT-VQA", "baseline:majority")
    ct_ring = [r for r in records if r["corruption"] == "ct_ring_artifact"]
    assert ct_ring and {r["modality"] for r in ct_ring} == {"ct"}
    assert {r["severity"] for r in records if r["corruption"]} == {2}
