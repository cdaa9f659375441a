"""MedFM-Robust-Mini: labels follow exactly from how each phantom was drawn."""

from __future__ import annotations

from collections import Counter

import numpy as np

from medfm_robust_plugin.data.mini import MODALITIES, MiniSuite, build_cases, caption
from medfm_robust_plugin.data.sample import mask_box

MINI = MiniSuite()


def test_size_and_modalities():
    result = MINI.load(task="vqa")
    assert 100 <= len(result.samples) <= 300 and not result.skipped
    counts = Counter(s.modality for s in result.samples)
    assert set(counts) == set(MODALITIES) and len(set(counts.values())) == 1
    assert len({s.id for s in result.samples}) == len(result.samples)


def test_generation_is_deterministic():
    a = MINI.load(task="segmentation").samples[7]
    b = MiniSuite().load(task="segmentation").samples[7]
    assert a.id == b.id and a.box == b.box
    np.testing.assert_array_equal(a.load_image(), b.load_image())
    np.testing.assert_array_equal(a.load_mask(), b.load_mask())


def test_dtypes_are_those_of_the_modality():
    dtypes = {s.modality: s.load_image().dtype for s in MINI.load(task="caption").samples[::40]}
    assert dtypes == {
        "ct": np.int16,
        "mri": np.float32,
        "xray": np.uint16,
        "dermoscopy": np.uint8,
        "endoscopy": np.uint8,
    }


def test_segmentation_masks_and_boxes_agree_and_sit_on_their_side():
    for sample in MINI.load(task="segmentation").samples:
        mask = sample.load_mask()
        assert mask.shape == sample.load_image().shape[:2] and mask.any()
        assert mask_box(mask) == sample.box
        centre_x = (sample.box[0] + sample.box[2]) / 2
        assert (centre_x < mask.shape[1] / 2) == (sample.meta["side"] == "left"), sample.id


def test_vqa_answers_follow_from_the_geometry():
    cases = {c.id: c for c in build_cases()}
    lesions = {s.id: s for s in MINI.load(task="segmentation").samples}
    for sample in MINI.load(task="vqa").samples:
        case = cases[sample.id]
        answer = sample.options[sample.answer]
        question = sample.question
        if question.startswith("How many"):
            assert answer == str(len(case.lesions))
        elif question.startswith("Is there"):
            assert answer == ("Yes" if case.lesions else "No")
        elif question.startswith("On which side"):
            # the drawn lesion is where the answer says
            assert answer.lower() == lesions[f"{case.id}-lesion0"].meta["side"]
        elif question.startswith("Is the"):
            assert answer.lower() == case.sizes[0]
        else:
            assert question.startswith("What imaging modality")
            assert answer.lower().startswith(case.modality[:2]) or answer == "X-ray"
        assert sample.answer in sample.options and len(sample.options) >= 2


def test_captions_state_number_and_side():
    for case in build_cases(per_modality=8):
        text = caption(case)
        count = len(case.lesions)
        assert ("no focal" in text) == (count == 0)
        if count == 1:
            assert f"{case.sides()[0]} side" in text and case.sizes[0] in text


def test_grounding_boxes_lie_inside_the_image():
    for sample in MINI.load(task="grounding").samples:
        x1, y1, x2, y2 = sample.box
        assert 0 <= x1 < x2 <= 128 and 0 <= y1 < y2 <= 128
        assert "Locate" in sample.question
