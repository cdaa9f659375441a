"""The modalities of the benchmark: the keys used everywhere, and how to name them to a reader.

The paper's eight modality groups are these keys, with its "OCT / fundus" group split into colour
fundus photographs and OCT B-scans, which share corruptions but not a suite.
"""

from __future__ import annotations

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
