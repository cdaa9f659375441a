"""Images as the API models send them: RGB uint8, encoded as lossless PNG."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import ImageInput, ModelError


def as_rgb_uint8(image: ImageInput) -> np.ndarray:
    """An H x W x 3 uint8 array from a PIL image or a uint8 array (gray is repeated, alpha dropped)."""
    if hasattr(image, "convert") and hasattr(image, "size"):  # PIL, without importing it
        return np.asarray(image.convert("RGB"))
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ModelError(
            f"API models take uint8 images (H x W x 3, 0-255); got dtype {array.dtype}. "
            "Convert with medfm_robust_plugin.image before calling the model."
        )
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4) or min(array.shape[:2]) < 1:
        raise ModelError(f"API models take H x W x 3 images; got shape {array.shape}")
    if array.shape[2] == 1:
        return np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array[..., :3])


def encode_png(image: ImageInput) -> bytes:
    """Lossless PNG bytes of an RGB image (what the APIs receive and what the cache key hashes)."""
    import cv2

    rgb = as_rgb_uint8(image)
    ok, buffer = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise ModelError(f"could not PNG-encode an image of shape {rgb.shape}")
    return buffer.tobytes()


def image_list(images: Any) -> list[ImageInput]:
    """The images of an item: a sequence of images, or one image given alone."""
    if isinstance(images, np.ndarray) or hasattr(images, "convert"):
        return [images]
    return list(images)


def image_size(image: ImageInput) -> tuple[int, int]:
    """(width, height) without encoding anything."""
    if hasattr(image, "size") and not isinstance(image, np.ndarray):
        width, height = image.size
        return int(width), int(height)
    shape = np.shape(image)
    return int(shape[1]), int(shape[0])
