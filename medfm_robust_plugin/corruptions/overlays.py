"""Drawing helpers shared by the optical modalities (endoscopy, dermoscopy, pathology).

Every helper takes its random geometry already drawn (centres, radii, control points) or draws a
fixed number of values from ``rng``, so that a corruption's draws never depend on its strength:
the strength only chooses how many of the drawn objects show (``fractional_weights``) and how
strongly. Arrays are float32 H x W (masks in [0, 1]) or H x W x C images in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SUBPIXEL_BITS = 4  # cv2 drawing with fixed-point coordinates, so geometry moves smoothly
SUBPIXEL = 1 << SUBPIXEL_BITS


def fractional_weights(count: float, maximum: int) -> np.ndarray:
    """Weights of ``maximum`` drawn objects when ``count`` of them show: 1, ..., 1, a fraction, 0, ...

    The object at the boundary fades in, so that the artifact grows continuously with ``count``.
    """
    return np.clip(float(count) - np.arange(maximum, dtype=np.float32), 0.0, 1.0)


def smooth_field(shape: tuple[int, int], rng: np.random.Generator, cells: int = 6) -> np.ndarray:
    """Zero-mean, unit-variance smooth random field with about ``cells`` bumps along the short side.

    Drawn on a coarse grid and upsampled, so its cost barely depends on the image size.
    """
    h, w = shape
    short = min(h, w)
    grid = (max(2, round(cells * h / short)) + 2, max(2, round(cells * w / short)) + 2)
    coarse = rng.standard_normal(grid).astype(np.float32)
    field = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    return (field - field.mean()) / (field.std() + 1e-6)


def blend(image: np.ndarray, colour: np.ndarray | float, alpha: np.ndarray | float) -> np.ndarray:
    """Alpha-composite a colour (scalar, per channel or per pixel) over ``image``; ``alpha`` is a
    scalar or an H x W map."""
    a = np.asarray(alpha, np.float32)
    if a.ndim == 2:
        a = a[..., None]
    return image * (1.0 - a) + np.asarray(colour, np.float32) * a


def soft_edges(mask: np.ndarray, sigma: float) -> np.ndarray:
    """A mask with Gaussian-softened edges (``sigma`` in pixels; 0 leaves it as is)."""
    if sigma <= 0:
        return mask
    return cv2.GaussianBlur(mask, (0, 0), sigmaX=sigma)


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of an H x W x C image that keeps its channel axis (cv2 drops C = 1)."""
    if sigma <= 0:
        return image.copy()
    h, w = image.shape[:2]
    # A wide blur keeps no fine detail: blur a halved copy (or quartered...) and upsample.
    halvings = int(np.clip(np.floor(np.log2(sigma / 3.0)), 0, np.log2(min(h, w) / 16)))
    if halvings == 0:
        out = cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
        return out.reshape(image.shape)
    factor = 2**halvings
    small = cv2.resize(
        image, (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_AREA
    )
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=sigma / factor, borderType=cv2.BORDER_REFLECT)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR).reshape(image.shape)


# --------------------------------------------------------------------------- curves and spots


def bezier_points(control: np.ndarray, samples: int = 24) -> np.ndarray:
    """Points along quadratic Bezier curves: ``control`` is N x 3 x 2 (x, y), result N x samples x 2."""
    t = np.linspace(0.0, 1.0, samples, dtype=np.float32)[None, :, None]
    p0, p1, p2 = control[:, 0:1], control[:, 1:2], control[:, 2:3]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


def draw_curves(
    shape: tuple[int, int], curves: np.ndarray, widths: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """Anti-aliased polylines (N x samples x 2, pixel x/y) of the given widths, each at its weight.

    Drawn from the last object to the first so that a fully shown object covers a fading one.
    """
    canvas = np.zeros(shape, np.float32)
    for k in range(len(curves) - 1, -1, -1):
        if weights[k] <= 0:
            continue
        points = np.rint(curves[k] * SUBPIXEL).astype(np.int32)
        thickness = max(1, int(round(widths[k])))
        cv2.polylines(
            canvas, [points], False, float(weights[k]), thickness, cv2.LINE_AA, SUBPIXEL_BITS
        )
    return np.clip(canvas, 0.0, 1.0)


def draw_ellipses(
    shape: tuple[int, int],
    centres: np.ndarray,
    half_axes: np.ndarray,
    angles: np.ndarray,
    weights: np.ndarray,
) -> np.ndarray:
    """Filled anti-aliased ellipses (centres and half axes in pixels as x/y, angles in degrees)."""
    canvas = np.zeros(shape, np.float32)
    for k in range(len(centres) - 1, -1, -1):
        if weights[k] <= 0:
            continue
        centre = tuple(int(v) for v in np.rint(centres[k] * SUBPIXEL))
        axes = tuple(max(1, int(v)) for v in np.rint(half_axes[k] * SUBPIXEL))
        cv2.ellipse(
            canvas,
            centre,
            axes,
            float(angles[k]),
            0,
            360,
            float(weights[k]),
            -1,
            cv2.LINE_AA,
            SUBPIXEL_BITS,
        )
    return np.clip(canvas, 0.0, 1.0)


# --------------------------------------------------------------------------- bubbles


@dataclass(frozen=True)
class Bubbles:
    """Random bubbles: centres (x, y) and radii in pixels, drawn for the largest count."""

    centres: np.ndarray
    radii: np.ndarray

    @classmethod
    def draw(
        cls,
        shape: tuple[int, int],
        rng: np.random.Generator,
        maximum: int,
        radius: tuple[float, float],
    ) -> Bubbles:
        """``maximum`` bubbles with radii log-uniform in ``radius`` (fractions of the short side).

        Log-uniform radii give many small bubbles and a few large ones, as seen in fluid films.
        """
        h, w = shape
        unit = rng.uniform(0.0, 1.0, (maximum, 2))
        log_r = rng.uniform(np.log(radius[0]), np.log(radius[1]), maximum)
        centres = (unit * np.array([w, h])).astype(np.float32)
        radii = (np.exp(log_r) * min(h, w)).astype(np.float32)
        return cls(centres, np.maximum(radii, 1.5))


@dataclass(frozen=True)
class BubbleLayers:
    """What bubbles do to an image, as maps: where they are, their rims, highlights, refraction."""

    inside: np.ndarray  # 1 inside a bubble (anti-aliased edge)
    rim: np.ndarray  # the bright or dark ring at the interface
    highlight: np.ndarray  # the reflection of the light source on the cap
    shift_x: np.ndarray  # where each pixel samples from (refraction), pixel offsets
    shift_y: np.ndarray


def bubble_layers(
    shape: tuple[int, int],
    bubbles: Bubbles,
    weights: np.ndarray,
    rim_width: float = 0.12,
    magnification: float = 0.25,
) -> BubbleLayers:
    """Rasterise the weighted bubbles; ``rim_width`` is a fraction of each radius.

    A bubble acts as a weak lens: inside, the image is sampled closer to the centre
    (magnified by ``1 / (1 - magnification)``). Only a window around each bubble is computed.
    """
    h, w = shape
    inside = np.zeros(shape, np.float32)
    rim = np.zeros(shape, np.float32)
    highlight = np.zeros(shape, np.float32)
    shift_x = np.zeros(shape, np.float32)
    shift_y = np.zeros(shape, np.float32)
    for k in range(len(bubbles.radii)):
        weight = float(weights[k])
        if weight <= 0:
            continue
        (cx, cy), r = bubbles.centres[k], float(bubbles.radii[k])
        reach = r * 1.3 + 2
        y0, y1 = max(0, int(cy - reach)), min(h, int(cy + reach) + 1)
        x0, x1 = max(0, int(cx - reach)), min(w, int(cx + reach) + 1)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32) + 0.5
        dx, dy = xx - cx, yy - cy
        dist = np.sqrt(dx**2 + dy**2)
        disc = np.clip(r - dist + 0.5, 0.0, 1.0)
        ring_sigma = max(rim_width * r, 0.6)
        ring = np.exp(-0.5 * ((dist - r * (1 - rim_width)) / ring_sigma) ** 2) * disc
        hx, hy = cx - 0.35 * r, cy - 0.4 * r
        spot = np.exp(-0.5 * ((xx - hx) ** 2 + (yy - hy) ** 2) / max(0.12 * r, 0.5) ** 2)
        window = (slice(y0, y1), slice(x0, x1))
        inside[window] = np.maximum(inside[window], weight * disc)
        rim[window] = np.maximum(rim[window], weight * ring)
        highlight[window] = np.maximum(highlight[window], weight * spot)
        # Refraction: sample towards the centre, fading out at the rim.
        pull = weight * magnification * disc * (1 - (dist / r) ** 2).clip(0, 1)
        shift_x[window] -= pull * dx
        shift_y[window] -= pull * dy
    return BubbleLayers(np.clip(inside, 0, 1), np.clip(rim, 0, 1), highlight, shift_x, shift_y)


def displace(image: np.ndarray, shift_x: np.ndarray, shift_y: np.ndarray) -> np.ndarray:
    """Resample ``image`` at (x + shift_x, y + shift_y) with bilinear interpolation."""
    h, w = shift_x.shape
    grid_y, grid_x = np.mgrid[0:h, 0:w].astype(np.float32)
    out = cv2.remap(
        image,
        grid_x + shift_x,
        grid_y + shift_y,
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT,
    )
    return out.reshape(image.shape)
