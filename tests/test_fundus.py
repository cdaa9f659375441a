"""Retinal corruptions (fundus photography and OCT) behave as the optics say they should."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage
import skimage.io

from medfm_robust_plugin import corrupt
from medfm_robust_plugin.corruptions import fundus
from medfm_robust_plugin.data.phantoms import phantom
from medfm_robust_plugin.resources import bundled_files
from medfm_robust_plugin.ssim import ssim
from medfm_robust_plugin.suites import load_suite_file

UNIT = (0.0, 1.0)  # flat test images keep their grey levels instead of being stretched to [0, 1]
OCT_ONLY = [c.name for c in fundus.CORRUPTIONS if c.modalities == ("oct",)]


def retina(seed: int = 0, size: int = 128) -> np.ndarray:
    return phantom("fundus", size, seed).image.astype(np.float32) / 255


def oct_bscan(size: int = 128, seed: int = 0) -> np.ndarray:
    return phantom("oct", size, seed).image


@pytest.mark.parametrize("name", OCT_ONLY)
def test_oct_corruptions_have_monotone_tables_on_a_bscan(name):
    images = [oct_bscan(128, seed) for seed in (0, 1)]
    means = [
        np.mean([ssim(corrupt(im, name, s, seed=3), im, data_range=255.0) for im in images])
        for s in range(1, 6)
    ]
    assert all(b < a for a, b in zip(means, means[1:])), means
    assert 0.85 < means[0] < 0.995 and means[4] < 0.8, means


def test_floater_shadows_only_darken_part_of_the_image_and_keep_its_colour():
    clean = retina()
    out = corrupt(clean, "fundus_shadow", severity=4, seed=0, value_range=UNIT)
    assert np.all(out <= clean + 1e-6)
    shaded = (clean - out).max(axis=2) > 0.01
    assert 0.02 < shaded.mean() < 0.6
    seen = shaded & (out[..., 1] > 0.05)  # a shadow dims the light; the hue stays
    ratio_out, ratio_clean = out[seen, 0] / out[seen, 1], clean[seen, 0] / clean[seen, 1]
    np.testing.assert_allclose(ratio_out, ratio_clean, rtol=1e-3)


def test_vessel_shadows_are_columns_below_the_vessels():
    clean = np.full((128, 128), 0.5, np.float32)
    out = corrupt(clean, "fundus_vessel_shadow", severity=3, seed=0, value_range=UNIT)
    loss = clean - out
    assert np.all(out[:12] == clean[:12]), "vessels lie in the inner retina: nothing above them"
    deep = loss[100:].mean(axis=0)
    assert 0.05 < np.mean(deep > 0.1) < 0.7, "a few columns are shadowed, not the whole scan"
    # Along a shadowed column the signal stays lost all the way down.
    column = int(np.argmax(deep))
    assert loss[100:, column].min() > 0.5 * loss[100:, column].max()


def test_blink_darkens_a_band_from_the_lid_side_that_grows_with_severity():
    clean = np.full((128, 128, 3), 0.5, np.float32)
    covered = []
    for severity in (1, 3, 5):
        out, params = corrupt(
            clean, "fundus_blink", severity, seed=1, value_range=UNIT, return_params=True
        )
        if not params["draws"]["from_top"]:
            out = out[::-1]  # look at it lid side up
        dark = out.sum(axis=2) < 0.5 * clean.sum(axis=2)
        assert dark[:3].all(), "the rows at the lid's edge of the image are covered"
        assert np.array_equal(out[-20:], clean[-20:]), "the far side is untouched"
        covered.append(dark.mean())
    assert covered[0] < covered[1] < covered[2]


def test_eye_motion_displaces_whole_rows():
    """On a horizontal ramp, a row shifted by dx reads ramp + dx: one offset per row."""
    w = 200
    ramp = np.tile(np.linspace(0.2, 0.8, w, dtype=np.float32), (120, 1))
    displacement = fundus.fundus_motion.severity_params[3]
    out = corrupt(ramp, "fundus_motion", 4, seed=3, value_range=UNIT)
    step = 0.6 / (w - 1)
    shift = (out - ramp)[:, 40:-40] / step  # pixels, per row and column
    per_row = shift.mean(axis=1)
    assert np.abs(shift - per_row[:, None]).max() < 0.05, "each row moves as a whole"
    assert 0.3 * displacement * w < np.abs(per_row).max() <= displacement * w + 0.5
    jumps = np.abs(np.diff(per_row))
    assert jumps.max() > 5 * np.median(jumps), "microsaccades shift rows abruptly"


def test_defocus_spreads_a_point_into_a_uniform_disc():
    point = np.zeros((101, 101), np.float32)
    point[50, 50] = 1.0
    radius_fraction = fundus.fundus_defocus.severity_params[4]
    out = corrupt(point, "fundus_defocus", 5, seed=0, value_range=UNIT)
    radius = radius_fraction * 101
    assert out.sum() == pytest.approx(1.0, rel=1e-3), "blur moves light, it does not remove it"
    yy, xx = np.mgrid[0:101, 0:101] - 50
    core = np.hypot(yy, xx) < radius - 1
    assert out[core].std() < 1e-6 and out[core].mean() > 0, "flat top: a pillbox, not a Gaussian"
    assert np.all(out[np.hypot(yy, xx) > radius + 1.5] < 1e-6)


def test_uneven_illumination_is_a_smooth_multiplicative_field():
    clean = retina()
    gain = fundus.fundus_uneven_illumination.severity_params[2]
    out = corrupt(clean, "fundus_uneven_illumination", 3, seed=0, value_range=UNIT)
    assert np.all(out[clean == 0] == 0), "black stays black"
    lit = (clean > 0.05).all(axis=2) & (out < 0.999).all(axis=2)
    log_gain = np.log(out[lit] / clean[lit])
    np.testing.assert_allclose(log_gain[:, 0], log_gain[:, 1], atol=1e-3)  # same for every channel
    assert log_gain.max() - log_gain.min() > gain
    assert np.abs(log_gain).max() <= gain + 1e-3


def test_haze_veils_the_retina_but_not_the_black_surround():
    clean = retina()
    out = corrupt(clean, "fundus_haze", 4, seed=0, value_range=UNIT)
    surround = clean.max(axis=2) == 0
    corners = np.zeros_like(surround)
    corners[:8, :8] = corners[:8, -8:] = corners[-8:, :8] = corners[-8:, -8:] = True
    assert np.all(out[corners & surround] == 0)
    inside = clean.max(axis=2) > 0.2
    assert out[inside].std() < 0.8 * clean[inside].std(), "the veil lowers contrast"
    dark_vessels = inside & (clean[..., 0] < np.quantile(clean[..., 0][inside], 0.05))
    assert out[dark_vessels].mean() > clean[dark_vessels].mean(), "the veil lifts the dark detail"


def test_oct_speckle_is_multiplicative_with_exponential_statistics():
    clean = np.concatenate([np.zeros((128, 64)), np.full((128, 128), 0.05)], axis=1)
    strength_one = fundus.fundus_speckle.function
    out = strength_one(clean.astype(np.float32)[..., None], 1.0, np.random.default_rng(0))[..., 0]
    assert np.all(out[:, :64] == 0)
    tissue = out[:, 64:]
    assert tissue.mean() == pytest.approx(0.05, rel=0.05)
    assert tissue.std() / tissue.mean() == pytest.approx(1.0, rel=0.1), "exponential: contrast 1"


# --------------------------------------------------------------------------- a real photograph

RETINA_JPG = Path(skimage.__file__).parent / "data" / "retina.jpg"
SUITES = {path.stem: load_suite_file(path) for path in bundled_files("corruptions")}
COLOUR_FUNDUS = SUITES["fundus"].corruption_names("modality_specific")


@pytest.fixture(scope="module")
def photograph() -> np.ndarray:
    """skimage's colour fundus photograph (uint8 RGB), halved to keep the tests quick."""
    image = skimage.io.imread(RETINA_JPG)
    return cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), cv2.INTER_AREA)


def black_surround(image: np.ndarray) -> np.ndarray:
    """The camera's surround, found independently: dark pixels 6+ pixels from any lit one."""
    lit = (image.max(axis=2) > 12).astype(np.uint8)
    return cv2.distanceTransform(1 - lit, cv2.DIST_L2, 5) > 6


def test_the_aperture_of_a_fundus_photograph_is_a_disc_on_its_surround(photograph):
    aperture = fundus.field_of_view(photograph.astype(np.float32) / 255) > 0
    surround = black_surround(photograph)
    assert 0.15 < surround.mean() < 0.3
    assert not (aperture & surround).any(), "the surround lies outside the aperture"
    assert aperture[photograph.max(axis=2) > 60].mean() > 0.999, "the lit retina lies inside"
    # B-scans and images without a surround are in view everywhere.
    for image in (oct_bscan(128), np.full((64, 64), 200, np.uint8)):
        unit = np.atleast_3d(image.astype(np.float32) / max(float(image.max()), 1.0))
        assert fundus.field_of_view(unit).all()


@pytest.mark.parametrize("name", COLOUR_FUNDUS)
def test_colour_fundus_corruptions_leave_the_camera_surround_alone(photograph, name):
    surround = black_surround(photograph)
    for severity in (1, 5):
        out = corrupt(photograph, name, severity, seed=0)
        assert np.array_equal(out[surround], photograph[surround]), severity
        assert not np.array_equal(out, photograph)


def test_line_scan_motion_is_not_a_colour_fundus_corruption():
    assert "fundus_motion" not in COLOUR_FUNDUS
    assert "fundus_motion" in SUITES["oct"].corruption_names("modality_specific")


def test_defocus_blurs_the_retina_without_darkening_its_rim(photograph):
    unit = photograph.astype(np.float32) / 255
    aperture = fundus.field_of_view(unit) > 0
    rim = aperture & (cv2.distanceTransform(aperture.astype(np.uint8), cv2.DIST_L2, 5) < 6)
    out = corrupt(photograph, "fundus_defocus", 5, seed=0).astype(np.float32) / 255
    # Blurring with the black surround would pull the rim towards black; the retina alone keeps it.
    assert out[rim].mean() > 0.95 * unit[rim].mean()
    inner = aperture & ~rim
    detail = cv2.Laplacian(unit[..., 1], cv2.CV_32F)[inner]
    assert (
        np.abs(cv2.Laplacian(out[..., 1], cv2.CV_32F)[inner]).mean() < 0.5 * np.abs(detail).mean()
    )


def test_the_circle_count_is_that_of_testing_every_pixel():
    """field_of_view's fill test counts the pixels of the aperture's enclosing circle row by row:
    the count of the per-pixel inequality, for circles inside, across and outside the frame."""
    from medfm_robust_plugin.corruptions.fundus import pixels_in_circle

    rng = np.random.default_rng(4)
    for k in range(400):
        h, w = (int(v) for v in rng.integers(1, 90, 2))
        cx, cy = rng.uniform(-30, w + 30), rng.uniform(-30, h + 30)
        radius = float(rng.integers(0, 50)) if k % 3 == 0 else rng.uniform(0, 120)
        if k % 5 == 0:  # centres and radii on the pixel grid: ends exactly on the circle
            cx, cy = float(int(cx)), float(int(cy)) + 0.5
        yy, xx = np.ogrid[0:h, 0:w]
        expected = int(((xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2).sum())
        assert pixels_in_circle(h, w, cx, cy, radius) == expected, (h, w, cx, cy, radius)


@pytest.mark.parametrize("name", ["fundus_defocus", "fundus_haze"])
def test_optical_blur_is_a_fraction_of_the_field_however_the_photograph_is_framed(name, photograph):
    """The same photograph with a wider black surround is blurred as much over the retina: the
    blur scales with the aperture, not with the frame."""
    wide = np.pad(photograph, ((80, 80), (80, 80), (0, 0)))
    aperture = fundus.field_of_view(photograph.astype(np.float32) / 255) > 0.5
    assert fundus.field_diameter(aperture) == pytest.approx(
        fundus.field_diameter(fundus.field_of_view(wide.astype(np.float32) / 255) > 0.5)
    )
    scores = []
    for image in (photograph, wide):
        _, params = corrupt(image, name, 3, 0, True, modality="fundus")
        scores.append(params["ssim"])
    assert scores[0] == pytest.approx(scores[1], abs=0.01)


@pytest.mark.parametrize("name", ["fundus_shadow", "fundus_blink", "fundus_uneven_illumination"])
def test_what_falls_on_the_retina_is_placed_in_the_field_however_the_photograph_is_framed(
    name, photograph
):
    """Floaters, the eyelid and the light field are laid out over the camera's field (the
    aperture's box), so a wider black surround leaves the retina's damage as it was."""
    wide = np.pad(photograph, ((80, 80), (120, 40), (0, 0)))
    scores = []
    for image in (photograph, wide):
        _, params = corrupt(image, name, 4, 0, True, modality="fundus")
        scores.append(params["ssim"])
    assert scores[0] == pytest.approx(scores[1], abs=0.015)
