"""The VLMEvalKit host, through the real VLMEvalKit (``ms-vlmeval``) and its own run.py.

Each end-to-end test runs the ``vlmeval`` console script once (importing VLMEvalKit takes ~12 s)
and checks everything that run shows: the images an API model received, the result files, the
printed table. Nothing leaves 127.0.0.1 and nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from .fake_api_servers import LOOPBACK, FakeOpenAIServer

HAS_VLMEVAL = importlib.util.find_spec("vlmeval") is not None
needs_vlmeval = pytest.mark.skipif(
    not HAS_VLMEVAL, reason="VLMEvalKit is not installed (pip install ms-vlmeval)"
)
VLMEVAL_SCRIPT = Path(sys.executable).parent / "vlmeval"
LIMIT = 12  # rows per dataset: the first sample, clean and its first 11 corrupted conditions
VQA = "MedFMRobust-Mini-VQA"


def offline_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "GOOGLE_"))}
    (tmp / "LMUData").mkdir(exist_ok=True)
    env.update(
        LMUData=str(tmp / "LMUData"),  # VLMEvalKit's data root (images it dumps go there)
        HOME=str(tmp),  # nothing lands in the real home directory
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        NO_PROXY=LOOPBACK,
        no_proxy=LOOPBACK,
        PYTHONPATH=str(Path(__file__).resolve().parents[1]),
    )
    env.update(extra)
    return env


def run_vlmeval(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(VLMEVAL_SCRIPT), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def expected_vqa_views() -> dict[str, tuple[np.ndarray, str]]:
    """What the view layer makes for the first LIMIT rows of the VQA card: condition -> (display
    image, correct option letter), computed here without the host."""
    from medfm_robust_plugin.tasks import get_task
    from medfm_robust_plugin.views import CorruptedViews

    card = get_task(VQA)
    sample = card.load().samples[0]
    specs = {s.name: s for s in card.corruptions_for(sample.modality)}
    views = CorruptedViews(global_seed=0, mode=card.severity_mode)
    expected = {}
    for condition in card.conditions_for(sample.modality)[:LIMIT]:
        spec = specs.get(condition.corruption)
        view = views.get(sample, condition, corruption=spec)
        expected[condition.key] = (views.display(view).astype(np.float32), sample.answer)
    return expected


def nearest(image: np.ndarray, expected: dict[str, tuple[np.ndarray, str]]) -> tuple[str, float]:
    errors = {
        key: float(np.abs(image.astype(np.float32) - ref).mean())
        for key, (ref, _) in expected.items()
        if ref.shape == image.shape
    }
    key = min(errors, key=errors.get)
    return key, errors[key]


def wrong_letter(right: str) -> str:
    return "B" if right != "B" else "C"


# --------------------------------------------------------------------------- API model run


@pytest.fixture(scope="module")
def api_run(tmp_path_factory):
    """One run: the Mini VQA, grounding and caption datasets and a robustified custom TSV, with
    ``gpt-4o`` against a fake OpenAI server that answers right on clean images only."""
    tmp = tmp_path_factory.mktemp("vlmeval_api")
    expected = expected_vqa_views()
    write_custom_mcq(tmp / "LMUData" / "TinyMedMCQ.tsv")

    def reply(request) -> str:
        prompt = server.prompt(request)
        images = server.images(request)
        if "bounding box" in prompt:
            return "[40, 40, 120, 120]"
        if "caption" in prompt:
            return "Axial CT slice of the abdomen with one small hypodense lesion on the left."
        if not images or "Options" not in prompt or "What colour" in prompt:
            return "A"
        key, _ = nearest(images[0], expected)
        answer = expected[key][1]
        return answer if key == "clean" else wrong_letter(answer)

    server = FakeOpenAIServer(reply=reply)
    with server:
        env = offline_env(
            tmp,
            OPENAI_API_KEY="sk-test",
            OPENAI_API_BASE=f"{server.base_url}/chat/completions",
        )
        datasets = [VQA, "MedFMRobust-Mini-Grounding", "MedFMRobust-Mini-Caption"]
        args = ["--data", *datasets, "TinyMedMCQ-MedFMRobust", "--model", "gpt-4o"]
        args += ["--limit", str(LIMIT), "--work-dir", str(tmp / "outputs"), "--api-nproc", "2"]
        result = run_vlmeval(args, env, tmp)
        requests = list(server.api_requests())
    return {
        "tmp": tmp,
        "out": tmp / "outputs" / "gpt-4o",
        "result": result,
        "requests": requests,
        "server": server,
        "expected": expected,
    }


def write_custom_mcq(path: Path) -> None:
    """A two-question custom MCQ TSV in VLMEvalKit's layout (base64 PNG images)."""
    import base64
    import io

    import pandas as pd
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, colour in enumerate(((200, 30, 30), (30, 30, 200))):
        image = np.full((64, 64, 3), 40, np.uint8)
        image[16:48, 16:48] = colour
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        rows.append(
            {
                "index": index,
                "image": base64.b64encode(buffer.getvalue()).decode(),
                "question": "What colour is the square?",
                "A": "red" if index == 0 else "blue",
                "B": "green",
                "answer": "A",
            }
        )
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)


@needs_vlmeval
def test_gpt4o_sees_the_corrupted_views_and_results_carry_the_drops(api_run):
    server, expected = api_run["server"], api_run["expected"]
    vqa_requests = [
        r
        for r in api_run["requests"]
        if server.images(r) and "Please select the correct answer." in server.prompt(r)
    ]
    assert len(vqa_requests) == LIMIT
    matched = {}
    for request in vqa_requests:
        (image,) = server.images(request)
        key, error = nearest(image, expected)
        matched[key] = error
    # every row's own view arrived (GPT4V re-encodes as JPEG: small differences, never another view;
    # noise over the whole presented slice, air included, is what JPEG loses most of)
    assert set(matched) == set(expected)
    assert max(matched.values()) < 8.0, matched

    out = api_run["out"]
    summary = json.loads((out / f"gpt-4o_{VQA}_medfm_robust.json").read_text())
    assert summary["clean"]["scores"]["accuracy"] == 1.0
    assert summary["scoring"].startswith("VLMEvalKit's answer extraction")
    conditions = {c["condition"]: c for c in summary["conditions"]}
    assert set(conditions) == set(expected) - {"clean"}
    for condition in conditions.values():
        assert condition["scores"]["accuracy"] == 0.0
        assert condition["absolute_drop"]["accuracy"] == 1.0
        assert condition["relative_drop"]["accuracy"] == 1.0
        assert isinstance(condition["severity"], int) and condition["corruption"]
    # VLMEvalKit's own per-row scoring and its own files are there as usual
    assert (out / f"gpt-4o_{VQA}.xlsx").exists()
    assert (out / f"gpt-4o_{VQA}_acc.csv").exists()
    table = (out / f"gpt-4o_{VQA}_medfm_robust_table.csv").read_text()
    assert "gaussian_noise_s3" in table and "accuracy abs drop" in table
    assert "MedFM-Robust robustness of" in api_run["result"].stdout


@needs_vlmeval
def test_grounding_caption_and_robustified_results(api_run):
    import pandas as pd

    out = api_run["out"]
    grounding = json.loads(
        (out / "gpt-4o_MedFMRobust-Mini-Grounding_medfm_robust.json").read_text()
    )
    assert set(grounding["metrics"]) == {"acc_iou_0.5", "acc_iou_0.75", "mean_iou"}
    assert len(grounding["conditions"]) == LIMIT - 1
    assert all("mean_iou" in c["absolute_drop"] for c in grounding["conditions"])
    caption = json.loads((out / "gpt-4o_MedFMRobust-Mini-Caption_medfm_robust.json").read_text())
    assert set(caption["metrics"]) == {"bleu", "rouge_l", "cider"}
    assert caption["clean"]["scores"]["rouge_l"] > 0
    rows = pd.read_excel(out / "gpt-4o_MedFMRobust-Mini-Caption.xlsx")
    assert {"corruption", "severity", "modality", "sample_id", "condition"} <= set(rows.columns)
    assert rows["sample_id"].nunique() == 1 and (rows["condition"] == "clean").sum() == 1

    robust = json.loads((out / "gpt-4o_TinyMedMCQ-MedFMRobust_medfm_robust.json").read_text())
    assert robust["base"] == "TinyMedMCQ"
    by_condition = {row["condition"]: row for row in robust["conditions"]}
    clean = by_condition["clean"][robust["metric"]]
    assert clean > 0 and len(by_condition) == LIMIT
    for row in list(by_condition.values())[1:]:
        assert row["abs drop"] == pytest.approx(clean - row[robust["metric"]])
    server = api_run["server"]
    tiny = [r for r in api_run["requests"] if "What colour" in server.prompt(r)]
    sent = [server.images(r)[0] for r in tiny]
    assert len(sent) == LIMIT
    assert len({image.tobytes() for image in sent}) == LIMIT  # each condition its own image


# --------------------------------------------------------------------------- local model run


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """Tiny random-weight MedGemma and LLaVA-Med through our model classes, chosen with --config
    JSON that also picks corruptions, severities and the sample count; no judge and no key."""
    pytest.importorskip("transformers")
    from .tiny_models import build_tiny_gemma3, build_tiny_llava

    tmp = tmp_path_factory.mktemp("vlmeval_local")
    cpu = {"device": "cpu", "dtype": "float32", "max_new_tokens": 3}
    config = {
        "model": {
            "tiny-medgemma": {
                "class": "MedFMRobustMedGemma",
                "model_path": str(build_tiny_gemma3(tmp / "tiny-gemma3")),
                **cpu,
            },
            "tiny-llava-med": {
                "class": "MedFMRobustLLaVAMed",
                "model_path": str(build_tiny_llava(tmp / "tiny-llava")),
                **cpu,
            },
        },
        "data": {
            "MiniVQA-noise": {
                "class": "MedFMRobustVQA",
                "dataset": "MiniVQA-noise",
                "task": VQA,
                "corruptions": ["gaussian_noise"],
                "severities": [1, 5],
                "samples": 2,
            }
        },
    }
    config_file = tmp / "config.json"
    config_file.write_text(json.dumps(config))
    env = offline_env(tmp)
    args = ["--config", str(config_file), "--work-dir", str(tmp / "outputs")]
    result = run_vlmeval(args, env, tmp)
    return {"out": tmp / "outputs", "result": result}


@needs_vlmeval
@pytest.mark.parametrize("model", ["tiny-medgemma", "tiny-llava-med"])
def test_local_models_with_config_arguments_and_exact_matching(local_run, model):
    import pandas as pd

    out = local_run["out"] / model
    predictions = pd.read_excel(out / f"{model}_MiniVQA-noise.xlsx")
    assert len(predictions) == 2 * 3  # two samples, clean + gaussian_noise at severities 1 and 5
    assert set(predictions["condition"]) == {"clean", "gaussian_noise_s1", "gaussian_noise_s5"}
    assert predictions["prediction"].notna().all()
    summary = json.loads((out / f"{model}_MiniVQA-noise_medfm_robust.json").read_text())
    assert summary["scoring"] == "exact matching (no judge configured)"
    assert {c["condition"] for c in summary["conditions"]} == {
        "gaussian_noise_s1",
        "gaussian_noise_s5",
    }
    for condition in summary["conditions"]:
        assert set(condition["absolute_drop"]) == {"accuracy"}
    output = local_run["result"].stdout + local_run["result"].stderr
    assert "scored by exact matching" in output


# --------------------------------------------------------------------------- registration


@needs_vlmeval
def test_register_twice_and_into_an_incomplete_vlmeval(tmp_path):
    script = textwrap.dedent(
        """
        import json
        import vlmeval.config, vlmeval.dataset, vlmeval.vlm
        from medfm_robust_plugin.hosts.vlmeval import register, VLMEvalKitIncompatible

        first, second = register(), register()
        ours = [c for c in vlmeval.dataset.DATASET_CLASSES if getattr(c, "_medfm_robust", False)]
        built = vlmeval.dataset.build_dataset("MedFMRobust-Mini-VQA-Lite", severities=[1])
        out = {
            "first": first.datasets, "models": first.models, "again": second.already_registered,
            "classes": len(ours), "names": vlmeval.dataset.SUPPORTED_DATASETS.count("MedFMRobust-VQA"),
            "aliases": {k: vlmeval.config.supported_VLM[k].func.__name__
                        for k in ("gpt-4o", "gpt-4o-mini", "gemini-2.5-flash", "gemini-2.5-pro")},
            "config_route": [hasattr(vlmeval.dataset, "MedFMRobustVQA"),
                             hasattr(vlmeval.vlm, "MedFMRobustMedGemma")],
            "built": [type(built).__name__, sorted(set(built.data["severity"]))],
        }
        import vlmeval.dataset as vd
        for cls in ours:
            vd.DATASET_CLASSES.remove(cls)
        del vlmeval.config.supported_VLM
        before = len(vd.DATASET_CLASSES)
        try:
            register()
        except VLMEvalKitIncompatible as exc:
            out["incompatible"] = str(exc)
        out["untouched"] = len(vd.DATASET_CLASSES) == before
        print("RESULT" + json.dumps(out))
        """
    )
    env = offline_env(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.split("RESULT", 1)[1])
    assert {"MedFMRobust-VQA", "MedFMRobust-Mini-VQA-Lite", "MedFMRobust-Report"} <= set(
        out["first"]
    )
    assert {"medgemma", "llava-med", "gpt-4o"} <= set(out["models"])
    assert out["again"] is True and out["classes"] == 3 and out["names"] == 1
    assert set(out["aliases"].values()) <= {"GPT4V", "Gemini"}
    assert out["config_route"] == [True, True]
    assert out["built"] == ["MedFMRobustVQA", [0, 1]]
    assert "vlmeval.config.supported_VLM" in out["incompatible"]
    assert "nothing was registered" in out["incompatible"]
    assert out["untouched"] is True


def test_without_vlmeval_the_commands_say_how_to_install(monkeypatch, capsys):
    from click.testing import CliRunner

    from medfm_robust_plugin.cli import main as cli
    from medfm_robust_plugin.hosts import vlmeval as host

    monkeypatch.setitem(sys.modules, "vlmeval", None)  # makes `import vlmeval` fail
    assert host.main(["--data", VQA, "--model", "gpt-4o"]) == 2
    assert "pip install ms-vlmeval" in capsys.readouterr().err
    result = CliRunner().invoke(cli, ["vlmeval", "--data", VQA, "--model", "gpt-4o"])
    assert result.exit_code == 2
    assert "pip install ms-vlmeval" in result.output


def test_robustified_names_come_from_the_data_arguments_and_the_config(tmp_path):
    from medfm_robust_plugin.hosts.vlmeval import robust_names

    argv = ["--data", "PathVQA_TEST-MedFMRobust", VQA, "--model", "gpt-4o", "--data=X-MedFMRobust"]
    assert robust_names(argv) == ["PathVQA_TEST-MedFMRobust", "X-MedFMRobust"]
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"data": {"SLAKE_TEST-MedFMRobust": {}, VQA: {}}, "model": {}}))
    assert robust_names(["--config", str(config), "--mode", "all"]) == ["SLAKE_TEST-MedFMRobust"]


# --------------------------------------------------------------------------- keys in logs


@needs_vlmeval
def test_the_key_never_reaches_vlmevalkits_log_files(api_run):
    logs = list((api_run["tmp"] / "outputs").rglob("*.log"))
    assert logs, "VLMEvalKit wrote no log file"
    text = "".join(p.read_text(encoding="utf-8", errors="replace") for p in logs)
    # VLMEvalKit's GPT wrapper logs "Using API Base: ...; API Key: <key>" when it is built
    assert "API Key: [redacted]" in text
    assert "sk-test" not in text


@needs_vlmeval
def test_key_filter_on_vlmevalkits_own_loggers_and_log_file(tmp_path):
    key = "sk-live-SECRET-0123456789"
    script = textwrap.dedent(
        f"""
        import logging
        from medfm_robust_plugin.redaction import install_log_redaction, uninstall_log_redaction
        from vlmeval.smp.log import get_logger, setup_logger

        before = setup_logger(log_file={str(tmp_path / "before.log")!r})
        get_logger("vlmeval.api.gpt").info("control line, no filter: API Key: {key}")

        install_log_redaction(["vlmeval"])
        # VLMEvalKit's run.py sets up its log file once it runs, after our filter is in place
        setup_logger(log_file={str(tmp_path / "logs" / "run.log")!r}, reset=True)
        from vlmeval.api.gpt import OpenAIWrapper

        OpenAIWrapper(model="gpt-4o", key=None, api_base="http://127.0.0.1:9/v1/chat/completions")
        other = get_logger("vlmeval.dataset.something_new")
        other.warning("keys of others: %s and %s", "sk-proj-abcdefgh12345678",
                      "AIzaSyA1234567890abcdefghijklmnopqrstu")
        try:
            raise RuntimeError("request failed with key {key}")
        except RuntimeError:
            other.exception("a failure")
        uninstall_log_redaction()
        other.warning("after uninstall: {key}")
        """
    )
    env = offline_env(tmp_path, OPENAI_API_KEY=key)
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert key in (tmp_path / "before.log").read_text()  # the filter is what keeps it out
    log = (tmp_path / "logs" / "run.log").read_text()
    assert "Using API Base: http://127.0.0.1:9/v1/chat/completions; API Key: [redacted]" in log
    assert "keys of others: [redacted] and [redacted]" in log
    assert "RuntimeError: request failed with key [redacted]" in log
    [line_with_key] = [line for line in log.splitlines() if key in line]
    assert line_with_key.endswith(f"after uninstall: {key}")  # uninstalling gives logging back
    assert "sk-proj-" not in log and "AIzaSy" not in log


def test_a_limit_on_our_datasets_takes_whole_samples():
    from medfm_robust_plugin.hosts.vlmeval import whole_sample_limit

    args, samples = whole_sample_limit(
        ["--data", "MedFMRobust-Mini-VQA-Lite", "--model", "gpt-4o", "--limit", "3"]
    )
    assert samples == 3 and args == ["--data", "MedFMRobust-Mini-VQA-Lite", "--model", "gpt-4o"]
    # with one of VLMEvalKit's own datasets beside ours, VLMEvalKit's row limit stays
    mixed = ["--data", "MedFMRobust-Mini-VQA-Lite", "MMBench_DEV_EN", "--limit=3"]
    assert whole_sample_limit(mixed) == (mixed, None)

    from medfm_robust_plugin.hosts.vlmeval import register

    register(samples=3)  # what `vlmeval --limit 3` hands on
    from medfm_robust_plugin.hosts.vlmeval_datasets import MedFMRobustVQA

    try:
        dataset = MedFMRobustVQA(dataset="MedFMRobust-Mini-VQA-Lite")
    finally:
        register()
    rows = dataset.data.groupby("sample_id")
    assert rows.ngroups == 3
    for sample_id, group in rows:  # each sample clean and under every condition of its suite
        modality = group["modality"].iloc[0]
        expected = {c.key for c in dataset.card.conditions_for(modality)}
        assert set(group["condition"]) == expected and len(expected) > 30, sample_id


@needs_vlmeval
def test_report_reads_vlmevalkits_results_back_into_records(api_run, tmp_path):
    from click.testing import CliRunner

    from medfm_robust_plugin.cli import main
    from medfm_robust_plugin.hosts.vlmeval_results import VLMEvalKitOutputError, read_output
    from medfm_robust_plugin.report.runs import load_run

    out = api_run["out"]
    runs = read_output(out)
    records = runs[(VQA, "gpt-4o")]
    assert len(records) == LIMIT and {r["host"] for r in records} == {"vlmeval"}
    assert {r["condition"] for r in records} == set(api_run["expected"])
    with pytest.raises(VLMEvalKitOutputError, match="several runs"):
        load_run(out)  # VQA, grounding and caption in one work folder

    made = CliRunner().invoke(main, ["vlmeval-records", str(out), "-o", str(tmp_path / "runs")])
    assert made.exit_code == 0, made.output
    vqa_dir = next(Path(line) for line in made.output.split() if "mini-vqa" in line.lower())
    run = load_run(vqa_dir)
    ours = json.loads((out / f"gpt-4o_{VQA}_medfm_robust.json").read_text())
    rows = {
        (r["corruption"], r["severity"]): r["score"]
        for r in run.summary.rows()
        if r["scope"] == "all"
        and r["metric"] == "accuracy"
        and r["level"] in ("clean", "condition")
    }
    assert rows[(None, None)] == ours["clean"]["scores"]["accuracy"] == 1.0
    assert len(rows) == len(ours["conditions"]) + 1
    for condition in ours["conditions"]:
        key = (condition["corruption"], condition["severity"])
        assert rows[key] == condition["scores"]["accuracy"] == 0.0


@needs_vlmeval
def test_vlmevalkit_and_our_runner_give_the_same_summary_for_the_same_items(local_run, tmp_path):
    """The tiny MedGemma through VLMEvalKit (--config: gaussian_noise at 1 and 5, two samples)
    and through our runner with the same options: the same records, the same summary."""
    from medfm_robust_plugin.models.base import load_model
    from medfm_robust_plugin.report.runs import load_run
    from medfm_robust_plugin.runner import Run, RunConfig

    out = local_run["out"] / "tiny-medgemma"
    theirs = load_run(out)
    config = json.loads((local_run["out"].parent / "config.json").read_text())
    options = config["model"]["tiny-medgemma"]
    model = load_model("medgemma", model_id=options["model_path"], device="cpu", dtype="float32")
    run_config = RunConfig(
        task=VQA,
        model="tiny-medgemma",
        out=str(tmp_path / "runs"),
        corruptions=["gaussian_noise"],
        severities=[1, 5],
        limit=2,
        max_new_tokens=options["max_new_tokens"],
        workers=0,
    )
    ours = load_run(Run(run_config).execute(model).run_dir)

    def by_key(run):
        return {r["key"]: (r["prediction"], r["state"]) for r in run.records}

    assert by_key(theirs) == by_key(ours)
    assert len(theirs.records) == 2 * 3

    def scores(run):
        return {
            (r["scope"], r["metric"], r["corruption"], r["severity"]): r["score"]
            for r in run.summary.rows()
            if r["level"] in ("clean", "condition")
        }

    assert scores(theirs) == scores(ours)


@needs_vlmeval
def test_a_dataset_without_its_data_fails_the_run_naming_what_works_in_vlmeval(tmp_path):
    # the README's command on a card that reads files, with no data root set anywhere
    env = offline_env(tmp_path)
    env.pop("MEDFM_ROBUST_DATA", None)
    args = ["--data", "MedFMRobust-VQA-Lite", "--model", "gpt-4o", "--work-dir", str(tmp_path)]
    result = subprocess.run(
        [str(VLMEVAL_SCRIPT), *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("vlmeval: 1 model x dataset combination(s) failed"), last
    assert "gpt-4o x MedFMRobust-VQA-Lite" in last
    assert "set MEDFM_ROBUST_DATA=DIR before vlmeval" in last and "--config JSON" in last
    assert "--data-root" not in result.stderr  # vlmeval has no such option


@needs_vlmeval
def test_a_data_root_without_the_release_layout_names_what_works_in_vlmeval(tmp_path):
    from medfm_robust_plugin.hosts.vlmeval import register
    from medfm_robust_plugin.hosts.vlmeval_datasets import MedFMRobustDatasetError

    register()
    from medfm_robust_plugin.hosts.vlmeval_datasets import MedFMRobustVQA

    (tmp_path / "OmniMedVQA").mkdir()
    with pytest.raises(MedFMRobustDatasetError) as raised:
        MedFMRobustVQA(dataset="MedFMRobust-VQA-Lite", data_root=str(tmp_path / "OmniMedVQA"))
    message = str(raised.value)
    assert "does not hold the released layout" in message
    assert "Under vlmeval the data root is $MEDFM_ROBUST_DATA" in message and "--config" in message
