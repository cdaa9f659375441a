"""Lens vignetting as a MedFM-Robust plugin: one corruption and one suite that uses it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medfm_robust_plugin import corruption, hookimpl


@corruption(
    "vignette",
    family="optics",
    modalities=["endoscopy", "dermoscopy"],
    severity_params=[0.1, 0.2, 0.3, 0.45, 0.6],
    param_range=(0.0, 0.9),
    reference="Goldman 2010, Vignette and exposure calibration and compensation",
)
def vignette(image: np.ndarray, param: float, rng: np.random.Generator) -> np.ndarray:
    """Radial fall-off of brightness towards the corners (cos^4 law of a wide-angle lens).

    ``param`` is the fraction of light lost at the corners; the optical centre is displaced by a
    small random offset, as it is in a real scope.
    """
    h, w = image.shape[:2]
    cy, cx = rng.uniform(-0.1, 0.1, size=2)
    yy = np.linspace(-1.0, 1.0, h, dtype=np.float32)[:, None] - np.float32(cy)
    xx = np.linspace(-1.0, 1.0, w, dtype=np.float32)[None, :] - np.float32(cx)
    radius2 = (xx**2 + yy**2) / 2.0  # 1 at the corners
    gain = 1.0 - np.float32(param) * np.clip(radius2, 0.0, 1.0) ** 2
    return image * gain[..., None]


@hookimpl
def register_corruptions(register):
    register(vignette)


@hookimpl
def register_suites(register):
    from medfm_robust_plugin.suites import load_suite_file

    register(load_suite_file(Path(__file__).with_name("scope_optics.yaml")))
