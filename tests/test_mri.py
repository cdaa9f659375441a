"""The MR corruptions do what MR physics says they do (examples of use, one artifact each)."""

from __future__ import annotations

import numpy as np
import pytest

from medfm_robust_plugin import corrupt, list_corruptions
from medfm_robust_plugin.corruptions import mri
from medfm_robust_plugin.data.phantoms import mri_slice

NAMES = [c.name for c in list_corruptions(family="mri")]


@pytest.fixture(scope="module")
def brain() -> np.ndarray:
    """MR magnitude phantom, float32 in arbitrary units 0-1000."""
    return mri_slice(192, seed=0).image


def test_the_family_is_complete():
    assert set(NAMES) == {
        "mri_rician_noise",
        "mri_bias_field",
        "mri_ghosting",
        "mri_motion",
        "mri_gibbs_ringing",
        "mri_kspace_spike",
        "mri_undersampling_aliasing",
    }


@pytest.mark.parametrize("name", NAMES)
def test_draws_do_not_depend_on_the_strength(name, brain):
    """One seed, one artifact pattern: what is drawn is the same at every strength."""
    draws = [
        corrupt(brain, name, strength=s, seed=9, return_params=True)[1].get("draws")
        for s in (0.2, 0.9)
    ]
    assert draws[0] == draws[1]


def test_rician_noise_is_rayleigh_in_the_background_and_gaussian_in_tissue(brain):
    sigma = 0.04
    # sigma is relative to the image's maximum (the unit scale)
    out = corrupt(brain, "mri_rician_noise", strength=sigma / 0.1, seed=1) / brain.max()
    clean = brain / brain.max()
    background, tissue = clean == 0, clean > 0.55
    assert out[background].mean() == pytest.approx(sigma * np.sqrt(np.pi / 2), rel=0.03)
    assert out[background].std() == pytest.approx(sigma * np.sqrt(2 - np.pi / 2), rel=0.05)
    residual = out[tissue] - clean[tissue]
    assert residual.std() == pytest.approx(sigma, rel=0.05)
    assert abs(residual.mean()) < 0.1 * sigma  # bright tissue: nearly unbiased


def test_bias_field_is_smooth_and_keeps_the_clean_maximum(brain):
    out = corrupt(brain, "mri_bias_field", severity=5, seed=2)
    assert out.max() == pytest.approx(brain.max(), rel=1e-4)
    tissue = brain > 100
    gain = out[tissue] / brain[tissue]
    # the table's gain ratio across the object (p95 / p5), whatever the draw
    ratio = np.percentile(gain, 95) / np.percentile(gain, 5)
    assert ratio == pytest.approx(mri.mri_bias_field.param_for(severity=5), rel=0.02)
    # the gain is a cubic in the coordinates: a cubic fit leaves almost nothing
    rows, cols = np.nonzero(tissue)
    r, c = rows / 95.5 - 1, cols / 95.5 - 1
    basis = np.stack([r**i * c**j for i, j in mri.bias_monomials()], axis=1)
    log_gain = np.log(gain)
    fit, *_ = np.linalg.lstsq(basis, log_gain, rcond=None)
    assert np.abs(basis @ fit - log_gain).max() < 1e-3


def test_ghosts_are_copies_shifted_by_fov_over_period():
    square = np.zeros((128, 128), np.float32)
    square[40:60, 50:80] = 1.0
    ghosted = mri.ghost_lines(square, axis=0, period=4, intensity=1.0)
    # every 4th line removed: copies at multiples of 128 / 4 = 32 rows, all equally bright
    # (1/4, less the row mean that the kept centre line puts back: 20 / 128)
    copies = []
    for shift in (32, 64, 96):
        copy = np.roll(square, shift, axis=0)
        copies.append(ghosted[(copy > 0) & (square == 0)].mean())
    assert copies == pytest.approx([0.25 - 20 / 128] * 3, abs=0.01)
    between = ghosted[62:70, 50:80]  # between the object (rows 40-59) and its first copy (72-91)
    assert between.mean() == pytest.approx(20 / 128, abs=0.01)  # only the row mean
    assert ghosted[40:60, 90:128].max() < 0.02  # nothing along the other axis


def test_registered_ghosting_records_its_axis_and_period(brain):
    out, params = corrupt(brain, "mri_ghosting", severity=5, seed=4, return_params=True)
    draws = params["draws"]
    assert draws["phase_encode_axis"] in (0, 1) and draws["period"] in (2, 3, 4)
    mild = corrupt(brain, "mri_ghosting", severity=1, seed=4)
    background = brain == 0  # where the ghosts of the head land
    assert out[background].mean() > 3 * mild[background].mean() > 0


def test_motion_trajectory_is_still_at_mid_scan():
    path = mri.motion_trajectory(np.random.default_rng(0).standard_normal(32), 257)
    assert path[128] == pytest.approx(0.0, abs=1e-12)
    assert np.abs(path).max() == pytest.approx(1.0)
    assert np.abs(np.diff(path)).max() < 0.2  # smooth, no jumps


def test_motion_spreads_the_artifact_along_the_phase_encode_axis(brain):
    out, params = corrupt(brain, "mri_motion", severity=5, seed=6, return_params=True)
    axis = params["draws"]["phase_encode_axis"]
    error = np.abs(out.astype(np.float64) - brain)
    assert error.mean() > 5.0
    # the error is smeared along the phase-encode axis: its profile across that axis is flat
    along = error.mean(axis=1 - axis)
    across = error.mean(axis=axis)
    assert np.count_nonzero(along > 0.2 * along.max()) > np.count_nonzero(
        across > 0.2 * across.max()
    )


def test_gibbs_ringing_overshoots_a_step_by_about_nine_percent():
    step = np.zeros((64, 256), np.float32)
    step[:, 64:192] = 1.0
    ringing = mri.truncate_kspace(step, (64, 65))  # a quarter of the columns' k-space
    assert ringing.max() == pytest.approx(1.09, abs=0.02)  # the Gibbs phenomenon
    # the k-space centre is kept; the magnitude folds the undershoots up a little
    assert ringing.mean() == pytest.approx(step.mean(), rel=0.03)


def test_gibbs_ringing_draws_nothing(brain):
    a = corrupt(brain, "mri_gibbs_ringing", severity=3, seed=1)
    b = corrupt(brain, "mri_gibbs_ringing", severity=3, seed=2)
    np.testing.assert_array_equal(a, b)


def test_kspace_spike_puts_stripes_at_the_recorded_frequency(brain):
    out, params = corrupt(brain, "mri_kspace_spike", severity=5, seed=3, return_params=True)
    change = np.abs(np.fft.fftshift(np.fft.fft2(out.astype(np.float64) - brain)))
    change[96 - 3 : 96 + 4, 96 - 3 : 96 + 4] = 0  # the magnitude also shifts the mean
    for row, col in params["draws"]["locations"]:
        assert change[row, col] > 0.5 * change.max()
        assert change[row, col] > 100 * np.median(change)


def test_undersampling_masks_are_nested_with_a_full_centre():
    scores = np.random.default_rng(0).random(256)
    masks = [mri.undersampling_mask(scores, r, 11) for r in (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)]
    assert masks[0].all()
    for denser, sparser in zip(masks, masks[1:]):
        assert np.all(denser >= sparser)
    for r, mask in zip((2, 4, 8, 16), masks[1:]):
        assert mask.sum() == 11 + round(245 / r)  # the centre and one in R of the others
        assert mask[128 - 5 : 128 + 6].all()  # the 11 central lines


def test_undersampling_keeps_the_mean_and_aliases_along_one_axis(brain):
    out, params = corrupt(
        brain, "mri_undersampling_aliasing", severity=4, seed=5, return_params=True
    )
    # the k-space centre (the mean) is acquired; the magnitude folds the aliasing up a little
    assert out.mean() == pytest.approx(brain.mean(), rel=0.1)
    axis = params["draws"]["phase_encode_axis"]
    error = np.abs(out.astype(np.float64) - brain)
    # aliasing wraps along the phase-encode axis, into the background above and below the head
    background = brain == 0
    assert error[background].mean() > 2.0
    profile = error.mean(axis=1 - axis)
    assert profile.min() > 0.2 * profile.mean()


def test_any_gray_or_colour_input_comes_back_as_it_went_in(brain):
    as_uint8 = (brain / 1000 * 255).astype(np.uint8)
    rgb = np.repeat(as_uint8[..., None], 3, axis=2)
    for name in NAMES:
        out = corrupt(rgb, name, severity=3, seed=0)
        assert out.dtype == np.uint8 and out.shape == rgb.shape
        assert np.array_equal(out[..., 0], out[..., 1])  # gray stays gray


def test_ffts_use_the_callers_thread_setting(brain, monkeypatch):
    """No private worker count: the k-space transforms follow scipy.fft.set_workers."""
    from scipy import fft

    seen = []
    transforms = ("fft", "ifft", "fft2", "ifft2", "fftn", "ifftn")
    transforms += ("rfft", "irfft", "rfft2", "irfft2", "rfftn", "irfftn")
    for name in transforms:
        original = getattr(fft, name)

        def recording(*args, _original=original, _name=name, **kwargs):
            seen.append((_name, kwargs.get("workers")))
            return _original(*args, **kwargs)

        monkeypatch.setattr(fft, name, recording)
    before = fft.get_workers()
    with fft.set_workers(1):
        for name in NAMES:
            corrupt(brain, name, severity=3, seed=0)
    assert {"fft2", "ifft2", "rfft2", "irfft2"} <= {name for name, _ in seen}
    assert all(workers is None for _, workers in seen)
    assert fft.get_workers() == before


def test_physics_acts_on_magnitudes_not_on_the_window(brain):
    """An MR slice stored with an offset (signed storage) is corrupted as the same magnitudes."""
    offset = (brain - 200.0).astype(np.float32)  # zero signal is stored as -200
    for name in NAMES:
        plain = corrupt(brain, name, severity=3, seed=4)
        shifted = corrupt(offset, name, severity=3, seed=4)
        np.testing.assert_allclose(shifted + 200.0, plain, atol=0.05 * brain.max(), err_msg=name)


def test_rician_noise_never_goes_below_zero_signal(brain):
    out = corrupt(brain, "mri_rician_noise", severity=5, seed=2)
    assert out.min() >= 0.0
    as_uint16 = brain.astype(np.uint16)
    out16 = corrupt(as_uint16, "mri_rician_noise", severity=5, seed=2)
    assert out16.dtype == np.uint16 and out16[brain == 0].mean() > 0  # the Rayleigh background


def _centred_truncation(image, kept):
    """Gibbs truncation as the physics reads: centre k-space, zero the far lines, uncentre."""
    from scipy import fft

    kspace = fft.fftshift(fft.fft2(image))
    for axis in (0, 1):
        n = image.shape[axis]
        half = (int(kept[axis]) - 1) // 2
        if kept[axis] >= n or 2 * half + 1 >= n:
            continue
        index = np.arange(n)[:, None] if axis == 0 else np.arange(n)[None, :]
        kspace = np.where(np.abs(index - n // 2) <= half, kspace, 0)
    return np.abs(fft.ifft2(fft.ifftshift(kspace))).astype(np.float32)


def _centred_ghosts(image, axis, period, intensity, restored, skip_offset=None):
    from scipy import fft

    kspace = fft.fftshift(fft.fft2(image))
    index = np.arange(image.shape[axis])
    offset = (index[:, None] if axis == 0 else index[None, :]) - image.shape[axis] // 2
    modulated = (offset % period == 0) & (np.abs(offset) > restored)
    if skip_offset is not None:  # a deliberately wrong edit: these lines left alone
        modulated &= np.abs(offset) != skip_offset
    kspace = np.where(modulated, kspace * np.float32(1.0 - intensity), kspace)
    return np.abs(fft.ifft2(fft.ifftshift(kspace))).astype(np.float32)


def _close(ours: np.ndarray, centred: np.ndarray, image: np.ndarray) -> float:
    """Assert float32 results agree to rounding: 1e-5 of the image's maximum. A wrong line (one
    k-space line of a random image too many or too few, the Nyquist line among them) moves the
    result by ~1e-2 of it. Returns the difference, in units of that maximum."""
    assert ours.dtype == np.float32 and ours.shape == image.shape
    difference = float(np.abs(ours.astype(np.float64) - centred).max()) / float(image.max())
    assert difference <= 1e-5
    return difference


@pytest.mark.parametrize("size", [2, 3, 5, 8, 31, 64, 65])
def test_uncentred_kspace_edits_match_the_centred_ones(size):
    """Gibbs truncation and ghosting edit the half spectrum of a real transform (uncentred, no
    shifts, contiguous or strided blocks of lines): the values of the centred full-spectrum
    computation to float rounding, on odd and even sizes, both axes, with and without the
    Nyquist line."""
    from medfm_robust_plugin.corruptions.mri import ghost_lines, truncate_kspace

    image = np.random.default_rng(size).random((size, size + 1), dtype=np.float32)
    for kept in [(1, 1), (2, 3), (size // 2, size), (size - 1, 2), (size + 5, 4), (3, size)]:
        _close(truncate_kspace(image, kept), _centred_truncation(image, kept), image)
    for axis in (0, 1):
        for period in (2, 3, 4):
            for restored in (0, 1, 2, 5, 40):
                _close(
                    ghost_lines(image, axis, period, 1.3, restored),
                    _centred_ghosts(image, axis, period, 1.3, restored),
                    image,
                )
    # the tolerance tells lines apart: leaving the last scaled line pair alone (at an even
    # size along the columns, the Nyquist line) is far outside it
    n = image.shape[1]
    if n >= 4:
        period = n // 2 if n % 2 == 0 else 2
        wrong = _centred_ghosts(image, 1, period, 1.3, 0, skip_offset=n // 2)
        right = _centred_ghosts(image, 1, period, 1.3, 0)
        assert np.abs(wrong.astype(np.float64) - right).max() > 1e-3 * image.max()


def test_bias_log_field_is_the_sum_of_its_monomials():
    from medfm_robust_plugin.corruptions.mri import bias_log_field, bias_monomials

    coefficients = np.random.default_rng(0).uniform(-1, 1, len(bias_monomials()))
    rows, cols = np.linspace(-1, 1, 37), np.linspace(-1, 1, 52)
    expected = sum(
        c * np.outer(rows**i, cols**j) for c, (i, j) in zip(coefficients, bias_monomials())
    )
    assert np.allclose(bias_log_field((37, 52), coefficients), expected, rtol=0, atol=1e-13)


def _plain_bias_field(image, gain_ratio, unit_coefficients, inside):
    """The registered bias field written out in float64: span over the object, held range, gain,
    rescaled to the clean maximum."""
    from medfm_robust_plugin.corruptions.mri import bias_log_field

    unit = bias_log_field(image.shape, unit_coefficients)
    lo, hi = np.percentile(unit[inside], (5.0, 95.0))
    span = float(hi - lo)
    scale = np.log(max(gain_ratio, 1.0)) / span if span > 0.0 else 0.0
    held = np.clip(unit, unit[inside].min(), unit[inside].max())
    biased = image.astype(np.float64) * np.exp(scale * held)
    return biased * (image.max() / biased.max()), span


@pytest.mark.parametrize("size", [48, 200, 333])
def test_bias_field_matches_the_float64_computation(size):
    """The float32 field of the registered corruption is the float64 one to float rounding."""
    from medfm_robust_plugin.application import image_context

    image = mri_slice(size, seed=size).image[:, : size - 7]
    _, _, context, _ = image_context(image, modality="mri")
    inside = mri.object_mask(image, context)
    for seed, gain_ratio in [(0, 1.6), (1, 4.0), (2, 6.0)]:
        out, draws = mri.mri_bias_field.function(
            image[..., None], gain_ratio, np.random.default_rng(seed), context
        )
        expected, span = _plain_bias_field(image, gain_ratio, draws["unit_coefficients"], inside)
        assert out.dtype == np.float32
        assert np.abs(out[..., 0] - expected).max() <= 2e-6 * image.max()
        assert draws["unit_log_span"] == pytest.approx(span, abs=2e-6)


def _centred_motion_kspace(image, axis, degrees, shifts):
    """Rigid motion as the physics reads: per segment the centred k-space of the posed image,
    its lines copied, then the whole k-space times the complex128 phase ramp of the shifts."""
    import cv2
    from scipy import fft

    h, w = image.shape
    lines = image.shape[axis]
    freq = fft.fftshift(fft.fftfreq(h)), fft.fftshift(fft.fftfreq(w))
    along = freq[axis][:, None] if axis == 0 else freq[axis][None, :]
    across = freq[1 - axis][None, :] if axis == 0 else freq[1 - axis][:, None]
    shift_along = shifts[:, axis][:, None] if axis == 0 else shifts[:, axis][None, :]
    shift_across = shifts[:, 1 - axis][:, None] if axis == 0 else shifts[:, 1 - axis][None, :]
    ramp = np.exp(-2j * np.pi * (along * shift_along + across * shift_across))
    kspace = np.empty((h, w), np.complex128)
    edges = np.round(np.linspace(0, lines, mri.ROTATION_SEGMENTS + 1)).astype(int)
    for lo, hi in zip(edges[:-1], edges[1:]):
        if hi <= lo:
            continue
        angle = float(degrees[(lo + hi - 1) // 2])
        posed = image
        if angle != 0.0:
            matrix = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, 1.0)
            posed = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=0.0)
        segment = fft.fftshift(fft.fft2(posed.astype(np.float64)))
        part = (slice(lo, hi), slice(None)) if axis == 0 else (slice(None), slice(lo, hi))
        kspace[part] = segment[part]
    return kspace * ramp


@pytest.mark.parametrize("shape", [(2, 3), (5, 4), (31, 32), (64, 64), (65, 70), (96, 81)])
def test_motion_matches_the_centred_computation(shape):
    """The motion k-space is built on uncentred lines from real transforms and Hermitian mirrors,
    with a float32 phase ramp: the centred float64 computation to float32 rounding, on odd and
    even sizes, both axes, shifts up to far past the table's (a phase of many cycles)."""
    from scipy import fft

    rng = np.random.default_rng(shape[0])
    image = rng.random(shape, dtype=np.float32)
    image[0] = 0.0
    for axis in (0, 1):
        n = shape[axis]
        for amplitude in (0.5, 3.0, 40.0):
            degrees = amplitude * mri.motion_trajectory(rng.standard_normal(32), n)
            shifts = amplitude * rng.standard_normal((n, 2))
            expected = _centred_motion_kspace(image, axis, degrees, shifts)
            scale = np.abs(expected).max()
            kspace = mri.rigid_motion_kspace(image, axis, degrees, shifts)
            assert kspace.dtype == np.complex64 and kspace.shape == shape
            assert np.abs(kspace - expected).max() <= 2e-6 * scale
            # and the registered corruption's magnitude image: the inverse of that k-space
            magnitude = np.abs(fft.ifft2(fft.ifftshift(expected)))
            lines = mri.motion_kspace_lines(image, axis, degrees, shifts)
            ours = np.abs(fft.ifft2(lines if axis == 0 else lines.T))
            assert np.abs(ours - magnitude).max() <= 2e-6 * image.max()


def test_registered_motion_is_the_magnitude_of_its_kspace(brain):
    from scipy import fft

    for seed in (0, 1, 2, 3):  # both phase-encode axes
        out, params = corrupt(brain, "mri_motion", severity=4, seed=seed, return_params=True)
        rng = np.random.default_rng(seed)
        axis = int(rng.integers(2))
        assert params["draws"]["phase_encode_axis"] == axis
        steps = rng.standard_normal((3, mri.TRAJECTORY_STEPS))
        max_degrees, max_shift = mri.mri_motion.param_for(severity=4)
        n = brain.shape[axis]
        degrees = max_degrees * mri.motion_trajectory(steps[0], n)
        shifts = np.stack(
            [max_shift / 100.0 * 192 * mri.motion_trajectory(s, n) for s in steps[1:]], axis=1
        )
        expected = np.abs(
            fft.ifft2(fft.ifftshift(_centred_motion_kspace(brain, axis, degrees, shifts)))
        )
        assert np.abs(out - expected).max() <= 2e-6 * brain.max()


def test_shift_ramp_keeps_the_phase_of_large_shifts():
    rng = np.random.default_rng(0)
    for n, m in [(1, 1), (2, 3), (64, 64), (255, 512), (40, 4096)]:
        along, across = rng.standard_normal((2, n)) * np.array([[3.0], [1000.0]])
        across[0] = 0.5 * m + 0.25  # a shift of half the field and more: many cycles
        expected = np.exp(
            -2j
            * np.pi
            * (np.fft.fftfreq(n)[:, None] * along[:, None] + np.fft.fftfreq(m) * across[:, None])
        )
        ramp = mri.shift_ramp(along, across, m)
        assert ramp.dtype == np.complex64 and ramp.shape == (n, m)
        assert np.abs(ramp - expected).max() < 1e-6


def _centred_spikes(image, locations, amplitudes, phases):
    """k-space spikes as the physics reads: centred float64 k-space, spikes added, inverted."""
    kspace = np.fft.fftshift(np.fft.fft2(image.astype(np.float64)))
    h, w = image.shape
    dc = float(np.abs(kspace[h // 2, w // 2])) or float(h * w)
    for (row, col), amplitude, phase in zip(locations, amplitudes, phases):
        kspace[int(row), int(col)] += amplitude * dc * np.exp(1j * phase)
    return np.abs(np.fft.ifft2(np.fft.ifftshift(kspace)))


@pytest.mark.parametrize("shape", [(1, 4), (3, 2), (8, 8), (31, 32), (64, 65), (96, 96)])
def test_kspace_spikes_match_the_centred_computation(shape):
    """Spikes are added to the image as plane waves (no transform): the values of the centred
    k-space computation to float32 rounding, anywhere in k-space (the centre and the corners
    included), on odd and even sizes; and an image of zeros takes the size as its centre."""
    rng = np.random.default_rng(shape[1])
    image = rng.random(shape, dtype=np.float32) * 100.0
    h, w = shape
    corners = [(0, 0), (h - 1, w - 1), (h // 2, w // 2), (0, w - 1)]
    drawn = [(int(rng.integers(h)), int(rng.integers(w))) for _ in range(4)]
    for count in (1, 2, 3):
        for places in (corners, drawn):
            locations = np.array(places[:count])
            amplitudes = rng.uniform(0.0, 0.5, count)
            phases = rng.uniform(0.0, 2.0 * np.pi, count)
            ours = mri.add_kspace_spikes(image, locations, amplitudes, phases)
            expected = _centred_spikes(image, locations, amplitudes, phases)
            assert ours.dtype == np.float32 and ours.shape == shape
            assert np.abs(ours - expected).max() <= 2e-6 * np.abs(expected).max()
    zeros = np.zeros(shape, np.float32)
    spike = (np.array([[0, 0]]), np.array([0.3]), np.array([1.0]))
    np.testing.assert_allclose(
        mri.add_kspace_spikes(zeros, *spike), _centred_spikes(zeros, *spike), rtol=1e-6
    )
