"""Structural similarity (Wang et al. 2004), as scikit-image computes it by default.

A 7 x 7 uniform window, K1 = 0.01, K2 = 0.03, sample covariance, the mean over the image less a
3-pixel border, averaged over channels. Box filters from OpenCV make it fast enough to sit inside
the per-image severity search.
"""

from __future__ import annotations

import numpy as np

WIN = 7
K1, K2 = 0.01, 0.03


def dtype_range(array: np.ndarray) -> float:
    """The data range SSIM uses when none is declared: the dtype's span, or 1 for float images in [0, 1]."""
    if array.dtype == np.uint8:
        return 255.0
    if array.dtype.kind in "ui":
        info = np.iinfo(array.dtype)
        return float(info.max - info.min)
    lo, hi = float(np.min(array)), float(np.max(array))
    return 1.0 if lo >= 0.0 and hi <= 1.0 else hi - lo


def ssim(a: np.ndarray, b: np.ndarray, data_range: float | None = None) -> float:
    """Mean SSIM between two images of one shape (H x W or H x W x C), averaged over channels."""
    import cv2

    if a.shape != b.shape:
        raise ValueError(f"SSIM needs images of one shape, got {a.shape} and {b.shape}")
    if min(a.shape[:2]) < WIN:
        raise ValueError(f"SSIM needs images of at least {WIN} x {WIN} pixels, got {a.shape[:2]}")
    if data_range is None:
        data_range = dtype_range(a)
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.ndim == 2:
        x, y = x[..., None], y[..., None]
    c1 = (K1 * data_range) ** 2
    c2 = (K2 * data_range) ** 2
    cov_norm = WIN * WIN / (WIN * WIN - 1.0)
    pad = (WIN - 1) // 2
    scores = []
    for ch in range(x.shape[2]):
        xc, yc = x[..., ch], y[..., ch]

        def box(m: np.ndarray) -> np.ndarray:
            return cv2.boxFilter(m, cv2.CV_64F, (WIN, WIN), borderType=cv2.BORDER_REFLECT)

        ux, uy = box(xc), box(yc)
        vx = cov_norm * (box(xc * xc) - ux * ux)
        vy = cov_norm * (box(yc * yc) - uy * uy)
        vxy = cov_norm * (box(xc * yc) - ux * uy)
        num = (2 * ux * uy + c1) * (2 * vxy + c2)
        den = (ux * ux + uy * uy + c1) * (vx + vy + c2)
        scores.append(float((num / den)[pad:-pad, pad:-pad].mean()))
    return float(np.mean(scores))


def presented_ssim(corrupted: np.ndarray, clean: np.ndarray, window: tuple[float, float]) -> float:
    """SSIM of two images as a model sees them: both through ``window`` into [0, 1], no alpha.

    This is the SSIM of calibration, records and reports (see ``presentation``). Values outside
    the window are clipped, as on a screen: metal brighter than the window's top counts as white.
    """
    from .presentation import Presentation

    shown = Presentation((float(window[0]), float(window[1])), "given window")
    return ssim(shown.to_unit(corrupted), shown.to_unit(clean), data_range=1.0)


def image_ssim(
    corrupted: np.ndarray, clean: np.ndarray, value_range: tuple[float, float] | None = None
) -> float:
    """SSIM of a corrupted image to its clean one on the presented image.

    ``value_range`` is the presentation window; by default the clean image's value range (the rule
    for a bare array: see ``presentation``). Runs and views pass the sample's own presentation.
    """
    from .presentation import presentation_for

    window = value_range or presentation_for(clean).window
    return presented_ssim(corrupted, clean, window)
