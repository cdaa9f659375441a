"""Robustness summaries on small record sets whose numbers are worked out by hand."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from medfm_robust_plugin.metrics import Metric, MetricError, get_metric
from medfm_robust_plugin.metrics.robustness import (
    ROW_FIELDS,
    family_group,
    mce,
    relative_mce,
    summarize,
)

# A lower-is-better metric: pixels of localisation error.
ERROR_PX = Metric("error_px", ("grounding",), score=lambda p, s: 0.0, higher_is_better=False)
FAMILIES = {"gaussian_noise": "natural", "metal_streaks": "ct"}
MODALITY = {"s1": "ct", "s2": "ct", "s3": "mri", "s4": "mri"}


def record(sample: str, condition: str, error: str | None = None, **state) -> dict:
    corruption, severity = (None, None)
    if condition != "clean":
        corruption, _, level = condition.rpartition("_s")
        severity = int(level)
    return {
        "sample_id": sample,
        "dataset": "toy",
        "modality": MODALITY[sample],
        "condition": condition,
        "corruption": corruption,
        "severity": severity,
        "family": FAMILIES.get(corruption),
        "state": {} if error else state,
        "error": error,
    }


def grid(table: dict[str, list[tuple[float, float]]]) -> list[dict]:
    """Records from {condition: [(accuracy, error_px) of s1..s4]}; None = the sample failed."""
    records = []
    for condition, values in table.items():
        for sample, value in zip(MODALITY, values):
            if value is None:
                records.append(record(sample, condition, error="TimeoutError: model timed out"))
            else:
                records.append(record(sample, condition, accuracy=value[0], error_px=value[1]))
    return records


RUN = {
    "clean": [(1, 1), (1, 2), (1, 3), (0, 4)],  # accuracy 0.75, error 2.5
    "gaussian_noise_s1": [(1, 2), (0, 3), (1, 3), (0, 6)],  # 0.5, 3.5
    "gaussian_noise_s2": [(0, 4), (0, 4), (1, 4), None],  # 1/3, 4.0 over three; s4 failed
    "metal_streaks_s1": [(1, 1), (1, 2), (0, 3), (0, 4)],  # 0.5, 2.5
}


@pytest.fixture
def summary():
    return summarize(grid(RUN), [get_metric("accuracy"), ERROR_PX], resamples=200)


def test_clean_scores_drops_and_means_by_hand(summary):
    assert summary.clean == pytest.approx({"accuracy": 0.75, "error_px": 2.5})
    s1 = summary.condition("gaussian_noise", 1)
    assert s1.scores == pytest.approx({"accuracy": 0.5, "error_px": 3.5})
    assert s1.absolute_drop == pytest.approx({"accuracy": 0.25, "error_px": 1.0})
    assert s1.relative_drop == pytest.approx({"accuracy": 1 / 3, "error_px": 0.4})
    s2 = summary.condition("gaussian_noise", 2)
    assert s2.scores == pytest.approx({"accuracy": 1 / 3, "error_px": 4.0})
    # s4 failed here: the drop compares with the clean score of s1-s3 (1.0, 2.0), the same samples
    assert s2.clean_scores == pytest.approx({"accuracy": 1.0, "error_px": 2.0})
    # lower is better: a larger error is a positive drop
    assert s2.absolute_drop == pytest.approx({"accuracy": 2 / 3, "error_px": 2.0})
    assert s2.relative_drop == pytest.approx({"accuracy": 2 / 3, "error_px": 1.0})
    noise = summary.corruption("gaussian_noise")
    assert noise.severities == [1, 2]
    assert noise.scores["accuracy"] == pytest.approx((0.5 + 1 / 3) / 2)
    assert noise.absolute_drop == pytest.approx({"accuracy": 11 / 24, "error_px": 1.5})
    assert summary.corruption("metal_streaks").absolute_drop == pytest.approx(
        {"accuracy": 0.25, "error_px": 0.0}
    )
    assert summary.worst == {"accuracy": "gaussian_noise", "error_px": "gaussian_noise"}


def test_failures_are_counted_and_left_out_of_scores(summary):
    s2 = summary.condition("gaussian_noise", 2)
    assert (s2.n, s2.failed, s2.n_paired) == (3, 1, 3)
    assert summary.failures == {
        "total": 1,
        "records": 16,
        "by_condition": {"gaussian_noise_s2": 1},
        "by_modality": {"mri": 1},
    }
    assert summary.corruption("gaussian_noise").failed == 1


def test_family_groups_and_overall_are_means_over_conditions(summary):
    assert family_group("natural") == "base" and family_group("mri") == "medical"
    assert family_group(None) is None
    base, medical = summary.by_family["base"], summary.by_family["medical"]
    assert base.corruptions == ["gaussian_noise"] and medical.corruptions == ["metal_streaks"]
    assert base.absolute_drop["accuracy"] == pytest.approx(11 / 24)
    # relative: the mean drop over the mean clean score of the same samples (0.75 and 1.0)
    assert base.clean_scores["accuracy"] == pytest.approx(0.875)
    assert base.relative_drop["accuracy"] == pytest.approx((11 / 24) / 0.875)
    assert medical.absolute_drop["accuracy"] == pytest.approx(0.25)
    assert summary.overall.absolute_drop["accuracy"] == pytest.approx((0.25 + 2 / 3 + 0.25) / 3)
    assert summary.overall.scores["error_px"] == pytest.approx((3.5 + 4.0 + 2.5) / 3)


def test_modality_breakdown_uses_the_modalitys_own_clean_score(summary):
    ct, mri = summary.by_modality["ct"], summary.by_modality["mri"]
    assert ct.clean["accuracy"] == 1.0 and mri.clean["accuracy"] == 0.5
    assert ct.condition("gaussian_noise", 1).absolute_drop["accuracy"] == pytest.approx(0.5)
    # s4 failed under severity 2, so the MRI score there is s3's alone, compared with s3's clean
    assert mri.condition("gaussian_noise", 2).absolute_drop["accuracy"] == pytest.approx(0.0)
    assert mri.failures["total"] == 1 and ct.failures["total"] == 0


def test_to_dict_is_json_and_rows_fit_a_csv(summary):
    data = json.loads(json.dumps(summary.to_dict(), allow_nan=False))
    assert data["clean"]["scores"]["accuracy"] == 0.75
    assert data["conditions"][0]["condition"] == "gaussian_noise_s1"
    assert set(data["by_modality"]) == {"ct", "mri"}
    rows = summary.rows()
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=ROW_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    table = list(csv.DictReader(io.StringIO(out.getvalue())))
    levels = {(r["scope"], r["level"]) for r in table}
    assert ("all", "condition") in levels and ("modality", "family") in levels
    metal = next(
        r
        for r in table
        if r["scope"] == "all" and r["level"] == "condition" and r["corruption"] == "metal_streaks"
    )
    assert float(metal["absolute_drop"]) == pytest.approx(0.25) and metal["metric"] == "accuracy"


def paired_run(n: int = 400, seed: int = 5) -> tuple[list[dict], float]:
    """Clean accuracy ~80%; the corruption turns each right answer wrong with probability 1/4."""
    rng = np.random.default_rng(seed)
    clean = rng.random(n) < 0.8
    corrupted = clean & (rng.random(n) >= 0.25)
    records = []
    for i in range(n):
        for condition, right in (("clean", clean[i]), ("gaussian_noise_s3", corrupted[i])):
            rec = record("s1", condition, accuracy=float(right))
            rec["sample_id"] = f"case{i}"
            records.append(rec)
    return records, float(clean.mean() - corrupted.mean())


def test_bootstrap_interval_holds_the_drop_and_is_deterministic():
    records, observed = paired_run()
    first = summarize(records, ["accuracy"], by_modality=False).condition("gaussian_noise", 3)
    again = summarize(records, ["accuracy"], by_modality=False).condition("gaussian_noise", 3)
    low, high = first.absolute_interval["accuracy"]
    assert first.absolute_drop["accuracy"] == pytest.approx(observed)
    assert low < observed < high
    assert low < 0.8 * 0.25 < high  # the drop the run was drawn from
    assert high - low < 0.1
    assert first.absolute_interval == again.absolute_interval
    rel_low, rel_high = first.relative_interval["accuracy"]
    assert rel_low < observed / 0.8 < rel_high
    other_seed = summarize(records, ["accuracy"], seed=1, by_modality=False)
    assert other_seed.condition("gaussian_noise", 3).absolute_interval != first.absolute_interval


def test_bootstrap_is_paired():
    """Identical clean and corrupted answers: every resample has drop 0, an unpaired one would not."""
    records, _ = paired_run(100)
    for rec in records:
        if rec["condition"] != "clean":
            twin = next(
                r
                for r in records
                if r["sample_id"] == rec["sample_id"] and r["condition"] == "clean"
            )
            rec["state"] = dict(twin["state"])
    result = summarize(records, ["accuracy"], by_modality=False).condition("gaussian_noise", 3)
    assert result.absolute_interval["accuracy"] == (0.0, 0.0)


def test_corpus_metrics_are_recomputed_on_subsets_and_resamples():
    from medfm_robust_plugin.data.sample import Sample

    references = [
        "axial ct shows a mass in the left lobe",
        "no pleural effusion",
        "mri shows an enhancing lesion",
        "normal heart size and lungs",
        "small nodule in the right upper lobe",
    ]
    clean_answers = [
        "axial ct shows a mass in the left lobe",
        "no effusion",
        "mri shows a lesion",
        "normal heart size",
        "small nodule in the right lobe",
    ]
    noisy_answers = ["a mass", "no effusion", "a lesion", "normal heart", "a nodule"]
    metrics = [get_metric("bleu"), get_metric("cider")]
    records = []
    for i, reference in enumerate(references):
        sample = Sample(f"c{i}", "rocov2", "ct", image=None, answer=reference)
        for condition, answer in (("clean", clean_answers[i]), ("jpeg_s5", noisy_answers[i])):
            rec = record("s1", condition, **{m.name: m.score(answer, sample) for m in metrics})
            rec.update(sample_id=sample.id, family="natural" if condition != "clean" else None)
            records.append(json.loads(json.dumps(rec)))  # as read back from a JSONL file
    summary = summarize(records, metrics, resamples=300)
    for metric in metrics:
        clean_states = [r["state"][metric.name] for r in records if r["condition"] == "clean"]
        assert summary.clean[metric.name] == pytest.approx(metric.summarize(clean_states))
        result = summary.condition("jpeg", 5)
        low, high = result.absolute_interval[metric.name]
        assert low <= result.absolute_drop[metric.name] <= high
    assert summary.condition("jpeg", 5).absolute_drop["cider"] > 1.0


def test_an_aggregate_without_weights_is_rescored_on_each_resample():
    median = Metric("median_score", ("vqa",), score=lambda p, s: 0.0, aggregate=np.median)
    records, _ = paired_run(60)
    for rec in records:
        rec["state"]["median_score"] = rec["state"]["accuracy"]
    result = summarize(records, [median], resamples=50, by_modality=False)
    assert result.condition("gaussian_noise", 3).absolute_interval["median_score"] is not None


def test_a_record_without_the_metrics_state_is_an_error_naming_it():
    records = grid({"clean": [(1, 1)] * 4})
    del records[2]["state"]["error_px"]
    with pytest.raises(MetricError, match=r"toy/s3 \(clean\).*error_px"):
        summarize(records, ["accuracy", ERROR_PX])


def test_mce_and_relative_mce_by_hand(summary):
    reference = summarize(
        grid(
            {
                "clean": [(1, 1)] * 4,  # error 0
                "gaussian_noise_s1": [(1, 1), (1, 1), (1, 1), (0, 1)],  # error 0.25
                "gaussian_noise_s2": [(1, 1), (1, 1), (0, 1), (0, 1)],  # error 0.5
                "metal_streaks_s1": [(1, 1)] * 4,  # error 0: no CE can be normalised by it
            }
        ),
        ["accuracy", ERROR_PX],
        resamples=0,
    )
    # ours: clean error 0.25; noise errors 0.5 and 2/3; metal 0.5
    result = mce(summary, reference)
    assert result.metric == "accuracy"
    assert result.per_corruption["gaussian_noise"] == pytest.approx((0.5 + 2 / 3) / (0.25 + 0.5))
    assert result.undefined == ["metal_streaks"]
    assert result.value == pytest.approx(14 / 9)
    relative = relative_mce(summary, reference)
    assert relative.value == pytest.approx(((0.5 - 0.25) + (2 / 3 - 0.25)) / 0.75)
    # Against itself every CE is 1; lower-is-better errors are the values themselves.
    assert mce(summary, summary, "error_px").value == pytest.approx(1.0)
    assert mce(summary, reference, "error_px").per_corruption["gaussian_noise"] == pytest.approx(
        (3.5 + 4.0) / (1 + 1)
    )
    assert json.dumps(result.to_dict(), allow_nan=False)


def test_a_modality_specific_corruption_is_compared_with_its_own_samples():
    """metal_streaks hits the CT samples only: its drop is against CT's clean score, not the task's."""
    table = {"clean": [(1, 1), (1, 1), (0, 1), (0, 1)], "metal_streaks_s1": [(1, 1), (0, 1)]}
    records = [r for r in grid({"clean": table["clean"]})]
    records += [
        record(s, "metal_streaks_s1", accuracy=v[0], error_px=v[1])
        for s, v in zip(("s1", "s2"), table["metal_streaks_s1"])
    ]
    metal = summarize(records, [get_metric("accuracy")], resamples=0).condition("metal_streaks", 1)
    assert metal.clean_scores["accuracy"] == 1.0  # CT alone; the task's clean accuracy is 0.5
    assert metal.absolute_drop["accuracy"] == pytest.approx(0.5)


def test_mce_between_summaries_of_different_sample_counts_warns(summary):
    fewer = summarize([r for r in grid(RUN) if r["sample_id"] != "s4"], ["accuracy"], resamples=0)
    with pytest.warns(UserWarning, match="summaries of 3 and 4 clean samples"):
        relative_mce(fewer, summary, "accuracy")
