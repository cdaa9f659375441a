"""Grounding: boxes read from the answers models give, their scale, and Acc@IoU / mean IoU."""

from __future__ import annotations

import numpy as np
import pytest

from medfm_robust_plugin.data.sample import Sample
from medfm_robust_plugin.metrics import MetricError, get_metric
from medfm_robust_plugin.metrics.grounding import box_iou, extract_box, image_size

SIZE = (200, 100)  # width, height


@pytest.mark.parametrize(
    "answer, box",
    [
        # pixels
        ("[20, 10, 120, 60]", (20, 10, 120, 60)),
        ("The lesion is at [20.5, 10, 120, 60.5] in the image.", (20.5, 10, 120, 60.5)),
        ("(20, 10, 120, 60)", (20, 10, 120, 60)),
        ("[[20, 10, 120, 60]]", (20, 10, 120, 60)),
        ("(20, 10), (120, 60)", (20, 10, 120, 60)),
        ("from (20,10) to (120,60)", (20, 10, 120, 60)),
        ("<box>20 10 120 60</box>", (20, 10, 120, 60)),
        ("<box>(20,10),(120,60)</box>", (20, 10, 120, 60)),
        ('{"bbox": [20, 10, 120, 60], "label": "tumour"}', (20, 10, 120, 60)),
        ('```json\n[{"bbox_2d": [20, 10, 120, 60]}]\n```', (20, 10, 120, 60)),
        ("{'x1': 20, 'y1': 10, 'x2': 120, 'y2': 60}", (20, 10, 120, 60)),
        ('{"xmin": 20, "ymin": 10, "xmax": 120, "ymax": 60}', (20, 10, 120, 60)),
        ('{"x": 20, "y": 10, "width": 100, "height": 50}', (20, 10, 120, 60)),
        ("x1=20, y1=10, x2=120, y2=60", (20, 10, 120, 60)),
        # fractions of width and height: every value within [0, 1]
        ("[0.1, 0.1, 0.6, 0.6]", (20, 10, 120, 60)),
        # 0-1000: a value beyond the image but within 1000
        ("[100, 100, 600, 600]", (20, 10, 120, 60)),
        ("<box>[[100, 100, 600, 600]]</box>", (20, 10, 120, 60)),
        # Qwen2-VL tags are always 0-1000, even when the numbers would fit as pixels
        ("<|box_start|>(100,100),(600,600)<|box_end|>", (20, 10, 120, 60)),
        (
            "<|object_ref_start|>mass<|object_ref_end|><|box_start|>(50,50),(100,100)<|box_end|>",
            (10, 5, 20, 10),
        ),
        # corners in the wrong order, and boxes beyond the image
        ("[120, 60, 20, 10]", (20, 10, 120, 60)),
        ("[-5, 10, 120, 60]", (0, 10, 120, 60)),
        ("[20, 10, 1500, 60]", (20, 10, 200, 60)),
    ],
)
def test_extract_box_reads_the_formats_models_emit(answer, box):
    assert extract_box(answer, SIZE) == pytest.approx(box)


@pytest.mark.parametrize(
    "answer", ["", "I cannot find the lesion.", "It is 3 cm wide.", "[1, 2, 3]"]
)
def test_extract_box_gives_none_without_a_box(answer):
    assert extract_box(answer, SIZE) is None


def test_per_mille_inside_a_large_image_reads_as_pixels():
    """On a 1200 x 1200 image every 0-1000 value fits, so the prompt's pixels are assumed."""
    assert extract_box("[100, 100, 600, 600]", (1200, 1200)) == (100, 100, 600, 600)


def test_box_iou():
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert box_iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0


def grounding_sample(**kwargs) -> Sample:
    return Sample(
        "g1",
        "mecovqa_g_plus",
        "ct",
        image=np.zeros((100, 200), np.uint8),
        question="Locate the liver lesion.",
        box=(20.0, 10.0, 120.0, 60.0),
        **kwargs,
    )


def test_grounding_metrics_from_answers():
    sample = grounding_sample()
    acc50, acc75, mean_iou = (get_metric(n) for n in ("acc_iou_0.5", "acc_iou_0.75", "mean_iou"))
    exact, shifted, missing = "[20, 10, 120, 60]", "[45, 10, 145, 60]", "no lesion seen"
    assert [mean_iou.score(a, sample) for a in (exact, shifted, missing)] == pytest.approx(
        [1.0, 75 / 125, 0.0]
    )
    assert [acc50.score(a, sample) for a in (exact, shifted, missing)] == [1.0, 1.0, 0.0]
    assert [acc75.score(a, sample) for a in (exact, shifted, missing)] == [1.0, 0.0, 0.0]
    assert acc50.summarize([1.0, 1.0, 0.0]) == pytest.approx(2 / 3)
    assert mean_iou.score((20, 10, 120, 60), sample) == 1.0  # a box given as numbers


def test_image_size_comes_from_meta_before_the_image():
    assert image_size(grounding_sample()) == (200, 100)

    def unreadable():
        raise AssertionError("the image should not be loaded when meta gives its size")

    stated = Sample(
        "g2", "d", "ct", image=unreadable, box=(0, 0, 1, 1), meta={"image_size": [640, 480]}
    )
    assert image_size(stated) == (640, 480)
    # 0-1000 is decided against the stated size: 700 > 640 on x
    assert extract_box("[100, 100, 700, 500]", image_size(stated)) == pytest.approx(
        (64, 48, 448, 240)
    )


def test_a_sample_without_a_box_is_an_error_naming_it():
    sample = Sample("g3", "mecovqa_g_plus", "ct", image=np.zeros((8, 8)), question="?")
    with pytest.raises(MetricError, match="mecovqa_g_plus/g3"):
        get_metric("mean_iou").score("[0, 0, 4, 4]", sample)
