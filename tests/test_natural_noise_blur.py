"""The natural family's noise and blur corruptions: what they compute, on any size and channel count.

The parity with imagecorruptions on RGB uint8 lives in test_natural_parity.py; here each corruption
is checked against the operation it claims (scipy/scikit-image equivalents, ImageNet-C's loops
written out on small arrays) on grayscale, non-square and tiny images, and for the properties the
SSIM calibration relies on (strength 0 is clean, draws do not depend on the parameter).
"""

from __future__ import annotations

from itertools import product

import numpy as np
import pytest
from scipy import ndimage

from medfm_robust_plugin import corrupt, get_corruption
from medfm_robust_plugin.corruptions.natural import blur, noise

NOISE = ["gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "salt_pepper_noise"]
BLUR = ["defocus_blur", "glass_blur", "motion_blur", "zoom_blur", "gaussian_blur"]
NAMES = NOISE + BLUR


def unit_image(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """A smooth float32 image in [0, 1] with an edge, of any shape H x W x C."""
    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(rng.random(shape), sigma=(2, 2, 0)[: len(shape)])
    smooth = (smooth - smooth.min()) / (np.ptp(smooth) + 1e-9)
    smooth[: shape[0] // 2] *= 0.5
    return smooth.astype(np.float32)


def apply(name: str, image: np.ndarray, param, seed: int = 0):
    spec = get_corruption(name)
    out = spec.function(image, param, np.random.default_rng(seed))
    return out[0] if isinstance(out, tuple) else out


# --------------------------------------------------------------------------- every corruption


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(16, 16), (23, 41, 1), (37, 19, 3)])
def test_any_size_and_channel_count_at_every_level(name, shape):
    image = (unit_image(shape if len(shape) == 3 else shape + (1,)) * 255).astype(np.uint8)
    image = image[..., 0] if len(shape) == 2 else image
    for level in ({"severity": s} for s in range(1, 6)):
        out = corrupt(image, name, seed=1, **level)
        assert out.shape == image.shape and out.dtype == np.uint8
    for strength in (0.0, 0.5, 1.0):
        assert corrupt(image, name, strength=strength, seed=1).shape == image.shape


@pytest.mark.parametrize("name", NAMES)
def test_strength_zero_is_clean(name):
    image = (unit_image((40, 56, 3)) * 255).astype(np.uint8)
    out = corrupt(image, name, strength=0.0, seed=3)
    assert np.abs(out.astype(int) - image).max() <= 1, name


@pytest.mark.parametrize("name", NAMES)
def test_gray_and_rgb_copies_of_one_image_agree(name):
    """A gray image and its RGB copy get the same corruption wherever the draws are shared."""
    gray = unit_image((32, 48, 1))
    rgb = np.repeat(gray, 3, axis=2)
    param = get_corruption(name).param_for(severity=3)
    out_gray, out_rgb = apply(name, gray, param), apply(name, rgb, param)
    assert out_gray.shape == gray.shape and out_rgb.shape == rgb.shape
    if name in BLUR + ["salt_pepper_noise"]:  # per-pixel (not per-sample) draws, if any
        np.testing.assert_allclose(out_rgb, np.repeat(out_gray, 3, axis=2), atol=1e-5)


# --------------------------------------------------------------------------- noise


def test_shot_noise_is_poisson_in_photons():
    image = np.full((200, 200, 1), 0.5, np.float32)
    quantum = 1 / 12
    out = apply("shot_noise", image, quantum)
    counts = out / quantum
    assert np.allclose(counts, np.round(counts), atol=1e-3)  # whole photons
    assert counts.mean() == pytest.approx(6.0, rel=0.02)
    assert counts.var() == pytest.approx(6.0, rel=0.05)  # Poisson: variance = mean


def test_impulse_noise_flips_channels_independently_and_nests():
    image = np.full((120, 120, 3), 0.5, np.float32)
    weak, strong = apply("impulse_noise", image, 0.09), apply("impulse_noise", image, 0.27)
    flipped = weak != 0.5
    assert flipped.mean() == pytest.approx(0.09, abs=0.01)
    assert set(np.unique(weak[flipped])) == {0.0, 1.0}
    assert (weak[flipped] == 1.0).mean() == pytest.approx(0.5, abs=0.05)
    assert not np.all(flipped == flipped[..., :1])  # colour specks, not whole pixels
    assert np.array_equal(strong[flipped], weak[flipped])  # same seed: the weak specks stay


def test_salt_pepper_noise_hits_whole_pixels_half_white():
    image = unit_image((200, 150, 3)) * 0.5 + 0.25
    out = apply("salt_pepper_noise", image, 0.02)
    hit = (out != image).any(axis=2)
    assert hit.mean() == pytest.approx(0.02, abs=0.004)
    assert np.all(out[hit] == out[hit][:, :1])  # all channels at once
    assert (out[hit][:, 0] == 1.0).mean() == pytest.approx(0.5, abs=0.1)


def test_gaussian_and_speckle_noise_have_the_stated_spread():
    image = np.full((300, 300, 1), 0.5, np.float32)
    assert (apply("gaussian_noise", image, 0.18) - image).std() == pytest.approx(0.18, rel=0.02)
    assert (apply("speckle_noise", image, 0.35) - image).std() == pytest.approx(0.175, rel=0.02)
    dark = np.zeros_like(image)
    assert np.all(apply("speckle_noise", dark, 0.35) == 0.0)  # multiplicative


# --------------------------------------------------------------------------- deterministic blurs


def test_gaussian_blur_is_scikit_image_gaussian():
    import skimage.filters as skimage_filters

    image = unit_image((45, 70, 1))
    for sigma in (1, 3, 6):
        expected = skimage_filters.gaussian(image[..., 0].astype(np.float64), sigma=sigma)
        np.testing.assert_allclose(
            apply("gaussian_blur", image, sigma)[..., 0], expected, atol=2e-5
        )


def scipy_zoom_blur(image: np.ndarray, stop: float, step: float) -> np.ndarray:
    """ImageNet-C's zoom blur written with scipy.ndimage.zoom, for one 2-D plane."""
    height, width = image.shape
    total = image.astype(np.float64).copy()
    factors = np.arange(1, stop, step)
    for factor in factors:
        crop_h, crop_w = int(np.ceil(height / factor)), int(np.ceil(width / factor))
        top, left = (height - crop_h) // 2, (width - crop_w) // 2
        crop = image[top : top + crop_h, left : left + crop_w].astype(np.float64)
        total += ndimage.zoom(crop, factor, order=1)[:height, :width]
    return total / (len(factors) + 1)


@pytest.mark.parametrize("param", [(1.11, 0.01), (1.31, 0.03)])
def test_zoom_blur_matches_scipy_zoom_on_non_square_gray(param):
    image = unit_image((50, 83, 1))
    expected = scipy_zoom_blur(image[..., 0], *param)
    got = apply("zoom_blur", image, param)[..., 0]
    assert np.abs(got - expected).max() < 0.01  # OpenCV interpolates at 1/32 pixel


def test_defocus_filtering_equals_one_filter2d_call():
    import cv2

    for image, radius, alias in product(
        [unit_image((30, 45, 3)), unit_image((41, 22, 1))], [3, 6, 10, 20], [0.1, 0.5]
    ):
        kernel = blur.disk_kernel(radius, alias)
        expected = cv2.filter2D(image, -1, kernel).reshape(image.shape)
        np.testing.assert_allclose(
            apply("defocus_blur", image, (radius, alias)), expected, atol=1e-6
        )
        # ImageNet-C does not renormalise after anti-aliasing: disks touching the grid gain ~1 %.
        assert kernel.sum() == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize(
    "name,param_at", [("defocus_blur", lambda r: (r, 0.1)), ("motion_blur", lambda r: (r, 3.0))]
)
def test_disks_and_trails_grow_continuously_between_whole_radii(name, param_at):
    """A whole radius is ImageNet-C's kernel; between two the blur moves smoothly, so SSIM
    calibration never sees it jump (ImageNet-C's disk of radius 0.999 is one pixel, 1.0 five)."""
    image = unit_image((40, 48, 3))
    below, at, above = (apply(name, image, param_at(r)) for r in (0.999, 1.0, 1.001))
    assert np.abs(below - at).max() < 0.01 and np.abs(above - at).max() < 0.01
    whole = apply(name, image, param_at(2.0))
    middle = apply(name, image, param_at(2.5))
    np.testing.assert_allclose(
        middle, 0.5 * whole + 0.5 * apply(name, image, param_at(3.0)), atol=1e-5
    )


def test_large_disks_of_ssim_mode_are_the_blend_of_their_whole_disks():
    """Radii beyond ImageNet-C's table (SSIM mode reaches 30) are filtered through a DFT, with
    the two whole disks blended into one kernel: the same blur as the plain correlation of each
    disk (reflect-101 edges, float64) blended, to float32 rounding."""
    image = unit_image((80, 90, 3))

    def plain(radius):
        kernel = blur.disk_kernel(float(radius), 0.5).astype(np.float64)
        return np.stack(
            [
                ndimage.correlate(image[..., c].astype(np.float64), kernel, mode="mirror")
                for c in range(3)
            ],
            axis=-1,
        )

    for radius in (15.3, 29.9, 12.0):
        below = int(np.floor(radius))
        fraction = radius - below
        expected = (
            (1 - fraction) * plain(below) + fraction * plain(below + 1)
            if fraction
            else plain(below)
        )
        np.testing.assert_allclose(apply("defocus_blur", image, (radius, 0.5)), expected, atol=2e-6)


@pytest.mark.parametrize("name", ["defocus_blur", "motion_blur"])
def test_a_strength_gives_a_fractional_radius(name):
    """SSIM calibration moves the radius continuously; the tables keep ImageNet-C's whole radii."""
    spec = get_corruption(name)
    radius = spec.param_for(strength=0.051)[0]
    assert radius != round(radius)
    assert all(isinstance(row[0], int) for row in spec.severity_params)


# --------------------------------------------------------------------------- random blurs


def imagenet_c_glass_sweep(image: np.ndarray, shift_y, shift_x, margin: int) -> np.ndarray:
    """ImageNet-C's sequential loop, on an RGB array where its "swap" of two views copies."""
    out = image.copy()
    height, width = image.shape[:2]
    for h in range(height - margin, margin, -1):
        for w in range(width - margin, margin, -1):
            h_prime, w_prime = h + shift_y[h, w], w + shift_x[h, w]
            out[h, w], out[h_prime, w_prime] = out[h_prime, w_prime], out[h, w]
    return out


@pytest.mark.parametrize("margin", [1, 2, 3, 4])
def test_glass_sweep_reproduces_imagenet_c_loop(margin):
    rng = np.random.default_rng(margin)
    image = rng.random((19, 27, 3))
    shift_y, shift_x = rng.integers(-margin, margin, size=(2, 19, 27))
    expected = imagenet_c_glass_sweep(image, shift_y, shift_x, margin)
    source = blur.glass_sweep_sources(shift_y, shift_x, margin)
    assert np.array_equal(image.reshape(-1, 3)[source].reshape(image.shape), expected)


def test_glass_blur_draws_do_not_depend_on_the_parameter():
    image = unit_image((40, 40, 1))
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    get_corruption("glass_blur").function(image, (0.7, 1, 2), rng_a)
    get_corruption("glass_blur").function(image, (1.5, 4, 2), rng_b)
    assert rng_a.random() == rng_b.random()


def shift_and_add(image: np.ndarray, radius: int, sigma: float, angle: float) -> np.ndarray:
    """ImageNet-C's motion blur written out: a Gaussian trail of edge-clamped shifted copies."""
    height, width = image.shape[:2]
    taps = np.arange(2 * radius + 1)
    weights = np.exp(-(taps**2) / (2 * sigma**2))
    weights /= weights.sum()
    rows, cols = np.mgrid[0:height, 0:width]
    total = np.zeros_like(image, dtype=np.float64)
    for i, weight in zip(taps, weights):
        dy = int(np.ceil(i * np.sin(np.deg2rad(angle)) - 0.5))
        dx = int(np.ceil(i * np.cos(np.deg2rad(angle)) - 0.5))
        total += weight * image[np.clip(rows + dy, 0, height - 1), np.clip(cols + dx, 0, width - 1)]
    return total


def test_motion_blur_is_the_imagenet_c_trail_and_records_its_angle():
    image = unit_image((60, 90, 3))
    out, draws = get_corruption("motion_blur").function(image, (15, 8.0), np.random.default_rng(2))
    assert -45.0 <= draws["angle_deg"] <= 45.0
    expected = shift_and_add(image, 15, 8.0, draws["angle_deg"])
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_motion_blur_angles_are_uniform_over_the_reference_range():
    spec = get_corruption("motion_blur")
    image = unit_image((16, 16, 1))
    angles = [
        spec.function(image, (3, 1.0), np.random.default_rng(s))[1]["angle_deg"]
        for s in range(2000)
    ]
    assert min(angles) > -45.0 and max(angles) < 45.0
    assert np.mean(angles) == pytest.approx(0.0, abs=2.5)
    assert np.std(angles) == pytest.approx(90 / np.sqrt(12), rel=0.05)


def test_family_and_reference_are_declared():
    for module in (noise, blur):
        for value in vars(module).values():
            if hasattr(value, "severity_params") and hasattr(value, "family"):
                assert value.family == "natural"
                assert value.reference
