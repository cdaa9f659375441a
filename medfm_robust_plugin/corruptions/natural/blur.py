"""Blur corruptions of the natural family (ImageNet-C severity constants).

Every function works on the unit domain (float32 H x W x C in [0, 1], C = 1 or 3) and on any
image size. Tables and the optics they model are read against Hendrycks & Dietterich, "Benchmarking
Neural Network Robustness to Common Corruptions and Perturbations", ICLR 2019, as released in
imagecorruptions 1.1.2 (``corruptions.py``); the deterministic ones (defocus, zoom, Gaussian) give
its pixels, the random ones (glass, motion) draw the same distributions from the caller's rng.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..spec import Corruption, corruption

FAMILY = "natural"
IMAGENET_C = "Hendrycks & Dietterich 2019 (ImageNet-C)"

GAUSSIAN_TRUNCATE = 4.0  # kernel half-width in sigmas, as scikit-image / scipy.ndimage
DISK_MIN_HALF_WIDTH = 8  # ImageNet-C draws small disks on a 17 x 17 grid
MAX_GLASS_ITERATIONS = 4  # shuffle passes drawn whatever the parameter (param_range's top)
MOTION_MAX_ANGLE = 45.0  # degrees either side of horizontal
DIRECT_FILTER_MAX_TAPS = 130  # OpenCV filters float kernels this large through a DFT
# From this many rows on, OpenCV's DFT beats the bands of direct filtering (measured at 512 and
# 1411 px: even at 25 x 25, 1.5x at 31 x 31, 8x at 61 x 61); ImageNet-C's disks stay below it.
DFT_MIN_ROWS = 25
ZOOM_STRIP_ROWS = 64


# --------------------------------------------------------------------------- shared filters


def _gaussian(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian filter as scikit-image's ``gaussian`` (truncate 4, edges replicated)."""
    if sigma <= 0:
        return image
    radius = int(GAUSSIAN_TRUNCATE * sigma + 0.5)
    size = 2 * radius + 1
    out = cv2.GaussianBlur(image, (size, size), sigma, borderType=cv2.BORDER_REPLICATE)
    return out.reshape(image.shape)


def _correlate(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``cv2.filter2D`` (centred kernel, reflect-101 edges), its DFT path only for large kernels.

    OpenCV switches to a DFT for float kernels of 130 taps or more, which for the defocus disks
    of ImageNet-C's table (up to 21 x 21) is several times slower than direct filtering.
    Negligible outer rings are cut first; a larger kernel is then split into bands of rows, each
    filtered directly and added. Kernels of DFT_MIN_ROWS rows or more (the larger radii of SSIM
    mode) go to the DFT, which is faster there.
    """
    kernel = _trim(kernel)
    height = image.shape[0]
    rows, cols = kernel.shape
    band_rows = max(1, (DIRECT_FILTER_MAX_TAPS - 1) // cols)
    if rows <= band_rows or rows >= DFT_MIN_ROWS:  # one call: direct, or OpenCV's own DFT
        return cv2.filter2D(image, -1, kernel).reshape(image.shape)
    half = rows // 2
    # Rows are padded here, columns by filter2D: the same reflect-101 extension as one call.
    padded = cv2.copyMakeBorder(image, half, half, 0, 0, cv2.BORDER_REFLECT_101)
    padded = padded.reshape(padded.shape[:2] + image.shape[2:])
    total = np.zeros(image.shape, dtype=np.float32)
    filtered = np.empty((height + band_rows - 1,) + image.shape[1:], dtype=np.float32)
    for start in range(0, rows, band_rows):
        band = np.ascontiguousarray(kernel[start : start + band_rows])
        span = height + band.shape[0] - 1
        out = cv2.filter2D(
            padded[start : start + span], -1, band, dst=filtered[:span], anchor=(cols // 2, 0)
        )
        np.add(total, out[:height].reshape(image.shape), out=total)
    return total


def _trim(kernel: np.ndarray, tolerance: float = 1e-7) -> np.ndarray:
    """The centred square part of ``kernel`` outside which every weight is below ``tolerance`` x max."""
    half = kernel.shape[0] // 2
    significant = np.nonzero(np.abs(kernel).max(axis=0) > tolerance * np.abs(kernel).max())[0]
    keep = max(half - int(significant[0]), int(significant[-1]) - half)
    return np.ascontiguousarray(
        kernel[half - keep : half + keep + 1, half - keep : half + keep + 1]
    )


# --------------------------------------------------------------------------- gaussian_blur


@corruption(
    "gaussian_blur",
    family=FAMILY,
    severity_params=[1.0, 2.0, 3.0, 4.0, 6.0],  # floats: fractional severities interpolate
    param_range=(0.0, 15.0),
    reference=IMAGENET_C,
)
def gaussian_blur(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian blur of standard deviation ``sigma`` pixels.

    The generic point-spread function of an imaging chain out of best focus or with a soft
    reconstruction kernel; ImageNet-C's extra (validation) blur.
    """
    return _gaussian(image, float(sigma))


# --------------------------------------------------------------------------- defocus_blur


def disk_kernel(radius: float, alias_sigma: float) -> np.ndarray:
    """A normalised pillbox of ``radius`` pixels, anti-aliased by a small Gaussian (ImageNet-C)."""
    half = max(DISK_MIN_HALF_WIDTH, math.ceil(radius))
    offsets = np.arange(-half, half + 1, dtype=np.float32)
    inside = offsets[None, :] ** 2 + offsets[:, None] ** 2 <= np.float32(radius) ** 2
    pillbox = inside.astype(np.float32)
    pillbox /= pillbox.sum()
    smoothing = (3, 3) if radius <= DISK_MIN_HALF_WIDTH else (5, 5)
    return cv2.GaussianBlur(pillbox, smoothing, sigmaX=alias_sigma)


@corruption(
    "defocus_blur",
    family=FAMILY,
    severity_params=[(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)],
    param_range=((0.0, 0.1), (30.0, 0.5)),  # float radii: continuous in strength (SSIM mode)
    reference=IMAGENET_C,
)
def defocus_blur(
    image: np.ndarray, param: tuple[int, float], rng: np.random.Generator
) -> np.ndarray:
    """Defocus blur: convolution with a pillbox (disk) of the given radius.

    Geometric optics of an out-of-focus lens: a point spreads into the circle of confusion of the
    aperture (Hecht, Optics, 5th ed., sec. 5.7). ``param`` is (disk radius in pixels, sigma of the
    anti-aliasing Gaussian), ImageNet-C's table.
    """
    radius, alias_sigma = float(param[0]), float(param[1])
    below = math.floor(radius)
    fraction = radius - below
    if fraction < 1e-6:
        return _correlate(image, disk_kernel(float(below), alias_sigma))
    # Between whole radii, the blend of the two disks' blurs (``_between_whole_radii``) is one
    # blur with the blend of the two disks: one convolution instead of two.
    inner, outer = disk_kernel(float(below), alias_sigma), disk_kernel(below + 1.0, alias_sigma)
    margin = (outer.shape[0] - inner.shape[0]) // 2
    blended = outer * np.float32(fraction)
    blended[margin : margin + inner.shape[0], margin : margin + inner.shape[1]] += (
        inner * np.float32(1.0 - fraction)
    )
    return _correlate(image, blended)


def _between_whole_radii(radius: float, blur_with):
    """``blur_with(radius)`` at a whole radius (ImageNet-C's tables); between two whole radii the
    blend of the two, weighted by where the radius lies between them.

    ImageNet-C's disks and trails only change at whole pixels (a disk of radius 0.99 is one pixel,
    1.0 five), so SSIM calibration, which moves the radius continuously, would see the image jump
    over a severity band between two neighbouring strengths. The blend is a rim of partly covered
    pixels: continuous in the radius, and the table's own kernels at whole radii.
    """
    below = math.floor(radius)
    fraction = radius - below
    if fraction < 1e-6:
        return blur_with(below)
    return (1.0 - fraction) * blur_with(below) + fraction * blur_with(below + 1)


# --------------------------------------------------------------------------- zoom_blur


def zoom_factors(stop: float, step: float) -> np.ndarray:
    """The zoom factors ImageNet-C averages: ``np.arange(1, stop, step)``."""
    return np.arange(1.0, float(stop), float(step))


def _zoom_axis(size: int, factor: float) -> tuple[float, float]:
    """(scale, offset) mapping an output index to the source coordinate along one axis.

    As ImageNet-C's centre crop of ceil(size / factor) pixels zoomed back by ``factor`` with
    first-order ``scipy.ndimage.zoom`` (corner-aligned grid), then cut to ``size``.
    """
    crop = math.ceil(size / factor)
    start = (size - crop) // 2
    zoomed = int(round(crop * factor))
    scale = (crop - 1) / (zoomed - 1) if zoomed > 1 else 0.0
    return scale, float(start)


def _zoom_maps(height: int, width: int, factor: float) -> np.ndarray:
    """The affine map from output to source pixel of one zoomed copy (ImageNet-C's crop)."""
    scale_y, top = _zoom_axis(height, factor)
    scale_x, left = _zoom_axis(width, factor)
    return np.array([[scale_x, 0.0, left], [0.0, scale_y, top]], dtype=np.float64)


@corruption(
    "zoom_blur",
    family=FAMILY,
    severity_params=[(1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03)],
    param_range=((1.0, 0.01), (2.0, 0.04)),
    reference=IMAGENET_C,
)
def zoom_blur(
    image: np.ndarray, param: tuple[float, float], rng: np.random.Generator
) -> np.ndarray:
    """Zoom (radial) blur: the image averaged with copies of itself zoomed about its centre.

    The streaks of a camera moving along its optical axis during the exposure (an endoscope
    advancing or withdrawing). ``param`` is (stop, step) of the zoom factors
    ``np.arange(1, stop, step)``, ImageNet-C's table; the clean image counts once more.
    """
    stop, step = param
    factors = zoom_factors(stop, step)
    height, width = image.shape[:2]
    # OpenCV warps 1- and 4-channel float images several times faster than 3-channel ones.
    planes = image[..., 0] if image.shape[2] == 1 else cv2.cvtColor(image, cv2.COLOR_RGB2RGBA)
    unzoomed = 1 + int(np.count_nonzero(factors == 1.0))  # the clean image, and factor 1
    total = planes * np.float32(unzoomed)
    maps = [_zoom_maps(height, width, float(f)) for f in factors if f != 1.0]
    # Strips of rows: the scratch layer stays in cache and no full-size layer is allocated.
    scratch = np.empty((min(ZOOM_STRIP_ROWS, height),) + planes.shape[1:], dtype=np.float32)
    for first in range(0, height, ZOOM_STRIP_ROWS):
        strip = total[first : first + ZOOM_STRIP_ROWS]
        rows = strip.shape[0]
        for to_source in maps:
            shifted = to_source.copy()
            shifted[1, 2] += to_source[1, 1] * first  # the strip's first row
            layer = cv2.warpAffine(
                planes,
                shifted,
                (width, rows),
                dst=scratch[:rows],
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_REPLICATE,
            )
            np.add(strip, layer.reshape(strip.shape), out=strip)
    total *= np.float32(1.0 / (len(factors) + 1))
    return total[..., None] if image.shape[2] == 1 else total[..., :3]


# --------------------------------------------------------------------------- motion_blur


def motion_taps(radius: int, sigma: float, angle_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """(offsets (n x 2, dy dx), weights) of ImageNet-C's motion kernel at ``angle_deg``.

    A one-sided Gaussian trail of 2 * radius + 1 taps of scale ``sigma`` along the direction of
    motion, each tap on the nearest pixel of the line through the origin.
    """
    width = 2 * int(radius) + 1
    steps = np.arange(width, dtype=np.float64)
    weights = np.exp(-(steps**2) / (2.0 * float(sigma) ** 2))
    weights /= weights.sum()
    angle = np.deg2rad(angle_deg)
    offsets = np.stack(
        [np.ceil(steps * np.sin(angle) - 0.5), np.ceil(steps * np.cos(angle) - 0.5)], axis=1
    ).astype(np.int64)
    return offsets, weights


def _trail(image: np.ndarray, offsets: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Sum of ``weights``-scaled copies of ``image`` sampled at ``offsets`` (edges replicated)."""
    height, width = image.shape[:2]
    # ImageNet-C stops the trail where it would leave the image (small images only).
    inside = (np.abs(offsets[:, 0]) < height) & (np.abs(offsets[:, 1]) < width)
    count = int(np.argmin(inside)) if not inside.all() else len(offsets)
    offsets, weights = offsets[:count], weights[:count]
    top, bottom = max(0, -offsets[:, 0].min()), max(0, offsets[:, 0].max())
    left, right = max(0, -offsets[:, 1].min()), max(0, offsets[:, 1].max())
    padded = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_REPLICATE)
    padded = padded.reshape(padded.shape[:2] + image.shape[2:])
    total = np.zeros_like(image)
    for (dy, dx), weight in zip(offsets, weights):
        window = padded[top + dy : top + dy + height, left + dx : left + dx + width]
        total = cv2.scaleAdd(window, float(weight), total, dst=total).reshape(image.shape)
    return total


@corruption(
    "motion_blur",
    family=FAMILY,
    severity_params=[(10, 3.0), (15, 5.0), (15, 8.0), (15, 12.0), (20, 15.0)],
    param_range=((0.0, 1.0), (60.0, 50.0)),  # float radii: continuous in strength (SSIM mode)
    reference=IMAGENET_C,
)
def motion_blur(
    image: np.ndarray, param: tuple[int, float], rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, float]]:
    """Linear motion blur in a random direction within 45 degrees of horizontal.

    The camera or the patient moving during the exposure smears each point along the path; the
    trail fades as a half Gaussian (ImageNet-C). ``param`` is (radius, sigma) of the trail in
    pixels, ImageNet-C's table; the direction is drawn uniformly and recorded.
    """
    radius, sigma = param
    angle = float(rng.uniform(-MOTION_MAX_ANGLE, MOTION_MAX_ANGLE))

    def blur_with(whole: int) -> np.ndarray:
        offsets, weights = motion_taps(int(whole), float(sigma), angle)
        return _trail(image, offsets, weights)

    return _between_whole_radii(float(radius), blur_with), {"angle_deg": angle}


# --------------------------------------------------------------------------- glass_blur


def glass_sweep_sources(shift_y: np.ndarray, shift_x: np.ndarray, margin: int) -> np.ndarray:
    """Where each pixel takes its value from after one ImageNet-C glass sweep (flat indices).

    ImageNet-C visits the pixels more than ``margin`` from the top/left edge and at most
    ``margin`` from the bottom/right one, from the bottom-right corner back to the top-left, and
    at each does ``x[p] = x[p + shift(p)]`` (on an RGB array its "swap" of two views copies the
    partner over the pixel). A pixel therefore takes the original value of its partner unless the
    partner was already visited, in which case it takes whatever that partner took: following
    those links to their end (pointer doubling) gives the sweep without the sequential loop.
    ``shift_y`` and ``shift_x`` (H x W, in [-margin, margin - 1]) are read inside the region only.
    """
    height, width = shift_y.shape
    sources = np.arange(height * width, dtype=np.int32).reshape(height, width)
    top, bottom = margin + 1, height - margin + 1
    left, right = margin + 1, width - margin + 1
    if bottom <= top or right <= left:
        return sources.ravel()
    dy = shift_y[top:bottom, left:right].astype(np.int32)
    dx = shift_x[top:bottom, left:right].astype(np.int32)
    partner = sources[top:bottom, left:right] + (dy * width + dx)
    # A partner later in the sweep order's reverse (below, or right on the same row) was visited
    # already when it lies inside the region.
    local_rows, local_cols = np.ogrid[top:bottom, left:right]
    partner_cols = local_cols + dx
    visited = (dy * width + dx > 0) & (local_rows + dy < bottom)
    visited &= (partner_cols >= left) & (partner_cols < right)
    region_width = right - left
    local = np.arange(dy.size, dtype=np.int32).reshape(dy.shape)
    link = np.where(visited, local + dy * region_width + dx, local).ravel()
    _follow_to_roots(link, np.flatnonzero(visited))
    sources[top:bottom, left:right] = partner.ravel()[link].reshape(dy.shape)
    return sources.ravel()


def _follow_to_roots(link: np.ndarray, active: np.ndarray) -> None:
    """Pointer doubling in place: every ``link[i]`` ends at the end of its chain (a self-link)."""
    while active.size:
        jumped = link[link[active]]
        moved = jumped != link[active]
        link[active] = jumped
        active = active[moved]


@corruption(
    "glass_blur",
    family=FAMILY,
    severity_params=[(0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)],
    param_range=((0.0, 0, 0), (5.0, 12, MAX_GLASS_ITERATIONS)),
    reference=IMAGENET_C,
)
def glass_blur(
    image: np.ndarray, param: tuple[float, int, int], rng: np.random.Generator
) -> np.ndarray:
    """Glass blur: Gaussian blur, local pixel shuffling, Gaussian blur again.

    The look of an image seen through frosted or textured glass (a scratched or fogged lens
    cover, a dirty endoscope window). ``param`` is (sigma, max_delta, iterations), ImageNet-C's
    table: each iteration sweeps the image moving every pixel's value from a random neighbour at
    most ``max_delta`` pixels away (offsets uniform in [-max_delta, max_delta - 1], as ImageNet-C).
    """
    sigma, max_delta, iterations = param
    max_delta, iterations = int(max_delta), int(iterations)
    height, width, channels = image.shape
    # Always the same draws (16-bit uniforms scaled to the offset range), whatever the parameter.
    draws = rng.integers(0, 1 << 16, size=(MAX_GLASS_ITERATIONS, 2, height, width), dtype=np.uint16)
    blurred = _gaussian(image, float(sigma))
    if max_delta <= 0 or iterations <= 0:
        return _gaussian(blurred, float(sigma))
    source = None
    for sweep in range(min(iterations, MAX_GLASS_ITERATIONS)):
        shift_y, shift_x = (_offsets(draws[sweep, k], max_delta) for k in (0, 1))
        step = glass_sweep_sources(shift_y, shift_x, max_delta)
        source = step if source is None else source[step]
    shuffled = np.take(blurred.reshape(height * width, channels), source, axis=0)
    return _gaussian(shuffled.reshape(image.shape), float(sigma))


def _offsets(draws: np.ndarray, max_delta: int) -> np.ndarray:
    """16-bit uniform draws -> integer offsets uniform in [-max_delta, max_delta - 1]."""
    scaled = draws.astype(np.int32)
    scaled *= 2 * max_delta
    scaled >>= 16
    scaled -= max_delta
    return scaled


CORRUPTIONS: tuple[Corruption, ...] = (
    gaussian_blur,
    defocus_blur,
    zoom_blur,
    motion_blur,
    glass_blur,
)
