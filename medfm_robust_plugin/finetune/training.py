"""Training a SAM-family segmenter as MedSAM trains (Ma et al. 2024, ``train_one_gpu.py``).

Each step: a box prompt from the ground-truth mask, each side pushed outward by a random 0..20 px
at 1024 px (``BOX_JITTER``, here a fraction of the image's longest side); the image and box go
through the family's own preprocessing (the segmenter's ``model_frame``); the mask trained is the
one the segmenter keeps at inference (SAM-Med2D: the best of three by predicted IoU); the
logits are brought back to the image's size as the segmenter does at inference, and the loss is
Dice (squared, on sigmoid probabilities) + binary cross-entropy; AdamW.

Deterministic given the seed: the sample order and the jitter of an epoch come from a generator
seeded with (seed, epoch), never from call order, so a run resumed after a kill draws what an
uninterrupted run draws.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ..data.sample import Sample
from ..models.segmenters import (
    SamFamilySegmenter,
    best_mask_logits,
    dice_bce_loss,
    image_array,
    read_prompts,
)

BOX_JITTER = 20 / 1024  # MedSAM: bbox_shift = 20 px on its 1024 px images


def box_from_mask(mask: np.ndarray) -> np.ndarray:
    """The tight box (x1, y1, x2, y2) around a mask's foreground, in pixel edges' centres."""
    rows, cols = np.nonzero(mask)
    return np.array([cols.min(), rows.min(), cols.max(), rows.max()], np.float64)


def jittered_box(mask: np.ndarray, rng: np.random.Generator, jitter: float = BOX_JITTER):
    """MedSAM's training prompt: the mask's box, each side moved outward by 0..jitter of the image."""
    height, width = mask.shape
    shift = int(round(jitter * max(height, width)))
    x1, y1, x2, y2 = box_from_mask(mask)
    moves = rng.integers(0, shift + 1, size=4)
    return np.array(
        [
            max(0.0, x1 - moves[0]),
            max(0.0, y1 - moves[1]),
            min(width - 1.0, x2 + moves[2]),
            min(height - 1.0, y2 + moves[3]),
        ]
    )


def logits_at_input_size(segmenter: SamFamilySegmenter, logits: Any, height: int, width: int):
    """Low-resolution logits (h x w) -> H x W logits, as the family brings its masks back."""
    return segmenter.logits_at(logits, height, width)


def dice_score(predicted: np.ndarray, target: np.ndarray) -> float:
    """Dice of two boolean masks (1 when both are empty)."""
    total = int(predicted.sum()) + int(target.sum())
    return 1.0 if total == 0 else 2.0 * int((predicted & target).sum()) / total


class TrainingData:
    """The training items (image, mask) of a list of samples, loaded once."""

    def __init__(self, samples: Sequence[Sample]):
        self.ids = [s.id for s in samples]
        self.items = [(image_array(s.load_image()), s.load_mask()) for s in samples]


def batch_loss(
    segmenter: SamFamilySegmenter,
    items: list[tuple[np.ndarray, np.ndarray]],
    boxes: list[np.ndarray],
    autocast: Any,
) -> Any:
    """The mean loss of one batch (one box per image), with gradients.

    Gradients are switched on here whatever the process's global setting: some harnesses turn
    them off for good when imported (VLMEvalKit's ``vlmeval.vlm`` calls
    ``torch.set_grad_enabled(False)``), and training in the same process must not depend on that.
    """
    with torch.enable_grad():
        return _batch_loss(segmenter, items, boxes, autocast)


def _batch_loss(
    segmenter: SamFamilySegmenter,
    items: list[tuple[np.ndarray, np.ndarray]],
    boxes: list[np.ndarray],
    autocast: Any,
) -> Any:
    frames = [
        segmenter.model_frame(image, read_prompts(boxes=box))
        for (image, _), box in zip(items, boxes)
    ]
    device = segmenter.device
    pixel_values = torch.cat([f.pixel_values() for f in frames]).to(device, torch.float32)
    input_boxes = torch.cat([f.boxes for f in frames])
    # the mask the segmenter keeps at inference: one (SAM, MedSAM), or the best of three by
    # predicted IoU (SAM-Med2D, whose training picks the mask the same way)
    multimask = segmenter.multimask(read_prompts(boxes=boxes[0]))
    with autocast():
        outputs = segmenter.model(
            pixel_values=pixel_values, input_boxes=input_boxes, multimask_output=multimask
        )
    logits = best_mask_logits(outputs.pred_masks[:, 0], outputs.iou_scores[:, 0]).float()
    losses = []
    for index, (image, mask) in enumerate(items):
        full = logits_at_input_size(segmenter, logits[index], *image.shape[:2])
        target = torch.as_tensor(mask, dtype=torch.float32, device=device)
        losses.append(dice_bce_loss(full, target))
    return torch.stack(losses).mean()


def train_epoch(
    segmenter: SamFamilySegmenter,
    optimizer: Any,
    data: TrainingData,
    *,
    seed: int,
    epoch: int,
    batch_size: int,
    autocast: Any,
    on_step: Callable[[float], None] | None = None,
    jitter: float = BOX_JITTER,
) -> float:
    """One pass over the training data in this epoch's order; the mean loss. ``jitter``: how far
    (a fraction of the image's longest side) each side of a box prompt may move outward."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(data.items))
    segmenter.model.train()
    losses = []
    for start in range(0, len(order), batch_size):
        items = [data.items[i] for i in order[start : start + batch_size]]
        boxes = [jittered_box(mask, rng, jitter) for _, mask in items]
        optimizer.zero_grad(set_to_none=True)
        loss = batch_loss(segmenter, items, boxes, autocast)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        if on_step is not None:
            on_step(losses[-1])
    segmenter.model.eval()
    return float(np.mean(losses)) if losses else float("nan")


def validation_dice(segmenter: SamFamilySegmenter, data: TrainingData) -> float | None:
    """Mean Dice on the validation items, prompted with their tight boxes (no jitter)."""
    if not data.items:
        return None
    segmenter._cached_key = None  # the weights changed: no embedding from before is current
    scores = [
        dice_score(segmenter.segment(image, boxes=box_from_mask(mask))[0], mask)
        for image, mask in data.items
    ]
    segmenter._cached_key = None
    return float(np.mean(scores))
