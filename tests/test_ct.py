"""The CT corruptions keep Hounsfield units meaningful and make the artifacts CT physics predicts."""

from __future__ import annotations

import numpy as np
import pytest

from medfm_robust_plugin import corrupt, list_corruptions
from medfm_robust_plugin.corruptions import ct
from medfm_robust_plugin.data.phantoms import _grid, ct_slice

NAMES = [c.name for c in list_corruptions(family="ct")]
SIZE = 192
PIXEL_MM = ct.DEFAULT_FOV_MM / SIZE


@pytest.fixture(scope="module")
def slice_hu() -> np.ndarray:
    return ct_slice(SIZE, seed=0).image


@pytest.fixture(scope="module")
def regions() -> dict[str, np.ndarray]:
    """Air around the body, and soft tissue away from the liver, spine and lesion edges."""
    phantom = ct_slice(SIZE, seed=0)
    y, x = _grid(SIZE)
    air = (x / 0.9) ** 2 + (y / 0.7) ** 2 > 1.15
    liver = ((x + 0.3) / 0.4) ** 2 + ((y + 0.05) / 0.35) ** 2 < 1.1
    spine = (x / 0.12) ** 2 + ((y - 0.45) / 0.12) ** 2 < 1.5
    soft = ((x / 0.8) ** 2 + (y / 0.6) ** 2 < 0.8) & ~liver & ~spine & ~phantom.mask
    return {"air": air, "soft": soft}


def water_cylinder(diameter_mm: float = 300.0, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """A water cylinder in air (int16 HU) and each pixel's distance from the centre in mm.

    One corner pixel holds bone, so that the stored range leaves room above water.
    """
    yy, xx = np.mgrid[0:size, 0:size] - (size - 1) / 2.0
    radius_mm = np.hypot(xx, yy) * ct.DEFAULT_FOV_MM / size
    cylinder = np.where(radius_mm < diameter_mm / 2, 0, -1000).astype(np.int16)
    cylinder[0, 0] = 1000
    return cylinder, radius_mm


def test_the_family_is_complete():
    assert set(NAMES) == {
        "ct_low_dose_noise",
        "ct_photon_starvation",
        "ct_metal_streaks",
        "ct_beam_hardening",
        "ct_ring_artifact",
        "ct_window_level_shift",
    }


@pytest.mark.parametrize("name", [n for n in NAMES if n != "ct_window_level_shift"])
@pytest.mark.parametrize("severity", [1, 2])
def test_mild_levels_keep_air_and_soft_tissue_where_they_were(name, severity, slice_hu, regions):
    out = corrupt(slice_hu, name, severity, seed=5).astype(np.float64)
    assert np.median(out[regions["air"]]) == pytest.approx(-1000, abs=50)
    clean_soft = np.median(slice_hu[regions["soft"]])
    assert np.median(out[regions["soft"]]) == pytest.approx(clean_soft, abs=30)


@pytest.mark.parametrize("name", NAMES)
def test_draws_do_not_depend_on_the_strength(name, slice_hu):
    draws = [
        corrupt(slice_hu, name, strength=s, seed=9, return_params=True)[1].get("draws")
        for s in (0.2, 0.9)
    ]
    assert draws[0] == draws[1]


# --------------------------------------------------------------------------- reading HU


@pytest.mark.parametrize(
    "values,dtype,hu_of_first",
    [
        ([-1000.0, 40.0, 700.0], np.int16, -1000.0),  # HU (int16, float, DICOM after rescale)
        ([0.0, 128.0, 255.0], np.uint8, -1000.0),  # 8-bit display: black is air
        ([0.0, 0.5, 1.0], np.float32, -1000.0),  # float display
        ([0.0, 1064.0, 4095.0], np.uint16, -1024.0),  # 12-bit stored values, intercept -1024
        ([31744.0, 32808.0, 35000.0], np.uint16, -1024.0),  # DeepLesion: HU + 32768
        ([-20.0, 40.0, 1200.0], np.int16, -20.0),  # a HU crop without air: signed, above 255
        ([20.0, 40.0, 1200.0], np.float32, 20.0),  # the same in float
        ([20.0, 40.0, 1200.0], np.uint16, -1004.0),  # unsigned 12-bit: stored values
    ],
)
def test_hounsfield_scale_reads_each_convention_and_round_trips(values, dtype, hu_of_first):
    values = np.array(values)
    scale = ct.hounsfield_scale(values.astype(np.float32), dtype=dtype)
    hu = scale.to_hu(values.astype(np.float32))
    assert hu[0] == pytest.approx(hu_of_first)
    np.testing.assert_allclose(scale.from_hu(hu), values, rtol=1e-6, atol=1e-3)


def test_display_images_keep_black_air_black(slice_hu):
    windowed = (np.clip((slice_hu.astype(np.float32) + 1000) / 2000, 0, 1) * 255).astype(np.uint8)
    out = corrupt(windowed, "ct_low_dose_noise", 2, seed=1)
    assert out.dtype == np.uint8
    assert np.median(out[windowed == 0]) == 0


# --------------------------------------------------------------------------- projection


def test_radon_agrees_with_the_exact_projection_of_a_disc():
    size = 128
    yy, xx = np.mgrid[0:size, 0:size] - (size - 1) / 2.0
    disc = (np.hypot(xx - 20, yy + 10) < 25).astype(np.float32)
    exact = ct.metal_projections(np.array([[20.0, -10.0]]), 25.0, size)
    sinogram = ct.radon(disc)
    # the orientation convention holds (an error would misplace the disc's trace entirely)
    assert np.corrcoef(sinogram.ravel(), exact.ravel())[0, 1] > 0.999


def test_filtered_back_projection_inverts_the_radon_transform():
    size = 128
    yy, xx = np.mgrid[0:size, 0:size] - (size - 1) / 2.0
    disc = np.where(np.hypot(xx - 10, yy + 5) < 30, 0.02, 0.0).astype(np.float32)
    image = ct.filtered_back_projection(ct.radon(disc))
    inside = np.hypot(xx - 10, yy + 5) < 25
    outside = (np.hypot(xx - 10, yy + 5) > 35) & (np.hypot(xx, yy) < 60)
    assert image[inside].mean() == pytest.approx(0.02, rel=0.005)
    assert abs(image[outside].mean()) < 2e-4


# --------------------------------------------------------------------------- the artifacts


def test_low_dose_noise_grows_as_the_dose_falls():
    cylinder, radius_mm = water_cylinder()
    centre = radius_mm < 40
    spec = ct.ct_low_dose_noise
    stds = []
    for halvings in (1.0, 3.0):
        strength = halvings / spec.param_range[1]
        out = corrupt(cylinder, spec, strength=strength, seed=2).astype(np.float64)
        assert out[centre].mean() == pytest.approx(0.0, abs=3.0)  # noise, no bias
        stds.append(out[centre].std())
    # a routine scan has ~10 HU of noise; the added noise is the variance beyond it:
    # at 1/2 dose one routine unit, at 1/8 dose seven: sqrt(7) times more
    assert stds[0] == pytest.approx(10.0, rel=0.35)
    assert stds[1] / stds[0] == pytest.approx(np.sqrt(7.0), rel=0.15)


def test_photon_starvation_streaks_along_the_long_axis():
    size = 256
    yy, xx = np.mgrid[0:size, 0:size] - (size - 1) / 2.0
    mm = ct.DEFAULT_FOV_MM / size
    wide = np.where((xx * mm / 180) ** 2 + (yy * mm / 80) ** 2 < 1, 0, -1000).astype(np.int16)
    inside = (xx * mm / 150) ** 2 + (yy * mm / 60) ** 2 < 1
    error = corrupt(wide, "ct_photon_starvation", 4, seed=3).astype(np.float64) - wide
    along_rows = np.abs(np.diff(error, axis=1))[inside[:, 1:]].mean()
    across_rows = np.abs(np.diff(error, axis=0))[inside[1:, :]].mean()
    assert across_rows > 2.5 * along_rows  # horizontal streaks: the lateral rays starve


def test_beam_hardening_cups_a_water_cylinder_and_draws_nothing():
    cylinder, radius_mm = water_cylinder()
    out = corrupt(cylinder, "ct_beam_hardening", 4, seed=0).astype(np.float64)
    centre, rim = out[radius_mm < 30].mean(), out[(radius_mm > 120) & (radius_mm < 140)].mean()
    assert centre < rim - 10  # the centre reads darker: cupping
    again = corrupt(cylinder, "ct_beam_hardening", 4, seed=99)
    np.testing.assert_array_equal(out, again)


def test_metal_shows_at_the_top_of_the_range_and_streaks_grow_with_its_size(slice_hu, regions):
    out, params = corrupt(slice_hu, "ct_metal_streaks", 3, seed=4, return_params=True)
    for row, col in params["draws"]["metal_centres"]:
        assert out[row, col] >= 2500  # metal shows near the top of the 12-bit HU range
        assert slice_hu[row, col] > -50  # placed in soft tissue or bone
    spreads = []
    for severity in (1, 5):
        error = (
            corrupt(slice_hu, "ct_metal_streaks", severity, seed=4).astype(np.float64) - slice_hu
        )
        spreads.append(error[regions["soft"]].std())
    assert spreads[1] > 2 * spreads[0] > 0


def test_rings_are_concentric_about_the_rotation_centre():
    flat = np.zeros((201, 201), np.int16)
    flat[0, 0], flat[0, -1] = -1000, 1000  # air and bone in the corners: HU, room on both sides
    rings = corrupt(flat, "ct_ring_artifact", 4, seed=1).astype(np.float64)
    core = rings[20:181, 20:181]  # leave the corners' own values out
    # radially symmetric: unchanged by mirroring and by swapping the axes
    for mirrored in (core[:, ::-1], core[::-1, :], core.T):
        assert np.abs(core - mirrored).max() <= 1
    assert np.abs(core).max() > 20  # and clearly visible


def test_window_level_shift_keeps_the_order_of_grey_levels_and_saturates_or_flattens(slice_hu):
    from medfm_robust_plugin.presentation import Presentation

    spec = ct.ct_window_level_shift
    assert np.array_equal(corrupt(slice_hu, spec, strength=0.0, seed=1), slice_hu)
    shown = Presentation((-160.0, 240.0), "soft tissue")  # the window of a bare HU slice
    clean = shown.to_unit(slice_hu)
    order = np.argsort(clean.ravel(), kind="stable")
    for seed in range(6):
        out, params = corrupt(slice_hu, spec, strength=0.6, seed=seed, return_params=True)
        grey = shown.to_unit(out)
        assert np.all(np.diff(grey.ravel()[order]) >= 0)  # a window is monotone
        inside = (clean > 0) & (clean < 1)
        if params["draws"]["narrower"]:
            # too narrow a window clips: more of the slice sits at black or white
            assert np.mean((grey[inside] == 0) | (grey[inside] == 1)) > 0.05
        else:
            # too wide a window flattens the contrast
            assert grey[inside].std() < 0.8 * clean[inside].std()


def test_every_corruption_is_fast_enough_for_a_512_slice():
    import time

    big = ct_slice(512, seed=1).image
    for name in NAMES:
        corrupt(big, name, 3, seed=0)
        start = time.perf_counter()
        corrupt(big, name, 3, seed=0)
        assert time.perf_counter() - start < 1.0, name


def test_body_mask_is_the_largest_region_above_the_body_threshold_with_its_holes_filled():
    """OpenCV's components and flood fill give scipy's 4-connected label and hole filling."""
    from scipy import ndimage

    rng = np.random.default_rng(4)
    for _ in range(60):
        shape = tuple(rng.integers(8, 80, 2))
        hu = ndimage.gaussian_filter(rng.normal(size=shape), rng.uniform(0.5, 3)) * 3000 - 500
        inside = hu > ct.BODY_HU
        labels, count = ndimage.label(inside)
        if count:
            largest = labels == 1 + int(np.argmax(np.bincount(labels.ravel())[1:]))
            expected = ndimage.binary_fill_holes(largest)
        else:
            expected = inside
        assert np.array_equal(ct.body_mask(hu), expected)
