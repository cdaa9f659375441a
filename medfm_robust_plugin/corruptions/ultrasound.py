"""B-mode ultrasound corruptions (family 'ultrasound'): speckle, shadowing, reverberation, gain.

The image is a B-mode display: depth runs down the rows and each scan line leaves a virtual apex
above the top edge (far above for a linear array, just above for a sector or curved probe). Display
values are log-compressed echo amplitudes over ``DYNAMIC_RANGE_DB``, so a gain in dB is a shift.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..hookspecs import hookimpl
from .spec import Corruption, corruption

FAMILY = "ultrasound"
MODALITIES = ["ultrasound"]
SZABO = "Szabo, Diagnostic Ultrasound Imaging: Inside Out, 2nd ed. 2014"
DYNAMIC_RANGE_DB = 60.0  # displayed dynamic range of a B-mode image (typically 40-70 dB)
REFERENCE_SIZE = 256  # speckle grain and line widths are set for this many pixels across
MAX_REFLECTORS = 6


def speckle_amplitude(
    shape: tuple[int, int], rng: np.random.Generator, grain: tuple[float, float]
) -> np.ndarray:
    """Unit-mean Rayleigh speckle: the magnitude of a smoothed circular complex Gaussian field.

    Many random scatterers per resolution cell sum to a complex Gaussian echo whose envelope is
    Rayleigh distributed (Burckhardt 1978); smoothing by the resolution cell, ``grain`` = (axial,
    lateral) sigma in pixels at REFERENCE_SIZE, sets the size of the speckle grains.
    """
    h, w = shape
    scale = max(min(h, w) / REFERENCE_SIZE, 0.5)
    field = rng.standard_normal((2, h, w), dtype=np.float32)
    axial, lateral = grain[0] * scale, grain[1] * scale
    parts = [
        cv2.GaussianBlur(f, (0, 0), sigmaX=lateral, sigmaY=axial, borderType=cv2.BORDER_REFLECT)
        for f in field
    ]
    amplitude = np.hypot(parts[0], parts[1])
    return amplitude / amplitude.mean()


@dataclass(frozen=True)
class BeamGeometry:
    """Depth along each scan line and the line's angle, from a virtual apex above the image."""

    depth: np.ndarray  # distance from the apex, pixels
    angle: np.ndarray  # radians, 0 straight down
    apex_depth: float  # distance from the apex to the top row (the transducer face), pixels

    @classmethod
    def draw(cls, shape: tuple[int, int], rng: np.random.Generator) -> BeamGeometry:
        """A probe drawn at random: from a sector (apex just above) to a linear array (far above)."""
        h, w = shape
        apex_depth = float(np.exp(rng.uniform(np.log(0.1), np.log(4.0)))) * h
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
        dx, dy = xx - w / 2, yy + apex_depth
        return cls(np.hypot(dx, dy), np.arctan2(dx, dy), apex_depth)

    def point(self, row: float, column: float, width: int) -> tuple[float, float]:
        """(depth, angle) of the image point at ``row``, ``column``."""
        dx, dy = column - width / 2, row + self.apex_depth
        return float(np.hypot(dx, dy)), float(np.arctan2(dx, dy))


def scanned_region(echo: np.ndarray) -> np.ndarray:
    """1 inside the scanned field, 0 on the black surround of a sector or curved-array display."""
    h, w = echo.shape
    reach = max(3, round(min(h, w) / 40)) | 1
    lit = cv2.blur((echo > 1.0 / 255).astype(np.float32), (reach, reach))
    return (lit > 0.2).astype(np.float32)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    t = np.clip(x, 0.0, 1.0)
    return t * t * (3 - 2 * t)


@corruption(
    "ultrasound_speckle",
    family=FAMILY,
    modalities=MODALITIES,
    channels="gray",
    # Weight of the fully developed speckle pattern multiplying the echoes (1 = Rayleigh, SNR 1.91).
    severity_params=[0.4, 0.65, 0.95, 1.3, 1.9],
    param_range=(0.0, 3.0),
    reference="Burckhardt, Speckle in ultrasound B-mode scans, IEEE Trans. Sonics Ultrason. 1978; "
    + SZABO
    + " (speckle statistics)",
)
def ultrasound_speckle(image: np.ndarray, weight: float, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative speckle: echoes modulated by a Rayleigh-distributed interference pattern.

    Coherent summation of sub-resolution scatterers gives an envelope whose amplitude is the tissue
    echogenicity times a unit-mean Rayleigh variable (Burckhardt 1978; Szabo): zero stays zero
    and the fluctuation grows with the echo. ``weight`` blends from no speckle (0) to fully developed
    (1) and beyond; grains are longer laterally than axially, as the resolution cell is.
    """
    speckle = speckle_amplitude(image.shape[:2], rng, grain=(0.6, 1.3))
    factor = np.maximum(1.0 + weight * (speckle - 1.0), 0.0)
    return image * factor[..., None]


@corruption(
    "ultrasound_acoustic_shadowing",
    family=FAMILY,
    modalities=MODALITIES,
    channels="gray",
    # (fraction of the echo lost behind each reflector, number of reflectors such as ribs or stones)
    severity_params=[(0.55, 1.2), (0.7, 2.0), (0.85, 3.0), (0.95, 4.0), (1.0, 6.0)],
    param_range=((0.0, 1.0), (1.0, MAX_REFLECTORS)),
    reference=SZABO + " (reflection, attenuation, acoustic shadowing artifact)",
)
def ultrasound_acoustic_shadowing(
    image: np.ndarray, param: tuple[float, float], rng: np.random.Generator
):
    """Acoustic shadowing: dark bands along the beam below strongly reflecting or absorbing objects.

    A calculus, rib or gas pocket reflects or absorbs nearly all the pulse, so its surface echoes
    brightly and the scan lines behind it carry little energy: a dark band that follows the beam
    direction (vertical for a linear array, fanning out for a sector) starts below it (Szabo).
    Tissue above a reflector is untouched. ``param`` is (echo loss, how many of the drawn
    reflectors show; the last one fades in).
    """
    loss, count = param
    h, w = image.shape[:2]
    beam = BeamGeometry.draw((h, w), rng)
    reflectors = rng.uniform(0.0, 1.0, (MAX_REFLECTORS, 4))  # row, column, width, thickness
    weights = np.clip(count - np.arange(MAX_REFLECTORS), 0.0, 1.0)
    shadow = np.zeros((h, w), np.float32)
    surface = np.zeros((h, w), np.float32)
    shown: list[tuple[float, float]] = []
    for (row_u, col_u, width_u, thick_u), weight in zip(reflectors, weights, strict=True):
        if weight <= 0:
            continue
        row, column = (0.12 + 0.5 * row_u) * h, (0.1 + 0.8 * col_u) * w
        shown.append((float(row), float(column)))
        depth, angle = beam.point(row, column, w)
        half_angle = (0.04 + 0.08 * width_u) * w / depth  # half the reflector width, as an angle
        thickness = max((0.01 + 0.02 * thick_u) * h, 1.0)
        edge = max(0.25 * half_angle, 0.5 / depth)  # soft lateral edge, at least half a pixel
        across = _smoothstep((half_angle - np.abs(beam.angle - angle)) / edge)
        below = _smoothstep((beam.depth - depth) / thickness)  # zero at and above the surface
        inside_surface = (beam.depth > depth - thickness) & (beam.depth <= depth)
        shadow = np.maximum(shadow, weight * across * below)
        surface = np.maximum(surface, weight * across * inside_surface)
    echo = image[..., 0]
    bright_surface = 0.8 * surface * scanned_region(echo) * (1.0 - echo)
    out = echo * (1.0 - loss * shadow) + loss * bright_surface
    return out[..., None], {"reflectors_row_column": shown, "apex_depth_px": beam.apex_depth}


@corruption(
    "ultrasound_reverberation",
    family=FAMILY,
    modalities=MODALITIES,
    channels="gray",
    # (echo level of the first copy, 1 = full scale; lateral extent as a fraction of the field)
    severity_params=[(0.4, 0.5), (0.8, 0.8), (1.4, 1.0), (2.2, 1.2), (3.5, 1.4)],
    param_range=((0.0, 0.3), (5.0, 1.6)),
    reference=SZABO + " (multiple reflections: reverberation artifact)",
)
def ultrasound_reverberation(
    image: np.ndarray, param: tuple[float, float], rng: np.random.Generator
):
    """Reverberation: repeated, equally spaced parallel echoes of a strong near-field reflector.

    The pulse bounces between the transducer face and a strong specular interface (a fascia, a
    needle, the wall of a gas-filled structure) at depth d, so the interface appears again at
    2d, 3d, ... with decaying amplitude (Szabo). The copies follow the scan geometry (parallel
    for a linear array, concentric arcs for a sector), carry speckle like any echo and stay inside
    the scanned region. ``param`` is (echo level, lateral extent).
    """
    level, extent = param
    h, w = image.shape[:2]
    beam = BeamGeometry.draw((h, w), rng)
    spacing = rng.uniform(0.07, 0.16) * h  # depth d of the interface below the transducer face
    decay = rng.uniform(0.65, 0.85)
    centre = rng.uniform(-0.2, 0.2)  # lateral position of the interface, fraction of the field
    thickness = max(rng.uniform(0.006, 0.015) * h, 0.7)
    speckle = speckle_amplitude((h, w), rng, grain=(0.6, 1.3))
    field_angle = w / 2 / (beam.apex_depth + h / 2)  # half the field of view, as an angle
    half_angle = extent * field_angle
    offside = np.abs(beam.angle - centre * field_angle)
    across = _smoothstep((half_angle - offside) / (0.3 * half_angle + 1e-6))
    # Each pixel sees its nearest copy k (copies are much thinner than their spacing).
    depth_below_face = beam.depth - beam.apex_depth
    order = np.maximum(np.rint(depth_below_face / spacing), 1.0)
    offset = (depth_below_face - order * spacing) / thickness
    echoes = decay ** (order - 1) * np.exp(-0.5 * offset**2)
    echo = image[..., 0]
    pattern = np.minimum(level * echoes * speckle, 1.0) * across * scanned_region(echo)
    out = echo + pattern * (1.0 - echo)
    return out[..., None], {"spacing_px": spacing, "decay": decay}


@corruption(
    "ultrasound_gain_attenuation",
    family=FAMILY,
    modalities=MODALITIES,
    channels="gray",
    # Gain deficit at the deepest row, dB: TGC set for 0.3 instead of 0.5 dB/cm/MHz loses
    # 0.2 x 2 ways x 5 MHz x 6 cm = 12 dB at 6 cm depth.
    severity_params=[4.0, 8.0, 12.0, 17.0, 23.0],
    param_range=(0.0, 40.0),
    reference=SZABO + " (attenuation; time-gain compensation)",
)
def ultrasound_gain_attenuation(image: np.ndarray, loss_db: float, rng: np.random.Generator):
    """Time-gain compensation mismatch: echoes lose more gain the deeper they come from.

    Tissue attenuates the pulse by about 0.5 dB/cm/MHz each way; TGC set for a less attenuating
    body leaves a gain deficit that grows with depth (Szabo). On the log-compressed
    display a loss of L dB lowers the grey level by L / DYNAMIC_RANGE_DB, so the far field sinks
    into black. The deficit is ``loss_db`` at the bottom row, along a curve drawn per image.
    """
    h = image.shape[0]
    exponent = rng.uniform(0.8, 1.6)  # how the deficit builds up with depth (TGC slider profile)
    depth = (np.arange(h, dtype=np.float32) + 0.5) / h
    shift = loss_db * depth**exponent / DYNAMIC_RANGE_DB
    out = np.maximum(image - shift[:, None, None], 0.0)
    return out, {"depth_exponent": exponent}


ULTRASOUND_CORRUPTIONS: list[Corruption] = [
    ultrasound_speckle,
    ultrasound_acoustic_shadowing,
    ultrasound_reverberation,
    ultrasound_gain_attenuation,
]


@hookimpl
def register_corruptions(register):
    for item in ULTRASOUND_CORRUPTIONS:
        register(item)
