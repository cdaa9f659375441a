"""The presented image: what a model is shown of a sample, and where SSIM is measured.

A model never sees Hounsfield units or 16-bit MR magnitudes; it sees a window of them mapped to
grey levels. The presentation of an image is that window - the values shown black and white:

- 8-bit images (photographs, exported PNG/JPEG slices): 0-255, as they are;
- a window given by the caller, the task card or the sample (``display_window``), or by the DICOM
  header (WindowCenter / WindowWidth);
- CT in Hounsfield units: the soft-tissue window W400 / L40 (a named window, e.g. ``"brain"``,
  may be asked for instead);
- MR, X-ray, ultrasound and OCT data that is not 8-bit: robust percentiles (0.5 and 99.5) of the
  clean image;
- anything else (a bare array with no modality): the value range the engine infers (0-255 for
  uint8, 0-1 for floats in [0, 1], otherwise 0 or the minimum up to the maximum).

The window is chosen once, on the clean image, and every view of that image is shown through it,
so a brightness change stays a brightness change. Natural corruptions and display errors act on
the presented image; physical ones act in the image's own units and are presented afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import InvalidImageError

# CT windows as (width, level) in HU (radiology's usual presets).
CT_WINDOWS: dict[str, tuple[float, float]] = {
    "soft_tissue": (400.0, 40.0),
    "brain": (80.0, 40.0),
    "lung": (1500.0, -600.0),
    "bone": (1800.0, 400.0),
    "liver": (150.0, 30.0),
}
DEFAULT_CT_WINDOW = "soft_tissue"
PERCENTILES = (0.5, 99.5)
PERCENTILE_MODALITIES = ("mri", "xray", "ultrasound", "oct")
HU_AIR_THRESHOLD = -500.0  # a slice with air below this is in Hounsfield units


@dataclass(frozen=True)
class Presentation:
    """How an image is shown: ``window`` values map to black and white; ``rule`` says why."""

    window: tuple[float, float]
    rule: str

    def __post_init__(self) -> None:
        lo, hi = self.window
        if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
            raise InvalidImageError(
                f"display window {self.window} must be finite with its top above its bottom"
            )

    def to_unit(self, values: np.ndarray) -> np.ndarray:
        """Values -> float32 grey levels in [0, 1] (alpha dropped)."""
        if values.ndim == 3 and values.shape[2] == 4:
            values = values[..., :3]
        lo, hi = self.window
        if values.dtype == np.uint8 and (lo, hi) == (0.0, 255.0):
            return np.multiply(values, np.float32(1.0 / 255.0), dtype=np.float32)
        out = values.astype(np.float32)
        out -= np.float32(lo)
        out *= np.float32(1.0 / (hi - lo))
        return np.clip(out, 0.0, 1.0, out=out)

    def to_uint8(self, values: np.ndarray) -> np.ndarray:
        """Values -> the 8-bit image a model is sent (gray stays gray; alpha dropped)."""
        if values.ndim == 3 and values.shape[2] == 4:
            values = values[..., :3]
        if values.dtype == np.uint8 and self.window == (0.0, 255.0):
            return values
        return np.rint(self.to_unit(values) * np.float32(255.0)).astype(np.uint8)

    def as_record(self) -> dict[str, Any]:
        return {"window": [float(self.window[0]), float(self.window[1])], "rule": self.rule}


def ct_window(name_or_window: str | tuple[float, float]) -> tuple[float, float]:
    """A CT window as (bottom, top) in HU, from a preset name or a (bottom, top) pair."""
    if isinstance(name_or_window, str):
        key = name_or_window.lower().replace("-", "_").replace(" ", "_")
        if key not in CT_WINDOWS:
            raise InvalidImageError(
                f"unknown CT window {name_or_window!r}; use one of {', '.join(CT_WINDOWS)} "
                "or a (bottom, top) pair in HU"
            )
        width, level = CT_WINDOWS[key]
        return level - width / 2.0, level + width / 2.0
    lo, hi = name_or_window
    return float(lo), float(hi)


def without_alpha(array: np.ndarray) -> np.ndarray:
    """The colour channels of an image (an RGBA image's alpha is not shown)."""
    return array[..., :3] if array.ndim == 3 and array.shape[2] == 4 else array


# Images smaller than this take np.percentile itself; larger ones select the two order
# statistics each percentile needs (see ``percentiles``) from a sample-guided bracket.
SELECT_MIN_SIZE = 1 << 14
SELECT_SAMPLE = 4096


def percentiles(array: np.ndarray, q: tuple[float, ...]) -> np.ndarray:
    """``np.percentile(array, q)`` (all values, numpy's default 'linear' method), bit for bit.

    np.percentile partitions the whole image; only two order statistics per percentile are
    needed. A strided sample of the image says roughly where they lie; each is then bracketed
    by two sample values, the values below the bracket are counted, and only the values inside it
    are selected (np.partition on a small set). Ties at the bracket's bottom are counted, not
    selected, so a background of zeros costs nothing. Where a bracket misses the rank (or the data
    holds NaN, or is small), np.percentile itself answers. The interpolation is numpy's: the same
    index arithmetic and the same ``_lerp`` operations on values of the array's dtype.
    """
    values = np.asarray(array)
    n = values.size
    if n < SELECT_MIN_SIZE or values.dtype.kind not in "uif":
        return np.percentile(values, q)
    flat = values.reshape(-1)
    if flat.dtype.kind == "f" and np.isnan(flat.max()):
        return np.percentile(values, q)  # numpy answers NaN
    virtual = (n - 1) * np.true_divide(np.asarray(q, dtype=np.float64), 100)
    if not np.all((virtual >= 0) & (virtual < n - 1)):
        return np.percentile(values, q)
    previous = np.floor(virtual).astype(np.intp)
    gamma = virtual - previous
    sample = np.sort(flat[:: max(1, n // SELECT_SAMPLE) | 1])
    pairs = [_order_statistics(flat, int(rank), sample) for rank in previous]
    if any(pair is None for pair in pairs):
        return np.percentile(values, q)
    below = np.array([pair[0] for pair in pairs], dtype=flat.dtype)
    above = np.array([pair[1] for pair in pairs], dtype=flat.dtype)
    # numpy's _lerp, operation for operation (the difference in the array's own dtype)
    diff = above - below
    out = np.add(below, diff * gamma)
    np.subtract(
        above,
        diff * (1 - gamma),
        out=out,
        where=gamma >= 0.5,
        casting="unsafe",
        dtype=type(out.dtype),
    )
    return out


def _order_statistics(flat: np.ndarray, rank: int, sample: np.ndarray) -> tuple | None:
    """The values of ranks ``rank`` and ``rank + 1`` of ``flat`` in ascending order, or None
    when the bracket read from the sorted ``sample`` does not hold them."""
    n, m = flat.size, sample.size
    position = rank * (m - 1) / (n - 1)
    p = min(max(rank / n, 1.0 / m), 1.0 - 1.0 / m)
    margin = int(4.0 * np.sqrt(m * p * (1.0 - p))) + 2
    bottom = sample[max(0, int(np.floor(position)) - margin)]
    top = sample[min(m - 1, int(np.ceil(position)) + 1 + margin)]
    if np.count_nonzero(flat < bottom) > rank:
        return None
    through_bottom = np.count_nonzero(flat <= bottom)
    if through_bottom >= rank + 2:
        return bottom, bottom
    if not top > bottom:
        return None
    inside = flat[(flat > bottom) & (flat <= top)]
    if through_bottom + inside.size < rank + 2:
        return None
    wanted = [k - through_bottom for k in (rank, rank + 1) if k >= through_bottom]
    inside = np.partition(inside, wanted)
    first = bottom if rank < through_bottom else inside[rank - through_bottom]
    return first, inside[rank + 1 - through_bottom]


def percentile_window(array: np.ndarray) -> tuple[float, float] | None:
    """Robust percentiles of an image, or None when they do not separate (a flat image)."""
    lo, hi = percentiles(without_alpha(array), PERCENTILES)
    lo, hi = float(lo), float(hi)
    if hi > lo:
        return lo, hi
    return None


def presentation_for(
    array: np.ndarray,
    modality: str | None = None,
    meta: Mapping[str, Any] | None = None,
    window: str | tuple[float, float] | None = None,
) -> Presentation:
    """The presentation of a clean image (see the module's rules, in their order)."""
    from .image import infer_value_range

    meta = meta or {}
    if window is not None:
        if isinstance(window, str):
            return Presentation(ct_window(window), f"CT window {window}")
        return Presentation((float(window[0]), float(window[1])), "given window")
    if array.dtype == np.uint8:
        return Presentation((0.0, 255.0), "8-bit")
    if meta.get("display_window") is not None:
        given = meta["display_window"]
        if isinstance(given, str):
            return Presentation(ct_window(given), f"CT window {given}")
        return Presentation((float(given[0]), float(given[1])), "sample window")
    if meta.get("window") is not None:
        lo, hi = meta["window"]
        return Presentation((float(lo), float(hi)), "DICOM window")
    if modality == "ct" and _in_hounsfield(array, meta):
        return Presentation(ct_window(DEFAULT_CT_WINDOW), "CT soft tissue W400/L40")
    if modality in PERCENTILE_MODALITIES:
        robust = percentile_window(array)
        if robust is not None:
            return Presentation(robust, "percentiles 0.5-99.5")
    return Presentation(infer_value_range(without_alpha(array)), "value range")


def _in_hounsfield(array: np.ndarray, meta: Mapping[str, Any]) -> bool:
    if meta.get("units") == "HU":
        return True
    if meta.get("units") not in (None, ""):
        return False
    return float(np.min(without_alpha(array))) < HU_AIR_THRESHOLD
