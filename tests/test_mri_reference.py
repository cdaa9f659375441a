"""The MR corruptions against established implementations, at matched parameters.

Deterministic operations (truncation, line modulation, bias field, k-space spikes) must reproduce
MONAI / TorchIO to float precision; the random one (Rician noise) must match in distribution.
MONAI and TorchIO return the real part of the inverse transform, an MR scanner (and this package)
the magnitude; where the k-space stays Hermitian the two differ only in sign, so the comparisons
take the absolute value of the reference.

TorchIO's Motion splits k-space along the third spatial axis, which a 2-D slice does not have, so
it has no 2-D counterpart to compare ``mri_motion`` with.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch as torch

from medfm_robust_plugin import corrupt
from medfm_robust_plugin.corruptions import mri
from medfm_robust_plugin.data.phantoms import mri_slice
from medfm_robust_plugin.ssim import ssim


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak**2 / mse)


@pytest.fixture(scope="module")
def brain() -> np.ndarray:
    """The MR phantom scaled to [0, 1], 255 x 255 (odd: MONAI's mask centre is the k-space centre)."""
    return (mri_slice(255, seed=2).image / 1000.0).astype(np.float32)


def test_gibbs_ringing_matches_monai_gibbs_noise(brain):
    """MONAI masks k-space with a disc; on a 1-D profile the disc is an interval, so applying
    GibbsNoise along each axis in turn is the Cartesian (rectangular) truncation we make.
    """
    import monai.transforms as monai_transforms

    kept_fraction = 0.41
    n = brain.shape[0]
    half = int(np.floor(kept_fraction * n / 2.0))
    # MONAI keeps |k - centre| <= (1 - alpha) * n * sqrt(2) / 2; aim between two k-space lines.
    alpha = 1.0 - (half + 0.5) / (n * np.sqrt(2.0) / 2.0)
    gibbs = monai_transforms.GibbsNoise(alpha=alpha)
    # channels-first with one spatial axis of length 1: each column (then each row) is a profile
    along_rows = gibbs(brain.T[:, :, None].copy())
    along_rows = np.asarray(along_rows)[:, :, 0].T
    both = np.asarray(gibbs(along_rows[:, :, None].copy()))[:, :, 0]
    ours = mri.truncate_kspace(brain, (2 * half + 1, 2 * half + 1))
    assert psnr(ours, np.abs(both)) > 60.0

    # the registered corruption is that truncation, at the lines its table's resolution keeps
    # (the image taken to span the 256 mm reference field: 256 / 2.67 mm = 96 lines)
    resolution = mri.mri_gibbs_ringing.param_for(severity=2)
    registered = corrupt(brain, "mri_gibbs_ringing", severity=2, seed=0)
    kept = mri.gibbs_kept_lines(brain.shape, resolution)
    assert kept == (96, 96)
    assert psnr(registered, mri.truncate_kspace(brain, kept)) > 60.0


def test_ghosting_matches_torchio_ghosting():
    import torchio as tio

    image = (mri_slice(256, seed=1).image / 1000.0).astype(np.float32)
    for axis, period, intensity in [(0, 2, 0.6), (1, 4, 1.0), (0, 4, 1.8)]:
        ghosting = tio.Ghosting(num_ghosts=period, axis=axis, intensity=intensity, restore=None)
        reference = ghosting(torch.from_numpy(image[None, :, :, None].copy())).numpy()[0, :, :, 0]
        ours = mri.ghost_lines(image, axis, period, intensity, restored_lines=0)
        assert psnr(ours, np.abs(reference)) > 60.0, (axis, period, intensity)


def _torchio_coefficients(ours: np.ndarray) -> list[float]:
    """Our 2-D cubic coefficients in TorchIO's 3-D order (terms with a z exponent set to 0)."""
    order = mri.BIAS_FIELD_ORDER
    lookup = dict(zip(mri.bias_monomials(order), ours))
    return [
        float(lookup[(i, j)]) if k == 0 else 0.0
        for i in range(order + 1)
        for j in range(order + 1 - i)
        for k in range(order + 1 - i - j)
    ]


def test_bias_field_matches_torchio_bias_field():
    import torchio as tio

    image = mri_slice(200, seed=3).image[:, :180]
    out, params = corrupt(image, "mri_bias_field", severity=4, seed=5, return_params=True)
    draws = params["draws"]
    scale = np.log(params["param"]) / draws["unit_log_span"]
    coefficients = scale * np.array(draws["unit_coefficients"])
    field = tio.BiasField(coefficients=_torchio_coefficients(coefficients), order=3)
    ones = torch.ones(1, *image.shape, 1)
    reference_field = field(ones).numpy()[0, :, :, 0]
    np.testing.assert_allclose(
        mri.bias_field(image.shape, coefficients), reference_field, rtol=1e-5
    )
    # the corruption is the image times that field, rescaled to keep the clean maximum
    expected = image * reference_field
    expected *= image.max() / expected.max()
    assert psnr(out, expected, peak=float(image.max())) > 60.0


def test_kspace_spike_matches_monai_kspace_spike_noise(brain):
    """MONAI sets the log-magnitude at a location and keeps the phase; a Hermitian pair of spikes
    added in phase with the k-space there is the same k-space (and a real image).
    """
    import monai.transforms as monai_transforms

    n = brain.shape[0]
    centre = n // 2
    row, col = centre + 37, centre - 21
    mirror = (2 * centre - row, 2 * centre - col)
    kspace = np.fft.fftshift(np.fft.fft2(brain.astype(np.float64)))
    dc = abs(kspace[centre, centre])
    relative_amplitude = 0.08
    clean = kspace[row, col]
    log_intensity = float(np.log(abs(clean) + relative_amplitude * dc))
    spike = monai_transforms.KSpaceSpikeNoise(
        loc=((row, col), mirror), k_intensity=(log_intensity,) * 2
    )
    reference = np.asarray(spike(brain[None].copy()))[0]
    phase = float(np.angle(clean))
    ours = mri.add_kspace_spikes(
        brain,
        np.array([[row, col], mirror]),
        np.full(2, relative_amplitude),
        np.array([phase, -phase]),
    )
    assert psnr(ours, np.abs(reference)) > 50.0


def test_rician_noise_matches_monai_rician_noise_in_distribution():
    import monai.transforms as monai_transforms

    image = (mri_slice(256, seed=4).image / 1000.0).astype(np.float32)
    sigma = mri.mri_rician_noise.param_for(severity=4)
    ours = corrupt(image, "mri_rician_noise", severity=4, seed=11)
    rician = monai_transforms.RandRicianNoise(prob=1.0, std=sigma, sample_std=False)
    rician.set_random_state(seed=11)
    reference = np.asarray(rician(image[None].copy()))[0]
    background = image == 0
    bright = image > 0.55
    for region in (background, bright):
        assert ours[region].mean() == pytest.approx(reference[region].mean(), rel=0.02, abs=2e-4)
        assert ours[region].std() == pytest.approx(reference[region].std(), rel=0.05)
    # the Rayleigh background: mean sigma * sqrt(pi / 2)
    assert ours[background].mean() == pytest.approx(sigma * np.sqrt(np.pi / 2.0), rel=0.03)
    assert ssim(ours, image, 1.0) == pytest.approx(
        ssim(np.clip(reference, 0, 1), image, 1.0), abs=0.01
    )
