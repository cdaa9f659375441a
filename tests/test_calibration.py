"""SSIM (against scikit-image) and per-image severity calibration by SSIM band."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from medfm_robust_plugin import corrupt, corruption, get_corruption
from medfm_robust_plugin.calibration import (
    PAPER_BANDS,
    StrengthProbe,
    bisection,
    calibrate,
    calibrate_levels,
)
from medfm_robust_plugin.data.phantoms import ct_slice, dermoscopy, mri_slice
from medfm_robust_plugin.ssim import image_ssim, ssim


@pytest.mark.parametrize(
    "make,data_range",
    [
        (lambda r: r.integers(0, 255, (40, 50), dtype=np.uint8), 255),
        (lambda r: r.integers(0, 255, (40, 50, 3), dtype=np.uint8), 255),
        (lambda r: r.integers(0, 4095, (33, 47), dtype=np.uint16), 4095),
        (lambda r: r.normal(0, 400, (32, 32)).astype(np.float32), 2000.0),
        (lambda r: r.random((24, 24, 3)), 1.0),
    ],
)
def test_ssim_matches_scikit_image(make, data_range):
    rng = np.random.default_rng(0)
    a = make(rng)
    b = np.clip(
        a.astype(np.float64) + rng.normal(0, 0.1 * data_range, a.shape), a.min(), a.max()
    ).astype(a.dtype)
    channel_axis = -1 if a.ndim == 3 else None
    expected = structural_similarity(a, b, data_range=data_range, channel_axis=channel_axis)
    assert ssim(a, b, data_range=data_range) == pytest.approx(expected, abs=1e-6)


def test_ssim_default_range_follows_the_dtype():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 65535, (32, 32), dtype=np.uint16)
    b = a // 2
    assert ssim(a, b) == pytest.approx(structural_similarity(a, b, data_range=65535))


@corruption(
    "noisy_veil", family="lab", severity_params=[0.1, 0.2, 0.3, 0.4, 0.5], param_range=(0.0, 1.0)
)
def noisy_veil(image, param, rng):
    """Blend towards a fixed random veil (a smooth, monotone test corruption)."""
    veil = rng.random(image.shape, dtype=np.float32)
    return image * (1 - np.float32(param)) + veil * np.float32(param)


@pytest.mark.parametrize(
    "make",
    [
        lambda: dermoscopy(96, 1).image,
        lambda: ct_slice(96, 2).image,
        lambda: mri_slice(96, 3).image,
    ],
)
def test_every_level_lands_in_its_band(make):
    image = make()
    noise = dataclasses.replace(get_corruption("gaussian_noise"), param_range=(0.0, 0.8))
    for spec in (noise, noisy_veil):
        results = calibrate_levels(image, spec, seed=5)
        for level, (out, record) in zip(range(1, 6), results):
            lo, hi = PAPER_BANDS[level]
            assert record.in_band and record.reachable, (spec.name, record)
            assert lo <= record.ssim <= hi
            # the record tells the truth about the image it returned
            assert image_ssim(out, image) == pytest.approx(record.ssim, abs=1e-5)
            assert out.dtype == image.dtype


def test_unreachable_band_is_never_claimed():
    weak = dataclasses.replace(noisy_veil, name="weak_veil", param_range=(0.0, 0.02))
    image = dermoscopy(64, 0).image
    out, record = calibrate(StrengthProbe(image, weak, seed=0), level=5)
    assert not record.in_band and not record.reachable
    assert record.strength == 1.0 and "not reached" in record.note
    assert record.ssim > PAPER_BANDS[5][1]


def test_corrupt_in_ssim_mode_records_the_calibration_and_replays():
    image = ct_slice(96, 0).image
    spec = dataclasses.replace(get_corruption("gaussian_noise"), param_range=(0.0, 0.8))
    out, params = corrupt(image, spec, 3, seed=2, mode="ssim", return_params=True)
    assert params["mode"] == "ssim" and params["calibration"]["in_band"]
    replay = corrupt(image, spec, strength=params["strength"], seed=params["seed"])
    np.testing.assert_array_equal(out, replay)


def test_shared_probe_needs_fewer_applications_than_bisection():
    image = dermoscopy(96, 4).image
    probe = StrengthProbe(image, noisy_veil, seed=1)
    for level in range(1, 6):
        calibrate(probe, level)
    ours = probe.applications
    plain = StrengthProbe(image, noisy_veil, seed=1)
    for level in range(1, 6):
        bisection(plain, level)
    assert ours <= 5 * 6 and ours < plain.applications / 3


@corruption(
    "test_step_blur",
    family="test",
    severity_params=[1, 2, 3, 4, 5],
    param_range=(0.0, 1.0),
)
def step_darken(image, amount, rng):
    """Darkens by one large step once the amount passes a threshold (like a whole-number kernel)."""
    return image * (0.3 if amount > 0.37 else 1.0)


def test_a_band_stepped_over_is_recorded_unreachable():
    image = ct_slice(96, seed=1).image
    probe = StrengthProbe(image, step_darken, seed=0)
    _, record = calibrate(probe, 3)
    assert not record.in_band
    assert not record.reachable
    assert "jumps over it" in record.note
    assert record.applications <= 16


@corruption(
    "test_early_saturation",
    family="test",
    severity_params=[0.01, 0.02, 0.03, 0.04, 0.05],
    param_range=(0.0, 1.0),
)
def early_saturation(image, amount, rng):
    """Darkens by up to 64 % over the first 0.5 % of the range, then no further (a clipped gain)."""
    return image * np.float32(1.0 - 0.64 * min(amount / 0.005, 1.0))


def test_a_curve_that_saturates_early_is_searched_down_to_its_band():
    """SSIM is the same (0.68, just below band 3) from strength 0.005 to 1: the search leaves the
    flat part quickly instead of creeping down it a few percent a step."""
    image = ct_slice(96, seed=1).image
    probe = StrengthProbe(image, early_saturation, seed=0)
    _, record = calibrate(probe, 3)
    assert record.in_band and record.reachable, record
    assert record.strength < 0.005 and record.applications <= 10


@corruption(
    "test_whole_dip",
    family="test",
    severity_params=[20, 15, 10, 5, 1],
    param_range=(40, 1),
)
def whole_dip(image, quality, rng):
    """A whole-number 'quality' whose darkening is deepest at 4, not at 1 (as JPEG's can be)."""
    gain = {1: 0.75, 2: 0.75, 3: 0.7, 4: 0.45, 5: 0.7}.get(int(quality), 1.0 - 0.4 / quality)
    return image * np.float32(gain)


def test_a_whole_number_curve_that_turns_back_is_searched_next_to_full_strength():
    """Full strength (quality 1) stays above band 3; quality 4 lies in it, and is found. A band
    that none of the next whole numbers reaches stays unreachable, with the nearest SSIM kept."""
    image = ct_slice(96, seed=1).image
    probe = StrengthProbe(image, whole_dip, seed=0)
    full = probe(1.0)
    _, record = calibrate(probe, 3)
    assert full > PAPER_BANDS[3][1]
    assert record.in_band and record.reachable, record
    assert whole_dip.param_for(strength=record.strength) == 4
    _, five = calibrate(probe, 5)
    assert not five.in_band and not five.reachable
    assert "6 whole-number parameters" in five.note
    assert whole_dip.param_for(strength=five.strength) == 4  # the nearest SSIM tried
    assert five.applications <= 1 + 6


def test_jpeg_finds_a_band_below_its_quality_1_ssim():
    """scikit-image's retina as a bare array: JPEG quality 1 keeps SSIM 0.83, quality 4 gives
    0.78 (band 3)."""
    from skimage import data

    out, params = corrupt(data.retina(), "jpeg_compression", 3, 0, True, mode="ssim")
    assert params["calibration"]["in_band"], params["calibration"]
    assert 1 < params["param"] <= 7
    plain = corrupt(data.retina(), "jpeg_compression", strength=1.0, seed=0)
    assert image_ssim(plain, data.retina()) > PAPER_BANDS[3][1]


def _plain_ssim(a, b, data_range):
    """SSIM written as the formula reads (7 x 7 box, sample covariance, 3-pixel border)."""
    import cv2

    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    x, y = (x, y) if x.ndim == 3 else (x[..., None], y[..., None])
    c1, c2, n = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2, 49 / 48

    def box(m):
        return cv2.boxFilter(m, cv2.CV_64F, (7, 7), borderType=cv2.BORDER_REFLECT)

    scores = []
    for c in range(x.shape[2]):
        xc, yc = x[..., c], y[..., c]
        ux, uy = box(xc), box(yc)
        vx, vy = n * (box(xc * xc) - ux * ux), n * (box(yc * yc) - uy * uy)
        vxy = n * (box(xc * yc) - ux * uy)
        ratio = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
        scores.append(float(ratio[3:-3, 3:-3].mean()))
    return float(np.mean(scores))


def test_ssim_against_a_kept_reference_gives_the_bits_of_the_plain_formula():
    from medfm_robust_plugin.ssim import PresentedReference, SSIMReference, presented_ssim, ssim

    rng = np.random.default_rng(3)
    clean = rng.integers(0, 256, (90, 70, 3)).astype(np.uint8)
    noisy = np.clip(clean + rng.normal(0, 20, clean.shape), 0, 255).astype(np.uint8)
    as_float = noisy.astype(np.float64), clean.astype(np.float64)
    assert ssim(*as_float, data_range=255.0) == _plain_ssim(noisy, clean, 255.0)
    kept = SSIMReference(clean, 255.0)
    for sigma in (5, 20, 60):
        other = np.clip(clean + rng.normal(0, sigma, clean.shape), 0, 255).astype(np.uint8)
        assert kept.ssim(other) == _plain_ssim(other, clean, 255.0)
    grey = rng.random((40, 33)) * 300 - 100
    shown = PresentedReference(grey, (-50.0, 150.0))
    assert shown.ssim(grey * 0.9) == presented_ssim(grey * 0.9, grey, (-50.0, 150.0))


def _exact_byte_ssim(a, b):
    """SSIM of two 8-bit images from exact int64 window sums, the ratio in float64."""
    from numpy.lib.stride_tricks import sliding_window_view

    x, y = np.asarray(a, np.int64), np.asarray(b, np.int64)
    x, y = (x, y) if x.ndim == 3 else (x[..., None], y[..., None])

    def sums(m):
        return sliding_window_view(m, (7, 7), axis=(0, 1)).sum(axis=(-2, -1))

    n = 49
    c1, c2 = (0.01 * 255 * n) ** 2, (0.03 * 255) ** 2 * n * (n - 1)
    sx, sy, sxx, syy, sxy = sums(x), sums(y), sums(x * x), sums(y * y), sums(x * y)
    numerator = (2.0 * sx * sy + c1) * (2.0 * (n * sxy - sx * sy) + c2)
    denominator = (1.0 * sx * sx + sy * sy + c1) * (1.0 * n * (sxx + syy) - sx * sx - sy * sy + c2)
    return float(np.mean((numerator / denominator).mean(axis=(0, 1))))


@pytest.mark.parametrize(
    "shape",
    [(7, 7), (7, 40), (40, 7, 3), (38, 45), (39, 45, 3), (40, 45, 3), (71, 64, 3), (97, 33)],
)
def test_the_8_bit_path_is_the_formula_on_exact_window_sums(shape):
    """Two 8-bit images take the integer path (strips of STRIP_ROWS rows; the shapes straddle a
    strip's edges): equal to the formula on exact window sums, and to the float64 computation
    and scikit-image to within their rounding."""
    from medfm_robust_plugin.ssim import STRIP_ROWS, ByteSSIMReference, SSIMReference

    assert STRIP_ROWS == 32  # the shapes above are chosen around it
    rng = np.random.default_rng(shape[0] * 100 + shape[1])
    clean = rng.integers(0, 256, shape).astype(np.uint8)
    clean[: shape[0] // 3] = 200  # a flat stretch, where the variances are zero
    for sigma in (0.5, 5, 40, 200):
        other = np.clip(clean + rng.normal(0, sigma, shape), 0, 255).astype(np.uint8)
        fast = ssim(other, clean)
        assert fast == ByteSSIMReference(clean).ssim(other)
        assert fast == pytest.approx(_exact_byte_ssim(other, clean), abs=1e-7)
        assert fast == pytest.approx(SSIMReference(clean, 255.0).ssim(other), abs=1e-7)
        channel_axis = -1 if len(shape) == 3 else None
        expected = structural_similarity(other, clean, data_range=255, channel_axis=channel_axis)
        assert fast == pytest.approx(expected, abs=1e-6)
    assert ssim(clean, clean) == 1.0


def test_presented_ssim_of_8_bit_images_takes_the_exact_path():
    from medfm_robust_plugin.ssim import PresentedReference, presented_ssim

    rng = np.random.default_rng(9)
    clean = rng.integers(0, 256, (50, 60, 4)).astype(np.uint8)  # RGBA: alpha is not shown
    noisy = np.clip(clean + rng.normal(0, 30, clean.shape), 0, 255).astype(np.uint8)
    noisy[..., 3] = 0
    expected = _exact_byte_ssim(noisy[..., :3], clean[..., :3])
    assert presented_ssim(noisy, clean, (0.0, 255.0)) == pytest.approx(expected, abs=1e-7)
    kept = PresentedReference(clean, (0, 255))
    assert kept.bytes is not None and kept.ssim(noisy) == presented_ssim(noisy, clean, (0, 255))
    # a window other than 0-255 is a different presentation: the float path, as before
    window = (20.0, 220.0)
    shown = PresentedReference(clean, window)
    assert shown.bytes is None
    assert shown.ssim(noisy) == presented_ssim(noisy, clean, window)
    assert abs(shown.ssim(noisy) - kept.ssim(noisy)) > 1e-4


def test_the_first_guess_is_the_table_level_on_the_strength_scale():
    from medfm_robust_plugin.calibration import table_strength

    noise = get_corruption("gaussian_noise")
    lo, hi = noise.param_range or (noise.severity_params[0], noise.severity_params[-1])
    for level in range(1, 6):
        expected = (noise.severity_params[level - 1] - lo) / (hi - lo)
        assert table_strength(noise, level) == pytest.approx(expected)
    # tuple parameters: the mean position of their entries that vary over the range
    defocus = get_corruption("defocus_blur")  # (radius, alias sigma) from (0, 0.1) to (30, 0.5)
    assert table_strength(defocus, 3) == pytest.approx(((6 - 0) / 30 + (0.5 - 0.1) / 0.4) / 2)
    words = dataclasses.replace(noisy_veil, severity_params=("a", "b", "c", "d", "e"))
    assert table_strength(words, 2) == 0.5
    # a table tuned to land in the band ends the search at its first application
    probe = StrengthProbe(dermoscopy(96, 4).image, noisy_veil, seed=1)
    _, first = calibrate(probe, 3)
    tuned = dataclasses.replace(noisy_veil, severity_params=(0.1, 0.2, first.strength, 0.4, 0.5))
    _, record = calibrate(StrengthProbe(dermoscopy(96, 4).image, tuned, seed=1), 3)
    assert record.in_band and record.applications == 1


@corruption(
    "test_concave_veil",
    family="test",
    severity_params=[0.5, 0.6, 0.7, 0.8, 0.9],
    param_range=(0.0, 1.0),
)
def concave_veil(image, amount, rng):
    """Blends towards a random veil by amount**0.25: most of the change comes in the first percent
    of the range, as shot noise on a dark photograph."""
    veil = rng.random(image.shape, dtype=np.float32)
    weight = np.float32(amount**0.25 if amount > 0 else 0.0)
    return image * (1 - weight) + veil * weight


def test_a_concave_curve_is_crossed_by_fitting_its_exponent(monkeypatch):
    """Every level of a curve with 1 - SSIM ~ strength**0.25 whose table starts far too strong:
    from two too-strong points the fitted power law reaches the band in a few applications,
    fewer than the line through the origin alone takes."""
    from medfm_robust_plugin import calibration

    image = dermoscopy(96, 2).image

    def applications():
        counts = []
        for level in range(1, 6):
            _, record = calibrate(StrengthProbe(image, concave_veil, seed=3), level)
            assert record.in_band and record.reachable, record
            counts.append(record.applications)
        return counts

    fitted = applications()
    assert max(fitted) <= 7, fitted
    monkeypatch.setattr(calibration, "_one_sided", lambda *args: None)
    assert sum(applications()) > sum(fitted) + 5


def test_a_large_image_is_searched_on_its_centre_first(monkeypatch):
    """Above GUIDE_PIXELS the search starts where a search on the central GUIDE_SIDE square
    ended: every level in band on the whole image, in fewer whole-image applications than
    without the guide, and the same result on every call."""
    from medfm_robust_plugin import calibration

    image = dermoscopy(720, 6).image
    noise = dataclasses.replace(get_corruption("gaussian_noise"), param_range=(0.0, 0.8))
    assert image.shape[0] * image.shape[1] > calibration.GUIDE_PIXELS

    def search():
        results = [calibrate(StrengthProbe(image, noise, seed=2), level) for level in range(1, 6)]
        for _, record in results:
            assert record.in_band and record.reachable, record
        return results

    guided = search()
    again = search()
    for (out, record), (out_again, record_again) in zip(guided, again):
        assert record == record_again and np.array_equal(out, out_again)
    monkeypatch.setattr(calibration, "GUIDE_PIXELS", 10**9)
    unguided = search()
    with_guide = sum(record.applications for _, record in guided)
    assert with_guide < sum(record.applications for _, record in unguided)
    assert with_guide <= 8


def test_a_nearly_flat_stretch_extrapolates_to_the_step_limit_without_overflow():
    """Two points on one side whose SSIMs differ in the ninth decimal fit an exponent near 0:
    the power law's step is held to its limit (it overflowed the power before)."""
    from types import SimpleNamespace

    from medfm_robust_plugin.calibration import MAX_EXTRAPOLATION, _next_strength, _one_sided

    too_weak = SimpleNamespace(seen={0.5: (0.95, None, {}), 0.9: (0.949999999, None, {})})
    guess = _one_sided(too_weak, (0.9, 0.050000001), None, target=0.545)
    assert guess == pytest.approx(1.0)  # upwards: capped at full strength
    too_strong = SimpleNamespace(seen={0.01: (0.3, None, {}), 0.02: (0.299999999, None, {})})
    guess = _one_sided(too_strong, None, (0.01, 0.7), target=0.935)
    assert guess == pytest.approx(0.01 / MAX_EXTRAPOLATION)
    # a bracket whose ends differ in the ninth decimal: held inside the bracket
    guess = _next_strength((0.2, 0.3), (0.3, 0.300000001), target=0.545)
    assert 0.2 < guess < 0.3


@pytest.mark.parametrize("shape", [(40, 45), (71, 64, 3), (97, 33)])
def test_ssim_over_a_region_is_the_mean_of_scikit_images_map_there(shape):
    """Both paths average the SSIM map over the windows centred in the region (the imaged region
    of a frame) and give the whole-frame mean of the same map beside it."""
    from medfm_robust_plugin.ssim import ByteSSIMReference, SSIMReference

    rng = np.random.default_rng(shape[0] + shape[1])
    stripes = 40 * np.sin(np.arange(shape[1]) / 5.0)  # smooth, so that noise shows
    stripes = stripes[:, None] if len(shape) == 3 else stripes
    clean = (128 + stripes + rng.normal(0, 5, shape)).astype(np.uint8)
    other = np.clip(clean + rng.normal(0, 25, shape), 0, 255).astype(np.uint8)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    region = (yy - shape[0] / 2) ** 2 + (xx - shape[1] / 3) ** 2 < (0.4 * min(shape[:2])) ** 2
    other[~region] = clean[~region]  # as a corruption that keeps the surround
    channel_axis = -1 if len(shape) == 3 else None
    _, full = structural_similarity(
        other, clean, data_range=255, channel_axis=channel_axis, full=True
    )
    per_pixel = full.mean(axis=2) if full.ndim == 3 else full  # the channels' mean
    inner = np.zeros(shape[:2], bool)
    inner[3:-3, 3:-3] = True
    expected = float(per_pixel[region & inner].mean())
    frame = float(per_pixel[inner].mean())
    assert frame > expected + 0.05  # the untouched surround lifts the whole-frame mean
    for reference in (ByteSSIMReference(clean, region), SSIMReference(clean, 255.0, region)):
        in_region, whole = reference.scores(other)
        assert in_region == pytest.approx(expected, abs=1e-6)
        assert whole == pytest.approx(frame, abs=1e-6)
        assert reference.ssim(other) == in_region
    assert ssim(other, clean, region=region) == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match="region of shape"):
        ssim(other, clean, region=region[1:])
    corner = np.zeros(shape[:2], bool)
    corner[:3, :3] = True  # within the border that no whole window is centred in
    with pytest.raises(ValueError, match="no whole window"):
        ssim(other, clean, region=corner)
