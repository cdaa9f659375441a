"""Retinal imaging corruptions (family 'fundus'): fundus photography, SLO and OCT.

En-face images (colour fundus photographs, scanning-laser ophthalmoscopy, OCT projections) and
OCT B-scans share the eye and its optics: floaters and eyelids cast shadows, the eye moves during
a scan, the camera defocuses, illumination is uneven through a small pupil, and coherent OCT light
adds speckle. Corruptions that only make sense for one acquisition declare only that modality.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d

from .registering import registers
from .spec import Corruption, corruption
from .ultrasound import speckle_amplitude

FAMILY = "fundus"
RETINA = ["fundus", "oct"]
SHEN_2020 = (
    "Shen et al., Modeling and enhancing low-quality retinal fundus images, IEEE TMI 2021 "
    "(arXiv 2020)"
)
ASRANI_2014 = (
    "Asrani et al., Artifacts in spectral-domain OCT measurements in glaucoma, JAMA Ophthalmol 2014"
)
MAX_FLOATERS = 12
MAX_VESSELS = 16
SHADOW_CANVAS = 160  # pixels across the shorter side for drawing soft shadows
# The camera aperture (see field_of_view): brighter than the surround by APERTURE_LEVEL of the
# surround-to-retina contrast, a disc filling APERTURE_MIN_FILL of its enclosing circle and
# APERTURE_MIN_SHARE of the image, leaving a surround of at least APERTURE_MIN_SURROUND.
APERTURE_LEVEL = 0.1
APERTURE_MIN_CONTRAST = 0.08
APERTURE_MIN_FILL = 0.8
APERTURE_MIN_SHARE = 0.2
APERTURE_MIN_SURROUND = 0.02


def _smoothstep(x: np.ndarray) -> np.ndarray:
    t = np.clip(x, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def field_of_view(image: np.ndarray) -> np.ndarray:
    """1 inside the circular camera aperture, 0 on its dark surround; all ones when there is none.

    A fundus camera images the retina through a round field stop, so the photograph is a bright
    disc (sometimes cut off at the top and bottom) on a black surround. The disc is the largest
    region brighter than the surround by a tenth of the way to the typical retina, with its dark
    holes (vessels, fovea, shadows) filled. It counts as an aperture only when it fills its
    enclosing circle, within the frame, the way a disc does (a B-scan's layers do not), and leaves a
    surround of some size; otherwise every pixel is in view.
    """
    h, w = image.shape[:2]
    everything = np.ones((h, w), np.float32)
    # the channels' maximum, pairwise: numpy's reduction over a last axis of 3 is 15x slower
    brightness = functools.reduce(np.maximum, [image[..., c] for c in range(image.shape[2])])
    brightness = brightness.astype(np.float32, copy=False)
    surround, retina = np.percentile(brightness[:: max(1, h // 256), :: max(1, w // 256)], [2, 75])
    if retina - surround < APERTURE_MIN_CONTRAST:
        return everything
    lit = (brightness > surround + APERTURE_LEVEL * (retina - surround)).astype(np.uint8)
    speck = max(3, round(min(h, w) / 200)) | 1
    lit = cv2.morphologyEx(lit, cv2.MORPH_OPEN, np.ones((speck, speck), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(lit, connectivity=8)
    if count < 2:
        return everything
    disc = (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
    # Fill the holes: what of the dark part the border cannot reach lies inside the disc.
    outside = np.pad(1 - disc, 1, constant_values=1)
    reach = np.zeros((h + 4, w + 4), np.uint8)
    cv2.floodFill(outside, reach, (0, 0), 2)
    disc = (outside[1:-1, 1:-1] != 2).astype(np.uint8)
    area = float(disc.sum())
    if not APERTURE_MIN_SHARE <= area / (h * w) <= 1.0 - APERTURE_MIN_SURROUND:
        return everything
    contours, _ = cv2.findContours(disc, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    (cx, cy), radius = cv2.minEnclosingCircle(max(contours, key=cv2.contourArea))
    circle = float(pixels_in_circle(h, w, cx, cy, radius))
    if area < APERTURE_MIN_FILL * circle:
        return everything
    return disc.astype(np.float32)


def field_box(aperture: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the camera's field: the aperture's bounding box, or the frame
    when the whole frame is in view. Where things fall on the retina is placed in this box, so a
    photograph framed with more or less surround is corrupted alike."""
    h, w = aperture.shape[:2]
    if aperture.all():
        return 0, 0, h, w
    rows = np.flatnonzero(aperture.any(axis=1))
    columns = np.flatnonzero(aperture.any(axis=0))
    if rows.size == 0:
        return 0, 0, h, w
    return (
        int(rows[0]),
        int(columns[0]),
        int(rows[-1] - rows[0] + 1),
        int(columns[-1] - columns[0] + 1),
    )


def field_diameter(aperture: np.ndarray) -> float:
    """The camera's field across, in pixels: the aperture's widest extent (a disc cut off at the
    top and bottom keeps its horizontal diameter), or the frame's shorter side when the whole
    frame is in view. Optical blur is a fraction of the field, however the photograph is framed."""
    if aperture.all():
        return float(min(aperture.shape[:2]))
    _, _, height, width = field_box(aperture)
    return float(max(height, width))


def pixels_in_circle(h: int, w: int, cx: float, cy: float, radius: float) -> int:
    """How many pixel centres (x, y) of an h x w frame have (x - cx)^2 + (y - cy)^2 <= radius^2.

    Counted a row at a time: each row's run of pixels inside is found from the chord and its
    ends are settled by the inequality itself, as written, so the count is that of testing every
    pixel, at the cost of a few operations per row.
    """
    rows = np.arange(h, dtype=np.float64)
    dy2 = (rows - cy) ** 2
    r2 = float(radius) ** 2
    half = np.sqrt(np.maximum(r2 - dy2, 0.0))
    lo = np.ceil(cx - half)
    hi = np.floor(cx + half)

    def inside(x: np.ndarray) -> np.ndarray:
        return (x - cx) ** 2 + dy2 <= r2

    for _ in range(2):  # rounding of the chord moves an end by at most a pixel
        lo = np.where(inside(lo - 1.0), lo - 1.0, lo)
        lo = np.where(~inside(lo) & (lo <= hi), lo + 1.0, lo)
        hi = np.where(inside(hi + 1.0), hi + 1.0, hi)
        hi = np.where(~inside(hi) & (hi >= lo), hi - 1.0, hi)
    lo = np.maximum(lo, 0.0)
    hi = np.minimum(hi, float(w - 1))
    return int(np.maximum(hi - lo + 1.0, 0.0)[r2 - dy2 >= 0.0].sum())


def _keep_surround(out: np.ndarray, image: np.ndarray, aperture: np.ndarray) -> np.ndarray:
    """The corrupted retina inside the camera aperture, the untouched surround outside it.

    ``out`` is the caller's own new array: the surround is copied back into it in place.
    """
    out = np.asarray(out, dtype=np.result_type(out, image))
    np.copyto(out, image, where=aperture[..., None] <= 0)
    return out


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur that keeps the channel axis (cv2 drops a single channel)."""
    if sigma <= 0:
        return image.copy()
    out = cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
    return out.reshape(image.shape)


# --------------------------------------------------------------------------- shadows


@corruption(
    "fundus_shadow",
    family=FAMILY,
    modalities=["fundus"],
    # (opacity of the darkest floater shadow, number of floaters; the last one fades in)
    severity_params=[(0.45, 1.5), (0.6, 2.5), (0.7, 3.5), (0.8, 5.0), (0.9, 7.0)],
    param_range=((0.0, 1.0), (1.0, MAX_FLOATERS)),
    reference="Milston, Madigan & Sebag, Vitreous floaters: etiology, diagnostics, and management, "
    "Surv Ophthalmol 2016; Bartling et al., Automated quality evaluation of digital fundus "
    "photographs, Acta Ophthalmol 2009",
)
def fundus_shadow(image: np.ndarray, param: tuple[float, float], rng: np.random.Generator):
    """Floater shadows: soft dark strands and blobs cast on the retina by vitreous opacities.

    Condensed vitreous fibres, Weiss rings and haemorrhage in the vitreous lie in front of the
    retina and block part of the illumination, so the photograph shows blurred, dark, curved shapes
    that hide the vessels beneath (Milston et al. 2016; Bartling et al. 2009 list them among the
    artefacts that make a fundus image ungradable). ``param`` is (opacity, floater count).
    """
    opacity, count = param
    h, w = image.shape[:2]
    aperture = field_of_view(image)
    top, left, field_h, field_w = field_box(aperture)
    control = rng.uniform(0.1, 0.9, (MAX_FLOATERS, 3, 2))  # Bezier control points in the field
    widths = rng.uniform(0.02, 0.08, MAX_FLOATERS)  # fractions of the field's shorter side
    softness = rng.uniform(0.015, 0.04, MAX_FLOATERS)  # out of focus: the vitreous is far
    weights = np.clip(count - np.arange(MAX_FLOATERS), 0.0, 1.0)
    # Shadows have no fine detail: draw them on a canvas of at most SHADOW_CANVAS pixels across.
    scale = min(1.0, SHADOW_CANVAS / min(h, w))
    ch, cw = max(round(h * scale), 1), max(round(w * scale), 1)
    short = min(field_h, field_w) * scale
    t = np.linspace(0.0, 1.0, 24, dtype=np.float32)[None, :, None]
    curves = (
        (1 - t) ** 2 * control[:, :1] + 2 * (1 - t) * t * control[:, 1:2] + t**2 * control[:, 2:]
    )
    curves = (curves * np.array([field_w, field_h]) + np.array([left, top])) * scale
    curves = curves.astype(np.float32)
    shadow = np.zeros((ch, cw), np.float32)
    for curve, width, soft, weight in zip(curves, widths, softness, weights, strict=True):
        if weight <= 0:
            continue
        strand = np.zeros((ch, cw), np.float32)
        points = np.rint(curve * 16).astype(np.int32)  # 4 fractional bits: sub-pixel geometry
        cv2.polylines(strand, [points], False, 1.0, max(1, round(width * short)), cv2.LINE_AA, 4)
        strand = cv2.GaussianBlur(strand, (0, 0), sigmaX=max(soft * short, 0.5))
        shadow = np.maximum(shadow, weight * strand / max(float(strand.max()), 1e-6))
    if scale < 1.0:
        shadow = cv2.resize(shadow, (w, h), interpolation=cv2.INTER_LINEAR)
    # The floaters shade the retina; the camera's black surround is no part of the eye.
    return _keep_surround(image * (1.0 - opacity * shadow)[..., None], image, aperture)


@corruption(
    "fundus_vessel_shadow",
    family=FAMILY,
    modalities=["oct"],
    # (fraction of the OCT signal lost under a vessel, number of shadowing vessels)
    severity_params=[(0.45, 2.5), (0.6, 4.0), (0.75, 6.0), (0.85, 8.0), (0.95, 11.0)],
    param_range=((0.0, 1.0), (1.0, MAX_VESSELS)),
    reference="Ray, Stinnett & Jaffe, Evaluation of image artifact produced by optical coherence "
    "tomography of retinal pathology, Am J Ophthalmol 2005; " + ASRANI_2014,
)
def fundus_vessel_shadow(image: np.ndarray, param: tuple[float, float], rng: np.random.Generator):
    """OCT vessel shadowing: vertical signal voids under hyper-reflective retinal vessels (B-scan).

    Blood in the superficial vessels scatters and absorbs the probe beam, so every A-scan through
    a vessel loses signal below it: a dark column beneath a bright vessel cross-section (Ray et al.
    2005). ``param`` is (signal loss, vessel count; the last one fades in).
    """
    loss, count = param
    h, w = image.shape[:2]
    vessels = rng.uniform(0.0, 1.0, (MAX_VESSELS, 3))  # column, depth, calibre
    weights = np.clip(count - np.arange(MAX_VESSELS), 0.0, 1.0)
    rows = (np.arange(h, dtype=np.float32) + 0.5)[:, None]
    shadow = np.zeros((h, w), np.float32)
    lumen = np.zeros((h, w), np.float32)
    for (col_u, depth_u, calibre_u), weight in zip(vessels, weights, strict=True):
        if weight <= 0:
            continue
        column, depth = (0.05 + 0.9 * col_u) * w, (0.15 + 0.3 * depth_u) * h
        radius = max((0.008 + 0.017 * calibre_u) * w, 0.75)
        # Only the A-scans within 1.5 radii of the vessel centre change.
        first, last = max(int(column - 1.5 * radius), 0), min(int(column + 1.5 * radius) + 2, w)
        columns = (np.arange(first, last, dtype=np.float32) + 0.5)[None, :]
        across = _smoothstep((radius - np.abs(columns - column)) / (0.5 * radius) + 0.5)
        below = _smoothstep((rows - depth) / radius)
        blob = _smoothstep(1.5 - np.hypot(columns - column, rows - depth) / radius)  # vessel lumen
        band = (slice(None), slice(first, last))
        shadow[band] = np.maximum(shadow[band], weight * across * below)
        lumen[band] = np.maximum(lumen[band], weight * blob)
    out = image * (1.0 - loss * shadow)[..., None]
    return out + (loss * 0.6 * lumen)[..., None] * (1.0 - out)


@corruption(
    "fundus_blink",
    family=FAMILY,
    modalities=RETINA,
    # Fraction of the image height covered by the eyelid / lost to the blink.
    severity_params=[0.1, 0.18, 0.26, 0.35, 0.45],
    param_range=(0.0, 0.8),
    reference="Bartling et al., Automated quality evaluation of digital fundus photographs, "
    "Acta Ophthalmol 2009; " + ASRANI_2014,
)
def fundus_blink(image: np.ndarray, coverage: float, rng: np.random.Generator):
    """Eyelid / blink artefact: a dark band with a curved, soft edge entering from the top or bottom.

    A drooping lid or lashes block part of the pupil during the flash, darkening a band of the
    photograph with a curved edge (Bartling et al. 2009); in an OCT volume a blink blanks the
    B-scans acquired while the eye was closed, a dark band across the en-face projection (Asrani
    et al. 2014). The lid lets a little light through; ``coverage`` is the band's mean height.
    """
    h, w = image.shape[:2]
    aperture = field_of_view(image)
    top, left, field_h, field_w = field_box(aperture)  # the lid crosses the field, not the frame
    from_top = rng.uniform() < 0.75  # the upper lid droops far more often
    curvature = rng.uniform(0.3, 0.9)  # lid margin bulges towards the pupil
    centre = rng.uniform(0.3, 0.7)
    transmission = rng.uniform(0.05, 0.2)
    edge_width = rng.uniform(0.02, 0.05) * field_h
    x = (np.arange(w, dtype=np.float32) + 0.5 - left) / field_w
    margin = (
        coverage * field_h * (1.0 + curvature * (0.25 - (x - centre) ** 2) * 2)
    )  # lid edge, per column
    depth = np.arange(h, dtype=np.float32)[:, None] + 0.5 - top
    if not from_top:
        depth = field_h - depth
    covered = _smoothstep((margin[None, :] - depth) / edge_width)  # none at all when coverage is 0
    out = image * (1.0 - (1.0 - transmission) * covered)[..., None]
    return _keep_surround(out, image, aperture), {"from_top": from_top}


# --------------------------------------------------------------------------- motion and optics


@corruption(
    "fundus_motion",
    family=FAMILY,
    modalities=RETINA,
    # Largest eye displacement during the scan, as a fraction of the image width.
    severity_params=[0.01, 0.02, 0.04, 0.07, 0.11],
    param_range=(0.0, 0.25),
    reference="Kraus et al., Motion correction in optical coherence tomography volumes on a per "
    "A-scan basis using orthogonal scan patterns, Biomed Opt Express 2012; " + ASRANI_2014,
)
def fundus_motion(image: np.ndarray, displacement: float, rng: np.random.Generator):
    """Eye motion during a line scan: rows displaced by drift and sudden saccades.

    OCT and scanning-laser ophthalmoscopes build an image line by line over tens of milliseconds;
    fixational drift bends the rows and microsaccades shift every later row at once, breaking
    vessels into offset segments (Kraus et al. 2012; Asrani et al. 2014). The eye trace (smoothed
    random walk plus steps at random rows) is drawn once and scaled to ``displacement``.
    """
    h, w = image.shape[:2]
    drift = np.cumsum(rng.standard_normal((h, 2)), axis=0)
    drift = gaussian_filter1d(drift, sigma=max(h / 30, 1.0), axis=0, mode="nearest")
    saccade_rows = rng.integers(0, h, 4)
    saccade_steps = rng.standard_normal((4, 2)) * 3.0
    trace = drift - drift.mean(axis=0)
    for row, step in zip(saccade_rows, saccade_steps, strict=True):
        trace[row:] += step
    trace = trace - trace.mean(axis=0)
    trace /= max(float(np.abs(trace).max()), 1e-6)
    shift = (displacement * w * trace).astype(np.float32)  # (dx, dy) per row, pixels
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    map_x = xx + shift[:, None, 0]
    map_y = yy + 0.5 * shift[:, None, 1]  # slow-axis motion is smaller than fast-axis
    out = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return out.reshape(image.shape), {"saccade_rows": saccade_rows}


@corruption(
    "fundus_defocus",
    family=FAMILY,
    modalities=RETINA,
    # Radius of the blur circle, as a fraction of the field's diameter (``field_diameter``).
    severity_params=[0.006, 0.012, 0.02, 0.03, 0.045],
    param_range=(0.0, 0.15),
    reference="Goodman, Introduction to Fourier Optics, 3rd ed. 2005 (defocus aberration); "
    + SHEN_2020,
)
def fundus_defocus(image: np.ndarray, radius_fraction: float, rng: np.random.Generator):
    """Defocus: the retina imaged out of focus, each point spread over a uniform blur circle.

    Uncorrected refractive error or a wrong focus setting puts the retina off the camera's focal
    plane; in geometric optics the point spread function is a uniform disc whose radius grows with
    the focus error (Goodman). Blur is the most common reason fundus photographs are
    rejected (Shen et al. 2020). The disc kernel has an anti-aliased rim, so blur grows smoothly.
    """
    aperture = field_of_view(image)
    radius = radius_fraction * field_diameter(aperture)
    reach = int(np.ceil(radius + 1))
    yy, xx = np.mgrid[-reach : reach + 1, -reach : reach + 1].astype(np.float32)
    kernel = np.clip(radius + 0.5 - np.hypot(xx, yy), 0.0, 1.0)
    kernel /= kernel.sum()
    if aperture.all():
        out = cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT)
        return out.reshape(image.shape)
    # Only the retina is defocused: a normalised convolution averages retina pixels alone, so the
    # black surround does not bleed in and darken the rim, and the surround itself stays.
    inside = cv2.filter2D(image * aperture[..., None], -1, kernel, borderType=cv2.BORDER_REFLECT)
    weight = cv2.filter2D(aperture, -1, kernel, borderType=cv2.BORDER_REFLECT)
    out = inside.reshape(image.shape) / np.maximum(weight, 1e-6)[..., None]
    return _keep_surround(out, image, aperture)


@corruption(
    "fundus_uneven_illumination",
    family=FAMILY,
    modalities=RETINA,
    # Log-gain range of the illumination field: exp(+-g) at its brightest and darkest points.
    severity_params=[0.45, 0.7, 0.95, 1.25, 1.6],
    param_range=(0.0, 4.0),
    reference=SHEN_2020,
)
def fundus_uneven_illumination(image: np.ndarray, gain: float, rng: np.random.Generator):
    """Uneven illumination: a smooth multiplicative light field, bright on one side, dim on another.

    A small or decentred pupil and an off-axis flash light the retina unevenly: one side is washed
    out, the other falls into shadow, and dark rims appear at the field edge. Shen et al. (2020)
    model this degradation as a smooth luminance field multiplying the image; here the field is a
    tilt plus two Gaussian hot/cold spots, scaled so its log spans +-``gain``.
    """
    h, w = image.shape[:2]
    aperture = field_of_view(image)
    top, left, field_h, field_w = field_box(aperture)  # the light field spans the camera's field
    yy = ((np.arange(h, dtype=np.float32) + 0.5 - top) / field_h - 0.5)[:, None]
    xx = ((np.arange(w, dtype=np.float32) + 0.5 - left) / field_w - 0.5)[None, :]
    tilt_angle = rng.uniform(0, 2 * np.pi)
    spots = rng.uniform(-0.4, 0.4, (2, 2))  # centres (x, y)
    spot_sizes = rng.uniform(0.12, 0.3, 2)
    spot_signs = np.array([1.0, -1.0]) * rng.choice([-1.0, 1.0])
    log_field = np.cos(tilt_angle) * xx + np.sin(tilt_angle) * yy
    # each spot is a Gaussian of x times one of y: two vectors and one outer product each
    for (cx, cy), size, sign in zip(spots, spot_sizes, spot_signs, strict=True):
        across = np.exp(-0.5 * (xx - cx) ** 2 / size**2)
        down = sign * np.exp(-0.5 * (yy - cy) ** 2 / size**2)
        log_field = log_field + down * across
    # centred and scaled over the retina: the surround is kept, whatever the field does there
    inside = log_field if aperture.all() else log_field[aperture > 0.5]
    centre = inside.mean()
    spread = float(np.abs(inside - centre).max())
    log_field -= centre
    log_field /= max(spread, 1e-6)
    out = image * np.exp(gain * log_field)[..., None]
    return _keep_surround(out, image, aperture)


@corruption(
    "fundus_haze",
    family=FAMILY,
    modalities=["fundus"],
    # Fraction of the light scattered by the media (cataract, corneal oedema) into a veil.
    severity_params=[0.1, 0.2, 0.32, 0.45, 0.62],
    param_range=(0.0, 0.95),
    reference="Peli & Peli, Restoration of retinal images obtained through cataracts, IEEE TMI "
    "1989; " + SHEN_2020,
)
def fundus_haze(image: np.ndarray, scattered: float, rng: np.random.Generator):
    """Media haze (cataract): a whitish veil of scattered light over a slightly blurred retina.

    Opacities of the lens scatter part of the light both ways: the retinal image loses contrast
    under a broad, bright veil and the remaining light is blurred (Peli & Peli 1989's model of the
    image through a cataract: attenuated, low-passed image plus a smooth veiling component).
    The veil stays inside the camera aperture; the blur is a fraction of the field's diameter.
    """
    h, w = image.shape[:2]
    tint = np.array([1.0, 0.95, 0.8], np.float32) * rng.uniform(0.75, 0.95)  # warm, lens-yellowed
    tint = tint[: image.shape[2]] if image.shape[2] == 3 else tint[:1]
    coarse = rng.standard_normal((4, 4)).astype(np.float32)  # a veil has no detail: 4 x 4 knots
    unevenness = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)[..., None]
    veil_shape = np.clip(1.0 + 0.15 * unevenness, 0.5, 1.5)
    aperture = field_of_view(image)
    blurred = _blur(image, scattered * 0.012 * field_diameter(aperture))
    veil = scattered * tint * veil_shape
    return _keep_surround((1.0 - scattered) * blurred + veil, image, aperture)


# --------------------------------------------------------------------------- OCT speckle


@corruption(
    "fundus_speckle",
    family=FAMILY,
    modalities=["oct"],
    # Weight of the fully developed speckle pattern (1 = exponential intensity, contrast 1).
    severity_params=[0.15, 0.3, 0.45, 0.65, 0.95],
    param_range=(0.0, 1.6),
    reference="Schmitt, Xiang & Yung, Speckle in optical coherence tomography, J Biomed Opt 1999; "
    "Burckhardt, Speckle in ultrasound B-mode scans, IEEE Trans. Sonics Ultrason. 1978",
)
def fundus_speckle(image: np.ndarray, weight: float, rng: np.random.Generator):
    """OCT speckle: multiplicative interference grain of coherent detection.

    OCT detects the coherent sum of light back-scattered within each resolution voxel, so the
    intensity of a homogeneous layer is the reflectivity times an exponentially distributed speckle
    variable (Schmitt et al. 1999; the same statistics as Burckhardt 1978). Grains are shorter
    axially (coherence length) than laterally (beam waist). ``weight`` blends in the pattern.
    """
    amplitude = speckle_amplitude(image.shape[:2], rng, grain=(0.5, 1.0))
    intensity = amplitude**2 / float(np.mean(amplitude**2))
    factor = np.maximum(1.0 + weight * (intensity - 1.0), 0.0)
    return image * factor[..., None]


CORRUPTIONS: tuple[Corruption, ...] = (
    fundus_shadow,
    fundus_vessel_shadow,
    fundus_blink,
    fundus_motion,
    fundus_defocus,
    fundus_uneven_illumination,
    fundus_haze,
    fundus_speckle,
)
register_corruptions = registers(CORRUPTIONS)
