"""Ultrasound corruptions behave as B-mode physics says they should, on real scans too."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from medfm_robust_plugin import corrupt
from medfm_robust_plugin.corruptions import ultrasound
from medfm_robust_plugin.data.phantoms import phantom
from medfm_robust_plugin.image import load_image, luma

UNIT = (0.0, 1.0)  # flat test images keep their grey levels instead of being stretched to [0, 1]
NAMES = [c.name for c in ultrasound.CORRUPTIONS]


def flat(level: float, shape: tuple[int, int] = (128, 128)) -> np.ndarray:
    return np.full(shape, level, np.float32)


def deid_ultrasound(name: str) -> Path:
    deid_data = pytest.importorskip("deid_data")
    return Path(deid_data.__file__).parent / "data" / "ultrasounds" / name


@pytest.fixture(scope="module")
def linear_scan() -> np.ndarray:
    """A linear-array breast scan (uint8 grey) with its banner, settings text and depth scale."""
    return load_image(deid_ultrasound("GREYSCALE_IMAGE.dcm")).array


@pytest.fixture(scope="module")
def curved_scan() -> np.ndarray:
    """A curved-array abdominal frame (uint8 RGB) with coloured text, mostly black tissue."""
    return load_image(deid_ultrasound("RGB_IMAGE.dcm")).array


@pytest.fixture(scope="module")
def sector_scan() -> np.ndarray:
    """A phased-array cardiac frame (uint8 RGB, colour Doppler box), the first of its cine."""
    pydicom = pytest.importorskip("pydicom")
    return pydicom.dcmread(deid_ultrasound("ultrasound-multiframe.dcm")).pixel_array[0]


def grey(image: np.ndarray) -> np.ndarray:
    echo = image.astype(np.float32) / 255
    return luma(echo) if echo.ndim == 3 else echo


# --------------------------------------------------------------------------- scanned region


def test_a_linear_array_is_found_as_its_rectangle(linear_scan):
    scan = ultrasound.detect_scan(grey(linear_scan))
    assert scan.kind == "linear" and scan.found
    # The image rectangle spans columns ~127-895 and rows ~90-710 (text, logo and scale outside).
    assert scan.lateral_range[0] == pytest.approx(127, abs=8)
    assert scan.lateral_range[1] == pytest.approx(896, abs=8)
    assert scan.depth_range[0] == pytest.approx(90, abs=6)
    assert scan.depth_range[1] == pytest.approx(712, abs=10)


def test_a_phased_array_is_found_as_its_fan_with_the_apex_on_top(sector_scan):
    scan = ultrasound.detect_scan(grey(sector_scan))
    assert scan.kind == "sector" and scan.found
    apex_row, apex_column = scan.apex
    assert apex_row == pytest.approx(57, abs=15)
    assert apex_column == pytest.approx(400, abs=15)
    left, right = (math.degrees(a) for a in scan.lateral_range)
    assert left == pytest.approx(-43, abs=4) and right == pytest.approx(43, abs=4)
    record = scan.record()
    assert record["kind"] == "sector" and len(record["apex_row_column"]) == 2


def test_a_curved_array_is_a_fan_whose_apex_lies_above_the_frame(curved_scan):
    scan = ultrasound.detect_scan(grey(curved_scan))
    assert scan.kind == "sector" and scan.apex[0] < 0
    echo = grey(curved_scan)
    assert not (scan.region & (echo > 0.3))[:55].any(), "the banner's text is not scanned"
    assert not (scan.region & (echo > 0.3))[:300, 900:].any(), "nor the settings at the right"


def test_nothing_found_is_the_whole_frame_and_says_so():
    scan = ultrasound.detect_scan(np.zeros((64, 80), np.float32))
    assert not scan.found and scan.region.all()
    assert scan.record()["found"] is False


@pytest.mark.parametrize("severity", [1, 5])
@pytest.mark.parametrize("name", NAMES)
def test_pixels_outside_the_scanned_region_stay_byte_identical(
    name, severity, linear_scan, curved_scan
):
    for clean in (linear_scan, curved_scan):
        out, params = corrupt(clean, name, severity, seed=11, return_params=True)
        region = ultrasound.detect_scan(grey(clean)).region
        assert params["draws"]["scan"]["found"]
        changed = np.any((out != clean).reshape(*clean.shape[:2], -1), axis=2)
        assert not changed[~region].any()
        assert not changed[:55].any(), "the patient banner is untouched"
        if name != "ultrasound_acoustic_shadowing" or clean is linear_scan:
            assert changed[region].any()


# --------------------------------------------------------------------------- speckle


def test_fully_developed_speckle_has_rayleigh_contrast():
    amplitude = ultrasound.speckle_amplitude((256, 256), np.random.default_rng(0), (0.6, 1.3))
    # Rayleigh: std / mean = sqrt(4 / pi - 1) = 0.523 (Burckhardt 1978).
    assert amplitude.std() / amplitude.mean() == pytest.approx(0.523, rel=0.05)
    level = 20 * np.log10(amplitude)
    assert level.std() == pytest.approx(ultrasound.RAYLEIGH_LOG_STD_DB, rel=0.05)


def test_speckle_adds_in_decibels_with_one_spread_at_every_brightness():
    clean = np.concatenate([flat(0.0), flat(0.3), flat(0.7)], axis=1)
    out, params = corrupt(
        clean, "ultrasound_speckle", severity=3, seed=0, value_range=UNIT, return_params=True
    )
    added_db = (out - clean) * ultrasound.DYNAMIC_RANGE_DB
    spread_db = ultrasound.ultrasound_speckle.severity_params[2][0]
    dark, bright = added_db[:, 128:256], added_db[:, 256:]
    assert dark.std() == pytest.approx(spread_db, rel=0.1)
    assert bright.std() == pytest.approx(dark.std(), rel=0.1)
    assert abs(dark.mean()) < 0.1 * spread_db, "the mean level in dB stays"
    assert np.all(out[:, :128] == 0), "black (below the display floor) stays black"
    assert params["draws"]["scan"]["kind"] == "linear"


def test_speckle_spread_is_the_same_in_bright_and_dark_tissue_of_a_real_scan(linear_scan):
    clean = linear_scan.astype(np.float64)
    out = corrupt(linear_scan, "ultrasound_speckle", 3, seed=7).astype(np.float64)
    region = ultrasound.detect_scan(grey(linear_scan)).region
    added_db = (out - clean) * ultrasound.DYNAMIC_RANGE_DB / 255
    dark = region & (clean >= 25) & (clean <= 45)
    bright = region & (clean >= 90) & (clean <= 200)
    assert dark.sum() > 10_000 and bright.sum() > 5_000
    assert added_db[bright].std() == pytest.approx(added_db[dark].std(), rel=0.2)


# --------------------------------------------------------------------------- shadowing


def test_shadowing_darkens_below_the_reflector_and_leaves_tissue_above_alone():
    clean = phantom("ultrasound", 128, 0).image.astype(np.float32) / 255
    one_reflector = ultrasound.ultrasound_acoustic_shadowing.function
    out, draws = one_reflector(clean[..., None], (0.9, 1.0, 1.0), np.random.default_rng(5))
    out = out[..., 0]
    scan = ultrasound.detect_scan(clean)
    [reflector] = draws["reflectors"]
    depth, line = reflector["depth_px"], reflector["scan_line"]
    above = scan.depth < 0.9 * depth
    np.testing.assert_array_equal(out[above], clean[above])
    behind = scan.region & (scan.depth > depth + 6) & (np.abs(scan.lateral - line) < 0.01)
    assert out[behind].sum() < 0.2 * clean[behind].sum()


def test_shadows_run_radially_from_the_apex_of_a_sector_scan(sector_scan):
    echo = grey(sector_scan)
    scan = ultrasound.detect_scan(echo)
    one_reflector = ultrasound.ultrasound_acoustic_shadowing.function
    out, draws = one_reflector(echo[..., None], (1.0, 1.0, 1.0), np.random.default_rng(3))
    [reflector] = draws["reflectors"]
    lost = (echo - out[..., 0]) > 0.02
    depth = scan.depth
    assert lost.sum() > 500
    # The shadow keeps its angle from the apex at every depth, so it widens in pixels with depth.
    spans = []
    for lo, hi in ((1.05, 1.25), (1.45, 1.65)):
        band = lost & (depth > lo * reflector["depth_px"]) & (depth < hi * reflector["depth_px"])
        angles = scan.lateral[band]
        assert angles.size > 50
        assert np.median(angles) == pytest.approx(reflector["scan_line"], abs=0.03)
        spans.append((np.percentile(angles, 95) - np.percentile(angles, 5), depth[band].mean()))
    (shallow_angle, shallow_depth), (deep_angle, deep_depth) = spans
    assert deep_angle == pytest.approx(shallow_angle, rel=0.25)
    columns_wide = [
        np.ptp(np.nonzero(lost & (np.abs(depth - d) < 3))[1]) for d in (shallow_depth, deep_depth)
    ]
    assert columns_wide[1] > 1.15 * columns_wide[0]


def test_shadowing_draws_more_reflectors_at_higher_severity():
    clean = phantom("ultrasound", 128, 0).image
    counts = []
    for severity in (1, 3, 5):
        _, params = corrupt(
            clean, "ultrasound_acoustic_shadowing", severity, seed=2, return_params=True
        )
        counts.append(len(params["draws"]["reflectors"]))
    assert counts[0] < counts[1] < counts[2]


# --------------------------------------------------------------------------- reverberation, gain


def test_reverberation_repeats_echoes_at_equal_spacing_with_decaying_amplitude():
    clean = flat(0.1, (160, 128))
    out, params = corrupt(
        clean, "ultrasound_reverberation", 1, seed=1, value_range=UNIT, return_params=True
    )
    spacing, decay = params["draws"]["spacing_px"], params["draws"]["decay"]
    added = out - clean
    assert np.all(added >= 0)
    strongest = np.argsort(added.sum(axis=0))[-20:]  # columns that the echoes cross
    profile = added[:, strongest].mean(axis=1)
    copies = [int(round(k * spacing)) for k in (1, 2, 3) if k * spacing < 150]
    gaps = [int(round((k + 0.5) * spacing)) for k in (1, 2)]
    assert all(profile[c - 1 : c + 2].max() > 4 * profile[g] for c, g in zip(copies, gaps))
    ratio = (
        profile[copies[1] - 1 : copies[1] + 2].max() / profile[copies[0] - 1 : copies[0] + 2].max()
    )
    assert ratio == pytest.approx(decay, abs=0.15)


def test_reverberation_copies_are_arcs_around_the_apex_of_a_sector(sector_scan):
    echo = grey(sector_scan)
    scan = ultrasound.detect_scan(echo)
    out, params = corrupt(sector_scan, "ultrasound_reverberation", 5, seed=4, return_params=True)
    added = grey(out) - echo
    first = scan.depth_range[0] + params["draws"]["spacing_px"]
    on_arc = scan.region & (np.abs(scan.depth - first) < 1.5)
    between = scan.region & (np.abs(scan.depth - first - params["draws"]["spacing_px"] / 2) < 1.5)
    assert added[on_arc].mean() > 3 * max(added[between].mean(), 1e-3)


def test_gain_deficit_grows_with_depth_by_the_stated_decibels():
    clean = flat(0.7)
    out, params = corrupt(
        clean, "ultrasound_gain_attenuation", 3, seed=0, value_range=UNIT, return_params=True
    )
    loss_per_row = (clean - out).mean(axis=1)
    assert np.all(np.diff(loss_per_row) > 0), "deeper rows lose more gain"
    loss_db = ultrasound.ultrasound_gain_attenuation.severity_params[2]
    assert loss_per_row[-1] == pytest.approx(loss_db / ultrasound.DYNAMIC_RANGE_DB, rel=0.03)
    assert loss_per_row[0] < 0.02 * loss_per_row[-1]


def test_gain_deficit_follows_the_distance_from_the_apex_of_a_sector(sector_scan):
    echo = grey(sector_scan)
    scan = ultrasound.detect_scan(echo)
    out, _ = ultrasound.ultrasound_gain_attenuation.function(
        echo[..., None], 24.0, np.random.default_rng(0)
    )
    loss = echo - out[..., 0]
    # Along one arc of equal depth the deficit is the same, whatever the row (where not black).
    middle = np.percentile(scan.depth[scan.region], 70)
    arc = scan.region & (np.abs(scan.depth - middle) < 1) & (echo > 0.45)
    assert arc.sum() > 30
    assert np.ptp(loss[arc]) < 0.01 and loss[arc].mean() > 0.1


def test_gain_deficit_keeps_the_black_surround_black():
    clean = phantom("ultrasound", 128, 1).image
    out = corrupt(clean, "ultrasound_gain_attenuation", 5, seed=0)
    assert np.all(out[clean == 0] == 0)
    assert np.all(out <= clean)


@pytest.mark.parametrize("name", ["ultrasound_acoustic_shadowing", "ultrasound_reverberation"])
def test_no_echoes_appear_outside_the_scanned_sector(name):
    clean = phantom("ultrasound", 128, 0).image
    outside = ~ultrasound.detect_scan(clean.astype(np.float32) / 255).region
    out = corrupt(clean, name, 5, seed=3)
    assert outside.mean() > 0.2
    assert np.all(out[outside] == clean[outside])
