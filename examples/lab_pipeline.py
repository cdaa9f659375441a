"""A lab's existing segmentation evaluation, run under MedFM-Robust corruptions.

The lab already has a PyTorch dataset of (image, mask, box) and an evaluation loop; wrapping the
dataset in ``CorruptedDataset`` is the only change. Seeds come from the case ids, so the numbers are
the same on every machine, with any number of DataLoader workers.

    python examples/lab_pipeline.py [--json]
"""

from __future__ import annotations

import argparse
import json

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from medfm_robust_plugin.data.phantoms import mri_slice
from medfm_robust_plugin.data.sample import mask_box
from medfm_robust_plugin.lab import CorruptedDataset


# ---------------------------------------------------------------- the lab's own code, unchanged
class BrainLesions(Dataset):
    """The lab's dataset: MR slices (float32 magnitude), tumour masks and box prompts."""

    def __init__(self, cases: int = 12) -> None:
        self.items = [mri_slice(128, seed=k) for k in range(cases)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        phantom = self.items[index]
        box = torch.tensor(mask_box(phantom.mask), dtype=torch.float32)
        return torch.from_numpy(phantom.image), torch.from_numpy(phantom.mask), box


def segment(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The lab's model: Otsu threshold inside the box prompt."""
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    crop = image[y1:y2, x1:x2]
    scaled = cv2.normalize(crop, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    _, inside = cv2.threshold(scaled, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    mask = np.zeros(image.shape, bool)
    mask[y1:y2, x1:x2] = inside.astype(bool)
    return mask


def evaluate(dataset: Dataset) -> float:
    """The lab's evaluation loop: mean Dice over the dataset."""
    scores = []
    for images, masks, boxes in DataLoader(dataset, batch_size=4):
        for image, mask, box in zip(images.numpy(), masks.numpy(), boxes.numpy()):
            pred = segment(image, box)
            scores.append(2 * (pred & mask).sum() / max(pred.sum() + mask.sum(), 1))
    return float(np.mean(scores))


# ---------------------------------------------------------------- what MedFM-Robust adds
def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    dataset = BrainLesions()
    results = {"clean": evaluate(dataset)}
    for corruption in ("gaussian_noise", "mri_bias_field", "mri_rician_noise", "mri_motion"):
        for severity in (1, 3, 5):
            robust = CorruptedDataset(
                dataset,
                corruption,
                severity,
                dataset_name="lab-brain-lesions",
                modality="mri",
                id_of=lambda index, item: f"case-{index:03d}",
            )
            results[f"{corruption}_s{severity}"] = evaluate(robust)

    if args.json:
        print(json.dumps(results))
        return
    clean = results["clean"]
    print(f"{'condition':<24} {'Dice':>6} {'drop':>7}")
    for name, dice in results.items():
        print(f"{name:<24} {dice:6.3f} {clean - dice:+7.3f}")


if __name__ == "__main__":
    main()
