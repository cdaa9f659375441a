"""The modalities of the benchmark: the keys used everywhere, and how to name them to a reader.

The paper's eight modality groups are these keys, with its "OCT / fundus" group split into colour
fundus photographs and OCT B-scans, which share corruptions but not a suite.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

LABELS: dict[str, str] = {
    "ct": "CT",
    "mri": "MRI",
    "xray": "X-ray",
    "ultrasound": "ultrasound",
    "endoscopy": "endoscopy",
    "dermoscopy": "dermoscopy",
    "pathology": "histopathology",
    "fundus": "fundus",
    "oct": "OCT",
}
MODALITIES: tuple[str, ...] = tuple(LABELS)


def label(modality: str) -> str:
    """A reader's name for a modality key (the key itself when unknown)."""
    return LABELS.get(modality, modality)


# Reading windows for grey-level data that is not 8-bit, so that a reader (or a model) sees what a
# clinician would: a soft-tissue window for CT in HU. Other data uses the clean image's own range.
DISPLAY_WINDOWS: dict[str, tuple[float, float]] = {"ct": (-160.0, 240.0)}


def display_window(clean: np.ndarray, modality: str | None) -> tuple[float, float]:
    """The grey-level window in which to show an image of ``modality`` (and its corrupted views)."""
    lo, hi = float(clean.min()), float(clean.max())
    if modality in DISPLAY_WINDOWS and lo < -500:  # data in Hounsfield units
        return DISPLAY_WINDOWS[modality]
    return lo, hi
