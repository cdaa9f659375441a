"""Ultrasound corruptions behave as B-mode physics says they should."""

from __future__ import annotations

import numpy as np
import pytest

from medfm_robust_plugin import corrupt
from medfm_robust_plugin.corruptions import ultrasound
from medfm_robust_plugin.data.phantoms import phantom

UNIT = (0.0, 1.0)  # flat test images keep their grey levels instead of being stretched to [0, 1]


def flat(level: float, shape: tuple[int, int] = (128, 128)) -> np.ndarray:
    return np.full(shape, level, np.float32)


def test_speckle_is_multiplicative():
    """Zero stays zero and the fluctuation is proportional to the echo (constant contrast)."""
    clean = np.concatenate([flat(0.0), flat(0.1), flat(0.3)], axis=1)
    out = corrupt(clean, "ultrasound_speckle", severity=3, seed=0, value_range=UNIT)
    dark, dim, bright = out[:, :128], out[:, 128:256], out[:, 256:]
    assert np.all(dark == 0)
    assert bright.std() == pytest.approx(3 * dim.std(), rel=0.15)
    assert dim.mean() == pytest.approx(0.1, rel=0.05), "unit-mean speckle keeps the echo level"


def test_fully_developed_speckle_has_rayleigh_contrast():
    amplitude = ultrasound.speckle_amplitude((256, 256), np.random.default_rng(0), (0.6, 1.3))
    # Rayleigh: std / mean = sqrt(4 / pi - 1) = 0.523 (Burckhardt 1978).
    assert amplitude.std() / amplitude.mean() == pytest.approx(0.523, rel=0.05)


def test_shadowing_darkens_below_the_reflector_and_leaves_tissue_above_alone():
    clean = phantom("ultrasound", 128, 0).image.astype(np.float32) / 255
    one_reflector = ultrasound.ultrasound_acoustic_shadowing.function
    out, draws = one_reflector(clean[..., None], (0.9, 1.0), np.random.default_rng(5))
    out = out[..., 0]
    [(row, column)] = draws["reflectors_row_column"]
    r, c = int(row), int(column)
    # Above the reflector (with a margin for the curvature of its arc): untouched.
    np.testing.assert_array_equal(out[: max(r - 8, 0)], clean[: max(r - 8, 0)])
    # Straight below it along the beam: the echo is mostly gone.
    below = slice(r + 6, None), slice(c - 2, c + 3)
    assert out[below].sum() < 0.2 * clean[below].sum()
    # Its surface echoes brightly.
    assert out[r - 2 : r, c].mean() > clean[r - 2 : r, c].mean()


def test_shadowing_draws_more_reflectors_at_higher_severity():
    clean = phantom("ultrasound", 128, 0).image
    counts = []
    for severity in (1, 3, 5):
        _, params = corrupt(
            clean, "ultrasound_acoustic_shadowing", severity, seed=2, return_params=True
        )
        counts.append(len(params["draws"]["reflectors_row_column"]))
    assert counts[0] < counts[1] < counts[2]


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


def test_gain_deficit_keeps_the_black_surround_black():
    clean = phantom("ultrasound", 128, 1).image
    out = corrupt(clean, "ultrasound_gain_attenuation", 5, seed=0)
    assert np.all(out[clean == 0] == 0)
    assert np.all(out <= clean)


@pytest.mark.parametrize("name", ["ultrasound_acoustic_shadowing", "ultrasound_reverberation"])
def test_no_echoes_appear_outside_the_scanned_sector(name):
    clean = phantom("ultrasound", 128, 0).image
    outside = ultrasound.scanned_region(clean.astype(np.float32) / 255) == 0
    out = corrupt(clean, name, 5, seed=3)
    assert outside.mean() > 0.2
    assert np.all(out[outside] == 0)
