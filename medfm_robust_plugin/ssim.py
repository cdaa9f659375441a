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
    if a.shape != b.shape:
        raise ValueError(f"SSIM needs images of one shape, got {a.shape} and {b.shape}")
    return SSIMReference(b, data_range if data_range is not None else dtype_range(a)).ssim(a)


def _box(m: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.boxFilter(m, cv2.CV_64F, (WIN, WIN), borderType=cv2.BORDER_REFLECT)


class SSIMReference:
    """One image's side of SSIM (its local means and second moments), computed once: the SSIM of
    many images to it (the probes of a severity search) then costs about half as much each."""

    def __init__(self, reference: np.ndarray, data_range: float) -> None:
        if min(reference.shape[:2]) < WIN:
            raise ValueError(
                f"SSIM needs images of at least {WIN} x {WIN} pixels, got {reference.shape[:2]}"
            )
        y = np.asarray(reference, dtype=np.float64)
        self.shape = reference.shape
        self.channels = [y[..., c] for c in range(y.shape[2])] if y.ndim == 3 else [y]
        cov_norm = WIN * WIN / (WIN * WIN - 1.0)
        self.means = [_box(yc) for yc in self.channels]
        self.mean_squares = [uy * uy for uy in self.means]
        self.variances = [
            cov_norm * (_box(yc * yc) - uy2) for yc, uy2 in zip(self.channels, self.mean_squares)
        ]
        self.c1 = (K1 * data_range) ** 2
        self.c2 = (K2 * data_range) ** 2

    def ssim(self, image: np.ndarray) -> float:
        """Mean SSIM of ``image`` (the reference's shape) to the reference."""
        if image.shape != self.shape:
            raise ValueError(f"SSIM needs images of one shape, got {image.shape} and {self.shape}")
        x = np.asarray(image, dtype=np.float64)
        cov_norm = WIN * WIN / (WIN * WIN - 1.0)
        pad = (WIN - 1) // 2
        c1, c2 = self.c1, self.c2
        scores = []
        terms = zip(self.channels, self.means, self.mean_squares, self.variances)
        for ch, (yc, uy, uy2, vy) in enumerate(terms):
            xc = x[..., ch] if x.ndim == 3 else x
            ux = _box(xc)
            # (2 ux uy + c1)(2 vxy + c2) / ((ux^2 + uy^2 + c1)(vx + vy + c2)), in place and in
            # the order of the written formula (so the same bits as computing it plainly)
            vx = _box(xc * xc)
            ux2 = ux * ux
            vx -= ux2
            vx *= cov_norm
            vxy = _box(xc * yc)
            uxy = ux * uy
            vxy -= uxy
            vxy *= cov_norm
            uxy *= 2.0
            uxy += c1
            vxy *= 2.0
            vxy += c2
            uxy *= vxy  # the numerator
            ux2 += uy2
            ux2 += c1
            vx += vy
            vx += c2
            ux2 *= vx  # the denominator
            uxy /= ux2
            scores.append(float(uxy[pad:-pad, pad:-pad].mean()))
        return float(np.mean(scores))


class PresentedReference:
    """The presented clean image's side of SSIM, for the probes of one severity search."""

    def __init__(self, clean: np.ndarray, window: tuple[float, float]) -> None:
        from .presentation import Presentation

        self.shown = Presentation((float(window[0]), float(window[1])), "given window")
        self.reference = SSIMReference(self.shown.to_unit(clean), 1.0)

    def ssim(self, corrupted: np.ndarray) -> float:
        return self.reference.ssim(self.shown.to_unit(corrupted))


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
