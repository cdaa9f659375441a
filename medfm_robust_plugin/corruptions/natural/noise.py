"""Noise corruptions of the natural family (ImageNet-C severity constants)."""

from __future__ import annotations

import numpy as np

from ..spec import corruption

FAMILY = "natural"


@corruption("gaussian_noise", family=FAMILY, severity_params=[0.08, 0.12, 0.18, 0.26, 0.38],
            reference="Hendrycks & Dietterich 2019 (ImageNet-C)")
def gaussian_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Additive white Gaussian noise of standard deviation ``sigma`` (on the [0, 1] scale)."""
    noise = rng.standard_normal(image.shape, dtype=np.float32)
    return image + np.float32(sigma) * noise
