"""How releases name their modalities, mapped to the benchmark's modality keys (the words of each
modality live in ``medfm_robust_plugin.modalities``; ROCOv2's concept identifiers here).
"""

from __future__ import annotations

from ...modalities import OTHER, modality_from_text

__all__ = ["OTHER", "ROCO_MODALITY_CUIS", "modality_from_cuis", "modality_from_text"]


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
