"""Labelled preview grids: one row per corruption, the clean image then severities 1-5."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .corruptions.spec import Corruption
from .engine import corrupt, sample_seed
from .errors import MedFMRobustError

LABEL_HEIGHT = 18
MIN_LABEL_WIDTH = 120
BACKGROUND = (250, 250, 250)
TILE_RANGE = (16, 1024)  # thumbnail sizes in pixels: readable, and a grid that fits in memory


class PreviewError(MedFMRobustError, ValueError):
    """A preview that cannot be drawn as asked (tile size, file type, modality, image size)."""


def known_modalities() -> list[str]:
    """The modality keys: the benchmark's, those of registered suites and corruptions, 'other'."""
    from .modalities import MODALITIES
    from .plugins import get_registry

    registry = get_registry()
    found = set(MODALITIES) | {"other"}
    found |= {s.modality for s in registry.items["suites"].values() if s.modality}
    for item in registry.items["corruptions"].values():
        found |= set(item.modalities)
    return sorted(found)


def check_modality(modality: str | None) -> None:
    """Refuse a modality no suite, corruption or benchmark key knows (a typo would pass silently)."""
    if modality is None:
        return
    known = known_modalities()
    if modality not in known:
        import difflib

        close = difflib.get_close_matches(modality, known, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise PreviewError(
            f"unknown modality '{modality}'; {hint}known modalities: {', '.join(known)}"
        )


def check_tile(tile: int) -> None:
    low, high = TILE_RANGE
    if not low <= tile <= high:
        raise PreviewError(f"tile {tile}: a thumbnail is {low} to {high} pixels wide")


def check_output(path: str | Path) -> None:
    """Refuse a file name whose extension no image writer knows, before anything is drawn."""
    from PIL import Image

    Image.init()
    suffix = Path(path).suffix.lower()
    fmt = Image.registered_extensions().get(suffix)
    if fmt is None or fmt not in Image.SAVE:
        raise PreviewError(
            f"'{path}': cannot write a '{suffix or 'extensionless'}' file; "
            "name it .png, .jpg, .webp, .tif or .pdf"
        )


def display_uint8(image: np.ndarray, window: tuple[float, float] | None = None) -> np.ndarray:
    """An 8-bit RGB rendering of any image (HU, 16-bit, float) for looking at, not for measuring."""
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]
    if image.dtype == np.uint8 and window is None:
        out = image
    else:
        lo, hi = window if window is not None else (float(image.min()), float(image.max()))
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        out = np.clip((image.astype(np.float32) - lo) * scale, 0, 255).astype(np.uint8)
    if out.ndim == 2:
        out = out[..., None]
    if out.shape[2] == 1:
        out = np.repeat(out, 3, axis=2)
    return out


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one fixed-size bitmap font
        return ImageFont.load_default()


def preview_grid(
    image: Any,
    corruptions: Sequence[Corruption | str],
    severities: Sequence[int] = (1, 2, 3, 4, 5),
    seed: int = 0,
    tile: int = 128,
    title: str | None = None,
    mode: str = "table",
    modality: str | None = None,
) -> Any:
    """A PIL image: the clean image and each corruption at each severity, labelled.

    ``image`` is an array or a ``MedicalImage``; every tile is shown through the clean image's
    presentation (``presentation``), as a model would see it.
    """
    import cv2
    from PIL import Image, ImageDraw

    from .engine import image_context
    from .ssim import WIN

    check_tile(tile)
    check_modality(modality)
    image, _, context, presentation = image_context(image, "preview", modality=modality)
    if mode == "ssim" and min(image.shape[:2]) < WIN:
        raise PreviewError(
            f"SSIM severities need an image of at least {WIN} x {WIN} pixels, this one is "
            f"{image.shape[0]} x {image.shape[1]}; use mode='table'"
        )
    cols = 1 + len(severities)
    title_h = 26 if title else 0
    font, small = _font(14), _font(12)
    names = [item if isinstance(item, str) else item.name for item in corruptions]
    label_width = max([MIN_LABEL_WIDTH, *(int(font.getlength(n)) + 16 for n in names)])
    width = label_width + cols * (tile + 4)
    if title:  # the title is read whole, however narrow the grid
        width = max(width, int(font.getlength(title)) + 16)
    height = title_h + LABEL_HEIGHT + len(corruptions) * (tile + 4)
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((8, 5), title, fill=(20, 20, 20), font=font)
    for c, label in enumerate(["clean", *[f"severity {s}" for s in severities]]):
        draw.text(
            (label_width + c * (tile + 4) + 4, title_h + 2),
            label,
            fill=(60, 60, 60),
            font=small,
        )

    def thumb(array: np.ndarray) -> Any:
        rgb = display_uint8(presentation.to_uint8(array))
        return Image.fromarray(cv2.resize(rgb, (tile, tile), interpolation=cv2.INTER_AREA))

    clean = thumb(image)
    for r, item in enumerate(corruptions):
        name = item if isinstance(item, str) else item.name
        y = title_h + LABEL_HEIGHT + r * (tile + 4)
        draw.text((6, y + tile // 2 - 8), name, fill=(20, 20, 20), font=font)
        canvas.paste(clean, (label_width, y))
        for c, severity in enumerate(severities, start=1):
            s = sample_seed(seed, "preview", "image", name, severity if mode == "table" else "ssim")
            out = corrupt(
                image,
                item,
                severity=severity,
                seed=s,
                mode=mode,
                modality=context.modality,
                window=presentation.window,
                pixel_spacing=context.pixel_spacing,
                units=context.units,
            )
            canvas.paste(thumb(out), (label_width + c * (tile + 4), y))
    return canvas


def save_preview(path: str | Path, *args: Any, **kwargs: Any) -> Path:
    """Draw ``preview_grid(*args, **kwargs)`` into ``path`` (its extension picks the format)."""
    check_output(path)
    path = Path(path)
    grid = preview_grid(*args, **kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)
    return path
