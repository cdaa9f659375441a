"""Geometric corruptions of the natural family: rotation, scale and translation.

The MedFM-Robust paper lists them among its base corruptions; ImageNet-C has none (its sibling
ImageNet-P has rotate, scale and translate perturbation sequences). Tables here are ours:

- rotation: degrees about the image centre;
- scale: relative change of size, ``0.1`` meaning 10 % larger or 10 % smaller;
- translation: shift as a fraction of the image size.

The amounts are small because SSIM falls fast under any displacement: on the procedural
phantoms at 224 px the mean SSIM over modalities is about 0.85, 0.75, 0.64, 0.56, 0.51 for
rotation, and close to that for scale and translation, near the paper's bands (0.90-0.98 down
to 0.50-0.59). Textured images (speckle, nuclei) fall faster and smooth ones slower, so the
per-image SSIM calibration is the way to hit the bands exactly.

The rng picks the direction (sign of the angle, zoom in or out, heading of the shift), the
parameter only the amount, so one seed keeps one direction at every severity. Pixels that the
transform brings in from outside the field of view are black (the unit domain's 0, i.e. the
bottom of the value range, such as air in CT), as a scanner or viewer pads them.
Resampling is bilinear.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..spec import Corruption, corruption

FAMILY = "natural"
SOURCE = "MedFM-Robust base corruptions; Hendrycks & Dietterich 2019 (ImageNet-P perturbations)"


def _warp(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Move the image by a 2 x 3 affine matrix (source to output coordinates), black outside."""
    height, width = image.shape[:2]
    warped = cv2.warpAffine(
        image,
        matrix,
        (width, height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return warped.reshape(image.shape)


def _centre(image: np.ndarray) -> tuple[float, float]:
    height, width = image.shape[:2]
    return (width - 1) / 2.0, (height - 1) / 2.0


def _random_sign(rng: np.random.Generator) -> float:
    return 1.0 if rng.random() < 0.5 else -1.0


@corruption(
    "rotation",
    family=FAMILY,
    severity_params=[1.0, 2.0, 4.0, 7.0, 12.0],
    param_range=(0.0, 20.0),
    reference=SOURCE,
)
def rotation(image: np.ndarray, degrees: float, rng: np.random.Generator) -> np.ndarray:
    """In-plane rotation by ``degrees`` about the centre, clockwise or counter-clockwise.

    Models patient or specimen positioning that differs from the protocol's (a tilted head in
    MRI, a rotated slide or fundus camera), as in the rotation corruption of MedFM-Robust.
    """
    angle = _random_sign(rng) * float(degrees)
    return _warp(image, cv2.getRotationMatrix2D(_centre(image), angle, 1.0))


@corruption(
    "scale",
    family=FAMILY,
    severity_params=[0.015, 0.03, 0.05, 0.08, 0.12],
    param_range=(0.0, 0.3),
    reference=SOURCE,
)
def scale(image: np.ndarray, change: float, rng: np.random.Generator) -> np.ndarray:
    """Zoom about the centre: the image grows or shrinks by the relative ``change``.

    Models a different field of view, magnification or detector distance (zoom setting of an
    endoscope or dermatoscope, geometric magnification in radiography). Zooming in multiplies
    the size by ``1 + change``; zooming out divides it by ``1 + change`` and leaves a black
    frame, so both directions are equally strong in scale space.
    """
    factor = (1.0 + float(change)) ** _random_sign(rng)
    return _warp(image, cv2.getRotationMatrix2D(_centre(image), 0.0, factor))


@corruption(
    "translation",
    family=FAMILY,
    severity_params=[0.005, 0.01, 0.02, 0.04, 0.07],
    param_range=(0.0, 0.15),
    reference=SOURCE,
)
def translation(image: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Shift by ``fraction`` of the image size in a random direction, black where it uncovers.

    Models an off-centre acquisition: the region of interest placed away from the centre of
    the field of view, part of the anatomy cut off at one edge.
    """
    heading = rng.uniform(0.0, 2.0 * np.pi)
    height, width = image.shape[:2]
    shift_x = float(fraction) * width * np.cos(heading)
    shift_y = float(fraction) * height * np.sin(heading)
    matrix = np.array([[1.0, 0.0, shift_x], [0.0, 1.0, shift_y]])
    return _warp(image, matrix)


CORRUPTIONS: tuple[Corruption, ...] = (
    rotation,
    scale,
    translation,
)
