"""FGSM and PGD: torchattacks parity, the epsilon bound, determinism, and attacked runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from medfm_robust_plugin.attacks import (  # noqa: E402
    Attack,
    AttackError,
    fgsm,
    parse_attacks,
    perturb,
    pgd,
)
from medfm_robust_plugin.models.segmenters import (  # noqa: E402
    MedSamSegmenter,
    SamMed2DSegmenter,
    SamSegmenter,
)
from tests.test_segmenters import INPUT_SIZE, tiny_model  # noqa: E402

SEG_TASK = "MedFMRobust-Mini-Seg-Lite"


def tiny_classifier() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 8 * 8, 5),
    ).eval()


def classifier_batch():
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(3, 3, 8, 8, generator=generator)  # torchattacks' [0, 1] images
    labels = torch.tensor([0, 3, 1])
    return images, labels


def our_loss(model, labels):
    """The same cross-entropy on 0-255 pixels (H x W x C per image, batched as N x H x W x C)."""

    def loss(pixels):
        logits = model(pixels.permute(0, 3, 1, 2) / 255.0)
        return torch.nn.functional.cross_entropy(logits, labels)

    return loss


def test_fgsm_equals_torchattacks():
    torchattacks = pytest.importorskip("torchattacks")
    model = tiny_classifier()
    images, labels = classifier_batch()
    # torchattacks needs gradients on, which some harnesses turn off for the whole process
    with torch.enable_grad():
        theirs = torchattacks.FGSM(model, eps=8 / 255)(images, labels)
    ours = fgsm(images.permute(0, 2, 3, 1) * 255, our_loss(model, labels), 8.0)
    assert torch.allclose(ours.permute(0, 3, 1, 2) / 255, theirs, atol=1e-5)
    assert not torch.allclose(theirs, images)  # the attack did move the images


def test_pgd_with_a_fixed_random_start_equals_torchattacks():
    torchattacks = pytest.importorskip("torchattacks")
    model = tiny_classifier()
    images, labels = classifier_batch()
    # images laid out as we lay them out (N x H x W x C): the random start is one uniform draw of
    # that shape, from the global generator there and from a seeded generator here
    images = images.permute(0, 2, 3, 1).contiguous()
    attack = torchattacks.PGD(
        _ChannelsLast(model), eps=6 / 255, alpha=1 / 255, steps=7, random_start=True
    )
    torch.manual_seed(11)
    with torch.enable_grad():
        theirs = attack(images, labels)
    ours = pgd(
        images * 255,
        our_loss(model, labels),
        6.0,
        steps=7,
        step_size=1.0,
        generator=torch.Generator().manual_seed(11),
    )
    assert torch.allclose(ours / 255, theirs, atol=1e-5)
    assert (ours / 255 - images).abs().max() <= 6 / 255 + 1e-6
    assert not torch.allclose(theirs, images)


class _ChannelsLast(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, images):
        return self.model(images.permute(0, 3, 1, 2))


def segmentation_objective(seed: int = 0):
    model = MedSamSegmenter(tiny_model(seed), name="tiny-medsam", device="cpu")
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (40, 48), dtype=np.uint8)
    mask = np.zeros((40, 48), bool)
    mask[10:30, 12:36] = True

    class Sample:
        dataset, id, box = "toy", "1", (12.0, 10.0, 35.0, 29.0)

        def load_mask(self):
            return mask

    return model, model.attack_objective(image, Sample()), image


@pytest.mark.parametrize("name", ["fgsm", "pgd"])
@pytest.mark.parametrize("epsilon", [1, 4, 10])
def test_epsilon_is_respected_exactly_and_the_image_stays_8_bit(name, epsilon):
    _, objective, image = segmentation_objective()
    attacked, params = perturb(Attack(name, steps=3, step_size=2.0), epsilon, objective, "toy/1/x")
    clean = np.repeat(image[..., None], 3, axis=2).astype(np.int16)
    assert attacked.dtype == np.uint8 and attacked.shape == clean.shape
    delta = np.abs(attacked.astype(np.int16) - clean)
    assert delta.max() == params["max_abs_delta"] <= epsilon
    assert params["max_abs_delta"] == epsilon  # sign steps move most pixels by the full epsilon
    assert params["attack"] == name and params["epsilon"] == epsilon
    assert 0 < params["ssim"] <= 1


def test_pgd_is_deterministic_per_item_and_differs_between_items():
    _, objective, _ = segmentation_objective()
    attack = Attack("pgd", steps=2)
    first, params = perturb(attack, 4, objective, "toy/1/pgd_eps4")
    again, params_again = perturb(attack, 4, objective, "toy/1/pgd_eps4")
    other, _ = perturb(attack, 4, objective, "toy/2/pgd_eps4")
    assert np.array_equal(first, again) and params == params_again
    assert not np.array_equal(first, other)
    reseeded, _ = perturb(Attack("pgd", steps=2, seed=1), 4, objective, "toy/1/pgd_eps4")
    assert not np.array_equal(first, reseeded)


def test_attacks_switch_gradients_on_when_the_process_has_them_off():
    _, objective, _ = segmentation_objective()
    with torch.no_grad():  # as importing VLMEvalKit leaves the whole process
        _, params = perturb(Attack("pgd", steps=2), 4, objective, "toy/1/pgd_eps4")
    assert params["loss_attacked"] > params["loss_clean"]


def test_the_attacks_raise_the_segmentation_loss():
    _, objective, _ = segmentation_objective()
    _, fgsm_params = perturb(Attack("fgsm"), 8, objective, "toy/1/fgsm_eps8")
    _, pgd_params = perturb(Attack("pgd", steps=10), 8, objective, "toy/1/pgd_eps8")
    assert fgsm_params["loss_attacked"] > fgsm_params["loss_clean"]
    assert pgd_params["loss_attacked"] > pgd_params["loss_clean"]


@pytest.mark.parametrize("family", ["sam", "medsam", "sam-med2d"])
def test_differentiable_preprocessing_follows_each_family(family):
    import transformers

    processor = transformers.SamProcessor(
        image_processor=transformers.SamImageProcessorPil(
            size={"longest_edge": INPUT_SIZE},
            pad_size={"height": INPUT_SIZE, "width": INPUT_SIZE},
            mask_size={"longest_edge": INPUT_SIZE // 4},
            mask_pad_size={"height": INPUT_SIZE // 4, "width": INPUT_SIZE // 4},
        )
    )
    segmenter = {
        "sam": lambda: SamSegmenter(tiny_model(), processor, name="sam", device="cpu"),
        "medsam": lambda: MedSamSegmenter(tiny_model(), name="medsam", device="cpu"),
        "sam-med2d": lambda: SamMed2DSegmenter(tiny_model(adapters=True), name="s", device="cpu"),
    }[family]()
    from medfm_robust_plugin.models.segmenters import read_prompts

    rng = np.random.default_rng(0)
    for shape in [(48, 40, 3), (100, 130, 3)]:
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        image = image.astype(np.float32) * 0.3 + np.linspace(0, 170, shape[1])[None, :, None]
        image = image.astype(np.uint8)
        reference = segmenter.model_frame(image, read_prompts(boxes=[[2, 2, 9, 9]]))
        expected = reference.pixel_values().float()
        ours = segmenter.pixels_from_rgb(torch.as_tensor(image, dtype=torch.float32))
        spread = float(expected.max() - expected.min())
        # the torch resizes approximate PIL's and OpenCV's: within 1.5 % of the value range
        assert ours.shape == expected.shape
        assert float((ours - expected).abs().mean()) < 0.015 * spread, shape


def test_attacks_and_epsilons_are_checked():
    attacks, epsilons = parse_attacks(["pgd", "FGSM"], None)
    assert [a.name for a in attacks] == ["pgd", "fgsm"] and epsilons == (2, 4, 6, 8, 10)
    assert parse_attacks(None, [4]) == ((), ())
    with pytest.raises(AttackError, match="unknown attack 'cw'"):
        parse_attacks(["cw"], [2])
    with pytest.raises(AttackError, match="from 1 to 255"):
        parse_attacks(["pgd"], [0, 300])
    with pytest.raises(AttackError, match="steps"):
        Attack("pgd", steps=0)


# ------------------------------------------------------------------ attacked runs


@pytest.fixture(scope="module")
def medsam_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-medsam")
    tiny_model().save_pretrained(path)
    return path


def run_cli(*args):
    from click.testing import CliRunner

    from medfm_robust_plugin.cli import main

    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def read_records(run_dir):
    return [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]


def test_an_attacked_run_records_resumes_and_reports(medsam_dir, tmp_path):
    out = tmp_path / "runs"
    args = [
        "run",
        "--task",
        SEG_TASK,
        "--model",
        f"medsam:{medsam_dir}",
        "--corruptions",
        "gaussian_noise",
        "--severities",
        "1,5",
        "--limit",
        "3",
        "--attacks",
        "fgsm,pgd",
        "--epsilons",
        "2,8",
        "--attack-steps",
        "3",
        "--workers",
        "1",  # corrupted views from a worker process; attacked ones start from the clean view here
        "--out",
        str(out),
        "--model-option",
        "device=cpu",
    ]
    result = run_cli(*args)
    assert result.exit_code == 0, result.output
    (run_dir,) = [p.parent for p in out.rglob("records.jsonl")]
    records = read_records(run_dir)
    attacked = [r for r in records if r["family"] == "adversarial"]
    samples = {r["sample_id"] for r in records}
    assert len(samples) == 3
    assert sorted({r["condition"] for r in attacked}) == [
        "fgsm_eps2",
        "fgsm_eps8",
        "pgd_eps2",
        "pgd_eps8",
    ]
    assert len(attacked) == 4 * 3 and not any(r["error"] for r in records)
    for record in attacked:
        params = record["params"]
        assert params["attack"] == record["corruption"]
        assert params["epsilon"] == record["severity"]
        assert params["max_abs_delta"] <= params["epsilon"]
        assert record["ssim"] == params["ssim"] and record["score"]["dice"] is not None
        if record["corruption"] == "pgd":
            assert params["steps"] == 3 and params["random_start"] is True
    summary = json.loads((run_dir / "summary.json").read_text())
    assert "adversarial" in summary["by_family"]
    assert sorted(summary["by_family"]["adversarial"]["corruptions"]) == ["fgsm", "pgd"]
    assert "pgd" not in summary["overall"]["corruptions"]  # the headline is the corruptions'

    # a rerun finds everything done and attacks nothing again
    again = run_cli(*args)
    assert again.exit_code == 0 and "0 records written" in again.output
    assert len(read_records(run_dir)) == len(records)
    # other attack options are another run
    changed = run_cli(*[a if a != "3" else "4" for a in args])
    assert changed.exit_code != 0 and "attacks" in changed.output

    report = run_cli("report", str(run_dir), "--out", str(tmp_path / "report"))
    assert report.exit_code == 0, report.output
    text = (tmp_path / "report" / "report.md").read_text()
    assert "pgd" in text and "adversarial" in text and "Attack drop" in text
    import csv

    with open(tmp_path / "report" / "headline.csv") as handle:
        headline = list(csv.DictReader(handle))
    assert all(row["adversarial_drop"] not in ("", None) for row in headline)
    expected = summary["by_family"]["adversarial"]["absolute_drop"]["dice"]
    dice = next(row for row in headline if row["metric"] == "dice")
    assert float(dice["adversarial_drop"]) == pytest.approx(expected)
    # attacks are bounded by epsilon, not by an SSIM band: never listed as off their band
    levels = "".join(p.read_text() for p in (tmp_path / "report").glob("levels_*.csv"))
    assert "pgd" not in levels and "fgsm" not in levels


def test_an_api_model_cannot_be_attacked(tmp_path, monkeypatch):
    from medfm_robust_plugin.models.base import load_model
    from medfm_robust_plugin.runner import Run, RunConfig, RunError

    # a real API model object, pointed at a closed local port: it is refused before any call
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    api = load_model("gpt-4o", base_url="http://127.0.0.1:9/v1")

    run = Run(
        RunConfig(
            task="MedFMRobust-Mini-VQA-Lite",
            model="gpt-4o",
            out=str(tmp_path),
            limit=1,
            attacks=["pgd"],
            epsilons=[4],
        )
    )
    with pytest.raises(RunError, match="cannot be attacked: an API model returns no gradients"):
        run.execute(api)


# ------------------------------------------------------------------ vision-language models

CPU = {"device": "cpu", "dtype": "float32"}


@pytest.fixture(scope="module")
def tiny_vlms(tmp_path_factory):
    from medfm_robust_plugin.models.base import load_model
    from tests.tiny_models import build_tiny_gemma3, build_tiny_llava

    gemma = build_tiny_gemma3(tmp_path_factory.mktemp("tiny") / "gemma3")
    llava = build_tiny_llava(tmp_path_factory.mktemp("tiny") / "llava")
    gemma3 = load_model(f"hf:{gemma}", **CPU)
    # Gemma 3 starts its image projection at zero: give the tiny one weights, so that the answer
    # depends on the image (as in a trained model) and the attack has a gradient to follow
    projection = gemma3.model.model.multi_modal_projector.mm_input_projection_weight
    with torch.no_grad():
        projection.copy_(torch.randn(projection.shape, generator=torch.Generator().manual_seed(0)))
    return {"gemma3": gemma3, "llava": load_model(f"llava-med:{llava}", **CPU)}


class VqaSample:
    dataset, id, answer, box = "toy", "7", "B", None


@pytest.mark.parametrize("name", ["gemma3", "llava"])
def test_a_vlm_is_attacked_in_its_input_frame_against_the_answer(tiny_vlms, name):
    vlm = tiny_vlms[name]
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (50, 61, 3), dtype=np.uint8)
    objective = vlm.attack_objective(image, VqaSample(), prompt="Which side? A. left B. right")
    size = vlm.processor.image_processor.size
    side = size.get("height") or size.get("shortest_edge")
    assert tuple(objective.pixels.shape) == (side, side, 3)  # the processor's frame
    attacked, params = perturb(Attack("pgd", steps=4), 8, objective, "toy/7/pgd_eps8")
    assert params["max_abs_delta"] <= 8 and attacked.shape == (side, side, 3)
    assert params["loss_attacked"] > params["loss_clean"]  # the right answer became less likely
    # the model reads the attacked image as the attack saw it: its processor keeps it as it is
    answer = vlm.generate([([attacked], "Which side? A. left B. right")], max_new_tokens=3)
    assert isinstance(answer[0].text, str)


def test_the_reference_answer_of_a_grounding_sample_is_its_box():
    from medfm_robust_plugin.models.vlm_attack import reference_answer

    class Grounding:
        dataset, id, answer, box = "toy", "3", None, (10.2, 4.0, 30.7, 22.0)

    assert reference_answer(Grounding()) == "[10, 4, 31, 22]"
    Grounding.box = None
    with pytest.raises(AttackError, match="toy/3: no reference answer"):
        reference_answer(Grounding())


def test_an_attacked_vqa_run_with_a_local_vlm(tiny_vlms, tmp_path):
    from medfm_robust_plugin.runner import Run, RunConfig

    run = Run(
        RunConfig(
            task="MedFMRobust-Mini-VQA-Lite",
            model="hf:tiny",
            out=str(tmp_path),
            limit=2,
            corruptions=["gaussian_noise"],
            severities=[3],
            attacks=["fgsm"],
            epsilons=[4],
            workers=0,
            max_new_tokens=2,
        )
    )
    result = run.execute(tiny_vlms["gemma3"])
    assert result.failed == 0
    records = read_records(run.run_dir)
    attacked = [r for r in records if r["condition"] == "fgsm_eps4"]
    assert len(attacked) == 2
    for record in attacked:
        width, height = record["params"]["image_size"]  # the presented image the prompt names
        assert width > 0 and height > 0
        assert record["params"]["max_abs_delta"] <= 4
        assert record["params"]["loss_attacked"] >= record["params"]["loss_clean"]
