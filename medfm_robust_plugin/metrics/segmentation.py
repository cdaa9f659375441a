"""Segmentation: Dice and IoU of a predicted mask with the true one, and surface metrics.

Conventions for empty masks (no foreground), which the mean over a dataset depends on:

- Dice, IoU and NSD: both empty -> 1.0 (the model rightly found nothing); one empty -> 0.0.
- HD95: both empty -> 0.0; one empty -> the image diagonal, the largest distance the image
  allows, so that a missed or invented structure counts as the worst possible and the mean stays
  finite.

Surfaces are the foreground pixels with a background 4-neighbour (a pixel on the image edge
counts as bordering background), and distances are Euclidean in pixels between surface pixels,
as MONAI's ``compute_surface_dice`` and ``compute_hausdorff_distance`` compute them on 2-D masks.
NSD (Nikolov et al. 2021) is the share of both surfaces lying within ``tolerance`` pixels of the
other; HD95 is the larger of the two directed 95th percentiles of surface distances.

A prediction is a boolean array of the true mask's shape (a leading axis of length 1, as a
segmenter returns for one prompt, is accepted); other dtypes are read as foreground above 0.5.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..hookspecs import hookimpl
from .base import Metric, MetricError

NSD_TOLERANCE = 2.0  # pixels
HD_PERCENTILE = 95.0

_MASKS: dict[int, tuple[Any, np.ndarray]] = {}  # id(sample) -> (sample, mask): one load per sample


def _name(sample: Any) -> str:
    return f"{getattr(sample, 'dataset', '?')}/{getattr(sample, 'id', '?')}"


def true_mask(sample: Any) -> np.ndarray:
    """The sample's ground-truth mask (bool H x W), loaded once for all the metrics of a sample."""
    cached = _MASKS.get(id(sample))
    if cached is not None and cached[0] is sample:
        return cached[1]
    mask = sample.load_mask()
    if mask is None:
        raise MetricError(f"sample '{_name(sample)}' has no mask to score a segmentation against")
    if len(_MASKS) >= 4:
        _MASKS.pop(next(iter(_MASKS)))
    _MASKS[id(sample)] = (sample, mask)
    return mask


def as_mask(prediction: Any, shape: tuple[int, ...], sample: Any = None) -> np.ndarray:
    """A prediction as a boolean mask of ``shape``; MetricError naming the sample if it differs."""
    if prediction is None:
        raise MetricError(f"sample '{_name(sample)}': the model returned no mask")
    mask = np.asarray(prediction)
    if mask.ndim == len(shape) + 1 and mask.shape[0] == 1:
        mask = mask[0]
    if mask.shape != tuple(shape):
        raise MetricError(
            f"sample '{_name(sample)}': predicted mask has shape {mask.shape}, the true mask "
            f"{tuple(shape)}; return one mask at the input image's size"
        )
    return mask if mask.dtype == np.bool_ else mask > 0.5


def dice(prediction: np.ndarray, truth: np.ndarray) -> float:
    """Dice coefficient 2|P & T| / (|P| + |T|); both empty -> 1.0."""
    total = int(prediction.sum()) + int(truth.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(prediction, truth).sum()) / total


def iou(prediction: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union |P & T| / |P | T|; both empty -> 1.0."""
    union = int(np.logical_or(prediction, truth).sum())
    if union == 0:
        return 1.0
    return int(np.logical_and(prediction, truth).sum()) / union


def surface(mask: np.ndarray) -> np.ndarray:
    """Foreground pixels with a background 4-neighbour (the image's edge counts as background)."""
    from scipy import ndimage

    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def _distances_to(target_surface: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Euclidean distance from each True pixel of ``points`` to the nearest ``target_surface`` pixel."""
    from scipy import ndimage

    return ndimage.distance_transform_edt(~target_surface)[points]


def normalized_surface_dice(
    prediction: np.ndarray, truth: np.ndarray, tolerance: float = NSD_TOLERANCE
) -> float:
    """Share of the two surfaces within ``tolerance`` pixels of the other; both empty -> 1.0."""
    if not prediction.any() and not truth.any():
        return 1.0
    if not prediction.any() or not truth.any():
        return 0.0
    pred_surface, true_surface = surface(prediction), surface(truth)
    to_truth = _distances_to(true_surface, pred_surface)
    to_prediction = _distances_to(pred_surface, true_surface)
    within = int((to_truth <= tolerance).sum()) + int((to_prediction <= tolerance).sum())
    return within / (to_truth.size + to_prediction.size)


def hausdorff_95(prediction: np.ndarray, truth: np.ndarray) -> float:
    """95th-percentile symmetric Hausdorff distance in pixels (see the module doc for empties)."""
    if not prediction.any() and not truth.any():
        return 0.0
    if not prediction.any() or not truth.any():
        return float(np.hypot(*truth.shape[:2]))
    pred_surface, true_surface = surface(prediction), surface(truth)
    to_truth = _distances_to(true_surface, pred_surface)
    to_prediction = _distances_to(pred_surface, true_surface)
    return float(
        max(np.percentile(to_truth, HD_PERCENTILE), np.percentile(to_prediction, HD_PERCENTILE))
    )


def _sample_metric(function):
    def score(prediction: Any, sample: Any) -> float:
        truth = true_mask(sample)
        return float(function(as_mask(prediction, truth.shape, sample), truth))

    return score


DICE = Metric(
    name="dice",
    kinds=("segmentation",),
    score=_sample_metric(dice),
    description="Dice coefficient of predicted and true masks (both empty: 1)",
)
IOU = Metric(
    name="iou",
    kinds=("segmentation",),
    score=_sample_metric(iou),
    description="Intersection over union of predicted and true masks (both empty: 1)",
)
NSD = Metric(
    name="nsd",
    kinds=("segmentation",),
    score=_sample_metric(normalized_surface_dice),
    description=f"Normalised surface Dice at {NSD_TOLERANCE:g} pixels (both empty: 1)",
)
HD95 = Metric(
    name="hd95",
    kinds=("segmentation",),
    score=_sample_metric(hausdorff_95),
    higher_is_better=False,
    description="95th-percentile Hausdorff distance in pixels (one mask empty: image diagonal)",
)


@hookimpl
def register_metrics(register):
    for metric in (DICE, IOU, NSD, HD95):
        register(metric)
