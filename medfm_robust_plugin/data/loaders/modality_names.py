"""How releases name their modalities, mapped to the benchmark's modality keys.

The keys are those of ``medfm_robust_plugin.modalities`` plus ``oct`` (the retinal family's OCT
suite) and ``other`` for anything the benchmark has no suite for (PET, infrared, photographs...).
"""

from __future__ import annotations

import re

OTHER = "other"

# Checked in this order: the first pattern found in the lower-cased text decides. OCT and the
# photographic modalities come first so that e.g. "optical coherence tomography" is not read as CT.
PATTERNS: tuple[tuple[str, str], ...] = (
    ("oct", r"optical coherence|(?<![a-z])oct(?![a-z])"),
    ("fundus", r"fundus|retinal photograph|(?<![a-z])cfp(?![a-z])"),
    ("dermoscopy", r"dermoscop|dermatoscop"),
    ("endoscopy", r"endoscop|colonoscop|gastroscop|laparoscop"),
    ("pathology", r"patholog|microscop|histolog|cytolog|h&e|whole.slide"),
    ("ultrasound", r"ultrasound|ultrason|sonograph|echocardio"),
    ("xray", r"x[-_ ]?ray|radiograph|mammogra|angiogra|fluorosc"),
    ("mri", r"magnetic resonance|mag-netic|(?<![a-z])mri?(?![a-z])"),
    ("ct", r"computed tomography|(?<![a-z])ct(?![a-z])"),
)


def modality_from_text(text: str | None) -> str:
    """The modality key that a free-text modality name (or file-name prefix) denotes."""
    if not text:
        return OTHER
    lowered = str(text).lower()
    for key, pattern in PATTERNS:
        if re.search(pattern, lowered):
            return key
    return OTHER


# UMLS concepts that ROCOv2 uses for the imaging modality (its manually curated modality concepts;
# Rückert et al., Sci Data 2024). Angiography and mammography are X-ray techniques.
ROCO_MODALITY_CUIS: dict[str, str] = {
    "C0040405": "ct",  # X-Ray Computed Tomography
    "C1306645": "xray",  # Plain x-ray
    "C0024485": "mri",  # Magnetic Resonance Imaging
    "C0041618": "ultrasound",  # Ultrasonography
    "C0002978": "xray",  # Angiogram
    "C0026606": "xray",  # Mammography
    "C0032743": OTHER,  # Positron-Emission Tomography
}


def modality_from_cuis(cuis: list[str]) -> str:
    """ROCOv2's modality from an image's concept list (the first modality concept wins)."""
    for cui in cuis:
        if cui in ROCO_MODALITY_CUIS:
            return ROCO_MODALITY_CUIS[cui]
    return OTHER
