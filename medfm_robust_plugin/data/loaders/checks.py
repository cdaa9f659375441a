"""Cheap checks that turn bad items into skip reasons instead of crashes.

Images are checked by their header only (PIL opens a file without decoding its pixels); masks are
read in full once, because an empty mask and the box prompt can only be known from the pixels.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..sample import ImageSource, Sample, Skipped, mask_box
from .base import DataRoot, relative

Size = tuple[int, int]  # (width, height) as image headers state it
Box = tuple[float, float, float, float]


def header_size(path: Path) -> Size:
    """(width, height) from the file header; raises on a missing or unreadable file."""
    from PIL import Image

    with Image.open(path) as img:
        return img.size


def bytes_size(data: bytes) -> Size:
    """(width, height) from the header of an encoded image held in memory."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return img.size


def image_problem(path: Path, root: Path | None = None) -> tuple[Size | None, str | None]:
    """The image's (width, height), or the reason it cannot be used."""
    if not path.is_file():
        return None, f"image file is missing: {relative(path, root)}"
    try:
        return header_size(path), None
    except Exception as exc:
        return None, f"image file cannot be read ({relative(path, root)}: {_short(exc)})"


def mask_problem(path: Path, image_size: Size, root: Path | None = None) -> str | None:
    """Why a mask file cannot label an image of ``image_size``, or None when it can."""
    if not path.is_file():
        return f"mask file is missing: {relative(path, root)}"
    try:
        size = header_size(path)
    except Exception as exc:
        return f"mask file cannot be read ({relative(path, root)}: {_short(exc)})"
    if size != tuple(image_size):
        return (
            f"mask is {size[0]}x{size[1]} pixels but the image is {image_size[0]}x{image_size[1]} "
            f"({relative(path, root)})"
        )
    return None


def box_of_mask(sample: Sample) -> tuple[Box | None, str | None]:
    """The tight box of the sample's mask as ``Sample.load_mask`` sees it, or why there is none."""
    try:
        mask = sample.load_mask()
    except Exception as exc:
        return None, f"mask cannot be read ({_short(exc)})"
    if mask is None:
        return None, "no mask"
    box = mask_box(mask)
    if box is None:
        return None, "mask is empty: no foreground pixel to segment"
    return box, None


def segmentation_item(
    *,
    dataset: str,
    sample_id: str,
    modality: str,
    image: Path,
    mask: ImageSource | None,
    mask_files: Sequence[Path],
    data_root: DataRoot,
    root: Path | None = None,
    meta: dict[str, Any] | None = None,
) -> Sample | Skipped:
    """A segmentation sample with its box prompt, or the reason the item is skipped.

    ``mask`` is what ``Sample.mask`` holds (a path, or a function for masks that need converting);
    ``mask_files`` are the files it is made from, whose header sizes must match the image. Every
    file must lie inside ``data_root``.
    """
    data_root.check(sample_id, image)
    for path in mask_files:
        data_root.check(sample_id, path, "mask")
    size, problem = image_problem(image, root)
    if problem:
        return Skipped(sample_id, problem)
    if not mask_files:
        return Skipped(sample_id, "no mask file for this image")
    for path in mask_files:
        problem = mask_problem(path, size, root)
        if problem:
            return Skipped(sample_id, problem)
    sample = Sample(sample_id, dataset, modality, image, mask=mask, meta=dict(meta or {}))
    box, problem = box_of_mask(sample)
    if problem:
        return Skipped(sample_id, problem)
    sample.box = box
    sample.meta.setdefault("image_size", list(size))
    return sample


def box_problem(box: Sequence[float], size: Size) -> tuple[Box | None, str | None]:
    """Clip a pixel box (x1, y1, x2, y2) to the image; say why it is unusable when it is."""
    if len(box) != 4 or not all(np.isfinite(v) for v in box):
        return None, f"box {list(box)} is not four finite numbers"
    x1, y1, x2, y2 = (float(v) for v in box)
    if x2 <= x1 or y2 <= y1:
        return None, f"box {[x1, y1, x2, y2]} is degenerate (zero or negative width or height)"
    width, height = size
    clipped = (max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height)))
    if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
        return None, f"box {[x1, y1, x2, y2]} lies outside the {width}x{height} image"
    return clipped, None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:200]
