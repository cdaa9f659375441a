"""X-ray corruptions behave as the physics of projection radiography says they should."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from medfm_robust_plugin import corrupt
from medfm_robust_plugin.corruptions import xray
from medfm_robust_plugin.data.phantoms import phantom

UNIT = (0.0, 1.0)  # flat test images keep their grey levels instead of being stretched to [0, 1]


def chest(seed: int = 0, size: int = 128) -> np.ndarray:
    """The 12-bit chest phantom scaled to [0, 1] (float32)."""
    image = phantom("xray", size, seed).image.astype(np.float32)
    return image / image.max()


def flat(level: float, shape: tuple[int, int] = (96, 96)) -> np.ndarray:
    return np.full(shape, level, np.float32)


def test_display_curve_round_trips_exposure():
    display = np.linspace(0, 1, 11, dtype=np.float32)
    back = xray.display_from_exposure(xray.exposure_from_display(display))
    np.testing.assert_allclose(back, display, atol=1e-6)


def test_scatter_adds_exposure_so_the_image_fogs_most_where_the_beam_is_weakest():
    clean = chest()
    out = corrupt(clean, "xray_scatter", severity=4, seed=0, value_range=UNIT)
    assert np.all(out <= clean + 1e-6), "scatter only adds exposure: no pixel may get brighter"
    darkening = clean - out
    dense, thin = clean > np.quantile(clean, 0.8), clean < np.quantile(clean, 0.2)
    assert darkening[dense].mean() > 2 * darkening[thin].mean()
    assert out.std() < clean.std(), "scatter lowers contrast"


def test_scatter_adds_a_smooth_exposure_field():
    """What scatter adds lives in the exposure domain and has no fine detail."""
    clean = chest()
    out = corrupt(clean, "xray_scatter", severity=3, seed=0, value_range=UNIT)
    added = xray.exposure_from_display(out) - xray.exposure_from_display(clean)
    detail = added - gaussian_filter(added, 2.0)
    assert added.min() > 0
    assert detail.std() < 0.01 * added.mean()


def test_over_exposure_darkens_and_burns_out_thin_regions():
    # Fixed log-exposure display (MONOCHROME2): more quanta -> darker film, lung clips to black.
    clean = chest()
    out = corrupt(clean, "xray_over_exposure", severity=5, seed=0, value_range=UNIT)
    stops = xray.xray_over_exposure.severity_params[4]
    expected_shift = stops * np.log(2) / xray.ATTENUATION_SPAN
    unclipped = clean > expected_shift + 0.01
    np.testing.assert_allclose(clean[unclipped] - out[unclipped], expected_shift, atol=1e-5)
    assert (out == 0).mean() > (clean == 0).mean() + 0.05, "thin regions saturate to black"
    assert out.mean() < clean.mean()


def test_under_exposure_lightens_and_adds_mottle_where_few_quanta_arrive():
    clean = np.concatenate([flat(0.15), flat(0.55)], axis=1)
    out = corrupt(clean, "xray_under_exposure", severity=3, seed=1, value_range=UNIT)
    stops = xray.xray_under_exposure.severity_params[2]
    shift = stops * np.log(2) / xray.ATTENUATION_SPAN
    thin, dense = out[:, :96], out[:, 96:]
    assert thin.mean() == pytest.approx(0.15 + shift, abs=0.01)
    # Relative variance grows by (2^stops - 1) / N, and N falls as exp(-span * v).
    assert dense.std() > 1.5 * thin.std() > 0


def test_quantum_noise_variance_equals_the_count():
    """Poisson: in the count domain the variance equals the mean, at every exposure level."""
    log10_quanta = xray.xray_quantum_noise.severity_params[2]
    quanta = 10.0**log10_quanta
    for level in (0.1, 0.4, 0.7):
        out = corrupt(
            flat(level, (128, 128)), "xray_quantum_noise", severity=3, seed=2, value_range=UNIT
        )
        counts = quanta * xray.exposure_from_display(out.astype(np.float64))
        assert counts.var() / counts.mean() == pytest.approx(1.0, rel=0.1), level


def test_quantum_noise_is_stronger_at_lower_dose():
    clean = chest()
    noise = [
        np.std(corrupt(clean, "xray_quantum_noise", severity=s, seed=0, value_range=UNIT) - clean)
        for s in (1, 3, 5)
    ]
    assert noise[0] < noise[1] < noise[2]


def test_grid_lines_put_a_spectral_peak_at_the_grid_frequency():
    clean = flat(0.4, (128, 160))
    out, params = corrupt(
        clean, "xray_grid_lines", severity=3, seed=4, value_range=UNIT, return_params=True
    )
    draws = params["draws"]
    profile = out.mean(axis=0) if draws["vertical_lines"] else out.mean(axis=1)
    spectrum = np.abs(np.fft.rfft(profile - profile.mean()))
    peak = np.fft.rfftfreq(profile.size)[np.argmax(spectrum)]
    assert peak == pytest.approx(draws["frequency"], abs=1.5 / profile.size)


def test_grid_lines_only_remove_primary_exposure():
    clean = chest()
    out = corrupt(clean, "xray_grid_lines", severity=5, seed=0, value_range=UNIT)
    assert np.all(out >= clean - 1e-6), "lead strips absorb: the display only gets brighter"


def test_window_level_shift_clips_more_as_the_window_narrows():
    clean = chest()
    clipped = []
    for severity in (1, 3, 5):
        out = corrupt(clean, "xray_window_level_shift", severity=severity, seed=0, value_range=UNIT)
        clipped.append(np.mean((out == 0) | (out == 1)))
    assert clipped[0] < clipped[1] < clipped[2]


@pytest.mark.parametrize("name", [c.name for c in xray.XRAY_CORRUPTIONS])
def test_a_grey_rgb_radiograph_stays_grey(name):
    grey = phantom("xray", 64, 0).image
    rgb = np.repeat((grey / 16).astype(np.uint8)[..., None], 3, axis=2)
    out = corrupt(rgb, name, severity=3, seed=0)
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 0], out[..., 2])
