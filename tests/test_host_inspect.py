"""The Inspect AI host: tasks built from the evaluation plan, the real `inspect eval` against a fake
OpenAI server on 127.0.0.1, and its logs read back by `medfm-robust report`.

Inspect runs offline here: its OpenAI provider is pointed at the fake server, no telemetry hook
is set, and its logs go to a temporary folder.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from medfm_robust_plugin.cli import main
from medfm_robust_plugin.lookup import get_host
from medfm_robust_plugin.plan import EvaluationPlan

from .fake_api_servers import FakeOpenAIServer, decode_png

CARD = "MedFMRobust-Mini-VQA"

needs_inspect = pytest.mark.skipif(
    importlib.util.find_spec("inspect_ai") is None,
    reason="Inspect AI is not installed (pip install 'medfm-robust-plugin[inspect]')",
)


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("INSPECT_TELEMETRY", raising=False)
    # Inspect's OpenAI provider needs a key to start; the in-process runs only reach the fake
    # server on 127.0.0.1 (model_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "dummy-key")


def digest(image: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()


def bright_or_dark(image: np.ndarray) -> str:
    """The fake model's answer: A for a bright image, B for a dark one (so answers vary)."""
    return "A" if float(image.mean()) > 60 else "B"


def test_the_host_is_registered_with_its_command_and_knows_no_other_output(tmp_path):
    host = get_host("inspect")
    assert host.extra == "inspect" and host.reads_output
    assert host.models() == {"medfm": "medfm_robust_plugin.hosts.inspect_models:MedFMModelAPI"}
    assert CARD in host.tasks()["medfm_robust/vqa"]
    assert "MedFMRobust-Mini-Caption" in host.tasks()["medfm_robust/caption"]
    assert not host.reads(tmp_path)  # an empty folder is no Inspect log folder
    (tmp_path / "notes.json").write_text("{}")
    assert not host.reads(tmp_path)
    result = CliRunner().invoke(main, ["inspect-tasks"])
    assert result.exit_code == 0, result.output
    assert "medfm_robust/grounding: " in result.output and "MedFMRobust-Grounding" in result.output


@needs_inspect
def test_each_item_of_the_plan_is_one_sample_whose_view_is_the_view_layers_png_when_it_runs():
    import asyncio

    from inspect_ai.model import ContentImage, ContentText
    from inspect_ai.solver import TaskState

    from medfm_robust_plugin.hosts.inspect_tasks import build_task, corrupted_view

    task = build_task(
        "vqa", task=CARD, corruptions="gaussian_noise,mri_bias_field", severities="1,3", limit=4
    )
    plan = EvaluationPlan.from_card(
        CARD, corruptions=["gaussian_noise", "mri_bias_field"], severities=[1, 3], limit=4
    )
    items = list(plan.items())
    samples = list(task.dataset)
    assert [s.id for s in samples] == [item.key for item in items]
    views = plan.views()
    add_view = corrupted_view()
    for sample, item in zip(samples, items):
        (prompt,) = sample.input[0].content  # the prompt; the view is made when the sample runs
        assert isinstance(prompt, ContentText)
        state = TaskState(
            model="openai/gpt-4o",
            sample_id=sample.id,
            epoch=1,
            input=sample.input,
            messages=list(sample.input),
            metadata=sample.metadata,
        )
        state = asyncio.run(add_view(state, None))
        image, text = state.messages[0].content
        assert isinstance(image, ContentImage) and text == prompt
        assert image.image.startswith("data:image/png;base64,")
        view = views.get(item.sample, item.condition, corruption=item.spec)
        assert np.array_equal(decode_png(image.image), views.display(view))
        assert sample.metadata["key"] == item.key
        assert sample.metadata["condition"] == item.condition.key
        assert sample.metadata["severity"] == item.condition.severity
        assert sample.metadata["modality"] == item.sample.modality
        assert sample.target == item.sample.answer
    conditions = {s.metadata["condition"] for s in samples}
    assert conditions == {"clean", "gaussian_noise_s1", "gaussian_noise_s3"} | (
        {"mri_bias_field_s1", "mri_bias_field_s3"} if "mri_bias_field_s1" in conditions else set()
    )


@needs_inspect
def test_a_card_of_another_kind_or_an_unknown_corruption_is_refused_with_what_to_run():
    from medfm_robust_plugin.errors import TaskError
    from medfm_robust_plugin.hosts.inspect_tasks import build_plan

    with pytest.raises(TaskError, match="medfm_robust/caption"):
        build_plan("vqa", task="MedFMRobust-Mini-Caption")
    with pytest.raises(TaskError, match="no_such_blur"):
        build_plan("vqa", task=CARD, corruptions="no_such_blur")
    with pytest.raises(TaskError, match="mode"):
        build_plan("vqa", task=CARD, mode="psnr")
    plan = build_plan("vqa", task=CARD, mode="ssim", severities=2, limit=1)
    assert (plan.mode, plan.levels, len(plan.samples())) == ("ssim", (2,), 1)


def inspect_eval(
    args: list[str], server: FakeOpenAIServer, log_dir: Path, command: str = "eval"
) -> str:
    """Inspect's own command line, in a process of its own, offline but for the fake server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INSPECT_", "OPENAI_"))}
    env.update(
        OPENAI_BASE_URL=server.base_url,
        OPENAI_API_KEY="dummy-key",
        INSPECT_LOG_DIR=str(log_dir),
        HF_HUB_OFFLINE="1",
        NO_PROXY="127.0.0.1",
    )
    line = [str(Path(sys.executable).parent / "inspect"), command, *args, "--display", "plain"]
    result = subprocess.run(line, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


@needs_inspect
def test_inspect_eval_sends_our_images_and_scores_and_reports_what_the_answers_imply(tmp_path):
    server = FakeOpenAIServer(reply=lambda request: bright_or_dark(server.images(request)[0]))
    logs = tmp_path / "logs"
    with server:
        inspect_eval(
            [
                "medfm_robust/vqa",
                "-T",
                f"task={CARD}",
                "-T",
                "corruptions=gaussian_noise",
                "-T",
                "severities=3",
                "-T",
                "limit=5",
                "--model",
                "openai/gpt-4o",
            ],
            server,
            logs,
        )
        received = [server.images(r) for r in server.api_requests()]
        assert all(r.json["model"] == "gpt-4o" for r in server.api_requests())

    plan = EvaluationPlan.from_card(CARD, corruptions=["gaussian_noise"], severities=[3], limit=5)
    views = plan.views()
    expected = {}  # key -> (display image, whether the fake model's answer is right)
    for item in plan.items():
        image = views.display(views.get(item.sample, item.condition, corruption=item.spec))
        expected[item.key] = (image, bright_or_dark(image) == item.sample.answer)
    assert len(expected) == 10  # 5 samples, clean and under gaussian_noise at severity 3
    assert all(len(images) == 1 for images in received)
    assert sorted(digest(images[0]) for images in received) == sorted(
        digest(image) for image, _ in expected.values()
    )

    from inspect_ai.log import read_eval_log

    (log_file,) = logs.glob("*.eval")
    log = read_eval_log(str(log_file))
    assert log.status == "success" and log.eval.task == "medfm_robust/vqa"
    for sample in log.samples:
        right = expected[sample.id][1]
        assert sample.scores["card_score"].value == {"accuracy": float(right)}
    metrics = log.results.scores[0].metrics
    accuracy = lambda keys: np.mean([expected[k][1] for k in keys])  # noqa: E731
    assert metrics["accuracy"].value == pytest.approx(accuracy(expected))
    clean = [k for k in expected if k.endswith("/clean")]
    assert metrics["accuracy@clean"].value == pytest.approx(accuracy(clean))

    # our report reads Inspect's log folder and finds the same numbers
    from medfm_robust_plugin.report.runs import load_run

    run = load_run(logs)
    assert (run.task, run.model) == (CARD, "openai/gpt-4o")
    assert {r["key"] for r in run.records} == set(expected)
    assert all(r["host"] == "inspect" and r["tokens"]["input"] > 0 for r in run.records)
    rows = {
        (r["corruption"], r["severity"]): r["score"]
        for r in run.summary.rows()
        if r["scope"] == "all"
        and r["metric"] == "accuracy"
        and r["level"] in ("clean", "condition")
    }
    assert rows[(None, None)] == pytest.approx(accuracy(clean))
    noisy = [k for k in expected if k.endswith("/gaussian_noise_s3")]
    assert rows[("gaussian_noise", 3)] == pytest.approx(accuracy(noisy))
    report = CliRunner().invoke(main, ["report", str(logs), "-o", str(tmp_path / "r")])
    assert report.exit_code == 0, report.output
    assert "gaussian_noise" in (tmp_path / "r" / "report.md").read_text()


@needs_inspect
def test_caption_scores_are_our_corpus_metrics_over_the_logged_states(tmp_path):
    from inspect_ai import eval as inspect_run

    from medfm_robust_plugin.hosts.inspect_tasks import build_task
    from medfm_robust_plugin.metrics.base import get_metric
    from medfm_robust_plugin.report.runs import load_run

    server = FakeOpenAIServer(reply="An axial CT image of the abdomen with a bright round lesion.")
    card = "MedFMRobust-Mini-Caption"
    task = build_task("caption", task=card, corruptions="gaussian_noise", severities="5", limit=3)
    with server:
        (log,) = inspect_run(
            task,
            model="openai/gpt-4o",
            model_base_url=server.base_url,
            log_dir=str(tmp_path / "logs"),
            display="none",
        )
    assert log.status == "success"
    metrics = log.results.scores[0].metrics
    run = load_run(tmp_path / "logs")
    for name in ("bleu", "rouge_l", "cider"):
        states = [r["state"][name] for r in run.records]
        assert metrics[name].value == pytest.approx(get_metric(name).summarize(states))
        clean = [r["state"][name] for r in run.records if r["condition"] == "clean"]
        assert metrics[f"{name}@clean"].value == pytest.approx(get_metric(name).summarize(clean))
    assert {r["condition"] for r in run.records} == {"clean", "gaussian_noise_s5"}


@needs_inspect
def test_a_tiny_gemma3_answers_through_our_model_provider(tmp_path):
    pytest.importorskip("transformers")
    from inspect_ai import eval as inspect_run

    from medfm_robust_plugin.hosts.inspect_tasks import build_task

    from .tiny_models import build_tiny_gemma3

    path = build_tiny_gemma3(tmp_path / "gemma3")
    task = build_task("vqa", task=CARD, corruptions="gaussian_noise", severities="1", limit=2)
    (log,) = inspect_run(
        task,
        model="medfm/medgemma",
        model_args={"model_id": str(path), "device": "cpu"},  # -M model_id=... on the CLI
        max_tokens=3,
        log_dir=str(tmp_path / "logs"),
        display="none",
    )
    assert log.status == "success", log.error
    assert log.eval.model == "medfm/medgemma"
    assert len(log.samples) == 4 and all(s.error is None for s in log.samples)
    assert all(s.model_usage[log.eval.model].input_tokens > 0 for s in log.samples)
    assert all("accuracy" in s.scores["card_score"].value for s in log.samples)


def test_the_command_line_does_not_import_inspect():
    code = (
        "import sys\n"
        "from medfm_robust_plugin.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('imported:', 'inspect_ai' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "inspect-tasks" in done.stdout and done.stdout.strip().endswith("imported: False")


@needs_inspect
def test_report_over_inspect_and_our_runner_gives_the_same_summary(tmp_path):
    # the same model, items and views: Inspect with our model provider, and our own runner
    from inspect_ai import eval as inspect_run

    from medfm_robust_plugin.hosts.inspect_tasks import build_task
    from medfm_robust_plugin.models.base import load_model
    from medfm_robust_plugin.report.runs import load_run
    from medfm_robust_plugin.runner import Run, RunConfig

    card, corruptions = "MedFMRobust-Mini-VQA-Lite", ["gaussian_noise", "mri_bias_field"]
    task = build_task("vqa", task=card, corruptions=",".join(corruptions))
    (log,) = inspect_run(
        task, model="medfm/baseline:majority", log_dir=str(tmp_path / "logs"), display="none"
    )
    assert log.status == "success", log.error
    config = RunConfig(
        task=card,
        model="baseline:majority",
        out=str(tmp_path / "runs"),
        corruptions=corruptions,
        workers=0,
    )
    run_dir = Run(config).execute(load_model("baseline:majority")).run_dir
    hosted, ours = load_run(tmp_path / "logs"), load_run(run_dir)
    assert {r["host"] for r in hosted.records} == {"inspect"}
    keys = sorted(r["key"] for r in ours.records)
    assert len(keys) > 10 and sorted(r["key"] for r in hosted.records) == keys
    assert hosted.summary == ours.summary


@needs_inspect
def test_a_sample_inspect_could_not_answer_is_a_failed_record_naming_the_cause(tmp_path):
    from inspect_ai import eval as inspect_run

    from medfm_robust_plugin.hosts.inspect_results import read_logs
    from medfm_robust_plugin.hosts.inspect_tasks import build_task

    server = FakeOpenAIServer(reply="A")
    task = build_task("vqa", task=CARD, corruptions="gaussian_noise", severities="1", limit=2)
    with server:
        server.fail_next(400)  # a bad request is not retried: the first item fails
        (log,) = inspect_run(
            task,
            model="openai/gpt-4o",
            model_base_url=server.base_url,
            log_dir=str(tmp_path / "logs"),
            display="none",
            fail_on_error=False,
            max_connections=1,
        )
    (records,) = read_logs(tmp_path / "logs").values()
    failed = [r for r in records if r["error"]]
    assert len(records) == 4 and len(failed) == 1
    assert "400" in failed[0]["error"] and "messages" not in failed[0]["error"]
    assert failed[0]["score"] == {} and all(r["score"] for r in records if not r["error"])


@needs_inspect
def test_eval_retry_finds_our_task_by_its_logged_name_and_the_report_takes_the_retried_items(
    tmp_path,
):
    from medfm_robust_plugin.report.runs import load_run

    server = FakeOpenAIServer(reply="A")
    logs = tmp_path / "logs"
    options = ["-T", f"task={CARD}", "-T", "corruptions=gaussian_noise", "-T", "severities=3"]
    with server:
        server.fail_always(400)  # every item fails: the log is an error log
        inspect_eval(
            ["medfm_robust/vqa", *options, "-T", "limit=2", "--model", "openai/gpt-4o"],
            server,
            logs,
        )
        server.fail_always(None)
        (failed,) = logs.glob("*.eval")
        inspect_eval([str(failed)], server, logs, command="eval-retry")
    assert len(list(logs.glob("*.eval"))) == 2
    run = load_run(logs)
    assert len(run.records) == 4 and not [r for r in run.records if r["error"]]
