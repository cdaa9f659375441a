"""B-mode ultrasound corruptions (family 'ultrasound'): speckle, shadowing, reverberation, gain.

A B-mode frame shows echoes inside the scanned region - a fan whose scan lines run radially from an
apex (phased or curved array) or a rectangle with vertical scan lines (linear array) - framed by
annotations: patient banner, probe and gain settings, depth scale, calipers. ``detect_scan`` finds
the region and its geometry in the image itself; every corruption acts inside it, along its scan
lines, and leaves each pixel outside it as it was. Display values are log-compressed echo
amplitudes over ``DYNAMIC_RANGE_DB``, so a gain in dB is a shift and speckle adds in dB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from .registering import registers
from .spec import Corruption, corruption

FAMILY = "ultrasound"
MODALITIES = ["ultrasound"]
SZABO = "Szabo, Diagnostic Ultrasound Imaging: Inside Out, 2nd ed. 2014"
DYNAMIC_RANGE_DB = 60.0  # displayed dynamic range of a B-mode image (typically 40-70 dB)
REFERENCE_SIZE = 256  # speckle grain and line widths are set for this many pixels across
MAX_REFLECTORS = 6
MAX_SHADOW_WIDTH = 4.0  # widest reflector: 16-48 % of the field (a rib close to the probe, gas)
# Standard deviation of 20 log10 of a Rayleigh amplitude: (20 / ln 10) * pi / sqrt(24) dB, whatever
# the mean echo (Burckhardt 1978; Wagner et al. 1983): log compression turns speckle additive.
RAYLEIGH_LOG_STD_DB = 20.0 / math.log(10.0) * math.pi / math.sqrt(24.0)
ECHO_FLOOR = 2.0 / 255.0  # display values at or below this are black: no echo above the floor
TEXTURE_WINDOW = 5  # pixels across the window in which speckle shows its spread
TEXTURE_LEVEL = 0.4 / 255.0  # echoes differ from their neighbours by more than this on average
DETECTION_SIZE = 192  # the scanned region is found on a copy this many pixels across (short side)
MIN_REGION_FRACTION = 0.02  # the scanned region's largest part covers at least this of the frame
MIN_PART_FRACTION = 0.05  # its other parts are at least this fraction of the largest
MIN_SECTOR_DEG = 5.0  # side edges converging by less than this are a linear array's
MAX_EDGE_TILT_DEG = 60.0  # a side edge of the region is at most this far from vertical
GRAPHIC_LEVEL = 0.5  # overlays (text, markers) are drawn at least this bright ...
GRAPHIC_MAX_EXTENT = 0.3  # ... no larger than this fraction of the frame, with black around them
GRAPHIC_SURROUND = ECHO_FLOOR  # around an overlay: black (echoes bring speckle around them)


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


def log_speckle_db(
    shape: tuple[int, int], rng: np.random.Generator, grain: tuple[float, float]
) -> np.ndarray:
    """Zero-mean log-compressed Rayleigh speckle in dB, scaled to a standard deviation of 1 dB.

    The B-mode display shows 20 log10 of the envelope, so a Rayleigh speckle factor becomes an
    added term whose spread (5.6 dB when fully developed) is the same in bright and dark tissue;
    its long tail towards dark values is the speckle's black holes.
    """
    amplitude = speckle_amplitude(shape, rng, grain)
    level = 20.0 * np.log10(np.maximum(amplitude, 1e-6))
    level -= level.mean()
    return level / max(float(level.std()), 1e-6)


# --------------------------------------------------------------------------- scan geometry


@dataclass(frozen=True)
class ScanGeometry:
    """Where the echoes are and how the scan lines run.

    ``kind`` is ``"sector"`` (scan lines radial from ``apex``, given as (row, column) in pixel
    coordinates whose pixel centres are at +0.5) or ``"linear"`` (vertical scan lines). ``depth``
    is the distance along the scan line - from the apex for a sector, from the top edge for a
    linear array - and ``lateral`` says which scan line: its angle in radians (0 straight down,
    positive towards higher columns) for a sector, its column for a linear array. ``found`` is
    False when no scanned region was seen and the whole frame stands for it.
    """

    kind: str
    region: np.ndarray  # bool H x W
    depth: np.ndarray  # float32 H x W, pixels
    lateral: np.ndarray  # float32 H x W, radians (sector) or pixels (linear)
    depth_range: tuple[float, float]  # transducer face to the deepest echo
    lateral_range: tuple[float, float]  # first to last scan line
    apex: tuple[float, float] | None
    found: bool

    @property
    def depth_span(self) -> float:
        return max(self.depth_range[1] - self.depth_range[0], 1.0)

    @property
    def lateral_span(self) -> float:
        return max(self.lateral_range[1] - self.lateral_range[0], 1e-6)

    def depth_fraction(self) -> np.ndarray:
        """0 at the transducer face, 1 at the deepest echo, along each scan line."""
        return np.clip((self.depth - self.depth_range[0]) / self.depth_span, 0.0, 1.0)

    def one_pixel(self, depth: float) -> float:
        """One pixel across the scan lines at ``depth``, in lateral units."""
        return 1.0 / max(depth, 1.0) if self.kind == "sector" else 1.0

    def record(self) -> dict[str, Any]:
        """The geometry as found, for the replay record."""
        out: dict[str, Any] = {"kind": self.kind, "found": self.found}
        if self.kind == "sector":
            assert self.apex is not None
            out["apex_row_column"] = [round(self.apex[0], 1), round(self.apex[1], 1)]
            out["angles_deg"] = [round(math.degrees(a), 2) for a in self.lateral_range]
            out["radii_px"] = [round(r, 1) for r in self.depth_range]
        else:
            out["rows"] = [round(r, 1) for r in self.depth_range]
            out["columns"] = [round(c, 1) for c in self.lateral_range]
        out["region_fraction"] = round(float(self.region.mean()), 4)
        return out


def _linear(shape: tuple[int, int], rows: tuple[int, int], cols: tuple[int, int], found: bool):
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    region = np.zeros((h, w), bool)
    region[rows[0] : rows[1], cols[0] : cols[1]] = True
    return ScanGeometry(
        "linear",
        region,
        yy,
        xx,
        (float(rows[0]), float(rows[1])),
        (float(cols[0]), float(cols[1])),
        None,
        found,
    )


def _side_edges(hull: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The longest steep edge of the hull on its left and on its right, each pointing down."""
    polygon = cv2.approxPolyDP(hull.astype(np.float32), 1.0, True).reshape(-1, 2)
    centre_x = float(polygon[:, 0].mean())
    best: dict[str, tuple[float, np.ndarray | None]] = {"left": (0.0, None), "right": (0.0, None)}
    steep = math.tan(math.radians(MAX_EDGE_TILT_DEG))
    for a, b in zip(polygon, np.roll(polygon, -1, axis=0), strict=True):
        top, bottom = (a, b) if a[1] <= b[1] else (b, a)
        dx, dy = float(bottom[0] - top[0]), float(bottom[1] - top[1])
        if dy <= 0 or abs(dx) > steep * dy:
            continue
        side = "left" if (top[0] + bottom[0]) / 2 < centre_x else "right"
        length = math.hypot(dx, dy)
        if length > best[side][0]:
            best[side] = (length, np.stack([top, bottom]).astype(np.float64))
    return best["left"][1], best["right"][1]


def _graphics(echo: np.ndarray) -> np.ndarray:
    """Overlays drawn onto the frame: small bright marks (text, markers) with black around them.

    Echoes come with speckle around them; a bright glyph or marker sits on black. Each bright
    blob, grown by a few pixels, is an overlay when most of the ring it grew into is black.
    """
    h, w = echo.shape
    bright = (echo >= GRAPHIC_LEVEL).astype(np.uint8)
    if not bright.any():
        return np.zeros((h, w), bool)
    reach = max(2, round(min(h, w) / 250))
    grown = cv2.dilate(bright, cv2.getStructuringElement(cv2.MORPH_RECT, (2 * reach + 1,) * 2))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
    ring = (grown > 0) & (bright == 0)
    ring_size = np.bincount(labels[ring], minlength=count)
    ring_black = np.bincount(labels[ring & (echo <= GRAPHIC_SURROUND)], minlength=count)
    small = (stats[:, cv2.CC_STAT_WIDTH] <= GRAPHIC_MAX_EXTENT * w) & (
        stats[:, cv2.CC_STAT_HEIGHT] <= GRAPHIC_MAX_EXTENT * h
    )
    overlay = small & (ring_black >= 0.75 * np.maximum(ring_size, 1))
    overlay[0] = False
    return overlay[labels]


def detect_scan(echo: np.ndarray) -> ScanGeometry:
    """Find the scanned region of a B-mode frame (H x W, display values in [0, 1]) and its geometry.

    The region is the hull of the large textured parts of the frame: pixels above the display
    floor whose neighbourhood varies (speckle; flat banners and bars do not) are marked on a copy
    about DETECTION_SIZE pixels across and joined (closing), then text, scales and
    thin lines are removed (opening wider than a line of text), and the largest part (at least
    MIN_REGION_FRACTION of the frame) is kept with the parts of comparable size. The hull's two longest steep side edges are the
    outermost scan lines: converging downwards, they meet at the sector's apex (the centre of
    curvature of a curved array); parallel, they bound a linear array's rectangle. Small bright
    overlays with black around them (text, markers inside the fan) are left out of the region.
    Nothing found: the whole frame, with ``found=False``.
    """
    h, w = echo.shape
    factor = max(1.0, min(h, w) / DETECTION_SIZE)
    sh, sw = max(1, round(h / factor)), max(1, round(w / factor))
    sy, sx = h / sh, w / sw
    # Echoes are textured (speckle): each pixel differs from its neighbours. Banners, scale bars
    # and grey-level ramps do not, whatever their grey level; overlays drawn on black are left out.
    overlays = _graphics(echo)
    window = (TEXTURE_WINDOW, TEXTURE_WINDOW)
    detail = cv2.blur(np.abs(echo - cv2.blur(echo, (3, 3))), window)
    textured = (cv2.blur(echo, window) > ECHO_FLOOR) & (detail > TEXTURE_LEVEL) & ~overlays
    textured = textured.astype(np.float32)
    if factor > 1:
        textured = cv2.resize(textured, (sw, sh), interpolation=cv2.INTER_AREA)
    lit = (textured > 0.5).astype(np.uint8)
    lit = cv2.morphologyEx(lit, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3)))
    width = max(3, round(min(sh, sw) / 28)) | 1  # wider than a line of text or a scale bar
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width, width))
    solid = cv2.morphologyEx(lit, cv2.MORPH_OPEN, kernel)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(solid, connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    if count < 2 or areas.max() < MIN_REGION_FRACTION * sh * sw:
        return _linear((h, w), (0, h), (0, w), found=False)
    # A fan can show as separate parts (the near field and a far-field band with black between).
    parts = 1 + np.flatnonzero(areas >= MIN_PART_FRACTION * areas.max())
    rows, cols = np.nonzero(np.isin(labels, parts))
    hull = cv2.convexHull(np.column_stack([cols, rows]).astype(np.int32)).reshape(-1, 2)
    left, right = _side_edges(hull)
    top, bottom = int(rows.min()), int(rows.max()) + 1
    if left is not None and right is not None:
        tilt_left = math.atan2(left[1, 0] - left[0, 0], left[1, 1] - left[0, 1])
        tilt_right = math.atan2(right[1, 0] - right[0, 0], right[1, 1] - right[0, 1])
        if math.degrees(tilt_right - tilt_left) >= MIN_SECTOR_DEG:
            sector = _sector((h, w), left, right, rows, cols, (sy, sx))
            if sector is not None and sector.region.any():
                return _without(sector, overlays)
    # A linear array's side edges: where most rows of the kept parts begin and end (a logo
    # touching the rectangle moves a few rows only).
    firsts = np.full(sh, sw, np.int64)
    lasts = np.full(sh, -1, np.int64)
    np.minimum.at(firsts, rows, cols)
    np.maximum.at(lasts, rows, cols)
    seen = lasts >= 0
    columns = (float(np.median(firsts[seen])), float(np.median(lasts[seen])) + 1)
    linear = _linear(
        (h, w),
        (round(top * sy), round(bottom * sy)),
        (round(columns[0] * sx), round(columns[1] * sx)),
        found=True,
    )
    return _without(linear, overlays)


def _sector(
    shape: tuple[int, int],
    left: np.ndarray,
    right: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    scale: tuple[float, float],
) -> ScanGeometry | None:
    """The fan between two side edges (on the detection copy) and the lit pixels' radii."""
    sy, sx = scale
    # Pixel centres of the detection copy, in full-size coordinates.
    ends = [np.column_stack([(e[:, 0] + 0.5) * sx, (e[:, 1] + 0.5) * sy]) for e in (left, right)]
    (x1, y1), (x2, y2) = ends[0]
    (x3, y3), (x4, y4) = ends[1]
    denominator = (x1 - x2) * (y3 - y4) - (y1 - y2) * (x3 - x4)
    if abs(denominator) < 1e-9:
        return None
    t = ((x1 - x3) * (y3 - y4) - (y1 - y3) * (x3 - x4)) / denominator
    apex_x, apex_y = x1 + t * (x2 - x1), y1 + t * (y2 - y1)
    if apex_y > (rows.min() + 1) * sy:  # the apex lies at or above the top of the fan
        return None
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    depth = np.hypot(xx - apex_x, yy - apex_y)
    angle = np.arctan2(xx - apex_x, yy - apex_y)
    lit_radii = np.hypot((cols + 0.5) * sx - apex_x, (rows + 0.5) * sy - apex_y)
    half_pixel = 0.5 * max(sx, sy)
    radii = (float(lit_radii.min()) - half_pixel, float(lit_radii.max()) + half_pixel)
    angles = (
        math.atan2(x2 - apex_x, y2 - apex_y),
        math.atan2(x4 - apex_x, y4 - apex_y),
    )
    region = (angle >= angles[0]) & (angle <= angles[1]) & (depth >= radii[0]) & (depth <= radii[1])
    return ScanGeometry(
        "sector", region, depth, angle, radii, angles, (float(apex_y), float(apex_x)), True
    )


def _without(geometry: ScanGeometry, overlays: np.ndarray) -> ScanGeometry:
    if not overlays.any():
        return geometry
    return ScanGeometry(
        geometry.kind,
        geometry.region & ~overlays,
        geometry.depth,
        geometry.lateral,
        geometry.depth_range,
        geometry.lateral_range,
        geometry.apex,
        geometry.found,
    )


def _smoothstep(x: np.ndarray) -> np.ndarray:
    t = np.clip(x, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _inside(geometry: ScanGeometry, corrupted: np.ndarray, echo: np.ndarray) -> np.ndarray:
    """The corrupted echoes inside the scanned region, the frame's own pixels outside it."""
    return np.where(geometry.region, corrupted, echo).astype(np.float32)[..., None]


# --------------------------------------------------------------------------- corruptions


@corruption(
    "ultrasound_speckle",
    family=FAMILY,
    modalities=MODALITIES,
    channels="gray",
    # (spread of the added log-compressed speckle, dB; grain size relative to the resolution cell).
    # Fully developed speckle alone spreads 5.6 dB; with few scatterers per resolution cell it is
    # K-distributed, with a longer dark tail and a larger log spread (Jakeman & Pusey 1976;
    # Shankar 2001). The grain grows with the wavelength: a 2.5 MHz phased array's resolution cell
    # is ~3.5 times a 9 MHz linear array's, the end of the range.
    severity_params=[(2.0, 1.0), (3.0, 1.15), (4.5, 1.3), (6.5, 1.5), (9.0, 1.8)],
    param_range=((0.0, 1.0), (16.0, 3.5)),
    reference="Burckhardt, Speckle in ultrasound B-mode scans, IEEE Trans. Sonics Ultrason. 1978; "
    "Wagner et al., Statistics of speckle in ultrasound B-scans, IEEE Trans. Sonics Ultrason. "
    "1983; " + SZABO + " (speckle statistics, log compression)",
)
def ultrasound_speckle(image: np.ndarray, param: tuple[float, float], rng: np.random.Generator):
    """Extra speckle: log-compressed Rayleigh interference added in the display's dB domain.

    Coherent summation of sub-resolution scatterers multiplies the echo amplitude by a Rayleigh
    variable (Burckhardt 1978); the B-mode display shows the amplitude in dB, so the speckle is an
    added term whose spread does not depend on the echo level (5.6 dB when fully developed,
    Wagner et al. 1983). ``param`` is (spread in dB, grain size): coarser grains are a larger
    resolution cell. Black stays black (nothing above the display floor to speckle); only the
    detected scanned region changes.
    """
    spread_db, grain = param
    echo = image[..., 0]
    geometry = detect_scan(echo)
    noise_db = spread_db * log_speckle_db(echo.shape, rng, grain=(0.6 * grain, 1.3 * grain))
    above_floor = np.clip(echo / ECHO_FLOOR - 1.0, 0.0, 1.0)  # fades in over the floor's grey level
    out = echo + above_floor * noise_db / DYNAMIC_RANGE_DB
    return _inside(geometry, out, echo), {"scan": geometry.record()}


@corruption(
    "ultrasound_acoustic_shadowing",
    family=FAMILY,
    modalities=MODALITIES,
    channels="gray",
    # (fraction of the echo lost behind each reflector, number of reflectors such as ribs or
    # stones, their width relative to a small stone's). Strong levels are wide reflectors: ribs
    # 1-2 cm wide across an intercostal view, a gas-filled bowel loop that blanks most of the
    # field behind it.
    severity_params=[
        (0.55, 1.2, 1.0),
        (0.7, 2.0, 1.0),
        (0.85, 3.0, 1.3),
        (0.95, 4.0, 1.7),
        (1.0, 6.0, 2.2),
    ],
    param_range=((0.0, 1.0, 1.0), (1.0, MAX_REFLECTORS, MAX_SHADOW_WIDTH)),
    reference=SZABO + " (reflection, attenuation, acoustic shadowing artifact)",
)
def ultrasound_acoustic_shadowing(
    image: np.ndarray, param: tuple[float, float, float], rng: np.random.Generator
):
    """Acoustic shadowing: dark bands along the scan lines below strongly reflecting objects.

    A calculus, rib or gas pocket reflects or absorbs nearly all the pulse, so its surface echoes
    brightly and the scan lines behind it carry little energy: a dark band that follows the scan
    lines of the detected geometry (vertical for a linear array, radial from the apex for a
    sector) starts below it (Szabo). Tissue above a reflector is untouched. ``param`` is (echo
    loss, how many of the drawn reflectors show, the last one fading in; how much wider than a
    small stone they are: 4-12 % of the field at 1).
    """
    loss, count, width = param
    echo = image[..., 0]
    scan = detect_scan(echo)
    reflectors = rng.uniform(0.0, 1.0, (MAX_REFLECTORS, 4))  # depth, scan line, width, thickness
    weights = np.clip(count - np.arange(MAX_REFLECTORS), 0.0, 1.0)
    shadow = np.zeros(echo.shape, np.float32)
    surface = np.zeros(echo.shape, np.float32)
    shown: list[dict[str, float]] = []
    for (depth_u, line_u, width_u, thick_u), weight in zip(reflectors, weights, strict=True):
        if weight <= 0:
            continue
        depth = scan.depth_range[0] + (0.12 + 0.5 * depth_u) * scan.depth_span
        line = scan.lateral_range[0] + (0.1 + 0.8 * line_u) * scan.lateral_span
        half_width = width * (0.04 + 0.08 * width_u) * scan.lateral_span / 2  # scan-line units
        thickness = max((0.01 + 0.02 * thick_u) * scan.depth_span, 1.0)
        edge = max(0.25 * half_width, 0.5 * scan.one_pixel(depth))  # soft sides, >= half a pixel
        across = _smoothstep((half_width - np.abs(scan.lateral - line)) / edge)
        below = _smoothstep((scan.depth - depth) / thickness)  # zero at and above the surface
        inside_surface = (scan.depth > depth - thickness) & (scan.depth <= depth)
        shadow = np.maximum(shadow, weight * across * below)
        surface = np.maximum(surface, weight * across * inside_surface)
        shown.append({"depth_px": float(depth), "scan_line": float(line)})
    bright_surface = 0.8 * surface * (echo > ECHO_FLOOR) * (1.0 - echo)
    out = echo * (1.0 - loss * shadow) + loss * bright_surface
    return _inside(scan, out, echo), {"reflectors": shown, "scan": scan.record()}


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
    2d, 3d, ... with decaying amplitude (Szabo). The copies lie at equal depths along the scan
    lines of the detected geometry (straight for a linear array, arcs around the apex for a
    sector), carry speckle like any echo and stay inside the scanned region. ``param`` is (echo
    level, lateral extent).
    """
    level, extent = param
    echo = image[..., 0]
    scan = detect_scan(echo)
    spacing = rng.uniform(0.07, 0.16) * scan.depth_span  # depth d of the interface below the face
    decay = rng.uniform(0.65, 0.85)
    centre = rng.uniform(-0.2, 0.2)  # lateral position of the interface, fraction of the field
    thickness = max(rng.uniform(0.006, 0.015) * scan.depth_span, 0.7)
    speckle = speckle_amplitude(echo.shape, rng, grain=(0.6, 1.3))
    half_field = scan.lateral_span / 2
    half_width = extent * half_field
    offside = np.abs(scan.lateral - (scan.lateral_range[0] + (1 + centre) * half_field))
    across = _smoothstep((half_width - offside) / (0.3 * half_width + 1e-6))
    # Each pixel sees its nearest copy k (copies are much thinner than their spacing).
    below_face = scan.depth - scan.depth_range[0]
    order = np.maximum(np.rint(below_face / spacing), 1.0)
    offset = (below_face - order * spacing) / thickness
    echoes = decay ** (order - 1) * np.exp(-0.5 * offset**2)
    pattern = np.minimum(level * echoes * speckle, 1.0) * across
    out = echo + pattern * (1.0 - echo)
    return _inside(scan, out, echo), {"spacing_px": spacing, "decay": decay, "scan": scan.record()}


@corruption(
    "ultrasound_gain_attenuation",
    family=FAMILY,
    modalities=MODALITIES,
    channels="gray",
    # Gain deficit at the deepest echo, dB: TGC set for 0.3 instead of 0.5 dB/cm/MHz loses
    # 0.2 x 2 ways x 5 MHz x 6 cm = 12 dB at 6 cm depth. The end of the range, 60 dB (the
    # display's whole dynamic range), is a deep abdominal scan, 15 cm at 5 MHz, with TGC set for
    # 0.3 instead of 0.7 dB/cm/MHz: the deepest echoes go black.
    severity_params=[4.0, 8.0, 12.0, 17.0, 23.0],
    param_range=(0.0, 60.0),
    reference=SZABO + " (attenuation; time-gain compensation)",
)
def ultrasound_gain_attenuation(image: np.ndarray, loss_db: float, rng: np.random.Generator):
    """Time-gain compensation mismatch: echoes lose more gain the deeper they come from.

    Tissue attenuates the pulse by about 0.5 dB/cm/MHz each way; TGC set for a less attenuating
    body leaves a gain deficit that grows with depth along the scan lines (Szabo): with the row
    for a linear array, with the distance from the apex for a sector. On the log-compressed
    display a loss of L dB lowers the grey level by L / DYNAMIC_RANGE_DB, so the far field sinks
    into black. The deficit is ``loss_db`` at the deepest echo, along a curve drawn per image.
    """
    echo = image[..., 0]
    scan = detect_scan(echo)
    exponent = rng.uniform(0.8, 1.6)  # how the deficit builds up with depth (TGC slider profile)
    shift = loss_db * scan.depth_fraction() ** exponent / DYNAMIC_RANGE_DB
    out = np.maximum(echo - shift, 0.0)
    return _inside(scan, out, echo), {"depth_exponent": exponent, "scan": scan.record()}


CORRUPTIONS: tuple[Corruption, ...] = (
    ultrasound_speckle,
    ultrasound_acoustic_shadowing,
    ultrasound_reverberation,
    ultrasound_gain_attenuation,
)
register_corruptions = registers(CORRUPTIONS)
