"""Task cards: the shipped ones, variants, sampling, conditions, prompts and card errors."""

from __future__ import annotations

import pytest

from medfm_robust_plugin.data.sample import Sample
from medfm_robust_plugin.plugins import get_registry
from medfm_robust_plugin.tasks import (
    Condition,
    Sampling,
    TaskError,
    get_task,
    load_card_file,
    parse_card,
    select,
)

SHIPPED = [
    "MedFMRobust-VQA",
    "MedFMRobust-Caption",
    "MedFMRobust-Report",
    "MedFMRobust-Grounding",
    "MedFMRobust-Seg",
    "MedFMRobust-Seg-ISIC2016",
    "MedFMRobust-Seg-BrainMRI",
    "MedFMRobust-Seg-BUSI",
    "MedFMRobust-Seg-KvasirSEG",
    "MedFMRobust-Seg-MoNuSeg",
    "MedFMRobust-Seg-REFUGE",
    "MedFMRobust-Seg-FLARE22",
    "MedFMRobust-Mini-VQA",
    "MedFMRobust-Mini-Caption",
    "MedFMRobust-Mini-Grounding",
    "MedFMRobust-Mini-Seg",
]


def test_every_card_and_its_lite_variant_is_registered():
    names = set(get_registry().names("tasks"))
    for name in SHIPPED:
        assert name in names
    for name in (
        "MedFMRobust-VQA",
        "MedFMRobust-Caption",
        "MedFMRobust-Grounding",
        "MedFMRobust-Seg",
    ):
        lite = get_task(f"{name}-Lite")
        assert lite.severities == (1, 3, 5)
        assert lite.sampling.per_group == 50


def test_cards_name_registered_datasets_and_carry_their_citation():
    registry = get_registry()
    for name in SHIPPED:
        card = get_task(name)
        assert card.citation and card.access and card.license, name
        for ref in card.datasets:
            assert ref.name in registry.names("datasets"), (name, ref.name)


def test_mini_cards_load_without_data_and_have_suites():
    card = get_task("MedFMRobust-Mini-VQA")
    samples = card.load().samples
    assert len(samples) == 200
    conditions = card.conditions_for("dermoscopy")
    assert conditions[0] == Condition(None, None) and conditions[0].key == "clean"
    assert len(conditions) == 1 + 5 * len(card.corruptions_for("dermoscopy")) > 20
    assert Condition("gaussian_noise", 3).key == "gaussian_noise_s3"


def test_vqa_prompt_is_the_papers_template():
    card = get_task("MedFMRobust-Mini-VQA")
    sample = Sample(
        "q1",
        "d",
        "ct",
        image=None,
        question="Is it there?",
        options={"A": "Yes", "B": "No"},
        answer="A",
    )
    assert (
        card.render_prompt(sample)
        == "Is it there?\n\nOptions:\nA. Yes\nB. No\n\nPlease select the correct answer."
    )


def test_prompt_field_missing_names_the_sample():
    card = get_task("MedFMRobust-Mini-Grounding")
    sample = Sample("g7", "d", "ct", image=None, question="Locate it.")
    with pytest.raises(TaskError, match="width.*'g7'"):
        card.render_prompt(sample)


def test_real_dataset_without_data_root_says_how_to_get_it(monkeypatch):
    from medfm_robust_plugin import MedFMRobustError

    monkeypatch.delenv("MEDFM_ROBUST_DATA", raising=False)
    with pytest.raises(MedFMRobustError, match="--data-root"):
        get_task("MedFMRobust-Seg-BUSI").load()


def test_sampling_is_stratified_and_deterministic():
    samples = [Sample(f"{m}{k}", "d", m, image=None) for m in ("ct", "mri") for k in range(30)]
    samples += [Sample(f"x{k}", "d", "xray", image=None) for k in range(3)]
    per = select(samples, Sampling(per_group=5, seed=1))
    assert [s.modality for s in per].count("ct") == 5 and [s.modality for s in per].count(
        "xray"
    ) == 3
    assert [s.id for s in per] == [s.id for s in select(samples, Sampling(per_group=5, seed=1))]
    assert [s.id for s in per] != [s.id for s in select(samples, Sampling(per_group=5, seed=2))]
    total = select(samples, Sampling(size=21, seed=0))
    assert len(total) == 21 and {s.modality for s in total} == {"ct", "mri", "xray"}


def test_include_and_variants(tmp_path):
    (tmp_path / "_base.yaml").write_text(
        "kind: vqa\nprompt: '{question}'\nmetrics: [accuracy]\nseverities: [1, 2]\n"
    )
    (tmp_path / "Mine.yaml").write_text(
        "include: _base.yaml\ntask: Lab-VQA\ndataset: {name: qa_table, options: {path: qa.csv}}\n"
        "variants:\n  Tiny: {sampling: {size: 10}, severities: [5]}\n"
    )
    card, tiny = load_card_file(tmp_path / "Mine.yaml")
    assert card.name == "Lab-VQA" and card.severities == (1, 2) and card.kind == "vqa"
    assert tiny.name == "Lab-VQA-Tiny" and tiny.severities == (5,) and tiny.sampling.size == 10
    assert card.datasets[0].options == {"path": "qa.csv"}


@pytest.mark.parametrize(
    "data,message",
    [
        ({"kind": "vqa", "dataset": "x", "metrics": ["a"]}, "lacks 'task'"),
        ({"task": "T", "kind": "poetry", "dataset": "x", "metrics": ["a"]}, "kind 'poetry'"),
        ({"task": "T", "kind": "vqa", "metrics": ["a"]}, "lacks 'dataset'"),
        (
            {"task": "T", "kind": "vqa", "dataset": "x", "metrics": ["a"], "severities": [0, 6]},
            "within 1-5",
        ),
        (
            {"task": "T", "kind": "vqa", "dataset": "x", "metrics": ["a"], "severity_mode": "psnr"},
            "severity_mode",
        ),
        (
            {"task": "T", "kind": "vqa", "dataset": "x", "metrics": ["a"], "colour": 1},
            "unknown keys",
        ),
        ({"task": "T", "kind": "vqa", "dataset": [3], "metrics": ["a"]}, "dataset entry"),
    ],
)
def test_bad_cards_say_which_file_and_what(data, message):
    with pytest.raises(TaskError, match=message) as info:
        parse_card(dict(data), "lab/cards/T.yaml")
    assert "lab/cards/T.yaml" in str(info.value)


def test_unknown_task_suggests_names():
    with pytest.raises(TaskError, match="did you mean MedFMRobust-VQA"):
        get_task("MedFMRobust-VAQ")
