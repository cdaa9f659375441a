"""Pathology corruptions (family 'pathology'): staining and slide-preparation artefacts of H&E tiles.

Colour is modelled where it arises, in optical density: a brightfield pixel transmits
I = I0 * 10^(-OD), and OD is a sum of stain amounts times stain vectors (Beer-Lambert; Ruifrok &
Johnston 2001, "Quantification of histochemical staining by color deconvolution", Anal. Quant.
Cytol. Histol. 23:291). Slide artefacts (bubbles, folds, pen ink, blur) are the ones HistoQC
flags (Janowczyk et al. 2019, "HistoQC: an open-source quality control tool for digital pathology
slides", JCO Clin. Cancer Inform. 3:1).
"""

from __future__ import annotations

import cv2
import numpy as np

from . import overlays
from .registering import registers
from .spec import Corruption, corruption

FAMILY = "pathology"
MODALITIES = ["pathology"]
HISTOQC = "Janowczyk et al. 2019 (HistoQC)"

# Ruifrok & Johnston 2001 stain vectors in RGB optical density (rows normalised below): the
# references when a tile's own stains cannot be estimated. DAB is the brown chromogen of IHC.
HEMATOXYLIN = np.array([0.650, 0.704, 0.286])
EOSIN = np.array([0.072, 0.990, 0.105])
DAB = np.array([0.268, 0.570, 0.776])
REFERENCE_STAINS = {"H&E": (HEMATOXYLIN, EOSIN), "H-DAB": (HEMATOXYLIN, DAB)}
# Macenko et al. 2009: pixels with less optical density than this are glass, not stained tissue;
# the extreme stain directions are the 1st and 99th percentiles of the angle in the stain plane.
MACENKO_MIN_OD = 0.15
MACENKO_PERCENTILE = 1.0
MIN_STAIN_PIXELS = 200  # fewer tissue pixels than this: too few to estimate two stains
MIN_STAIN_ANGLE = np.deg2rad(8.0)  # two estimated stains closer than this are one stain
MAX_ESTIMATION_PIXELS = 200_000  # a regular subsample is enough to estimate a 3 x 3 covariance
MIN_TRANSMISSION = 1.0 / 255.0  # an 8-bit scanner cannot tell darker pixels apart
GLASS_OD = 0.02  # summed OD of bare glass and mountant (scanner white point)
TISSUE_OD = 0.15  # summed OD above glass from which a pixel holds stained tissue
MAX_AIR_BUBBLES = 12
MAX_PEN_STROKES = 4
# Marker inks as RGB optical-density vectors: each absorbs the complement of its colour.
INKS = {
    "blue": np.array([1.1, 0.45, 0.1], np.float32),
    "green": np.array([0.95, 0.25, 0.8], np.float32),
    "black": np.array([0.9, 0.9, 0.85], np.float32),
}


def optical_density(image: np.ndarray) -> np.ndarray:
    """RGB transmission in [0, 1] -> optical density -log10(I / I0), with I0 = 1 (bright glass)."""
    return -np.log10(np.clip(image, MIN_TRANSMISSION, 1.0))


def transmission(density: np.ndarray) -> np.ndarray:
    """Optical density -> RGB transmission in [0, 1]."""
    return np.exp(np.clip(density, 0.0, None) * np.float32(-np.log(10.0))).astype(np.float32)


def stain_matrix(hematoxylin: np.ndarray, eosin: np.ndarray) -> np.ndarray:
    """Rows: H, E and a residual vector orthogonal to both (Ruifrok & Johnston's third channel)."""
    h = hematoxylin / np.linalg.norm(hematoxylin)
    e = eosin / np.linalg.norm(eosin)
    residual = np.cross(h, e)
    return np.stack([h, e, residual / np.linalg.norm(residual)])


def _tissue_weight(density: np.ndarray) -> np.ndarray:
    """1 where stained tissue lies, 0 on bare glass, with a soft transition."""
    return np.clip((density.sum(axis=2) - GLASS_OD) / TISSUE_OD, 0.0, 1.0)


def _signed_unit(rng: np.random.Generator, size: int) -> np.ndarray:
    """Values of magnitude 0.5-1 with random signs: every component is clearly perturbed."""
    return rng.choice([-1.0, 1.0], size) * rng.uniform(0.5, 1.0, size)


def _stained_pixels(density: np.ndarray) -> np.ndarray:
    """Optical densities (N x 3) of the tissue pixels of a tile, a regular subsample at most."""
    flat = density.reshape(-1, 3)
    step = max(1, flat.shape[0] // MAX_ESTIMATION_PIXELS)
    flat = flat[::step]
    return flat[np.linalg.norm(flat, axis=1) > MACENKO_MIN_OD].astype(np.float64)


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


def estimate_stains(density: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The tile's two stain vectors in optical density, estimated as Macenko et al. (2009) do.

    Tissue optical densities lie in the plane spanned by the two stains' vectors; the plane is
    the top two singular directions of the tissue densities, and the stains are its extreme
    directions, taken as the 1st and 99th percentiles of the angle of each pixel in it (robust to
    a few odd pixels). "A method for normalizing histology slides for quantitative analysis",
    ISBI 2009. The stain that absorbs more red comes first: haematoxylin against eosin or DAB.
    Returns None when the tile holds too little tissue or a single stain.
    """
    tissue = _stained_pixels(density)
    if tissue.shape[0] < MIN_STAIN_PIXELS:
        return None
    _, _, rows = np.linalg.svd(tissue, full_matrices=False)
    plane = rows[:2].T  # 3 x 2; optical densities are positive, so the first axis is too
    plane[:, 0] *= np.sign(plane[:, 0].sum()) or 1.0
    coordinates = tissue @ plane
    angles = np.arctan2(coordinates[:, 1], coordinates[:, 0])
    low, high = np.percentile(angles, [MACENKO_PERCENTILE, 100.0 - MACENKO_PERCENTILE])
    if high - low < MIN_STAIN_ANGLE:
        return None
    first = plane @ np.array([np.cos(low), np.sin(low)])
    second = plane @ np.array([np.cos(high), np.sin(high)])
    # A dye absorbs (a little) in every channel: a clearly negative component is no stain.
    if min(first.min(), second.min()) < -0.05:
        return None
    first, second = _unit(np.clip(first, 1e-3, None)), _unit(np.clip(second, 1e-3, None))
    return (first, second) if first[0] >= second[0] else (second, first)


def reference_stains(density: np.ndarray) -> tuple[str, tuple[np.ndarray, np.ndarray]]:
    """The Ruifrok & Johnston pair (H&E or haematoxylin-DAB) whose plane best fits the tissue."""
    tissue = _stained_pixels(density)
    if tissue.shape[0] == 0:
        return "H&E", REFERENCE_STAINS["H&E"]

    def misfit(pair: tuple[np.ndarray, np.ndarray]) -> float:
        basis = np.stack([_unit(v) for v in pair], axis=1)
        amounts, *_ = np.linalg.lstsq(basis, tissue.T, rcond=None)
        return float(np.sum((tissue.T - basis @ amounts) ** 2))

    name = min(REFERENCE_STAINS, key=lambda key: misfit(REFERENCE_STAINS[key]))
    return name, REFERENCE_STAINS[name]


@corruption(
    "pathology_stain_variation",
    family=FAMILY,
    modalities=MODALITIES,
    channels="rgb",
    # Tellez et al.'s sigma: alpha in 1 +- sigma, beta in +-sigma; 'HED-light' is 0.05 (severity
    # 1), 'HED-strong' 0.2 (between severities 4 and 5).
    severity_params=[0.05, 0.09, 0.13, 0.18, 0.24],
    param_range=(0.0, 0.4),
    reference="Tellez et al. 2018, 2019 (HED augmentation); Macenko et al. 2009; "
    "Ruifrok & Johnston 2001",
)
def pathology_stain_variation(
    image: np.ndarray, sigma: float, rng: np.random.Generator
) -> tuple[np.ndarray, dict]:
    """Stain variation between labs, dye lots and scanners, in the tile's own stain space.

    The tile's two stains are estimated from the tile itself (Macenko et al. 2009), so that H&E,
    haematoxylin-DAB and other two-stain tiles each keep their own hues; when that fails (little
    tissue, one stain), the Ruifrok & Johnston (2001) H&E or H-DAB pair that fits best is used.
    The tile is unmixed into the two stain amounts and a residual, and each stain amount s becomes
    alpha * s + beta, as in the HED augmentation of Tellez et al. ("Whole-slide mitosis detection
    in H&E breast histology using PHH3 as a reference to train distilled stain-invariant CNNs",
    IEEE TMI 2018; "Quantifying the effects of data augmentation and stain color normalization in
    convolutional neural networks for computational pathology", Med. Image Anal. 2019): alpha in
    1 +- sigma, beta in +- sigma optical density, 'HED-light' sigma = 0.05, 'HED-strong' 0.2.
    Each draw has magnitude sigma/2 to sigma (random sign), so a severity means the same shift on
    every tile. The residual holds no dye and is left alone; bare glass takes up no stain, so beta
    acts on tissue only and the background stays white.
    """
    scale = _signed_unit(rng, 2)
    shift = _signed_unit(rng, 2)
    density = optical_density(image)
    estimated = estimate_stains(density)
    if estimated is None:
        source, stains = reference_stains(density)
    else:
        source, stains = "estimated", estimated
    matrix = stain_matrix(*stains).astype(np.float32)
    amounts = density @ np.linalg.inv(matrix)
    tissue = _tissue_weight(density)[..., None]
    # No clipping of the amounts: unmixing leaves small negative values that must round-trip.
    alpha = (1.0 + sigma * scale).astype(np.float32)
    beta = (sigma * shift).astype(np.float32)
    dyes = amounts[..., :2] * alpha + beta * tissue
    perturbed = np.concatenate([dyes, amounts[..., 2:]], axis=2)
    out = transmission(perturbed @ matrix)
    draws = {
        "stain_scale": scale,
        "stain_shift": shift,
        "stain_vectors": source,
        "stains": np.round(np.stack(stains), 4),
    }
    return out, draws


@corruption(
    "pathology_bubbles",
    family=FAMILY,
    modalities=MODALITIES,
    severity_params=[1, 2, 3, 5, 8],
    param_range=(0.0, float(MAX_AIR_BUBBLES)),
    reference=HISTOQC,
)
def pathology_bubbles(image: np.ndarray, count: float, rng: np.random.Generator) -> np.ndarray:
    """Air bubbles trapped under the cover slip when the slide was mounted.

    Where the mounting medium is missing, the refractive-index mismatch outlines the bubble with a
    thick dark ring and leaves the tissue inside pale and out of focus (HistoQC flags them as
    'air bubbles'; Janowczyk et al. 2019). ``count`` bubbles show, radii 10-30 % of the short side.
    """
    h, w = image.shape[:2]
    bubbles = overlays.Bubbles.draw((h, w), rng, MAX_AIR_BUBBLES, (0.1, 0.3))
    weights = overlays.fractional_weights(count, MAX_AIR_BUBBLES)
    layers = overlays.bubble_layers((h, w), bubbles, weights, rim_width=0.12, magnification=0.05)
    defocused = overlays.gaussian_blur(image, 0.02 * min(h, w) + 0.5)
    pale = overlays.blend(defocused, np.float32(1.0), 0.55)
    out = overlays.blend(image, pale, layers.inside)
    return overlays.blend(out, np.float32(0.25), 0.95 * layers.rim)


@corruption(
    "pathology_tissue_fold",
    family=FAMILY,
    modalities=MODALITIES,
    channels="rgb",
    severity_params=[(0.17, 0.5), (0.33, 1.0), (0.47, 1.5), (0.61, 1.9), (0.77, 2.4)],
    param_range=((0.0, 0.0), (1.0, 3.0)),
    reference=HISTOQC,
)
def pathology_tissue_fold(
    image: np.ndarray, param: tuple[float, float], rng: np.random.Generator
) -> np.ndarray:
    """Tissue fold: a band where the section folded onto itself during mounting.

    In the band light crosses two (or more) layers of stained tissue, so their optical densities
    add: the fold is darker and more saturated, with the folded-over tissue showing through
    (HistoQC flags folds by their dark, saturated colour; Janowczyk et al. 2019; Kothari et al.
    2013, "Eliminating tissue-fold artifacts in histopathological whole-slide images for improved
    image-based prediction of cancer grade", J. Pathol. Inform. 4:22). ``param`` = (band width as a
    fraction of the short side, extra tissue layers in the band).
    """
    width, layers = param
    h, w = image.shape[:2]
    short = min(h, w)
    ends = _crossing_endpoints(rng, h, w)
    bend = rng.uniform(-0.25, 0.25) * short
    overlap_shift = rng.uniform(0.1, 0.3, 2) * short * rng.choice([-1.0, 1.0], 2)
    direction = ends[1] - ends[0]
    normal = np.array([-direction[1], direction[0]]) / (np.linalg.norm(direction) + 1e-6)
    middle = (ends[0] + ends[1]) / 2 + normal * bend
    curve = overlays.bezier_points(
        np.stack([ends[0], middle, ends[1]])[None].astype(np.float32), 48
    )
    centre_line = overlays.draw_curves((h, w), curve, np.array([1.0]), np.array([1.0]))
    distance = cv2.distanceTransform((centre_line < 0.5).astype(np.uint8), cv2.DIST_L2, 5)
    band = np.clip(width * short / 2 - distance + 0.5, 0.0, 1.0) * (width > 0)
    density = optical_density(image)
    shift = np.float32([[1, 0, overlap_shift[0]], [0, 1, overlap_shift[1]]])
    flap = cv2.warpAffine(density, shift, (w, h), borderMode=cv2.BORDER_REFLECT).reshape(
        density.shape
    )
    return transmission(density + layers * band[..., None] * flap)


def _crossing_endpoints(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Two points on opposite sides of the tile (left-right or top-bottom), as (x, y) pixels."""
    horizontal = rng.uniform() < 0.5
    a, b = rng.uniform(0.1, 0.9, 2)
    if horizontal:
        return np.array([[0.0, a * h], [float(w), b * h]])
    return np.array([[a * w, 0.0], [b * w, float(h)]])


@corruption(
    "pathology_pen_marks",
    family=FAMILY,
    modalities=MODALITIES,
    channels="rgb",
    severity_params=[0.2, 0.6, 1.4, 2.2, 2.7],
    param_range=(0.0, float(MAX_PEN_STROKES)),
    reference=HISTOQC,
)
def pathology_pen_marks(
    image: np.ndarray, strokes: float, rng: np.random.Generator
) -> tuple[np.ndarray, dict]:
    """Pen marks: marker ink drawn on the glass by the pathologist to outline a region.

    Blue, green and black markers are the usual ones; the ink is a dye layer whose optical density
    adds to the tissue's, streaky where the felt tip dried (HistoQC's 'pen marking' detector;
    Janowczyk et al. 2019). ``strokes`` broad strokes (12-30 % of the short side wide) show.
    """
    h, w = image.shape[:2]
    short = min(h, w)
    ink_name = list(INKS)[int(rng.integers(0, len(INKS)))]
    control = rng.uniform(-0.1, 1.1, (MAX_PEN_STROKES, 3, 2)) * np.array([w, h])
    widths = rng.uniform(0.12, 0.3, MAX_PEN_STROKES) * short
    streaks = overlays.smooth_field((h, w), rng, cells=12)
    load = rng.uniform(0.7, 1.1)
    curves = overlays.bezier_points(control.astype(np.float32), 32)
    weights = overlays.fractional_weights(strokes, MAX_PEN_STROKES)
    ink = overlays.soft_edges(overlays.draw_curves((h, w), curves, widths, weights), 1.0)
    thickness = ink * load * np.clip(1.0 + 0.15 * streaks, 0.5, 1.5)
    density = optical_density(image) + thickness[..., None] * INKS[ink_name]
    return transmission(density), {"ink": ink_name}


@corruption(
    "pathology_out_of_focus",
    family=FAMILY,
    modalities=MODALITIES,
    severity_params=[(3.5, 0.4), (7.0, 0.47), (10.5, 0.56), (15.0, 0.68), (20.5, 0.82)],
    param_range=((0.0, 0.3), (24.0, 0.9)),
    reference=HISTOQC + "; Campanella et al. 2018, Comput. Med. Imaging Graph. 65:142",
)
def pathology_out_of_focus(
    image: np.ndarray, param: tuple[float, float], rng: np.random.Generator
) -> np.ndarray:
    """Out-of-focus region: part of the tile lies off the scanner's focal plane.

    Whole-slide scanners focus on a sparse grid of points; where the section is uneven or a focus
    point failed, the blur grows smoothly across the tile while the rest stays sharp (HistoQC's
    blur detection; Janowczyk et al. 2019; Campanella et al. 2018, "Towards machine learned
    quality control: a benchmark for sharpness quantification in digital pathology").
    ``param`` = (Gaussian blur in pixels where the defocus is worst, share of the tile defocused).
    """
    sigma, share = param
    h, w = image.shape[:2]
    heading = rng.uniform(0.0, 2 * np.pi)
    bumps = overlays.smooth_field((h, w), rng, cells=2)
    yy = (np.arange(h, dtype=np.float32)[:, None] + 0.5) / h - 0.5
    xx = (np.arange(w, dtype=np.float32)[None, :] + 0.5) / w - 0.5
    # The focal error: a tilted section plus uneven thickness; the worst part defocuses first.
    focal_error = 1.6 * (np.cos(heading) * xx + np.sin(heading) * yy) + 0.35 * bumps
    threshold = float(np.quantile(focal_error[::4, ::4], 1.0 - np.clip(share, 0.0, 1.0)))
    defocus = np.clip((focal_error - threshold) / 0.5, 0.0, 1.0)
    return _variable_blur(image, defocus * sigma, sigma)


def _variable_blur(
    image: np.ndarray, sigma_map: np.ndarray, sigma_max: float, levels: int = 4
) -> np.ndarray:
    """Blur each pixel by its own sigma, interpolating between a few uniformly blurred copies."""
    if sigma_max <= 0:
        return image.copy()
    position = (sigma_map * np.float32((levels - 1) / sigma_max)).astype(np.float32)
    out = np.zeros_like(image)
    for level in range(levels):
        share = np.float32(1.0) - np.abs(position - np.float32(level))
        np.clip(share, 0.0, 1.0, out=share)
        if not share.any():
            continue
        copy = (
            image if level == 0 else overlays.gaussian_blur(image, sigma_max * level / (levels - 1))
        )
        out += share[..., None] * copy
    return out


CORRUPTIONS: tuple[Corruption, ...] = (
    pathology_stain_variation,
    pathology_bubbles,
    pathology_tissue_fold,
    pathology_pen_marks,
    pathology_out_of_focus,
)
register_corruptions = registers(CORRUPTIONS)
