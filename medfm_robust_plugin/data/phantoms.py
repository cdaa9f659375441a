"""Procedural phantoms: deterministic synthetic medical images, generated on demand (no files in git).

Each generator takes a size and a seed and returns the image with its exact lesion mask, so that
every label is known by construction. They are the embedded sample images of the preview and the
gallery, and the fixtures of the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Phantom:
    """A synthetic image, its modality, and the mask of its lesion(s) (True inside)."""

    image: np.ndarray
    mask: np.ndarray
    modality: str
    lesion_masks: tuple[np.ndarray, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class Lesion:
    """Where to put a lesion: centre (y, x) in [-1, 1] image coordinates and radius (same units)."""

    centre: tuple[float, float]
    radius: float


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    return (yy + 0.5) / size * 2 - 1, (xx + 0.5) / size * 2 - 1


def smooth_texture(size: int, rng: np.random.Generator, scale: float = 8.0) -> np.ndarray:
    """Zero-mean, unit-variance low-frequency texture (filtered white noise)."""
    import cv2

    noise = rng.standard_normal((size, size)).astype(np.float32)
    blurred = cv2.GaussianBlur(noise, (0, 0), sigmaX=max(size / scale / 4, 0.5))
    return (blurred - blurred.mean()) / (blurred.std() + 1e-6)


def _blob(
    size: int,
    rng: np.random.Generator,
    radius: tuple[float, float],
    lobes: int = 5,
    centre: tuple[float, float] | None = None,
):
    """A lesion-like blob: an ellipse whose radius wobbles with angle. Returns (mask, centre)."""
    y, x = _grid(size)
    cy, cx = rng.uniform(-0.35, 0.35, size=2)
    if centre is not None:
        cy, cx = centre
    r0 = rng.uniform(*radius)
    angle = np.arctan2(y - cy, x - cx)
    phases = rng.uniform(0, 2 * np.pi, size=lobes)
    amps = rng.uniform(0.0, 0.15, size=lobes)
    wobble = 1 + sum(a * np.sin((k + 2) * angle + p) for k, (a, p) in enumerate(zip(amps, phases)))
    aspect = rng.uniform(0.7, 1.3)
    dist = np.sqrt(((x - cx) * aspect) ** 2 + ((y - cy) / aspect) ** 2)
    return dist < r0 * wobble, (cy, cx)


def _lesions(
    size: int,
    rng: np.random.Generator,
    radius: tuple[float, float],
    lesions: Sequence[Lesion] | None,
    inside: np.ndarray | None = None,
) -> list[np.ndarray]:
    """One random blob by default, or one blob per requested lesion, clipped to ``inside``."""
    if lesions is None:
        masks = [_blob(size, rng, radius)[0]]
    else:
        masks = [
            _blob(size, rng, (les.radius, les.radius), centre=les.centre)[0] for les in lesions
        ]
    if inside is not None:
        masks = [m & inside for m in masks]
    return masks


def _union(masks: list[np.ndarray], size: int) -> np.ndarray:
    return np.any(masks, axis=0) if masks else np.zeros((size, size), bool)


def cell_borders(
    size: int,
    rng: np.random.Generator,
    spacing: float,
    width: float,
    stretch: float = 1.0,
    angle: float = 0.0,
) -> np.ndarray:
    """1 on the borders of random polygonal cells (a Voronoi network), falling to 0 inside them.

    ``spacing`` is the mean cell size and ``width`` the border's half-width, both in pixels;
    ``stretch`` > 1 elongates the cells along ``angle`` (radians).
    """
    from scipy.spatial import cKDTree

    count = max(4, int(round((size / spacing) ** 2)))
    seeds = rng.uniform(0, size, (count, 2))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    cos, sin = np.cos(angle), np.sin(angle)

    def warped(points: np.ndarray) -> np.ndarray:
        along = points[:, 0] * cos + points[:, 1] * sin
        across = points[:, 1] * cos - points[:, 0] * sin
        return np.column_stack([along * stretch, across / stretch])

    pixels = np.column_stack([yy.ravel(), xx.ravel()])
    dist, _ = cKDTree(warped(seeds)).query(warped(pixels), k=2)
    gap = (dist[:, 1] - dist[:, 0]).reshape(size, size).astype(np.float32)
    return np.exp(-((gap / width) ** 2))


def meandering_lines(size: int, rng: np.random.Generator, scale: float, width: float) -> np.ndarray:
    """1 on the zero lines of a smooth random field (connected, meandering, like small vessels),
    falling to 0 about ``width`` pixels away; ``scale`` as in :func:`smooth_texture`."""
    field = smooth_texture(size, rng, scale)
    slope = np.hypot(*np.gradient(field))
    return np.exp(-((field / (width * slope + 1e-6)) ** 2))


def dermoscopy(size: int = 256, seed: int = 0, lesions: Sequence[Lesion] | None = None) -> Phantom:
    """RGB skin with a pigmented lesion (uint8), with the fine structure dermoscopy shows.

    Drawn for a field of about 20 mm at 256 pixels (80 um per pixel), features scaled with
    ``size``: the skin's furrows around polygonal plateaus (0.5-1 mm across, elongated along one
    direction) and a fine mottling; in the lesion, a pigment network (brown lines around holes of
    0.2-0.4 mm) that is patchy and fades toward the border, and brown dots (about 0.15 mm).
    """
    import cv2

    rng = np.random.default_rng(seed)
    y, x = _grid(size)
    skin = np.array([214, 170, 140], np.float32) + rng.uniform(-15, 15, 3).astype(np.float32)
    tex = smooth_texture(size, rng, 16)[..., None]
    image = skin + 6 * tex + 25 * (1 - (x**2 + y**2))[..., None] * 0.3
    masks = _lesions(size, rng, (0.25, 0.45), lesions)
    mask = _union(masks, size)
    lesion = np.array([110, 70, 50], np.float32) + 18 * smooth_texture(size, rng, 6)[..., None]
    # The fine structure has a stream of its own, so a seed keeps its lesion shape and colours.
    rng = np.random.default_rng([seed, 1])
    px = size / 256
    line = max(px, 0.6)
    furrows = cell_borders(size, rng, 10 * px, line, stretch=1.6, angle=rng.uniform(0, np.pi))
    image = image * (1 - 0.09 * furrows[..., None])
    mottle = cv2.GaussianBlur(
        rng.standard_normal((size, size)).astype(np.float32), (0, 0), max(0.8 * px, 0.5)
    )
    image = image * (1 + 0.035 * mottle / (mottle.std() + 1e-6))[..., None]
    network = cv2.GaussianBlur(
        cell_borders(size, rng, 4.5 * px, 1.1 * line), (0, 0), max(0.5 * px, 0.4)
    )
    patchy = np.clip(0.6 + 0.6 * smooth_texture(size, rng, 10), 0, 1)
    toward_centre = np.clip(1.5 * cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 6 * px), 0, 1)
    lesion = lesion * (1 - 0.4 * network * patchy * toward_centre)[..., None]
    dots = np.zeros((size, size), np.float32)
    ys, xs = np.nonzero(mask)
    if len(ys):
        pick = rng.choice(len(ys), size=min(len(ys), int(25 * px**2) + 1), replace=False)
        dots[ys[pick], xs[pick]] = 1.0
        sigma = max(0.9 * px, 0.5)
        dots = np.clip(cv2.GaussianBlur(dots, (0, 0), sigma) * 2 * np.pi * sigma**2, 0, 1)
    lesion = lesion * (1 - 0.5 * dots[..., None])
    soft = _soft(mask)
    image = image * (1 - soft[..., None]) + lesion * soft[..., None]
    return Phantom(np.clip(image, 0, 255).astype(np.uint8), mask, "dermoscopy", tuple(masks))


def endoscopy(size: int = 256, seed: int = 0, lesions: Sequence[Lesion] | None = None) -> Phantom:
    """RGB colon-like mucosa with a polyp, dark lumen and circular field of view (uint8).

    The mucosa shows a network of fine submucosal vessels (darker red, two calibres) and the
    polyp a fine granular surface (its pit pattern), scaled with ``size``.
    """
    rng = np.random.default_rng(seed)
    y, x = _grid(size)
    r = np.sqrt(x**2 + y**2)
    base = np.array([190, 95, 80], np.float32)
    shading = np.clip(1.1 - 0.6 * r, 0.2, 1.1)[..., None]
    folds = 0.12 * np.sin(9 * r + 2 * smooth_texture(size, rng, 6))[..., None]
    image = base * (shading + folds) + 10 * smooth_texture(size, rng, 20)[..., None]
    masks = _lesions(size, rng, (0.12, 0.22), lesions)
    mask = _union(masks, size)
    polyp = np.array([215, 120, 100], np.float32) * (
        1.0 + 0.1 * smooth_texture(size, rng, 8)[..., None]
    )
    rng = np.random.default_rng([seed, 1])  # the fine structure's own stream, as in dermoscopy
    line = max(size / 256, 0.6)
    vessels = np.maximum(
        meandering_lines(size, rng, 10, 0.8 * line),
        0.6 * meandering_lines(size, rng, 24, 0.6 * line),
    )
    absorbed = np.array([0.3, 1.0, 1.0], np.float32)  # blood absorbs green and blue most
    image = image * (1 - 0.28 * vessels[..., None] * absorbed)
    polyp = polyp * (1 + 0.06 * smooth_texture(size, rng, 40)[..., None])
    soft = _soft(mask)
    image = image * (1 - soft[..., None]) + polyp * soft[..., None]
    image[r > 0.98] = 0
    return Phantom(np.clip(image, 0, 255).astype(np.uint8), mask, "endoscopy", tuple(masks))


def ct_slice(size: int = 256, seed: int = 0, lesions: Sequence[Lesion] | None = None) -> Phantom:
    """Axial abdomen-like CT slice in Hounsfield units (int16): air, fat, soft tissue, bone, a lesion."""
    rng = np.random.default_rng(seed)
    y, x = _grid(size)
    hu = np.full((size, size), -1000.0, np.float32)
    body = (x / 0.9) ** 2 + (y / 0.7) ** 2 < 1
    hu[body] = -100  # subcutaneous fat
    inner = (x / 0.8) ** 2 + (y / 0.6) ** 2 < 1
    hu[inner] = 40 + 10 * smooth_texture(size, rng, 10)[inner]
    liver = ((x + 0.3) / 0.4) ** 2 + ((y + 0.05) / 0.35) ** 2 < 1
    hu[liver] = 60
    spine = (x / 0.12) ** 2 + ((y - 0.45) / 0.12) ** 2 < 1
    hu[spine] = 700
    masks = _lesions(size, rng, (0.06, 0.1), lesions, inside=inner)
    mask = _union(masks, size)
    hu[mask] = -15 + rng.uniform(-10, 10)  # hypodense against 40-60 HU parenchyma
    return Phantom(np.rint(hu).astype(np.int16), mask, "ct", tuple(masks))


def mri_slice(size: int = 256, seed: int = 0, lesions: Sequence[Lesion] | None = None) -> Phantom:
    """Brain-like T1 MR magnitude slice (float32, arbitrary units 0-1000) with a bright tumour."""
    rng = np.random.default_rng(seed)
    y, x = _grid(size)
    head = (x / 0.75) ** 2 + (y / 0.9) ** 2
    image = np.zeros((size, size), np.float32)
    image[head < 1] = 250  # scalp/CSF ring
    brain = head < 0.8
    image[brain] = 600 + 60 * smooth_texture(size, rng, 12)[brain]
    ventricles = ((np.abs(x) - 0.12) / 0.08) ** 2 + (y / 0.25) ** 2 < 1
    image[ventricles & brain] = 150
    masks = _lesions(size, rng, (0.08, 0.16), lesions, inside=brain)
    mask = _union(masks, size)
    image[mask] = 900
    return Phantom(image, mask, "mri", tuple(masks))


def xray(size: int = 256, seed: int = 0, lesions: Sequence[Lesion] | None = None) -> Phantom:
    """Chest-X-ray-like radiograph, 12-bit values in uint16, with a nodule."""
    rng = np.random.default_rng(seed)
    y, x = _grid(size)
    image = 3000 - 600 * (x**2) + 200 * smooth_texture(size, rng, 10)
    lungs = (((np.abs(x) - 0.4) / 0.3) ** 2 + (y / 0.65) ** 2) < 1
    image[lungs] -= 1700
    ribs = (np.sin(14 * (y + 0.15 * x**2)) > 0.6) & lungs
    image[ribs] += 450
    masks = _lesions(size, rng, (0.04, 0.08), lesions, inside=lungs)
    mask = _union(masks, size)
    image[mask] += 900
    return Phantom(np.clip(image, 0, 4095).astype(np.uint16), mask, "xray", tuple(masks))


def ultrasound(size: int = 256, seed: int = 0) -> Phantom:
    """B-mode-like ultrasound (uint8 grayscale): sector scan of speckled tissue with a hypoechoic lesion."""
    import cv2

    rng = np.random.default_rng(seed)
    y, x = _grid(size)
    # Polar coordinates around a transducer apex just above the top edge.
    depth = np.sqrt(x**2 + (y + 1.1) ** 2)
    angle = np.arctan2(x, y + 1.1)
    sector = (np.abs(angle) < np.deg2rad(38)) & (depth > 0.15) & (depth < 2.0)
    echogenicity = 0.6 + 0.08 * smooth_texture(size, rng, 10)
    layers = 0.15 * np.sin(7 * depth + 1.5 * smooth_texture(size, rng, 5))  # fascia-like bands
    # Speckle: magnitude of a complex Gaussian field (fully developed, Rayleigh-distributed);
    # smoothing the field before taking the magnitude gives speckle grains of a few pixels.
    field = rng.standard_normal((2, size, size)).astype(np.float32)
    grain = max(size / 256, 0.5)
    field = [cv2.GaussianBlur(f, (0, 0), sigmaX=1.2 * grain, sigmaY=0.6 * grain) for f in field]
    amplitude = np.hypot(field[0], field[1])
    speckle = amplitude / amplitude.mean()
    mask, _ = _blob(size, rng, (0.1, 0.18))
    mask &= sector
    tissue = (echogenicity + layers) * (1 - 0.7 * _soft(mask))
    image = 140 * tissue * speckle * np.exp(-0.25 * depth)
    image[~sector] = 0
    return Phantom(np.clip(image, 0, 255).astype(np.uint8), mask, "ultrasound")


def _vessel_tree(
    canvas: np.ndarray,
    rng: np.random.Generator,
    start: np.ndarray,
    heading: float,
    width: float,
    length: float,
    bend: float,
    depth: int,
) -> None:
    """Draw a vessel (x, y pixels, heading in radians) that bends as it goes, then goes on as a
    slightly thinner trunk and gives off a thinner branch at an angle, down to about 1 pixel."""
    import cv2

    if width < 0.5 or depth < 0 or length < 2:
        return
    steps = 12
    theta = heading + (bend + rng.normal(0, 0.25)) * np.linspace(0, 1, steps)[:, None]
    path = start + np.cumsum(length / steps * np.hstack([np.cos(theta), np.sin(theta)]), axis=0)
    path = np.vstack([start, path])
    thickness = max(1, int(round(width)))
    cv2.polylines(
        canvas,
        [np.rint(path * 4).astype(np.int32)],
        False,
        min(1.0, width),
        thickness,
        cv2.LINE_AA,
        shift=2,
    )
    end, end_heading = path[-1], float(theta[-1, 0])
    side = 1 if rng.random() < 0.5 else -1
    trunk_heading = end_heading - side * rng.uniform(0.05, 0.2)
    trunk_length = length * rng.uniform(0.75, 0.9)
    _vessel_tree(
        canvas, rng, end, trunk_heading, 0.85 * width, trunk_length, 0.85 * bend, depth - 1
    )
    branch_heading = end_heading + side * rng.uniform(0.6, 1.0)
    branch_length = length * rng.uniform(0.5, 0.7)
    _vessel_tree(
        canvas, rng, end, branch_heading, 0.6 * width, branch_length, rng.normal(0, 0.3), depth - 2
    )


def fundus(size: int = 256, seed: int = 0) -> Phantom:
    """RGB retinal fundus photograph (uint8): orange-red retina, bright optic disc with cup, a
    darker macula, a fine pigment mottle, and a branching vessel tree; mask = the optic disc.

    Veins (darker, wider) and arteries leave the disc in a superior and an inferior arcade that
    curve around the macula (about 2.5 disc diameters temporal to the disc), plus nasal branches;
    each vessel goes on as a thinner trunk and gives off thinner branches, down to about 1 pixel.
    """
    import cv2

    rng = np.random.default_rng(seed)
    y, x = _grid(size)
    r = np.sqrt(x**2 + y**2)
    retina = np.array([205, 95, 45], np.float32) + rng.uniform(-12, 12, 3).astype(np.float32)
    vignette = np.clip(1.05 - 0.45 * r**2, 0, None)[..., None]
    image = retina * vignette * (1 + 0.05 * smooth_texture(size, rng, 12)[..., None])
    disc_y, disc_x = rng.uniform(-0.1, 0.1), rng.choice([-1, 1]) * rng.uniform(0.3, 0.4)
    disc_radius = rng.uniform(0.12, 0.16)
    disc_dist = np.sqrt((x - disc_x) ** 2 + (y - disc_y) ** 2)
    mask = disc_dist < disc_radius
    cup_share = rng.uniform(0.35, 0.55)
    rng = np.random.default_rng([seed, 1])  # the fine structure's own stream, as in dermoscopy
    px = size / 256
    grain = cv2.GaussianBlur(
        rng.standard_normal((size, size)).astype(np.float32), (0, 0), max(0.9 * px, 0.5)
    )
    image = image * (1 + 0.04 * grain / (grain.std() + 1e-6))[..., None]
    macula_x = disc_x - np.sign(disc_x) * 0.78
    macula = np.exp(-((x - macula_x) ** 2 + (y - disc_y - 0.05) ** 2) / (2 * 0.12**2))
    image = image * (1 - 0.35 * macula[..., None])
    disc = _soft(mask)[..., None]
    image = image * (1 - disc) + np.array([245, 200, 120], np.float32) * disc
    cup = _soft(disc_dist < disc_radius * cup_share)[..., None]
    image = image * (1 - cup) + np.array([255, 235, 190], np.float32) * cup
    centre = np.array([(disc_x + 1) / 2 * size, (disc_y + 1) / 2 * size])
    temporal = -np.sign(disc_x)  # +1: the macula is to the right of the disc
    for colour, calibre in (([150, 35, 20], 1.0), ([185, 50, 30], 0.75)):  # veins, arteries
        canvas = np.zeros((size, size), np.float32)
        for up in (-1, 1):  # superior (-1) and inferior arcades
            heading = up * (np.pi / 2 - 0.3 * temporal) + rng.normal(0, 0.12)
            width, bend = 3.2 * px * calibre, -up * temporal * 0.42
            _vessel_tree(canvas, rng, centre, heading, width, 0.22 * size, bend, 6)
        for _ in range(2):  # nasal branches
            heading = (np.pi if temporal > 0 else 0.0) + rng.uniform(-0.9, 0.9)
            width, bend = 2.0 * px * calibre, rng.normal(0, 0.3)
            _vessel_tree(canvas, rng, centre, heading, width, 0.16 * size, bend, 4)
        vessels = 0.75 * cv2.GaussianBlur(canvas, (0, 0), max(0.6 * px, 0.4))[..., None]
        image = image * (1 - vessels) + np.array(colour, np.float32) * vessels
    image[r > 0.95] = 0
    return Phantom(np.clip(image, 0, 255).astype(np.uint8), mask, "fundus")


# H&E stain optical-density vectors (Ruifrok & Johnston 2001), RGB order, unit length.
HEMATOXYLIN_OD = np.array([0.650, 0.704, 0.286], np.float32)
EOSIN_OD = np.array([0.072, 0.990, 0.105], np.float32)


def pathology(size: int = 256, seed: int = 0) -> Phantom:
    """RGB H&E-like tile (uint8): pink eosin stroma, purple-blue nuclei, white lumina; mask = nuclei.

    Built in optical density (Beer-Lambert): each pixel is 255 * 10^-(c_H * H + c_E * E) for the
    stain vectors above, so that stain-space corruptions see a physically consistent tile.
    """
    import cv2

    rng = np.random.default_rng(seed)
    y, x = _grid(size)
    fibres = np.sin(18 * (x + 0.3 * y) + 3 * smooth_texture(size, rng, 6))
    collagen = smooth_texture(size, rng, 48)  # fine fibrillar grain of the stroma
    eosin = 0.22 + 0.05 * smooth_texture(size, rng, 12) + 0.05 * fibres + 0.04 * collagen
    hematoxylin = 0.04 + 0.02 * smooth_texture(size, rng, 10)
    lumen = np.zeros((size, size), bool)
    for _ in range(2):
        blob, _ = _blob(size, rng, (0.12, 0.22))
        lumen |= blob
    nuclei = np.zeros((size, size), np.uint8)
    count = max(8, int(260 * (size / 256) ** 2))  # nuclei cover about a fifth of the tile
    centres = rng.uniform(0, size, (count, 2))
    axes = rng.uniform(0.010, 0.022, (count, 2)) * size
    angles = rng.uniform(0, 180, count)
    for (cx, cy), (ax, ay), angle in zip(centres, axes, angles, strict=True):
        half_axes = (max(1, int(ax)), max(1, int(ay)))
        cv2.ellipse(nuclei, (int(cx), int(cy)), half_axes, angle, 0, 360, 1, -1)
    mask = nuclei.astype(bool) & ~lumen
    chromatin = 0.75 + 0.12 * smooth_texture(size, rng, 3)
    soft_nuclei = _soft(mask)
    hematoxylin = hematoxylin * (1 - soft_nuclei) + chromatin * soft_nuclei
    soft_lumen = _soft(lumen)
    hematoxylin = np.clip(hematoxylin * (1 - soft_lumen), 0, None)
    eosin = np.clip(eosin * (1 - soft_lumen), 0, None) * (1 - 0.6 * soft_nuclei)
    density = hematoxylin[..., None] * HEMATOXYLIN_OD + eosin[..., None] * EOSIN_OD
    image = 255.0 * np.power(10.0, -density)
    return Phantom(np.clip(image, 0, 255).astype(np.uint8), mask, "pathology")


def oct_bscan(size: int = 256, seed: int = 0) -> Phantom:
    """OCT B-scan (uint8): retinal layers over the choroid with a foveal pit, speckled (exponential
    intensity) and log-compressed as devices display them; mask = an intraretinal fluid cyst."""
    import cv2

    rng = np.random.default_rng(seed)
    y, x = (np.mgrid[0:size, 0:size].astype(np.float32) + 0.5) / size
    pit = np.exp(-(((x - rng.uniform(0.4, 0.6)) / 0.08) ** 2))
    surface = 0.3 + 0.02 * np.sin(3 * x + rng.uniform(0, 6)) + 0.08 * pit
    depth = (y - surface) / (0.25 - 0.1 * pit)  # 0 at the inner limiting membrane, 1 at the RPE
    layer_bottoms = [0.0, 0.12, 0.35, 0.5, 0.6, 0.85, 0.92, 1.0]  # vitreous, NFL, ..., RPE
    reflectivity = [0.002, 0.7, 0.45, 0.2, 0.5, 0.15, 0.7, 1.0]
    choroid = 0.35 * np.exp(-1.5 * np.clip(depth - 1, 0, None))
    tissue = np.select([depth < b for b in layer_bottoms], reflectivity, choroid)
    cyst_x = rng.uniform(0.25, 0.75)
    cyst = (((x - cyst_x) / 0.06) ** 2 + ((depth - 0.45) / 0.25) ** 2) < 1
    tissue = np.where(cyst, 0.01, tissue)
    field = [
        cv2.GaussianBlur(f, (0, 0), sigmaX=1.0 * size / 128, sigmaY=0.5 * size / 128)
        for f in rng.standard_normal((2, size, size)).astype(np.float32)
    ]
    speckle = field[0] ** 2 + field[1] ** 2
    intensity = tissue * speckle / speckle.mean()
    display = (10 * np.log10(intensity + 1e-4) + 22) / 26
    return Phantom((np.clip(display, 0, 1) * 255).astype(np.uint8), cyst, "oct")


def _soft(mask: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigmaX=1.5)


GENERATORS: dict[str, Callable[..., Phantom]] = {
    "dermoscopy": dermoscopy,
    "endoscopy": endoscopy,
    "ct": ct_slice,
    "mri": mri_slice,
    "xray": xray,
    "ultrasound": ultrasound,
    "fundus": fundus,
    "pathology": pathology,
    "oct": oct_bscan,
}


def phantom(modality: str, size: int = 256, seed: int = 0) -> Phantom:
    """The phantom of ``modality`` (one of GENERATORS)."""
    try:
        return GENERATORS[modality](size=size, seed=seed)
    except KeyError:
        raise ValueError(
            f"no phantom for modality '{modality}'; choose one of {', '.join(GENERATORS)}"
        ) from None
