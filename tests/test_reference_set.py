"""The reference set: real images from installed PyPI packages, phantoms where none is bundled."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from medfm_robust_plugin.data import reference_set
from medfm_robust_plugin.data.reference_set import (
    ReferenceSetError,
    reference_entries,
    reference_images,
    reference_modalities,
)
from medfm_robust_plugin.engine import image_context

MODALITIES = (
    "ct",
    "mri",
    "xray",
    "ultrasound",
    "fundus",
    "pathology",
    "dermoscopy",
    "endoscopy",
    "oct",
)


def test_every_modality_has_an_image():
    assert set(MODALITIES) <= set(reference_modalities())
    for modality in MODALITIES:
        images = reference_images(modality, max_size=128)
        assert images, modality
        for image in images:
            assert image.modality == modality
            assert image.array.ndim in (2, 3) and min(image.array.shape[:2]) >= 32


def test_real_ct_is_in_hounsfield_units_with_spacing():
    cts = reference_images("ct", real_only=True)
    assert len(cts) >= 2
    for ct in cts:
        array, _, context, _ = image_context(ct.image, modality="ct")
        assert ct.real
        assert array.dtype in (np.int16, np.float32)
        assert context.units == "HU"
        assert context.pixel_spacing is not None and 0.2 < context.pixel_spacing[0] < 1.0
        assert float(array.min()) < -500  # air in HU


def test_real_modalities_are_real_files():
    for modality in ("ct", "mri", "xray", "ultrasound", "fundus", "pathology"):
        assert any(e.package != "phantom" for e in reference_entries(modality)), modality


def test_downscaled_xray_keeps_its_spacing_consistent():
    (xray,) = reference_images("xray")
    assert xray.array.dtype == np.uint16
    assert max(xray.array.shape) == 3072 // 8
    assert xray.image.spacing[0] == pytest.approx(0.14 * 8)
    (smaller,) = reference_images("xray", max_size=192)
    assert max(smaller.array.shape) <= 192
    factor = smaller.meta["reference_downscale"]
    assert smaller.image.spacing[0] == pytest.approx(0.14 * factor)


def test_a_missing_package_names_what_to_install(monkeypatch):
    entry = next(e for e in reference_entries("xray") if e.package == "deid_data")
    real_import = importlib.import_module

    def no_deid(name, *args):
        if name == "deid_data":
            raise ImportError(name)
        return real_import(name, *args)

    monkeypatch.setattr(reference_set.importlib, "import_module", no_deid)
    with pytest.raises(ReferenceSetError, match="pip install deid-data"):
        reference_set.package_file(entry)


def test_unknown_modality_is_refused():
    with pytest.raises(ReferenceSetError, match="known"):
        reference_images("thermography")


@pytest.mark.parametrize(
    "modality,noise", [("mri", "mri_rician_noise"), ("ultrasound", "ultrasound_speckle")]
)
def test_every_real_image_shows_anatomy_that_noise_can_corrupt(modality, noise):
    """A reference image SSIM hardly sees changed says nothing about a level: a synthetic stripe
    DICOM (Rician noise at full strength scored 0.97) or a probe imaging air (speckle at 16 dB
    scored 0.96) do not belong in the set."""
    from medfm_robust_plugin.engine import corrupt

    for reference in reference_images(modality, real_only=True):
        _, params = corrupt(
            reference.image, noise, 5, 0, True, strength=1.0, modality=reference.modality
        )
        assert params["ssim"] < 0.85, (reference.name, params["ssim"])
