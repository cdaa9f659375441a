"""X-ray corruptions behave as the physics of projection radiography says they should."""

from __future__ import annotations

from pathlib import Path

import deid_data
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from medfm_robust_plugin import corrupt, load_image
from medfm_robust_plugin.corruptions import xray
from medfm_robust_plugin.data.phantoms import phantom
from medfm_robust_plugin.presentation import presentation_for

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


def test_quantum_noise_adds_only_the_variance_missing_at_the_lower_dose():
    """At dose f N0 the counts have Poisson variance N; the image already holds f^2 N0 E of it."""
    fraction = xray.xray_quantum_noise.severity_params[2]
    quanta = fraction * xray.REFERENCE_QUANTA
    for level in (0.1, 0.4, 0.7):
        clean = flat(level, (128, 128))
        out = corrupt(clean, "xray_quantum_noise", severity=3, seed=2, value_range=UNIT)
        counts = quanta * xray.exposure_from_display(out.astype(np.float64))
        mean_counts = quanta * float(xray.exposure_from_display(np.float64(level)))
        assert counts.mean() == pytest.approx(mean_counts, rel=0.01), "the gain keeps the mean"
        assert counts.var() / mean_counts == pytest.approx(1.0 - fraction, rel=0.1), level


def test_quantum_noise_severity_1_is_below_the_normal_dose():
    fractions = xray.xray_quantum_noise.severity_params
    assert 0.0 < fractions[0] < 1.0 and all(b < a for a, b in zip(fractions, fractions[1:]))
    clean = chest()
    np.testing.assert_array_equal(
        corrupt(clean, "xray_quantum_noise", strength=0.0, seed=0, value_range=UNIT), clean
    )


def test_quantum_noise_and_under_exposure_at_the_same_dose_add_the_same_noise():
    """Both lower the dose; under-exposure also lets the image get lighter, quantum noise not."""
    clean = np.concatenate([flat(0.2), flat(0.45)], axis=1)
    stops = 1.5
    fraction = 2.0**-stops
    strength = (1.0 - fraction) / (1.0 - xray.xray_quantum_noise.param_range[1])
    noisy = corrupt(clean, "xray_quantum_noise", strength=strength, seed=7, value_range=UNIT)
    strength_u = stops / xray.xray_under_exposure.param_range[1]
    lighter = corrupt(clean, "xray_under_exposure", strength=strength_u, seed=7, value_range=UNIT)
    shift = stops * np.log(2) / xray.ATTENUATION_SPAN
    np.testing.assert_allclose(lighter - shift, noisy, atol=1e-5)


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


@pytest.mark.parametrize("name", [c.name for c in xray.CORRUPTIONS])
def test_a_grey_rgb_radiograph_stays_grey(name):
    grey = phantom("xray", 64, 0).image
    rgb = np.repeat((grey / 16).astype(np.uint8)[..., None], 3, axis=2)
    out = corrupt(rgb, name, severity=3, seed=0)
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 0], out[..., 2])


# --------------------------------------------------------------------------- a real radiograph

CAT = Path(deid_data.__file__).parent / "data" / "animals" / "cat.dcm"


@pytest.fixture(scope="module")
def cat_radiograph():
    """The DX cat radiograph (12-bit MONOCHROME2), its presented centre 768 x 768 in [0, 1]."""
    medical = load_image(str(CAT))
    h, w = medical.array.shape[:2]
    centre = medical.array[h // 2 - 384 : h // 2 + 384, w // 2 - 384 : w // 2 + 384]
    presentation = presentation_for(medical.array, "xray", medical.meta)
    return medical, presentation.to_unit(centre)


def test_quantum_noise_on_a_radiograph_follows_the_dose_and_keeps_its_brightness(cat_radiograph):
    _, clean = cat_radiograph
    fraction = xray.xray_quantum_noise.severity_params[0]
    out = corrupt(clean, "xray_quantum_noise", severity=1, seed=0, value_range=UNIT)
    added = out - clean
    assert abs(float(added.mean())) < 2e-3, "the detector gain restores the brightness"
    # Per grey level, the added noise is the variance missing between the normal and the low dose.
    ratios = []
    for low in (0.2, 0.4, 0.6):
        band = (clean >= low) & (clean < low + 0.05)
        exposure = xray.exposure_from_display(clean[band].astype(np.float64))
        normal_dose = np.sqrt(np.mean(1.0 / (xray.REFERENCE_QUANTA * exposure)))
        ratios.append(float(added[band].std() * xray.ATTENUATION_SPAN / normal_dose))
    expected = np.sqrt(1.0 / fraction - 1.0)
    np.testing.assert_allclose(ratios, expected, rtol=0.1)
    assert expected < 1.0, "severity 1 adds less noise than the normal dose already holds"
    stds = [
        float(np.std(corrupt(clean, "xray_quantum_noise", s, seed=0, value_range=UNIT) - clean))
        for s in (1, 3, 5)
    ]
    assert stds[0] < stds[1] < stds[2]


def test_a_radiograph_file_keeps_its_dtype_and_is_shown_through_its_dicom_window(cat_radiograph):
    medical, _ = cat_radiograph
    out, params = corrupt(medical, "xray_quantum_noise", severity=1, seed=0, return_params=True)
    assert out.dtype == medical.array.dtype and out.shape == medical.array.shape
    assert params["value_range"] == [0.0, 4096.0]  # WindowCenter 2048, WindowWidth 4096
    assert 0.8 < params["ssim"] < 0.999


def test_collimated_field_is_the_rectangle_between_the_shuttered_bands():
    image = chest(1, 128)
    assert xray.collimated_field(image) is None  # an uncollimated frame
    image[:, :20] = 1.0  # blades on the left and at the top: white, no primary beam
    image[:9] = 1.0
    image[40:60, 120:] = 1.0  # white inside the field that is no band (dense bone at the edge)
    field = xray.collimated_field(image)
    expected = np.zeros(image.shape, bool)
    expected[9:, 20:] = True
    assert np.array_equal(field, expected)


@pytest.mark.parametrize(
    "name",
    [
        "xray_scatter",
        "xray_under_exposure",
        "xray_over_exposure",
        "xray_quantum_noise",
        "xray_grid_lines",
    ],
)
def test_acquisition_corruptions_leave_the_shuttered_bands_of_a_real_radiograph(name):
    """The lower-leg radiograph has white collimation on both sides (45% of the frame): the
    acquisition's corruptions change the exposed field only, and SSIM is measured there."""
    from medfm_robust_plugin.data.reference_set import reference_images
    from medfm_robust_plugin.engine import image_context

    leg = next(r for r in reference_images("xray") if r.name == "xray_leg")
    array, _, context, shown = image_context(leg.image, modality="xray")
    field = xray.collimated_field(shown.to_unit(array))
    assert field is not None and 0.5 < field.mean() < 0.6
    out, params = corrupt(leg.image, name, 4, 0, True, modality="xray")
    assert np.array_equal(out[~field], array[~field])
    assert not np.array_equal(out[field], array[field])
    assert params["ssim_region"] == {"kind": "collimated field", "share": round(field.mean(), 4)}
    assert params["ssim"] < params["ssim_frame"]
