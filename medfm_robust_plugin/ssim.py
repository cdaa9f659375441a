"""Structural similarity (Wang et al. 2004), as scikit-image computes it by default.

A 7 x 7 uniform window, K1 = 0.01, K2 = 0.03, sample covariance, the mean over the image less a
3-pixel border, averaged over channels. Box filters from OpenCV make it fast enough to sit inside
the per-image severity search.

Two 8-bit images compared over the data range 255 (the photographs most modalities are) take an
exact path: the window sums of x, x^2, y^2 and xy are integers that int32 holds exactly, the
formula's terms are combined from them in integers, and only each pixel's final ratio is a float.
It works in strips of rows that stay in the processor's cache, and agrees with the float64
computation to about 1e-8 (that one rounds its window means; this one only the ratio).

A reference may carry a region (bool H x W, see ``imaged_region``): its SSIM is then the mean over
the windows centred in the region, and ``scores`` gives the whole-frame mean beside it from the
same map.
"""

from __future__ import annotations

from typing import Any

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


def ssim(
    a: np.ndarray,
    b: np.ndarray,
    data_range: float | None = None,
    region: np.ndarray | None = None,
) -> float:
    """Mean SSIM between two images of one shape (H x W or H x W x C), averaged over channels.

    With ``region`` (bool H x W), the mean over the windows centred in it.
    """
    if a.shape != b.shape:
        raise ValueError(f"SSIM needs images of one shape, got {a.shape} and {b.shape}")
    data_range = data_range if data_range is not None else dtype_range(a)
    if a.dtype == b.dtype == np.uint8 and data_range == 255.0:
        return ByteSSIMReference(b, region).ssim(a)
    return SSIMReference(b, data_range, region).ssim(a)


def _windows_centred_in(region: np.ndarray) -> np.ndarray:
    """The part of a region (bool H x W) where whole windows fit: SSIM leaves out the border."""
    pad = (WIN - 1) // 2
    return region[pad:-pad, pad:-pad]


def holds_a_window(region: np.ndarray) -> bool:
    """Whether any SSIM window is centred in ``region`` (bool H x W)."""
    return bool(_windows_centred_in(region).any())


def _inner(region: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    """The region's part where whole windows fit (the border SSIM leaves out), checked."""
    if region is None:
        return None
    region = np.asarray(region, dtype=bool)
    if region.shape != tuple(shape[:2]):
        raise ValueError(f"SSIM region of shape {region.shape} for an image of shape {shape}")
    inner = _windows_centred_in(region)
    if not inner.any():
        raise ValueError("SSIM region holds no whole window")
    return inner


def _box(m: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.boxFilter(m, cv2.CV_64F, (WIN, WIN), borderType=cv2.BORDER_REFLECT)


class SSIMReference:
    """One image's side of SSIM (its local means and second moments), computed once: the SSIM of
    many images to it (the probes of a severity search) then costs about half as much each."""

    def __init__(
        self, reference: np.ndarray, data_range: float, region: np.ndarray | None = None
    ) -> None:
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
        self.inner = _inner(region, reference.shape)

    def ssim(self, image: np.ndarray) -> float:
        """Mean SSIM of ``image`` (the reference's shape) to the reference, over the region."""
        return self.scores(image)[0]

    def scores(self, image: np.ndarray) -> tuple[float, float]:
        """SSIM of ``image`` to the reference over the region and over the whole frame."""
        if image.shape != self.shape:
            raise ValueError(f"SSIM needs images of one shape, got {image.shape} and {self.shape}")
        x = np.asarray(image, dtype=np.float64)
        cov_norm = WIN * WIN / (WIN * WIN - 1.0)
        pad = (WIN - 1) // 2
        c1, c2 = self.c1, self.c2
        scores, region_scores = [], []
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
            inner = uxy[pad:-pad, pad:-pad]
            scores.append(float(inner.mean()))
            if self.inner is not None:
                region_scores.append(float(inner[self.inner].mean()))
        frame = float(np.mean(scores))
        return (float(np.mean(region_scores)) if region_scores else frame), frame


# Output rows per strip of the 8-bit path: a strip's dozen int32 and float32 temporaries (17 KB a
# row each for a 1411-pixel RGB image) then stay in the cache between the formula's steps.
STRIP_ROWS = 32


def _window_sums(m: np.ndarray) -> np.ndarray:
    """Sums over every 7 x 7 window, exact in int32 (uint8 or uint16 input), border cropped."""
    import cv2

    pad = (WIN - 1) // 2
    sums = cv2.boxFilter(m, cv2.CV_32S, (WIN, WIN), normalize=False, borderType=cv2.BORDER_REFLECT)
    return sums.reshape(m.shape)[pad:-pad, pad:-pad]  # OpenCV drops a trailing single channel


class ByteSSIMReference:
    """One 8-bit image's side of SSIM over the data range 255, for the exact integer path.

    With n = 49 pixels a window, a = sum x and b = sum y over it, SSIM is
    (2ab + C1)(2(n sum xy - ab) + C2) / ((a^2 + b^2 + C1)(n (sum x^2 + sum y^2) - a^2 - b^2 + C2))
    with C1 = (K1 255 n)^2 and C2 = (K2 255)^2 n (n - 1): the usual formula with its means and
    sample (co)variances multiplied out. Every integer term stays below 2^31.
    """

    def __init__(self, reference: np.ndarray, region: np.ndarray | None = None) -> None:
        if reference.dtype != np.uint8:
            raise ValueError(f"the 8-bit SSIM path needs a uint8 image, got {reference.dtype}")
        if min(reference.shape[:2]) < WIN:
            raise ValueError(
                f"SSIM needs images of at least {WIN} x {WIN} pixels, got {reference.shape[:2]}"
            )
        self.shape = reference.shape
        y = reference if reference.ndim == 3 else reference[..., None]
        self.y16 = y.astype(np.uint16)
        self.sums = _window_sums(y)
        self.square_sums = _window_sums(self.y16 * self.y16)
        n = WIN * WIN
        self.c1 = np.float32((K1 * 255.0 * n) ** 2)
        self.c2 = np.float32((K2 * 255.0) ** 2 * n * (n - 1))
        inner = _inner(region, reference.shape)
        self.inside = None if inner is None else inner.astype(np.uint8)
        self.inside_count = None if inner is None else int(inner.sum())

    def ssim(self, image: np.ndarray) -> float:
        """Mean SSIM of ``image`` (uint8, the reference's shape) to the reference, over the region."""
        return self.scores(image)[0]

    def scores(self, image: np.ndarray) -> tuple[float, float]:
        """SSIM of ``image`` to the reference over the region and over the whole frame."""
        if image.shape != self.shape or image.dtype != np.uint8:
            raise ValueError(
                f"SSIM needs images of one shape and dtype, got {image.dtype} {image.shape} "
                f"and uint8 {self.shape}"
            )
        import cv2

        x = image if image.ndim == 3 else image[..., None]
        n = WIN * WIN
        rows = x.shape[0] - (WIN - 1)
        channels = x.shape[2]
        totals = np.zeros(channels)
        inside_totals = np.zeros(channels)
        for top in range(0, rows, STRIP_ROWS):
            bottom = min(top + STRIP_ROWS, rows)
            strip = x[top : bottom + WIN - 1]
            strip16 = strip.astype(np.uint16)
            a = _window_sums(strip)
            xx = _window_sums(strip16 * strip16)
            xy = _window_sums(strip16 * self.y16[top : bottom + WIN - 1])
            b, yy = self.sums[top:bottom], self.square_sums[top:bottom]
            ab = a * b
            xy *= n
            xy -= ab  # n sum xy - ab: n (n - 1) times the sample covariance
            squares = a * a
            squares += b * b
            xx += yy
            xx *= n
            xx -= squares  # n (sum x^2 + sum y^2) - a^2 - b^2
            numerator = ab.astype(np.float32)
            numerator *= 2.0
            numerator += self.c1
            term = xy.astype(np.float32)
            term *= 2.0
            term += self.c2
            numerator *= term
            denominator = squares.astype(np.float32)
            denominator += self.c1
            term = xx.astype(np.float32)
            term += self.c2
            denominator *= term
            numerator /= denominator
            # per channel, accumulated in float64 (OpenCV's sum: 12x numpy's with a dtype)
            totals += cv2.sumElems(numerator)[:channels]
            if self.inside is not None:
                inside = self.inside[top:bottom]
                count = cv2.countNonZero(inside)
                if count:
                    inside_totals += np.multiply(cv2.mean(numerator, mask=inside)[:channels], count)
        frame = float(np.mean(totals / (rows * (x.shape[1] - (WIN - 1)))))
        if self.inside is None:
            return frame, frame
        return float(np.mean(inside_totals / self.inside_count)), frame


class PresentedReference:
    """The presented clean image's side of SSIM, for the probes of one severity search.

    An 8-bit image shown as it is takes the exact 8-bit path (``ByteSSIMReference``). ``region``
    (an ``imaged_region.ImagedRegion`` or None) is where SSIM is averaged.
    """

    def __init__(self, clean: np.ndarray, window: tuple[float, float], region: Any = None) -> None:
        from .presentation import Presentation, without_alpha

        self.shown = Presentation((float(window[0]), float(window[1])), "given window")
        self.clean = clean
        self.region = region
        self.mask = None if region is None else region.mask
        plain_bytes = clean.dtype == np.uint8 and self.shown.window == (0.0, 255.0)
        self.bytes = ByteSSIMReference(without_alpha(clean), self.mask) if plain_bytes else None
        self.reference: SSIMReference | None = None

    @classmethod
    def of(cls, clean: np.ndarray, context: Any) -> PresentedReference:
        """The reference of a clean image with its ``ImageContext``: its window and imaged region
        (the whole frame when no SSIM window is centred in the region).

        The last few are kept, keyed by the clean image's content and context (``REFERENCES``):
        a sample is measured against at every level of every corruption, and finding its region
        and its window sums again each time would cost more than most corruptions.
        """
        from .imaged_region import imaged_region, region_finder

        key = (
            _digest(clean),
            clean.shape,
            clean.dtype.str,
            repr(context),
            region_finder(getattr(context, "modality", None)),
        )
        kept = REFERENCES.get(key)
        if kept is not None:
            return kept
        # a private, read-only copy: the caller may change its array after this call, and what
        # is kept under the old content's key must not change with it
        clean = np.array(clean, copy=True)
        clean.flags.writeable = False
        region = imaged_region(clean, context)
        if region is not None and not holds_a_window(region.mask):
            region = None
        made = cls(clean, context.window, region)
        REFERENCES.put(key, made)
        return made

    @property
    def nbytes(self) -> int:
        """Memory this reference holds (its arrays), for the cache's budget."""
        held = [self.clean, self.mask]
        if self.bytes is not None:
            held += [self.bytes.y16, self.bytes.sums, self.bytes.square_sums, self.bytes.inside]
        if self.reference is not None:
            r = self.reference
            held += [*r.channels, *r.means, *r.mean_squares, *r.variances, r.inner]
        return sum(a.nbytes for a in held if a is not None)

    def ssim(self, corrupted: np.ndarray) -> float:
        return self.scores(corrupted)[0]

    def scores(self, corrupted: np.ndarray) -> tuple[float, float]:
        """Presented SSIM over the imaged region and over the whole frame (equal without a region)."""
        from .presentation import without_alpha

        if corrupted.shape != self.clean.shape:
            raise ValueError(
                f"SSIM needs images of one shape, got {corrupted.shape} and {self.clean.shape}"
            )
        if self.bytes is not None and corrupted.dtype == np.uint8:
            return self.bytes.scores(without_alpha(corrupted))
        if self.reference is None:
            self.reference = SSIMReference(self.shown.to_unit(self.clean), 1.0, self.mask)
        return self.reference.scores(self.shown.to_unit(corrupted))


def _digest(array: np.ndarray) -> bytes:
    """A fingerprint of an array's bytes (SHA-1: 3 ms for a 1411 px RGB photograph)."""
    import hashlib

    data = np.ascontiguousarray(array)
    return hashlib.sha1(memoryview(data).cast("B"), usedforsecurity=False).digest()


class ReferenceCache:
    """The most recently used ``PresentedReference``s, held to ``budget`` bytes in all (least
    recently used first out; one larger than the budget is not kept). Thread-safe. With no
    budget given, ``reference_budget()`` is read when the first reference is kept, so a bad
    setting is reported where SSIM is first measured, not when the package is imported."""

    def __init__(self, budget: int | None = None) -> None:
        import threading
        from collections import OrderedDict

        self.budget = budget
        self.entries: OrderedDict[Any, PresentedReference] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: Any) -> PresentedReference | None:
        with self.lock:
            found = self.entries.get(key)
            if found is not None:
                self.entries.move_to_end(key)
            return found

    def put(self, key: Any, reference: PresentedReference) -> None:
        with self.lock:
            if self.budget is None:
                self.budget = reference_budget()
            self.entries[key] = reference
            self.entries.move_to_end(key)
            # sizes are read now: a float reference grows when it is first used
            while self.entries and sum(r.nbytes for r in self.entries.values()) > self.budget:
                self.entries.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()

    def __len__(self) -> int:
        return len(self.entries)


def reference_budget() -> int:
    """Bytes the kept clean references may take in one process: ``MEDFM_ROBUST_SSIM_REFERENCES_MB``
    megabytes (0 keeps none), 384 by default: four 1411 px RGB photographs on the 8-bit path (the
    clean image, its region and its window sums take about 70 MB each), or one on the float path;
    every worker process of a job holds its own."""
    import os

    from .errors import PluginError

    raw = os.environ.get("MEDFM_ROBUST_SSIM_REFERENCES_MB", "384")
    try:
        megabytes = float(raw)
    except ValueError:
        megabytes = -1.0
    if not megabytes >= 0:  # NaN and negatives too
        raise PluginError(
            f"MEDFM_ROBUST_SSIM_REFERENCES_MB must be a number of megabytes >= 0, got {raw!r}"
        )
    return int(megabytes * 2**20)


REFERENCES = ReferenceCache()


def presented_ssim(
    corrupted: np.ndarray,
    clean: np.ndarray,
    window: tuple[float, float],
    region: np.ndarray | None = None,
) -> float:
    """SSIM of two images as a model sees them: both through ``window`` into [0, 1], no alpha.

    This is the SSIM of calibration, records and reports (see ``presentation``), there averaged
    over the imaged region (``imaged_region``); ``region`` (bool H x W) gives one here. Values
    outside the window are clipped, as on a screen: metal brighter than the window's top counts
    as white.
    """
    from .imaged_region import ImagedRegion

    given = None if region is None else ImagedRegion(np.asarray(region, dtype=bool), "given")
    return PresentedReference(clean, window, given).ssim(corrupted)


def image_ssim(
    corrupted: np.ndarray,
    clean: np.ndarray,
    value_range: tuple[float, float] | None = None,
    modality: str | None = None,
) -> float:
    """SSIM of a corrupted image to its clean one on the presented image.

    ``value_range`` is the presentation window; by default the clean image's presentation for
    ``modality`` (for a bare array without one, its value range: see ``presentation``). With a
    modality that has an imaged region (``imaged_region``) the mean is taken over it, as in
    records. Runs and views pass the sample's own presentation.
    """
    from .corruptions.spec import ImageContext
    from .presentation import presentation_for

    window = value_range or presentation_for(clean, modality).window
    context = ImageContext(modality=modality, window=window)
    return PresentedReference.of(clean, context).ssim(corrupted)
