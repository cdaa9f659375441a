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


# --------------------------------------------------------------------------- real MR slices
# Found through the installed packages: pydicom's MR_small (64 px, 0.31 mm), an EPI head slice of
# nibabel's example4d (128 x 96, 2 mm) and nibabel's sagittal spine DICOM (384 px, 0.52 mm).


def _dicom_slice(path) -> tuple[np.ndarray, dict]:
    import pydicom

    data = pydicom.dcmread(path)
    spacing = tuple(float(v) for v in data.PixelSpacing)
    return data.pixel_array, {"modality": "mri", "pixel_spacing": spacing}


def _real_slices() -> dict[str, tuple[np.ndarray, dict]]:
    from pathlib import Path

    import nibabel
    import pydicom

    nib_data = Path(nibabel.__file__).parent
    volume = nibabel.load(nib_data / "tests/data/example4d.nii.gz")
    head = np.ascontiguousarray(np.asanyarray(volume.dataobj)[:, :, 12, 0]).astype(np.int16)
    return {
        "MR_small": _dicom_slice(Path(pydicom.__file__).parent / "data/test_files/MR_small.dcm"),
        "head": (head, {"modality": "mri", "pixel_spacing": (2.0, 2.0)}),
        "spine": _dicom_slice(nib_data / "nicom/tests/data/slicethickness_empty_string.dcm"),
    }


@pytest.fixture(scope="module")
def real_slices() -> dict[str, tuple[np.ndarray, dict]]:
    return _real_slices()


@pytest.mark.parametrize("label", ["MR_small", "head", "spine"])
def test_bias_field_gain_on_real_slices(real_slices, label):
    """Severity 1 is TorchIO's default non-uniformity, 5 a few-fold one; no slice goes black."""
    from medfm_robust_plugin.engine import image_context

    image, options = real_slices[label]
    clean, _, context, _ = image_context(image, **options)
    clean = clean.astype(np.float64)
    inside = mri.object_mask(clean.astype(np.float32), context) & (clean > 0)
    for severity, (low, high) in {1: (1.3, 2.0), 3: (2.2, 2.8), 5: (3.5, 4.5)}.items():
        for seed in range(4):
            out = corrupt(image, "mri_bias_field", severity=severity, seed=seed, **options)
            gain = out[inside] / clean[inside]
            ratio = np.percentile(gain, 95) / np.percentile(gain, 5)
            assert low < ratio < high, (label, severity, seed, ratio)
            assert out[inside].mean() > 0.2 * clean[inside].mean(), (label, severity, seed)


def test_torchio_default_bias_field_gives_severity_one_gain():
    """The figure severity 1 is set to: TorchIO RandomBiasField's default on the real head."""
    import torchio as tio

    head, options = _real_slices()["head"]
    inside = head > 0.1 * np.percentile(head, 99.5)
    torch.manual_seed(0)
    transform = tio.RandomBiasField()
    ratios = []
    for _ in range(40):
        field = transform(torch.ones(1, *head.shape, 1)).numpy()[0, :, :, 0][inside]
        ratios.append(np.percentile(field, 95) / np.percentile(field, 5))
    assert np.median(ratios) == pytest.approx(mri.mri_bias_field.param_for(severity=1), rel=0.15)


def _resampled(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    import cv2

    grow = shape[0] > image.shape[0]
    interpolation = cv2.INTER_CUBIC if grow else cv2.INTER_AREA
    return np.clip(cv2.resize(image, shape[::-1], interpolation=interpolation), 0, None)


def test_gibbs_ringing_is_alike_at_64_256_and_512_pixels(real_slices):
    """One head at 4, 1 and 0.5 mm: the same acquired resolution rings alike once shown at one size.

    A fraction of each image's own k-space (the earlier rule) gave SSIM 0.08 at 64 px and 0.47 at
    512 px for one severity; an acquired resolution in mm gives the same lines over the field.
    """
    from medfm_robust_plugin.ssim import presented_ssim

    head = real_slices["head"][0].astype(np.float32)
    window = (0.0, float(np.percentile(head, 99.5)))
    common = head.shape
    versions = {64: 4.0, 256: 1.0, 512: 0.5}
    for severity in (4, 5):
        resolution = mri.mri_gibbs_ringing.param_for(severity=severity)
        ssims, lines = {}, set()
        for rows, spacing in versions.items():
            image = _resampled(head, (rows, rows * 3 // 4))
            options = {"modality": "mri", "pixel_spacing": (spacing, spacing), "window": window}
            out = corrupt(image, "mri_gibbs_ringing", severity=severity, **options)
            shown = _resampled(out, common)
            ssims[rows] = presented_ssim(shown, _resampled(image, common), window)
            context = mri.ImageContext(pixel_spacing=(spacing, spacing))
            lines.add(mri.gibbs_kept_lines(image.shape, resolution, context))
        assert len(lines) == 1, lines  # the same k-space lines over the same field
        assert ssims[256] == pytest.approx(ssims[512], abs=0.02), ssims
        assert ssims[64] == pytest.approx(ssims[256], abs=0.1), ssims
        assert min(ssims.values()) > 0.5, ssims  # ringing and blur, not a blob


def test_gibbs_ringing_keeps_the_same_lines_without_spacing(real_slices):
    """Without a spacing each image spans the reference field: the same lines at 64 and 384 px."""
    small, spine = real_slices["MR_small"][0], real_slices["spine"][0]
    for severity in range(1, 6):
        resolution = mri.mri_gibbs_ringing.param_for(severity=severity)
        wanted = round(mri.REFERENCE_FOV_MM / resolution)
        assert mri.gibbs_kept_lines(spine.shape, resolution) == (wanted, wanted)
        expected = min(64, max(wanted, mri.MIN_KEPT_LINES))
        assert mri.gibbs_kept_lines(small.shape, resolution) == (expected, expected)


def test_real_slices_round_trip_through_the_physical_domain(real_slices):
    """int16 and uint16 MR come back in their dtype, Rician magnitude above zero signal."""
    for image, options in real_slices.values():
        for name in ("mri_rician_noise", "mri_gibbs_ringing", "mri_motion"):
            out = corrupt(image, name, severity=3, seed=1, **options)
            assert out.dtype == image.dtype and out.shape == image.shape
            assert out.min() >= min(0, int(image.min())), name
