"""Noise corruptions of the natural family (ImageNet-C severity constants).

Every function works on the unit domain (float32 H x W x C in [0, 1], C = 1 or 3); the engine
clips the result back into the caller's range. Tables are read against Hendrycks & Dietterich,
"Benchmarking Neural Network Robustness to Common Corruptions and Perturbations", ICLR 2019, as
released in imagecorruptions 1.1.2 (``corruptions.py``).
"""

from __future__ import annotations

import numpy as np

from ..spec import Corruption, corruption

FAMILY = "natural"
IMAGENET_C = "Hendrycks & Dietterich 2019 (ImageNet-C)"


@corruption(
    "gaussian_noise",
    family=FAMILY,
    severity_params=[0.08, 0.12, 0.18, 0.26, 0.38],
    param_range=(0.0, 0.5),
    reference=IMAGENET_C,
)
def gaussian_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Additive white Gaussian noise of standard deviation ``sigma`` (on the [0, 1] scale).

    The signal-independent electronic noise of a detector and its read-out (thermal and amplifier
    noise; Gonzalez & Woods, Digital Image Processing, 4th ed., sec. 5.2). ImageNet-C's table.
    """
    noisy = rng.standard_normal(image.shape, dtype=np.float32)
    noisy *= np.float32(sigma)
    noisy += image
    return noisy


@corruption(
    "shot_noise",
    family=FAMILY,
    severity_params=[1 / 60, 1 / 25, 1 / 12, 1 / 5, 1 / 3],
    param_range=(0.0, 0.5),
    reference=IMAGENET_C,
)
def shot_noise(image: np.ndarray, quantum: float, rng: np.random.Generator) -> np.ndarray:
    """Photon shot noise: each value becomes quantum x Poisson(value / quantum).

    Models the quantum noise of a detector that counts photons (low-dose X-ray and CT, low-light
    endoscopy): the variance grows with the signal, so bright areas get more absolute noise than
    dark ones. ``quantum`` is the share of full scale one photon carries, 1 / (photons at full
    scale): ImageNet-C's counts 60, 25, 12, 5 and 3. The noise variance at a value v is
    v x quantum, so a larger quantum is stronger and 0 is the clean image (a photon count would
    put every useful strength in the last percent of a linear strength scale). The Poisson draws
    follow numpy's sampler, so their values (not their number) change with the strength.
    """
    quantum = float(quantum)
    if quantum <= 0.0:
        return image
    expected = image.astype(np.float64)
    expected *= 1.0 / quantum
    counts = rng.poisson(expected)
    return np.multiply(counts, quantum, out=expected).astype(np.float32)


@corruption(
    "impulse_noise",
    family=FAMILY,
    severity_params=[0.03, 0.06, 0.09, 0.17, 0.27],
    param_range=(0.0, 0.3),
    reference=IMAGENET_C,
)
def impulse_noise(image: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """Impulse noise: a fraction ``amount`` of the samples, each channel on its own, set to 0 or 1.

    ImageNet-C's impulse noise (scikit-image ``random_noise(mode="s&p")``): every sample of every
    channel flips independently with probability ``amount``, half of them to black and half to
    white, so colour images get coloured specks. Compare ``salt_pepper_noise``, which hits whole
    pixels. One 32-bit draw per sample decides whether it flips (its value) and which way (its
    lowest bit), so a larger amount keeps the specks of a smaller one, in their colours.
    """
    return _flip_to_extremes(image, _impulse_draws(image.shape, rng), amount)


@corruption(
    "speckle_noise",
    family=FAMILY,
    severity_params=[0.15, 0.2, 0.35, 0.45, 0.6],
    param_range=(0.0, 2.0),
    reference=IMAGENET_C,
)
def speckle_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative Gaussian noise: value x (1 + N(0, sigma^2)).

    The noise scales with the signal, the first-order model of coherent speckle (ultrasound, OCT)
    used by ImageNet-C.
    """
    noisy = rng.standard_normal(image.shape, dtype=np.float32)
    noisy *= np.float32(sigma)
    noisy += 1.0
    noisy *= image
    return noisy


@corruption(
    "salt_pepper_noise",
    family=FAMILY,
    severity_params=[0.001, 0.003, 0.005, 0.01, 0.02],
    param_range=(0.0, 0.15),
    reference="MedFM-Robust (MICCAI 2026) base corruption; Gonzalez & Woods, Digital Image "
    "Processing, 4th ed., sec. 5.2 (impulse noise)",
)
def salt_pepper_noise(image: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """Salt-and-pepper noise: a fraction ``amount`` of the pixels set to black or white, 50/50.

    Models dead and saturated detector elements and bit errors in transmission: whole pixels (all
    channels at once) go to the minimum (pepper) or the maximum (salt) of the value range. The
    table is the MedFM-Robust paper's (amounts 0.1 % to 2 % of the pixels), far sparser than
    ImageNet-C's per-channel ``impulse_noise``. Nested like ``impulse_noise``: one draw per pixel,
    so a larger amount keeps the pixels of a smaller one.
    """
    return _flip_to_extremes(image, _impulse_draws(image.shape[:2] + (1,), rng), amount)


def _impulse_draws(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 2**32, size=shape, dtype=np.uint32)


def _flip_to_extremes(image: np.ndarray, draws: np.ndarray, amount: float) -> np.ndarray:
    """Set the values whose draw falls below ``amount`` (of the 32-bit range) to 0 or 1.

    The lowest bit of the draw, independent of its magnitude, says white (1) or black (0).
    ``draws`` may have one channel, to hit every channel of a pixel at once.
    """
    threshold = int(min(max(float(amount), 0.0), 1.0) * (2**32 - 1))
    flipped = draws < np.uint32(threshold)
    out = image.copy()
    np.copyto(out, draws & np.uint32(1), where=flipped)
    return out


CORRUPTIONS: tuple[Corruption, ...] = (
    gaussian_noise,
    shot_noise,
    impulse_noise,
    speckle_noise,
    salt_pepper_noise,
)
