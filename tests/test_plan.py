"""The evaluation plan and the record type: one grid, one key scheme and one record for everyone."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from medfm_robust_plugin import materialize as mat
from medfm_robust_plugin.plan import EvaluationPlan, item_key
from medfm_robust_plugin.records import SCHEMA, Record, RecordError
from medfm_robust_plugin.runner import Run, RunConfig, latest_records
from medfm_robust_plugin.tasks import Condition, get_task

LITE = "MedFMRobust-Mini-VQA-Lite"


def test_items_go_sample_by_sample_clean_first_then_corruption_by_severity():
    plan = EvaluationPlan.from_card(
        LITE, limit=5, corruptions=["contrast", "gaussian_noise"], severities=[5, 1]
    )
    samples = plan.samples()
    items = list(plan.items())
    assert len(items) == len(samples) * (1 + 2 * 2)
    first = samples[0]
    # the suite's order of corruptions, the asked order of severities
    assert [item.key for item in items[:5]] == [
        f"{first.dataset}/{first.id}/clean",
        f"{first.dataset}/{first.id}/gaussian_noise_s5",
        f"{first.dataset}/{first.id}/gaussian_noise_s1",
        f"{first.dataset}/{first.id}/contrast_s5",
        f"{first.dataset}/{first.id}/contrast_s1",
    ]
    assert [item.sample.id for item in items[::5]] == [s.id for s in samples]
    assert items[0].spec is None and items[0].family is None and items[0].condition.is_clean
    assert items[1].spec.name == "gaussian_noise" and items[1].family == "natural"
    assert all(
        item.key == item_key(item.sample.dataset, item.sample.id, item.condition) for item in items
    )
    assert len(set(plan.keys())) == len(items)


def test_the_key_names_dataset_sample_and_condition():
    assert item_key("busi", "17", Condition("speckle_noise", 3)) == "busi/17/speckle_noise_s3"
    assert item_key("busi", "17", Condition(None, None)) == "busi/17/clean"
    assert item_key("busi", "17", "clean") == "busi/17/clean"


def test_defaults_come_from_the_card():
    card = get_task(LITE)
    plan = EvaluationPlan.from_card(card, corruptions=[], severities=None)
    assert plan.levels == card.severities and plan.corruptions is None
    assert plan.mode == card.severity_mode == "table"
    ssim = EvaluationPlan.from_card(card, severity_mode="ssim")
    assert ssim.mode == ssim.card.severity_mode == "ssim" and ssim.views().mode == "ssim"
    sample = plan.samples()[0]
    expected = 1 + len(card.corruptions_for(sample.modality)) * len(card.severities)
    assert len(plan.items_of(sample)) == expected


def test_the_limit_keeps_a_seeded_stratified_subset_in_the_cards_order():
    everything = EvaluationPlan.from_card(LITE).samples()
    modalities = {s.modality for s in everything}
    kept = EvaluationPlan.from_card(LITE, limit=len(modalities)).samples()
    assert {s.modality for s in kept} == modalities  # every modality stays
    order = [s.id for s in everything]
    assert [s.id for s in kept] == sorted((s.id for s in kept), key=order.index)
    again = EvaluationPlan.from_card(LITE, limit=len(modalities)).samples()
    assert [s.id for s in again] == [s.id for s in kept]  # the card's sampling seed: stable
    other = EvaluationPlan.from_card(LITE, limit=10, limit_seed=7).samples()
    assert [s.id for s in other] != [
        s.id for s in EvaluationPlan.from_card(LITE, limit=10).samples()
    ]
    # samples handed over are limited by the same rule
    handed = EvaluationPlan.from_card(LITE, limit=len(modalities), samples=everything)
    assert [s.id for s in handed.samples()] == [s.id for s in kept]
    assert len(EvaluationPlan.from_card(LITE, limit=10_000).samples()) == len(everything)


def test_a_corruption_no_suite_has_is_named():
    plan = EvaluationPlan.from_card(LITE, limit=5, corruptions=["contrast", "no_such_thing"])
    assert plan.unknown_corruptions() == ["no_such_thing"]


def test_a_plan_sent_to_a_worker_process_leaves_its_samples_behind():
    import pickle

    plan = EvaluationPlan.from_card(LITE, limit=5)
    plan.samples()
    copy = pickle.loads(pickle.dumps(plan))
    assert copy.__dict__["_samples"] is None
    assert copy.keys() == plan.keys()


# ---------------------------------------------------------------------- one key set for everyone


def runner_keys(tmp_path: Path) -> set[str]:
    return {item.key for item in Run(RunConfig(task=LITE, model="x", out=str(tmp_path))).work()}


def materialize_keys() -> set[str]:
    plan = mat.Plan(get_task(LITE))
    return {
        item.key for sample in mat.worker._samples(plan) for item in mat._conditions(plan, sample)
    }


def lm_eval_keys() -> set[str]:
    import yaml

    from medfm_robust_plugin.hosts.lm_eval import generate_tasks
    from medfm_robust_plugin.hosts.lm_eval_tasks.conditions import condition_documents

    conditions = set()
    for text in generate_tasks([get_task(LITE)]).values():
        body = yaml.safe_load(text.replace("!function", "")) or {}
        kwargs = body.get("dataset_kwargs") or {}
        if "medfm_condition" in kwargs:
            conditions.add(kwargs["medfm_condition"])
    assert "clean" in conditions and "gaussian_noise_s3" in conditions
    return {doc["key"] for c in sorted(conditions) for doc in condition_documents(LITE, c)}


def test_runner_materialize_and_lm_eval_plan_the_same_items(tmp_path):
    expected = set(EvaluationPlan.from_card(LITE).keys())
    assert len(expected) > 40
    assert runner_keys(tmp_path) == expected
    assert materialize_keys() == expected
    assert lm_eval_keys() == expected


@pytest.mark.skipif(importlib.util.find_spec("vlmeval") is None, reason="needs ms-vlmeval")
def test_vlmevalkit_rows_are_the_plans_items(tmp_path):
    script = textwrap.dedent(
        f"""
        import json
        import vlmeval.dataset
        from medfm_robust_plugin.hosts.vlmeval import register
        from medfm_robust_plugin.plan import item_key

        register()
        built = vlmeval.dataset.build_dataset({LITE!r})
        keys = [item_key(r["source_dataset"], r["sample_id"], r["condition"])
                for _, r in built.data.iterrows()]
        print("RESULT" + json.dumps(keys))
        """
    )
    (tmp_path / "LMUData").mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "GOOGLE_"))},
        "LMUData": str(tmp_path / "LMUData"),
        "HOME": str(tmp_path),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(result.stdout.split("RESULT", 1)[1])
    assert rows == EvaluationPlan.from_card(LITE).keys()  # the same items, in the same order


# ---------------------------------------------------------------------- records


def a_record() -> Record:
    plan = EvaluationPlan.from_card(LITE, limit=1, corruptions=["contrast"], severities=[3])
    item = list(plan.items())[1]
    return Record.of(
        item,
        task=LITE,
        model="baseline:majority",
        seed=123,
        params={"factor": 0.4, "ssim": 0.81},
        ssim=0.81,
        prediction="A",
        state={"accuracy": 1.0},
        score={"accuracy": 1.0},
        seconds={"view": 0.01, "model": 0.2},
    )


def test_a_record_round_trips_through_its_json_line():
    record = a_record()
    data = json.loads(json.dumps(record.to_dict()))
    assert data["schema"] == SCHEMA == 1
    assert data["key"].endswith("/contrast_s3") and data["family"] == "natural"
    assert data["corruption"] == "contrast" and data["severity"] == 3
    assert Record.from_dict(data) == record
    assert Record.from_dict(data).to_dict() == data


def test_a_record_written_before_the_schema_field_reads_back(tmp_path):
    old = {  # a line as runs wrote them before records carried a schema
        "key": "medfm_robust_mini/ct-002/contrast_s3",
        "task": LITE,
        "model": "baseline:majority",
        "sample_id": "ct-002",
        "dataset": "medfm_robust_mini",
        "modality": "ct",
        "condition": "contrast_s3",
        "corruption": "contrast",
        "severity": 3,
        "family": "natural",
        "seed": 5,
        "params": None,
        "ssim": None,
        "prediction": "B",
        "state": {"accuracy": 0.0},
        "score": {"accuracy": 0.0},
        "tokens": None,
        "cost_usd": None,
        "cached": None,
        "seconds": {"view": 0.0, "model": 0.0},
        "error": None,
    }
    record = Record.from_dict(old)
    assert record.key == old["key"] and record.state == {"accuracy": 0.0} and record.host is None
    assert record.to_dict() == {**old, "host": None, "schema": 1}
    # a run folder of such lines still reads as a run
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "records.jsonl").write_text(json.dumps(old) + "\n")
    (read,) = latest_records(run_dir)
    assert read["schema"] == 1 and read["prediction"] == "B"


def test_keys_of_other_writers_are_kept_and_a_newer_schema_is_refused():
    record = Record.from_dict(
        {"sample_id": "1", "dataset": "d", "condition": "clean", "window": [0, 1], "state": None}
    )
    assert record.key == "d/1/clean" and record.state == {}
    assert record.to_dict()["window"] == [0, 1]
    with pytest.raises(RecordError, match="schema 99"):
        Record.from_dict({"sample_id": "1", "dataset": "d", "schema": 99})
    with pytest.raises(RecordError, match="lacks dataset"):
        Record.from_dict({"sample_id": "1"})
