"""Segmentation metrics: Dice and IoU by hand, empty-mask conventions, NSD and HD95 against MONAI."""

from __future__ import annotations

import numpy as np
import pytest

from medfm_robust_plugin.data.sample import Sample
from medfm_robust_plugin.metrics import MetricError, get_metric
from medfm_robust_plugin.metrics.segmentation import (
    dice,
    hausdorff_95,
    iou,
    normalized_surface_dice,
    surface,
)


def square(top: int, left: int, side: int, shape=(32, 32)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[top : top + side, left : left + side] = True
    return mask


def test_dice_and_iou_by_hand():
    truth = square(4, 4, 10)  # 100 pixels
    prediction = square(4, 9, 10)  # shifted right by 5: 50 shared
    assert dice(prediction, truth) == pytest.approx(2 * 50 / 200)
    assert iou(prediction, truth) == pytest.approx(50 / 150)
    assert dice(truth, truth) == iou(truth, truth) == 1.0


def test_empty_mask_conventions():
    empty, lesion = np.zeros((16, 16), bool), square(2, 2, 4, (16, 16))
    for metric in (dice, iou, normalized_surface_dice):
        assert metric(empty, empty) == 1.0  # rightly found nothing
        assert metric(lesion, empty) == metric(empty, lesion) == 0.0
    assert hausdorff_95(empty, empty) == 0.0
    assert hausdorff_95(empty, lesion) == pytest.approx(np.hypot(16, 16))


def test_surface_is_the_inner_boundary_and_the_image_edge_counts_as_background():
    corner = surface(square(0, 0, 4, (8, 8)))  # a 4 x 4 square in the image's corner
    assert corner.sum() == 12  # all but its 2 x 2 core, the rows and columns on the edge included
    assert not corner[1:3, 1:3].any()


def test_nsd_and_hd95_by_hand():
    truth = square(8, 8, 10)
    shifted = square(8, 11, 10)  # 3 pixels to the right
    assert hausdorff_95(truth, truth) == 0.0
    assert normalized_surface_dice(truth, truth) == 1.0
    # The left and right edges are 3 pixels apart, beyond a 2-pixel tolerance, within 3.
    assert normalized_surface_dice(truth, shifted, tolerance=3) == 1.0
    assert normalized_surface_dice(truth, shifted, tolerance=2) < 1.0
    assert hausdorff_95(truth, shifted) == pytest.approx(3.0)


def test_nsd_and_hd95_match_monai():
    import cv2 as cv2
    import monai.metrics as monai_metrics
    import torch as torch

    rng = np.random.default_rng(0)
    for _ in range(12):
        h, w = (int(v) for v in rng.integers(24, 80, 2))
        a, b = np.zeros((h, w), np.uint8), np.zeros((h, w), np.uint8)
        cv2.circle(
            a, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(3, 25)), 1, -1
        )
        axes = (int(rng.integers(3, 25)), int(rng.integers(3, 25)))
        cv2.ellipse(b, (int(rng.integers(0, w)), int(rng.integers(0, h))), axes, 0, 0, 360, 1, -1)
        a, b = a.astype(bool), b.astype(bool)

        def one_hot(mask):
            return torch.from_numpy(np.stack([~mask, mask])[None].astype(np.float32))

        nsd = monai_metrics.compute_surface_dice(one_hot(a), one_hot(b), class_thresholds=[2.0])
        hd = monai_metrics.compute_hausdorff_distance(one_hot(a), one_hot(b), percentile=95)
        assert normalized_surface_dice(a, b) == pytest.approx(nsd.item(), abs=1e-6)
        assert hausdorff_95(a, b) == pytest.approx(hd.item(), abs=1e-4)  # MONAI is float32


def seg_sample(mask: np.ndarray) -> Sample:
    return Sample("s1", "busi", "ultrasound", image=np.zeros(mask.shape, np.uint8), mask=mask)


def test_registered_metrics_score_predictions_against_the_sample_mask():
    truth = square(4, 4, 10)
    sample = seg_sample(truth)
    prediction = square(4, 9, 10)
    assert get_metric("dice").score(prediction, sample) == pytest.approx(0.5)
    assert get_metric("iou").score(prediction, sample) == pytest.approx(1 / 3)
    assert get_metric("iou").score(prediction[None], sample) == pytest.approx(1 / 3)  # 1 x H x W
    assert get_metric("dice").score(prediction.astype(np.float32), sample) == pytest.approx(0.5)
    assert get_metric("nsd").score(truth, sample) == 1.0
    hd95 = get_metric("hd95")
    assert not hd95.higher_is_better
    assert hd95.score(square(4, 9, 10), sample) == pytest.approx(5.0)


def test_a_mask_of_another_shape_is_an_error_naming_the_sample():
    sample = seg_sample(square(4, 4, 10))
    with pytest.raises(MetricError, match=r"busi/s1.*\(16, 16\)"):
        get_metric("dice").score(np.zeros((16, 16), bool), sample)
    with pytest.raises(MetricError, match="busi/s1"):
        get_metric("iou").score(None, sample)
