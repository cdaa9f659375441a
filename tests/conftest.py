from __future__ import annotations

import sys

import numpy as np
import pytest

from medfm_robust_plugin.plugins import reset_registry
from medfm_robust_plugin.ssim import REFERENCES


@pytest.fixture(autouse=True)
def _fresh_registry(monkeypatch):
    """Every test sees the plugins as its environment declares them (entry points a test adds to
    sys.path leave with it), and no clean SSIM reference kept by an earlier test."""
    path = list(sys.path)
    reset_registry()
    REFERENCES.clear()
    yield
    sys.path[:] = path
    reset_registry()
    REFERENCES.clear()


@pytest.fixture(scope="session")
def rgb_images() -> list[np.ndarray]:
    """Natural-looking 224 x 224 RGB test images: two colour phantoms and a CT window as RGB."""
    from medfm_robust_plugin.data.phantoms import ct_slice, dermoscopy, endoscopy

    ct = ct_slice(224, seed=3).image.astype(np.float32)
    ct8 = (np.clip((ct + 160) / 400, 0, 1) * 255).astype(np.uint8)
    return [
        dermoscopy(224, seed=1).image,
        endoscopy(224, seed=2).image,
        np.repeat(ct8[..., None], 3, axis=2),
    ]
