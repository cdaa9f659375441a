"""CT corruptions on a real head CT (DICOM, HU, 0.431 mm pixels): physical units, spacing, placement."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from scipy import ndimage

from medfm_robust_plugin import corrupt
from medfm_robust_plugin.corruptions import ct
from medfm_robust_plugin.corruptions.spec import ImageContext
from medfm_robust_plugin.image import load_image
from medfm_robust_plugin.presentation import Presentation

HEAD = Path(pydicom.__file__).parent / "data" / "test_files" / "J2K_pixelrep_mismatch.dcm"


@pytest.fixture(scope="module")
def head():
    return load_image(HEAD)


@pytest.fixture(scope="module")
def brain(head) -> np.ndarray:
    """Brain parenchyma, a few pixels away from bone and air."""
    hu = head.array
    return ndimage.binary_erosion((hu > 0) & (hu < 80), iterations=5)


def test_the_file_is_what_the_tests_assume(head):
    assert head.meta["units"] == "HU" and head.spacing[:2] == pytest.approx((0.431, 0.431))
    assert head.array.shape == (512, 512) and head.array.dtype == np.int16


def test_a_medical_image_brings_its_pixel_spacing(head):
    from_file = corrupt(head, "ct_low_dose_noise", 3, seed=2)
    same = corrupt(head.array, "ct_low_dose_noise", 3, seed=2, pixel_spacing=(0.431, 0.431))
    assumed = corrupt(head.array, "ct_low_dose_noise", 3, seed=2)  # 400 mm field assumed
    np.testing.assert_array_equal(from_file, same)
    assert not np.array_equal(from_file, assumed)


def test_a_slice_and_its_centre_crop_get_noise_of_the_same_order(head):
    crop = head.array[128:384, 128:384].copy()
    for severity in (1, 3, 5):
        full = corrupt(head, "ct_low_dose_noise", severity, seed=0).astype(np.float64)
        part = corrupt(crop, "ct_low_dose_noise", severity, seed=0, pixel_spacing=(0.431, 0.431))
        full_std = (full - head.array)[192:320, 192:320].std()
        crop_std = (part.astype(np.float64) - crop)[64:192, 64:192].std()
        # a crop misses the photons' path through the cut-away skull: a little less noise
        assert 1 / 1.5 < crop_std / full_std < 1.5, (severity, full_std, crop_std)
        assert full_std > 5


def test_noise_follows_the_pixel_spacing_not_the_image_size(head):
    """The same slice told it is twice as large (a bigger patient) gets more noise."""
    region = (slice(192, 320), slice(192, 320))
    stds = []
    for spacing in ((0.431, 0.431), (0.862, 0.862)):
        out = corrupt(head.array, "ct_low_dose_noise", 3, seed=0, pixel_spacing=spacing)
        stds.append((out.astype(np.float64) - head.array)[region].std())
    assert stds[1] > 1.5 * stds[0]


def test_a_hu_crop_without_air_is_read_as_hu(head):
    crop = head.array[144:244, 128:228]  # brain and bone, no air or fat
    assert crop.min() > -100 and crop.max() > 255
    for dtype in (np.int16, np.float32):
        clean = ct.read_slice(
            crop.astype(np.float32)[..., None], ImageContext(meta={"dtype": dtype})
        )
        np.testing.assert_array_equal(clean.hu, crop)
    stated = ct.read_slice((crop + 1024).astype(np.float32)[..., None], ImageContext(units="HU"))
    np.testing.assert_array_equal(stated.hu, crop + 1024)  # the caller's word is kept
    stored = ct.read_slice(
        crop.astype(np.float32)[..., None], ImageContext(meta={"dtype": "uint16"})
    )
    np.testing.assert_array_equal(stored.hu, crop - 1024.0)  # only unsigned data is stored values
    # through the engine: an int16 HU crop keeps its brain at brain values after corruption
    out = corrupt(crop, "ct_beam_hardening", 1, seed=0, pixel_spacing=(0.431, 0.431))
    soft = (crop > 0) & (crop < 80)
    assert np.median(out[soft]) == pytest.approx(np.median(crop[soft]), abs=15)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_metal_reaches_metal_values_in_soft_tissue_inside_the_body(head, seed):
    hu = head.array
    body = ct.body_mask(hu)
    depth = ndimage.distance_transform_edt(body, sampling=(0.431, 0.431))
    for severity in (1, 5):
        out, params = corrupt(head, "ct_metal_streaks", severity, seed=seed, return_params=True)
        assert out.max() >= 2500 and out.max() <= ct.MAX_HU
        for row, col in params["draws"]["metal_centres"]:
            assert out[row, col] >= 2500
            assert -100 < hu[row, col] < 150  # in soft tissue (brain), not bone or air
            assert depth[row, col] > 15.0  # well inside the head, not at the scalp


def test_results_stay_in_the_12_bit_hu_range_outside_the_scanned_field_untouched(head):
    hu = head.array
    outside = hu < ct.MIN_HU  # -2000: the padding outside the circular field of view
    assert outside.any()
    for name in ("ct_low_dose_noise", "ct_photon_starvation", "ct_metal_streaks"):
        out = corrupt(head, name, 5, seed=1)
        np.testing.assert_array_equal(out[outside], hu[outside])
        assert out[~outside].min() >= ct.MIN_HU and out.max() <= ct.MAX_HU


def test_rings_are_subtle_at_severity_1_and_centred_on_the_isocentre(head, brain):
    error1 = corrupt(head, "ct_ring_artifact", 1, seed=3).astype(np.float64) - head.array
    assert error1[brain].std() < 3.0
    error5 = corrupt(head, "ct_ring_artifact", 5, seed=3).astype(np.float64) - head.array
    assert error5[brain].std() > 4 * error1[brain].std()
    assert np.abs(error5[brain]).max() > 40  # clearly visible in a soft-tissue window
    # centred on the image centre: the point reflection through it keeps every ring
    inside = (head.array > -900) & (head.array[::-1, ::-1] > -900)
    inside &= (head.array < 3000) & (head.array[::-1, ::-1] < 3000)
    assert np.abs(error5 - error5[::-1, ::-1])[inside].max() <= 1.0


def test_window_level_shift_shows_the_slice_through_the_wrong_window(head):
    """The presented result is the slice's HU through the wrong window (not the clipped
    presented image through it): what the intended window clips is read as it is."""
    spec = ct.ct_window_level_shift
    shown = Presentation(head.meta["window"], "DICOM")
    low, high = head.meta["window"]
    out, params = corrupt(head, spec, 5, seed=4, return_params=True)
    level, factor = spec.param_for(5)
    gain = factor if params["draws"]["narrower"] else 1 / factor
    sign = params["draws"]["level_direction"]
    unclipped = (head.array.astype(np.float64) - low) / (high - low)
    expected = np.clip((unclipped - 0.5 - sign * level) * gain + 0.5, 0, 1)
    assert np.abs(shown.to_unit(out) - expected).max() <= 0.5 / 100 + 1e-6  # int16 rounding, W100
    assert params["ssim"] < 0.9


def test_window_level_shift_leaves_air_black_and_bone_white(head):
    """A level a fifth of a brain window (W100) off moves its edges by 20 HU: air at -1000 HU
    stays black and bone stays white, whichever way the level and width slip."""
    shown = Presentation(head.meta["window"], "DICOM")
    air = head.array < -500
    bone = head.array > 600
    for seed in range(6):
        out = corrupt(head, "ct_window_level_shift", 5, seed=seed)
        assert np.all(shown.to_unit(out)[air] == 0.0)
        assert np.all(shown.to_unit(out)[bone] == 1.0)
        assert np.array_equal(out[air], head.array[air])  # their values are kept


def test_beam_hardening_is_clearly_visible_at_severity_5(head):
    for window in (None, "soft_tissue"):
        ssims = [
            corrupt(head, "ct_beam_hardening", s, return_params=True, window=window)[1]["ssim"]
            for s in range(1, 6)
        ]
        assert all(b <= a for a, b in zip(ssims, ssims[1:])), (window, ssims)
        assert ssims[4] < 0.95, (window, ssims)
        assert ssims[0] > 0.95, (window, ssims)
