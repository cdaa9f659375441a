"""Lazy image and mask sources: module-level readers bound with ``functools.partial``.

A sample holds one of these instead of pixels, so a loader costs almost nothing until a sample is
used, and samples stay picklable for worker processes. Masks come back as uint8 0/255 arrays
(``Sample.load_mask`` turns them into booleans).
"""

from __future__ import annotations

import base64
import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

FOREGROUND = np.uint8(255)


def _grey(path: str | os.PathLike) -> np.ndarray:
    """A mask file as one 2-D channel, whatever its storage (grey, RGB, RGBA, 16-bit)."""
    from ...image import load_image

    array = load_image(path).array
    if array.ndim == 3:
        array = array[..., 0] if array.shape[2] in (1, 3, 4) else array.max(axis=2)
    return array


def thresholded_mask(path: str | os.PathLike, threshold: float) -> np.ndarray:
    """Foreground where the mask's value exceeds ``threshold`` (JPEG masks carry noise near 0)."""
    return np.where(_grey(path) > threshold, FOREGROUND, np.uint8(0))


def union_mask(paths: Sequence[str | os.PathLike], threshold: float = 0) -> np.ndarray:
    """The union of several mask files of one image (a lesion annotated in separate files)."""
    masks = [_grey(p) > threshold for p in paths]
    return np.where(np.logical_or.reduce(masks), FOREGROUND, np.uint8(0))


def grey_level_mask(path: str | os.PathLike, below: float) -> np.ndarray:
    """Foreground where the mask is darker than ``below`` (REFUGE draws structures dark on white)."""
    return np.where(_grey(path) < below, FOREGROUND, np.uint8(0))


def polygon_mask(
    polygons: Sequence[np.ndarray], height: int, width: int, subpixel_bits: int = 4
) -> np.ndarray:
    """Fill polygons given in pixel coordinates (x, y) into an H x W mask.

    Vertices keep ``subpixel_bits`` of fractional precision (cv2.fillPoly's ``shift``), so that a
    contour traced at sub-pixel positions is not shifted by rounding.
    """
    import cv2

    mask = np.zeros((height, width), np.uint8)
    scale = 1 << subpixel_bits
    contours = [
        np.round(np.asarray(p, np.float64) * scale).astype(np.int32).reshape(-1, 1, 2)
        for p in polygons
    ]
    if contours:
        cv2.fillPoly(mask, contours, 255, lineType=cv2.LINE_8, shift=subpixel_bits)
    return mask


def base64_image(text: str) -> np.ndarray:
    """Decode a base64-encoded image (a VLMEvalKit TSV cell) into an array (size checked first)."""
    from ...image import decode_image_bytes

    return decode_image_bytes(base64.b64decode(text), "base64 image cell")


def encoded_image(data: bytes) -> np.ndarray:
    """Decode an encoded image (PNG, JPEG, ...) held in memory (size checked first)."""
    from ...image import decode_image_bytes

    return decode_image_bytes(data, "encoded image")


# ---------------------------------------------------------------------- volumes


@functools.lru_cache(maxsize=4)
def _volume(path: str, mtime_ns: int) -> np.ndarray:
    """A NIfTI volume in its physical values; the last four stay cached (slices are read in runs)."""
    import nibabel as nib

    from ...image import check_size

    image = nib.load(path)  # the header: each slice is checked against the pixel limit first
    check_size(image.shape[0], image.shape[1], f"'{path}' (NIfTI of shape {image.shape})")
    data = np.asanyarray(image.dataobj)
    if data.dtype.kind == "f" and np.all(np.isfinite(data)) and np.array_equal(data, np.rint(data)):
        lo, hi = data.min(), data.max()
        if lo >= -32768 and hi <= 32767:
            return data.astype(np.int16)  # HU are whole numbers: keep them compact and exact
    return data.astype(np.float32) if data.dtype == np.float64 else data


def volume(path: str | os.PathLike) -> np.ndarray:
    """A NIfTI volume (cached by path and modification time)."""
    path = os.fspath(path)
    return _volume(path, os.stat(path).st_mtime_ns)


def axial_slice(volume_data: np.ndarray, index: int) -> np.ndarray:
    """Slice ``index`` of the third voxel axis as rows = second axis, columns = first axis."""
    return np.ascontiguousarray(volume_data[:, :, index].T)


def volume_slice(path: str | os.PathLike, index: int) -> np.ndarray:
    """One axial slice of a NIfTI volume, in its physical values (HU for CT)."""
    return axial_slice(volume(path), index)


def label_slice_mask(path: str | os.PathLike, index: int, labels: Sequence[int]) -> np.ndarray:
    """Foreground where an axial slice of a label volume holds one of ``labels``."""
    labelled = np.isin(axial_slice(volume(path), index), np.asarray(labels))
    return np.where(labelled, FOREGROUND, np.uint8(0))


# ---------------------------------------------------------------------- MATLAB v7.3 (HDF5)


def mat_field(path: str | os.PathLike, group: str, field: str) -> np.ndarray:
    """A 2-D array from a MATLAB v7.3 file (HDF5, column-major: transposed back to rows)."""
    import h5py

    with h5py.File(path, "r") as mat:
        return np.ascontiguousarray(np.asarray(mat[group][field]).T)


def mat_mask(path: str | os.PathLike, group: str, field: str) -> np.ndarray:
    """A logical MATLAB array as a 0/255 mask."""
    return np.where(mat_field(path, group, field) > 0, FOREGROUND, np.uint8(0))


# ---------------------------------------------------------------------- Hugging Face rows


def hub_image(dataset: Any, index: int, column: str, image_root: str | None = None) -> np.ndarray:
    """The image in ``column`` of row ``index`` of a ``datasets.Dataset`` (decoded on demand)."""
    from ...image import load_image, pil_to_array

    value = dataset[int(index)][column]
    if isinstance(value, dict):
        if value.get("bytes"):
            return encoded_image(value["bytes"])
        value = value.get("path")
    if isinstance(value, (str, Path)):
        path = Path(image_root, value) if image_root else Path(value)
        return load_image(path).array
    if isinstance(value, np.ndarray):
        return value
    return pil_to_array(value)  # a decoded PIL image
