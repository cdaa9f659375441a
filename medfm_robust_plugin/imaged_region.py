"""The imaged region of a frame: where the acquisition put anatomy, over which SSIM is averaged.

Many medical frames are partly something else: the black surround of a fundus camera's round
aperture, the banners, scales and black corners around an ultrasound scan, the air around a
patient in a CT slice, the dark frame of an endoscope's image circle. No corruption of the
acquisition changes those pixels (the corruptions of these modalities leave them byte-identical),
so SSIM averaged over the whole frame cannot fall below the share they take: an ultrasound frame
that is 44% scan stops near 0.7 whatever happens inside the scan, a head CT that is 65% air in
its window near 0.75. A severity level would then mean different damage on two frames of one
study. SSIM is therefore averaged over the windows centred in the imaged region, found on the
clean image, with the whole-frame mean recorded beside it:

- ultrasound: the scanned region (sector or linear) that ``ultrasound.detect_scan`` finds;
- colour fundus: the camera aperture (``fundus.field_of_view``);
- endoscopy: the scope's image circle (``endoscopy.field_of_view``);
- CT: the patient (``ct.body_mask``: above -500 HU, or enclosed by it: lungs, sinuses);
- X-ray: the collimated field, between the white bands that the collimator's blades leave
  unexposed at the frame's sides (``xray.collimated_field``).

Other modalities, images whose region covers (almost) the whole frame or too little of it to be
trusted, and bare arrays without a modality are measured over the whole frame. A plugin gives its
own modality a region through the ``register_imaged_regions`` hook (a ``RegionFinder``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import image as img
from .hookspecs import hookimpl

# A region outside these shares of the frame is not used: above, it is the frame; below, the
# detection more likely found a fragment than the image.
MIN_SHARE = 0.05
MAX_SHARE = 0.98


@dataclass(frozen=True, eq=False)
class ImagedRegion:
    """Pixels of a frame (bool H x W) that show the acquisition, and what they are."""

    mask: np.ndarray
    kind: str

    @property
    def share(self) -> float:
        return float(self.mask.mean())

    def as_record(self) -> dict[str, Any]:
        return {"kind": self.kind, "share": round(self.share, 4)}


def _unit_gray(body: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    _, _, layout = img.split(body, window)
    gray, _ = img.adapt_channels(img.to_unit(body, layout), "gray")
    return np.ascontiguousarray(gray[..., 0])


def _unit_rgb(body: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    _, _, layout = img.split(body, window)
    rgb, _ = img.adapt_channels(img.to_unit(body, layout), "rgb")
    return np.ascontiguousarray(rgb)


def _ultrasound(body: np.ndarray, context: Any) -> np.ndarray | None:
    from .corruptions.ultrasound import detect_scan

    scan = detect_scan(_unit_gray(body, context.window))
    return scan.region if scan.found else None


def _fundus(body: np.ndarray, context: Any) -> np.ndarray:
    from .corruptions.fundus import field_of_view

    return field_of_view(_unit_rgb(body, context.window)) > 0.5


def _endoscopy(body: np.ndarray, context: Any) -> np.ndarray:
    from .corruptions.endoscopy import field_of_view

    return field_of_view(_unit_rgb(body, context.window)) > 0.5


def _ct(body: np.ndarray, context: Any) -> np.ndarray:
    from .corruptions.ct import body_mask, slice_hu

    gray, _ = img.adapt_channels(img.to_physical(body), "gray")
    return body_mask(slice_hu(gray, context))


def _xray(body: np.ndarray, context: Any) -> np.ndarray | None:
    from .corruptions.xray import collimated_field

    return collimated_field(_unit_gray(body, context.window))


@dataclass(frozen=True)
class RegionFinder:
    """How to find a modality's imaged region: ``find(body, context)`` takes the clean image's
    values (H x W x C, the caller's units, alpha removed) and its ``ImageContext`` and returns a
    bool H x W mask, or None for the whole frame. ``name`` is the modality key, ``kind`` what the
    region is (recorded with every SSIM: "scanned region", "body")."""

    name: str
    kind: str
    find: Callable[[np.ndarray, Any], np.ndarray | None]


BUILTIN_FINDERS: tuple[RegionFinder, ...] = (
    RegionFinder("ultrasound", "scanned region", _ultrasound),
    RegionFinder("fundus", "camera aperture", _fundus),
    RegionFinder("endoscopy", "image circle", _endoscopy),
    RegionFinder("ct", "body", _ct),
    RegionFinder("xray", "collimated field", _xray),
)


@hookimpl
def register_imaged_regions(register: Callable[..., Any]) -> None:
    for finder in BUILTIN_FINDERS:
        register(finder)


def region_finder(modality: str | None) -> RegionFinder | None:
    """The finder registered for ``modality`` (None: measured over the whole frame)."""
    if not modality:
        return None
    from .plugins import get_registry

    try:
        return get_registry().get("regions", modality)
    except KeyError:
        return None


def imaged_region(array: np.ndarray, context: Any) -> ImagedRegion | None:
    """The imaged region of a clean image with its ``ImageContext``; None: the whole frame."""
    finder = region_finder(getattr(context, "modality", None))
    if finder is None or context.window is None:
        return None
    body, _, _ = img.split(array, context.window)
    mask = finder.find(body, context)
    if mask is None:
        return None
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != body.shape[:2]:
        from .errors import PluginError

        raise PluginError(
            f"the imaged region of modality '{finder.name}' ({finder.kind}) came back with shape "
            f"{mask.shape} for an image of {body.shape[0]} x {body.shape[1]} pixels"
        )
    if not MIN_SHARE <= float(mask.mean()) <= MAX_SHARE:
        return None
    return ImagedRegion(mask, finder.kind)
