"""Floor baselines: box-otsu on the phantoms, and the three rule-based vision-language answers."""

from __future__ import annotations

import re

import numpy as np
import pytest

from medfm_robust_plugin.data import phantoms
from medfm_robust_plugin.data.sample import Sample, mask_box
from medfm_robust_plugin.models import (
    ModelError,
    PromptableSegmenter,
    VisionLanguageModel,
    load_model,
    resolve,
)
from medfm_robust_plugin.models.baselines import parse_options, salient_box


def dice(prediction: np.ndarray, truth: np.ndarray) -> float:
    return 2 * float((prediction & truth).sum()) / float(prediction.sum() + truth.sum())


@pytest.mark.parametrize("modality", ["dermoscopy", "ct", "mri"])
def test_box_otsu_segments_phantom_lesions(modality):
    segmenter = load_model("baseline:box-otsu")
    scores = []
    for seed in range(4):
        phantom = phantoms.phantom(modality, size=192, seed=seed)
        boxes = [mask_box(mask) for mask in phantom.lesion_masks]
        masks = segmenter.segment(phantom.image, boxes=np.array(boxes))
        assert masks.shape == (len(boxes), 192, 192) and masks.dtype == bool
        scores += [dice(m, truth) for m, truth in zip(masks, phantom.lesion_masks)]
    assert min(scores) > 0.8, scores


@pytest.mark.parametrize("object_value, background_value", [(200, 60), (60, 200)])
def test_box_otsu_finds_bright_and_dark_objects(object_value, background_value):
    image = np.full((80, 100), background_value, np.uint8)
    yy, xx = np.mgrid[:80, :100]
    disc = (yy - 40) ** 2 + (xx - 50) ** 2 < 15**2
    image[disc] = object_value
    image[5:10, 5:95] = object_value  # a second, smaller structure outside the box
    mask = load_model("baseline:box-otsu").segment(image, boxes=[[30, 20, 71, 61]])[0]
    assert dice(mask, disc) > 0.95


def test_box_otsu_needs_boxes_and_handles_none_given():
    segmenter = load_model("baseline:box-otsu")
    assert isinstance(segmenter, PromptableSegmenter)
    image = np.zeros((30, 40), np.uint16)
    assert segmenter.segment(image, boxes=np.zeros((0, 4))).shape == (0, 30, 40)
    flat = segmenter.segment(image, boxes=[[5, 5, 15, 20]])[0]
    assert flat.sum() == 10 * 15  # nothing to separate: the whole box
    with pytest.raises(ModelError, match="box prompts"):
        segmenter.segment(image, points=[[[3, 4]]])


def blob_image() -> np.ndarray:
    """Dark textured background, a large bright blob on the left, a small one on the right."""
    rng = np.random.default_rng(0)
    image = 40 + rng.integers(0, 10, (120, 160)).astype(np.uint8)
    image[30:70, 20:60] = 220
    image[80:95, 120:135] = 220
    return np.repeat(image[..., None], 3, axis=2)


def test_grounding_answers_with_the_box_of_the_largest_salient_region():
    model = load_model("baseline:grounding")
    assert isinstance(model, VisionLanguageModel)
    prompt = "Locate the lesion.\nAnswer with the bounding box as [x1, y1, x2, y2]."
    text = model.generate([([blob_image()], prompt)])[0].text
    assert re.fullmatch(r"\[\d+, \d+, \d+, \d+\]", text)
    box = [int(v) for v in re.findall(r"\d+", text)]
    np.testing.assert_allclose(box, [20, 30, 60, 70], atol=2)


def test_grounding_keeps_to_the_side_the_prompt_names():
    model = load_model("baseline:grounding")
    answer = model.generate([([blob_image()], "Locate the lesion on the right side.")])[0].text
    np.testing.assert_allclose(
        [int(v) for v in re.findall(r"\d+", answer)], [120, 80, 135, 95], atol=2
    )


def test_grounding_without_anything_salient_answers_the_whole_image():
    assert salient_box(np.full((50, 70), 9, np.uint8)) == (0, 0, 70, 50)


def mc_prompt(options: dict[str, str]) -> str:
    lines = "\n".join(f"{k}. {v}" for k, v in options.items())
    return f"Is there a lesion?\n\nOptions:\n{lines}\n\nPlease select the correct answer."


def mc_sample(index: int, options: dict[str, str], answer: str) -> Sample:
    return Sample(f"q{index}", "toy", "ct", np.zeros((4, 4), np.uint8), "Q?", options, answer)


def test_majority_answers_the_most_often_correct_option_text():
    model = load_model("baseline:majority")
    assert model.generate([([blob_image()], mc_prompt({"A": "No", "B": "Yes"}))])[0].text == "A"
    model.fit(
        [
            mc_sample(0, {"A": "Yes", "B": "No"}, "A"),
            mc_sample(1, {"A": "no", "B": "yes"}, "B"),
            mc_sample(2, {"A": "No", "B": "Yes"}, "A"),
            mc_sample(3, {"A": "Left", "B": "Right"}, "B"),
        ]
    )
    answers = model.generate(
        [
            ([blob_image()], mc_prompt({"A": "No", "B": "YES"})),  # yes: 2, no: 1
            ([blob_image()], mc_prompt({"A": "Left", "B": "Right", "C": "Both"})),
            ([blob_image()], mc_prompt({"A": "Small", "B": "Large"})),  # unseen: first
            ([blob_image()], mc_prompt({"A": "Right", "B": "No"})),  # tie: first
            ([blob_image()], "Describe the image."),  # no options
        ]
    )
    assert [a.text for a in answers] == ["B", "B", "A", "A", "A"]


def test_options_are_read_as_one_run_from_A():
    prompt = "Q: which?\nA. first\nB) second\nC: third\nE. stray\nPlease answer."
    assert parse_options(prompt) == {"A": "first", "B": "second", "C": "third"}


def test_template_caption_names_modality_and_coarse_statistics():
    model = load_model("baseline:template-caption")
    ct = phantoms.ct_slice(96, seed=0).image
    skin = phantoms.dermoscopy(96, seed=0).image
    [ct_caption, skin_caption, plain] = [
        g.text
        for g in model.generate(
            [
                ([ct], "Write a concise caption for this CT image."),
                ([skin], "Write a concise caption for this dermoscopy image."),
                ([np.full((20, 20, 3), 250, np.uint8)], "Write a caption."),
            ]
        )
    ]
    assert ct_caption.startswith("CT image in greyscale, mostly dark")
    assert skin_caption.startswith("Dermoscopy image in colour, mid-grey")
    assert plain == "Medical image in greyscale, mostly bright, with low contrast."


def test_template_caption_after_fit_uses_the_most_frequent_caption():
    model = load_model("baseline:template-caption")
    samples = [
        Sample("1", "toy", "ct", np.zeros((4, 4)), answer="Axial CT, no lesion."),
        Sample("2", "toy", "ct", np.zeros((4, 4)), answer="Axial CT, no lesion."),
        Sample("3", "toy", "ct", np.zeros((4, 4)), answer="Axial CT, one lesion."),
        Sample("4", "toy", "mri", np.zeros((4, 4)), answer="Brain MRI."),
    ]
    model.fit(samples)
    image = np.zeros((16, 16), np.uint8)
    texts = [
        g.text
        for g in model.generate(
            [
                ([image], "Caption this CT image."),
                ([image], "Caption this MRI image."),
                ([image], "Caption this image."),
                ([image], "Caption this X-ray image."),  # not fitted: template
            ]
        )
    ]
    assert texts[:3] == ["Axial CT, no lesion.", "Brain MRI.", "Axial CT, no lesion."]
    assert texts[3].startswith("X-ray image in greyscale")


def test_baselines_are_registered_as_floors():
    kinds = {
        "baseline:box-otsu": "segmenter",
        "baseline:grounding": "vlm",
        "baseline:majority": "vlm",
        "baseline:template-caption": "vlm",
    }
    for name, kind in kinds.items():
        spec, model_id = resolve(name)
        assert (spec.name, spec.kind, spec.extra, model_id) == (name, kind, None, None)
        assert load_model(name).name == name


def test_lesion_finder_reads_the_question_kind_and_the_finding():
    from medfm_robust_plugin.models.vqa_floor import question_of

    assert question_of("Is there a hypodense lesion in this image?") == ("presence", "hypodense")
    assert question_of("How many polyps are visible in this image?") == ("count", "polyp")
    assert question_of("On which side of the image is the polyp?") == ("side", "polyp")
    assert question_of("Is the pigmented lesion small or large?") == ("size", "pigmented")
    assert question_of("What imaging modality is this image?") == ("modality", None)
    assert question_of("Describe the image.") == (None, None)


def test_lesion_finder_counts_blobs_and_answers_from_the_image():
    from medfm_robust_plugin.models.vqa_floor import LesionFinderBaseline

    image = np.full((128, 128), 120, np.uint8)
    for x in (30, 90):
        image[50:64, x : x + 14] = 30  # two dark blobs, left and right
    model = LesionFinderBaseline()
    model.detectors["hypodense"] = (-1, 0.1)
    prompt = "How many hypodense lesions are visible in this image?\nA. 1\nB. 2\nC. 0\nD. 3"
    assert model.answer([image], prompt) == "B"
    image[:, 64:] = 120  # the right one is gone
    side = "On which side of the image is the hypodense lesion?\nA. Right\nB. Left"
    assert model.answer([image], side) == "B"
    assert model.answer([np.full((128, 128), 120, np.uint8)], prompt) == "C"


def test_lesion_finder_is_a_floor_that_corruptions_move():
    """Fitted on the clean Mini VQA samples it answers most of them from the pixels, and heavy
    noise and blur cost it accuracy (the demo's VQA curves are not flat)."""
    from medfm_robust_plugin.models.base import load_model
    from medfm_robust_plugin.plan import EvaluationPlan
    from medfm_robust_plugin.tasks import Condition

    plan = EvaluationPlan.from_card("MedFMRobust-Mini-VQA-Lite")
    samples = plan.samples()
    model = load_model("baseline:lesion-finder").fit(samples)

    def accuracy(condition=None):
        return share_right(plan, samples, model, condition)

    clean = accuracy()
    assert clean >= 0.7
    assert accuracy(Condition("gaussian_noise", 5)) < clean - 0.1
    assert accuracy(Condition("defocus_blur", 5)) < clean - 0.1


def test_findings_caption_states_what_the_pixels_show_and_corruptions_move_it():
    from medfm_robust_plugin.models.base import load_model
    from medfm_robust_plugin.plan import EvaluationPlan
    from medfm_robust_plugin.tasks import Condition

    plan = EvaluationPlan.from_card("MedFMRobust-Mini-Caption-Lite")
    samples = plan.samples()
    model = load_model("baseline:findings-caption").fit(samples)
    assert model.wording["ct"] == (
        "Axial CT slice of the abdomen",
        "hypodense lesion",
        "hypodense lesions",
    )

    def exact(condition=None):
        return share_right(plan, samples, model, condition)

    clean = exact()
    assert clean >= 0.5  # the reference caption, word for word, from the pixels alone
    assert exact(Condition("defocus_blur", 5)) < clean - 0.15


def share_right(plan, samples, model, condition=None) -> float:
    """The share of ``samples`` whose answer under ``condition`` is the reference, word for word."""
    views = plan.views()
    right = 0
    for sample in samples:
        image = views.display(views.get(sample, condition))
        prompt = plan.card.render_prompt(sample, (image.shape[1], image.shape[0]))
        right += model.answer([image], prompt) == sample.answer
    return right / len(samples)
