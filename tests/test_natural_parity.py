"""The natural family against imagecorruptions 1.1.2, the ImageNet-C reference.

For every corruption the reference has and every severity: mean SSIM to the clean image over the
test images within 0.02 of the reference's; corruptions without randomness match pixel for pixel
(PSNR >= 35 dB).
"""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from medfm_robust_plugin import corrupt

from .reference import AVAILABLE, DETERMINISTIC, reference_corrupt, reference_names

pytestmark = pytest.mark.skipif(not AVAILABLE, reason="imagecorruptions is a dev dependency")

NAMES = reference_names() if AVAILABLE else []
SEVERITIES = [1, 2, 3, 4, 5]
# Random corruptions are compared on means over several draws per image: one draw of the reference
# can sit two standard deviations from its own average. Snow varies most (SSIM std about 0.1-0.16
# per draw), and the reference's frost depends on which of its photographs and which crop a draw
# takes (up to 0.17 apart on one image at severity 1), so both get more draws; glass_blur's
# reference is too slow for more than one.
SEEDS = {"glass_blur": (0,), "snow": tuple(range(16)), "frost": tuple(range(16))}
DEFAULT_SEEDS = (0, 1, 2, 3)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    return structural_similarity(a, b, channel_axis=-1, data_range=255)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.mark.parametrize("severity", SEVERITIES)
@pytest.mark.parametrize("name", NAMES)
def test_mean_ssim_matches_reference(name, severity, rgb_images):
    seeds = (0,) if name in DETERMINISTIC else SEEDS.get(name, DEFAULT_SEEDS)
    draws = [(100 * k + s, im) for k, im in enumerate(rgb_images) for s in seeds]
    ours = [ssim(corrupt(im, name, severity, seed=seed), im) for seed, im in draws]
    ref = [ssim(reference_corrupt(im, name, severity, seed=seed), im) for seed, im in draws]
    assert abs(np.mean(ours) - np.mean(ref)) <= 0.02, (name, severity, np.mean(ours), np.mean(ref))


@pytest.mark.parametrize("severity", SEVERITIES)
@pytest.mark.parametrize("name", DETERMINISTIC)
def test_deterministic_corruptions_match_pixelwise(name, severity, rgb_images):
    for im in rgb_images:
        ours = corrupt(im, name, severity)
        assert psnr(ours, reference_corrupt(im, name, severity)) >= 35.0, (name, severity)


def held_out_photographs() -> list[np.ndarray]:
    """Photographs frost's texture was not tuned on (it was tuned on astronaut, coffee, chelsea
    and rocket), at their own sizes: the reference's frost plates are cropped or stretched by size."""
    from skimage import data

    camera = data.camera()
    return [data.stereo_motorcycle()[0], data.hubble_deep_field(), np.dstack([camera] * 3)]


@pytest.mark.parametrize("severity", SEVERITIES)
def test_frost_matches_reference_on_held_out_photographs(severity):
    photos = held_out_photographs()
    draws = [(100 * k + s, im) for k, im in enumerate(photos) for s in DEFAULT_SEEDS]
    ours = [ssim(corrupt(im, "frost", severity, seed=seed), im) for seed, im in draws]
    ref = [ssim(reference_corrupt(im, "frost", severity, seed=seed), im) for seed, im in draws]
    assert abs(np.mean(ours) - np.mean(ref)) <= 0.02, (severity, np.mean(ours), np.mean(ref))
