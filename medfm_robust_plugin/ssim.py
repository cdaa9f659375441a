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


def image_ssim(
    corrupted: np.ndarray, clean: np.ndarray, value_range: tuple[float, float] | None = None
) -> float:
    """SSIM of a corrupted image to its clean one, as calibration and records measure it.

    Both images are measured from the bottom of the range the engine maps to [0, 1]
    (``value_range`` or the clean image's inferred one), with that range's span as data range, and
    without alpha. SSIM's luminance term is not shift-invariant: on raw HU, where soft tissue sits
    near 0, a level shift would first lower SSIM and then raise it again.
    """
    from .image import infer_value_range

    def colour(a: np.ndarray) -> np.ndarray:
        return a[..., :3] if a.ndim == 3 and a.shape[2] == 4 else a

    lo, hi = value_range or infer_value_range(colour(clean))
    if lo == 0.0:
        return ssim(colour(corrupted), colour(clean), data_range=float(hi - lo))
    shift = np.float64(lo)
    return ssim(
        colour(corrupted).astype(np.float64) - shift,
        colour(clean).astype(np.float64) - shift,
        data_range=float(hi - lo),
    )
