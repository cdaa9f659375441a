"""Fine-tuning the SAM family with the paper's six strategies, on the tiny random-weight SAM."""

from __future__ import annotations

import json
from contextlib import nullcontext

import numpy as np
import pytest
import torch

pytest.importorskip("peft")

from medfm_robust_plugin.finetune.run import (  # noqa: E402
    CHECKPOINT,
    RUN_FILE,
    TUNED_FILE,
    FinetuneConfig,
    finetune,
    split_ids,
)
from medfm_robust_plugin.finetune.strategies import (  # noqa: E402
    STRATEGIES,
    FinetuneError,
    StrategyOptions,
    apply_strategy,
    parameter_counts,
)
from medfm_robust_plugin.finetune.training import batch_loss, jittered_box  # noqa: E402
from medfm_robust_plugin.models import load_model  # noqa: E402
from medfm_robust_plugin.models.segmenters import MedSamSegmenter, SamMed2DSegmenter  # noqa: E402
from tests.test_segmenters import tiny_model  # noqa: E402

TASK = "MedFMRobust-Mini-Seg"
OPTIONS = StrategyOptions(encoder_blocks=1, lora_rank=2, lora_alpha=4)


def expected_trainable(name: str, strategy: str) -> bool:
    """Which parameters of the tiny SAM (two encoder blocks) each strategy trains."""
    return {
        "full": True,
        "decoder": name.startswith("mask_decoder."),
        "decoder-prompt": name.startswith(("mask_decoder.", "prompt_encoder.")),
        "encoder-partial": name.startswith(
            ("vision_encoder.layers.1.", "vision_encoder.neck.", "mask_decoder.")
        ),
        "adapter": ".adapter." in name,
        "lora": ".lora_" in name,
    }[strategy]


def image_and_mask(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)
    mask = np.zeros((48, 40), bool)
    mask[10:30, 8:25] = True
    return image, mask


def one_step(segmenter, strategy: str) -> tuple[dict, dict]:
    """Apply ``strategy``, take one AdamW step; the parameters before and after."""
    model = apply_strategy(segmenter.model, strategy, OPTIONS, seed=0)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-2, weight_decay=0.01)
    image, mask = image_and_mask()
    loss = batch_loss(
        segmenter,
        [(image, mask)],
        [jittered_box(mask, np.random.default_rng(0))],
        autocast=nullcontext,
    )
    loss.backward()
    optimizer.step()
    return before, dict(model.named_parameters())


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_one_step_changes_exactly_the_parameters_of_the_strategy(strategy):
    segmenter = MedSamSegmenter(tiny_model(), name="tiny-medsam", device="cpu")
    before, after = one_step(segmenter, strategy)
    trainable = {n for n, p in after.items() if p.requires_grad}
    assert trainable == {n for n in after if expected_trainable(n, strategy)}
    assert trainable, "a strategy trains something"
    for name, parameter in after.items():
        if name not in trainable:
            assert torch.equal(parameter, before[name]), f"frozen {name} changed"
        elif parameter.grad is not None:  # in the loss's graph: AdamW moved it
            assert not torch.equal(parameter, before[name]), f"trainable {name} did not change"
    changed = {n for n in trainable if not torch.equal(after[n], before[n])}
    # each part the strategy names really learns (not only, say, the decoder of encoder-partial)
    groups = {
        "decoder-prompt": ("prompt_encoder.", "mask_decoder."),
        "encoder-partial": ("vision_encoder.layers.1.", "vision_encoder.neck.", "mask_decoder."),
    }.get(strategy, ("",))
    for group in groups:
        assert any(n.startswith(group) for n in changed), f"nothing under {group} changed"


def test_trainable_parameter_counts_are_ordered():
    counts = {
        strategy: parameter_counts(apply_strategy(tiny_model(), strategy, OPTIONS))
        for strategy in STRATEGIES
    }
    trainable = {s: c["trainable"] for s, c in counts.items()}
    assert trainable["decoder"] < trainable["decoder-prompt"] < trainable["encoder-partial"]
    assert trainable["encoder-partial"] < trainable["full"] == counts["full"]["total"]
    for small in ("adapter", "lora"):
        assert 0 < trainable[small] < trainable["decoder"] / 10
        assert counts[small]["total"] == counts["full"]["total"] + trainable[small]


def test_adapter_strategy_on_sam_med2d_trains_its_own_adapters():
    model = tiny_model(adapters=True)
    total = parameter_counts(model)["total"]
    segmenter = SamMed2DSegmenter(model, name="tiny-sam-med2d", device="cpu")
    before, after = one_step(segmenter, "adapter")
    assert parameter_counts(segmenter.model)["total"] == total  # no second adapter added
    changed = {n for n in after if not torch.equal(after[n], before[n])}
    assert changed and all(".adapter." in n for n in changed)
    assert any(n.endswith("adapter.spatial_down.weight") for n in changed)


def test_unknown_strategy_and_bad_block_count_are_refused():
    with pytest.raises(FinetuneError, match="unknown strategy 'head'"):
        apply_strategy(tiny_model(), "head", OPTIONS)
    with pytest.raises(FinetuneError, match="--encoder-blocks 3.*2 blocks"):
        apply_strategy(tiny_model(), "encoder-partial", StrategyOptions(encoder_blocks=3))


def test_split_is_deterministic_disjoint_and_independent_of_order():
    ids = [f"case-{i:02d}" for i in range(20)]
    split = split_ids(ids, seed=3, val_fraction=0.25, eval_fraction=0.3, limit=None)
    again = split_ids(ids[::-1], seed=3, val_fraction=0.25, eval_fraction=0.3, limit=None)
    assert split == again
    assert [len(split[k]) for k in ("held_out", "train", "validation")] == [6, 10, 4]
    assert sorted(sum(split.values(), [])) == ids
    other = split_ids(ids, seed=4, val_fraction=0.25, eval_fraction=0.3, limit=None)
    assert other["held_out"] != split["held_out"]
    limited = split_ids(ids, seed=3, val_fraction=0.25, eval_fraction=0.3, limit=4)
    assert limited["held_out"] == split["held_out"]  # a limit never eats into the held-out part
    assert len(limited["train"]) + len(limited["validation"]) == 4


@pytest.fixture()
def base_dir(tmp_path):
    path = tmp_path / "base"
    tiny_model().save_pretrained(path)
    return path


def config(base_dir, out, strategy="decoder", epochs=2, family="medsam") -> FinetuneConfig:
    return FinetuneConfig(
        model=f"{family}:{base_dir}",
        strategy=strategy,
        task=TASK,
        out=str(out),
        epochs=epochs,
        lr=1e-3,
        batch_size=2,
        limit=5,
        device="cpu",
        options=OPTIONS,
    )


def test_resume_after_a_kill_gives_the_weights_of_an_uninterrupted_run(
    base_dir, tmp_path, monkeypatch
):
    from safetensors.torch import load_file

    whole = finetune(config(base_dir, tmp_path / "whole", epochs=3))

    from medfm_robust_plugin.finetune import training

    original = training.train_epoch

    def killed_in_epoch_3(*args, epoch, **kwargs):
        if epoch == 3:
            raise KeyboardInterrupt
        return original(*args, epoch=epoch, **kwargs)

    monkeypatch.setattr(training, "train_epoch", killed_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        finetune(config(base_dir, tmp_path / "killed", epochs=3))
    monkeypatch.setattr(training, "train_epoch", original)
    with pytest.raises(FinetuneError, match="--resume"):
        finetune(config(base_dir, tmp_path / "killed", epochs=3))
    resumed = finetune(config(base_dir, tmp_path / "killed", epochs=3), resume=True)

    assert resumed["history"] == whole["history"]
    assert [e["epoch"] for e in resumed["history"]] == [1, 2, 3]
    last = {
        name: torch.load(tmp_path / run / CHECKPOINT, weights_only=True)["tuned"]
        for name, run in (("whole", "whole"), ("resumed", "killed"))
    }
    assert last["whole"].keys() == last["resumed"].keys()
    for key in last["whole"]:
        assert torch.equal(last["whole"][key], last["resumed"][key]), key
    best = [load_file(tmp_path / run / TUNED_FILE) for run in ("whole", "killed")]
    assert all(torch.equal(best[0][k], best[1][k]) for k in best[0])
    # the weights did move in training
    start = dict(tiny_model().named_parameters())
    assert any(not torch.equal(start[k], v) for k, v in last["whole"].items())


def test_resume_with_other_settings_is_refused(base_dir, tmp_path):
    finetune(config(base_dir, tmp_path / "run", epochs=1))
    changed = config(base_dir, tmp_path / "run", epochs=2)
    changed.lr = 5e-4
    with pytest.raises(FinetuneError, match="changed: lr"):
        finetune(changed, resume=True)


@pytest.mark.parametrize(
    "family,strategy", [("sam", "lora"), ("medsam", "adapter"), ("medsam", "full")]
)
def test_output_directory_loads_as_a_model_of_its_family(base_dir, tmp_path, family, strategy):
    from safetensors.torch import load_file

    out = tmp_path / "tuned"
    record = finetune(config(base_dir, out, strategy=strategy, epochs=1, family=family))
    saved = json.loads((out / RUN_FILE).read_text())
    assert saved["parameters"] == record["parameters"]
    assert saved["parameters"]["trainable"] > 0
    model = load_model(f"{family}:{out}", device="cpu")
    assert type(model).__name__ == {"sam": "SamSegmenter", "medsam": "MedSamSegmenter"}[family]
    weights = dict(model.model.named_parameters())
    tuned = load_file(out / TUNED_FILE)
    assert tuned and all(torch.equal(weights[k], v) for k, v in tuned.items())
    if strategy == "full":
        base = dict(tiny_model().named_parameters())
        assert any(not torch.equal(base[k], v) for k, v in tuned.items())
    assert model.finetuned_sample_ids == set(record["samples"]["train"]) | set(
        record["samples"]["validation"]
    )
    masks = model.segment(np.full((40, 52), 90, np.uint8), boxes=[[4, 5, 30, 33], [0, 0, 51, 39]])
    assert masks.shape == (2, 40, 52) and masks.dtype == bool


def test_a_run_refuses_the_samples_the_model_was_trained_on(base_dir, tmp_path):
    from medfm_robust_plugin.runner import Run, RunConfig, RunError

    out = tmp_path / "tuned"
    record = finetune(config(base_dir, out, epochs=1))
    model = load_model(f"medsam:{out}", device="cpu")
    trained = record["samples"]["train"][0]
    run = Run(RunConfig(task=TASK, model=f"medsam:{out}", out=str(tmp_path / "runs")))
    assert trained in {s.id for s in run.samples()}
    with pytest.raises(RunError, match=f"fine-tuned on .*{trained}|fine-tuned on"):
        run.execute(model)
    assert not (run.run_dir / "records.jsonl").exists()


def test_the_command_prints_counts_trains_and_refuses_to_overwrite(base_dir, tmp_path):
    from click.testing import CliRunner

    from medfm_robust_plugin.cli import main

    out = tmp_path / "cli"
    args = [
        "finetune",
        "--model",
        f"sam:{base_dir}",
        "--strategy",
        "decoder-prompt",
        "--task",
        TASK,
        "--out",
        str(out),
        "--epochs",
        "1",
        "--limit",
        "3",
        "--device",
        "cpu",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    record = json.loads((out / RUN_FILE).read_text())
    counts = record["parameters"]
    assert f"decoder-prompt: {counts['trainable']:,} trainable of {counts['total']:,}" in (
        result.output.replace("\n", " ")
    )
    assert "epoch 1: loss" in result.output and (out / TUNED_FILE).is_file()
    assert [len(record["samples"][k]) for k in ("train", "validation")] == [2, 1]
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 1 and "--resume" in again.output
    bad = CliRunner().invoke(main, [*args[:3], "--strategy", "head", *args[5:]])
    assert bad.exit_code == 2 and "head" in bad.output


@pytest.mark.parametrize("strategy", ["adapter", "lora"])
def test_sam_med2d_checkpoint_fine_tunes_and_loads_back(tmp_path, strategy):
    from safetensors.torch import load_file

    from medfm_robust_plugin.models.sam_convert import hf_to_original

    checkpoint = tmp_path / "sam-med2d_b.pth"
    torch.save({"model": hf_to_original(tiny_model(adapters=True).state_dict())}, checkpoint)
    out = tmp_path / "tuned"
    record = finetune(config(checkpoint, out, strategy=strategy, epochs=1, family="sam-med2d"))
    assert record["base_model_id"] == str(checkpoint)
    model = load_model(f"sam-med2d:{out}", device="cpu")
    assert isinstance(model, SamMed2DSegmenter)
    weights = dict(model.model.named_parameters())
    tuned = load_file(out / TUNED_FILE)
    marker = ".adapter." if strategy == "adapter" else ".lora_"
    assert tuned and all(marker in k and torch.equal(weights[k], v) for k, v in tuned.items())
    assert model.segment(np.full((30, 30), 50, np.uint8), boxes=[[3, 3, 20, 25]]).shape == (
        1,
        30,
        30,
    )


def test_a_run_can_skip_the_fine_tuned_samples_and_scores_the_others(base_dir, tmp_path):
    from click.testing import CliRunner

    from medfm_robust_plugin.cli import main
    from medfm_robust_plugin.runner import read_records

    out = tmp_path / "tuned"
    record = finetune(config(base_dir, out, epochs=1))
    seen = set(record["samples"]["train"]) | set(record["samples"]["validation"])
    args = [
        "run",
        "--task",
        TASK,
        "--model",
        f"medsam:{out}",
        "--out",
        str(tmp_path / "runs"),
        "--corruptions",
        "brightness",
        "--severities",
        "1",
        "--workers",
        "0",
    ]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 1 and "--skip-finetuned-samples" in refused.output
    result = CliRunner().invoke(main, [*args, "--limit", "3", "--skip-finetuned-samples"])
    assert result.exit_code == 0, result.output
    records = list(read_records(next((tmp_path / "runs").glob("*/*"))))
    scored = {r["sample_id"] for r in records}
    assert len(scored) == 3 and not scored & seen
    assert {r["condition"] for r in records} >= {"clean"}


def test_bad_options_are_refused_saying_what_to_do(base_dir, tmp_path):
    with pytest.raises(FinetuneError, match="SAM's are qkv, proj"):
        apply_strategy(tiny_model(), "lora", StrategyOptions(lora_targets=("q_proj",)))
    bf16 = config(base_dir, tmp_path / "bf16", epochs=1)
    bf16.bf16 = True
    with pytest.raises(FinetuneError, match="--bf16 needs a CUDA device"):
        finetune(bf16)
    with pytest.raises(FinetuneError, match="--eval-fraction 1.0 must be in"):
        split_ids(["a", "b"], seed=0, val_fraction=0.2, eval_fraction=1.0, limit=None)
    with pytest.raises(FinetuneError, match="fine-tuning works on the SAM family"):
        finetune(FinetuneConfig("baseline:box-otsu", "decoder", TASK, str(tmp_path / "x")))


def test_training_works_where_a_harness_turned_gradients_off_for_the_process():
    """VLMEvalKit's import calls torch.set_grad_enabled(False) for good; training must not care."""
    segmenter = MedSamSegmenter(tiny_model(), name="tiny-medsam", device="cpu")
    previous = torch.is_grad_enabled()
    torch.set_grad_enabled(False)
    try:
        before, after = one_step(segmenter, "decoder")
    finally:
        torch.set_grad_enabled(previous)
    changed = [n for n, p in after.items() if not torch.equal(before[n], p.detach())]
    assert changed and all("mask_decoder" in n for n in changed)


def test_box_jitter_is_an_option_and_is_checked(base_dir, tmp_path):
    from medfm_robust_plugin.finetune.training import box_from_mask, jittered_box

    mask = np.zeros((100, 80), bool)
    mask[30:60, 20:50] = True
    rng = np.random.default_rng(0)
    assert np.array_equal(jittered_box(mask, rng, 0.0), box_from_mask(mask))
    loose = np.array([jittered_box(mask, rng, 0.2) for _ in range(50)])
    tight = box_from_mask(mask)
    assert (loose[:, :2] <= tight[:2]).all() and (loose[:, 2:] >= tight[2:]).all()
    assert (tight[:2] - loose[:, :2]).max() > 10  # up to 20 px on a 100 px image
    bad = config(base_dir, tmp_path / "bad", epochs=1)
    bad.box_jitter = 0.7
    with pytest.raises(FinetuneError, match="box-jitter"):
        finetune(bad)
    loose_run = config(base_dir, tmp_path / "loose", epochs=1)
    loose_run.box_jitter = 0.1
    record = finetune(loose_run)
    assert record["box_jitter"] == 0.1
