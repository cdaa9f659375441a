"""Weather corruptions of the natural family (ImageNet-C severity constants).

In a clinic the "weather" is on the optics: condensation and frost on a cold lens or endoscope,
fog in a humid cavity, splashes of fluid or debris on the window, flakes of particulate. Each
function follows the ImageNet-C recipe (Hendrycks & Dietterich 2019) with its constants; frost
textures are generated from the rng instead of read from photographs.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..spec import Corruption, corruption

FAMILY = "natural"
IMAGENET_C = "Hendrycks & Dietterich 2019 (ImageNet-C)"
LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601, as OpenCV's RGB2GRAY


def _gaussian(field: np.ndarray, sigma: float, truncate: float, border: int) -> np.ndarray:
    """Gaussian smoothing with the kernel cut at ``truncate`` sigmas (scipy's convention)."""
    radius = int(truncate * sigma + 0.5)
    return cv2.GaussianBlur(field, (2 * radius + 1, 2 * radius + 1), sigma, borderType=border)


def _luma(image: np.ndarray) -> np.ndarray:
    """Grey level as H x W x 1 (the image itself when it is grey already)."""
    if image.shape[2] == 1:
        return image
    return (image @ LUMA)[..., None]


# --------------------------------------------------------------------------- snow


def _motion_trail(layer: np.ndarray, radius: int, sigma: float, degrees: float) -> np.ndarray:
    """Blur along one direction with a one-sided Gaussian trail of ``2 * radius + 1`` taps.

    Tap ``i`` reads the pixel ``i`` steps along ``degrees`` (rounded to the pixel grid), with
    weight ``exp(-i^2 / 2 sigma^2)``; edges are replicated (ImageNet-C's motion blur).
    """
    taps = np.arange(2 * radius + 1)
    weights = np.exp(-(taps**2) / (2.0 * sigma**2))
    weights /= weights.sum()
    angle = np.deg2rad(degrees)
    rows = np.ceil(taps * np.sin(angle) - 0.5).astype(int)
    cols = np.ceil(taps * np.cos(angle) - 0.5).astype(int)
    pad = len(taps)
    padded = cv2.copyMakeBorder(layer, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    height, width = layer.shape
    trail = np.zeros_like(layer)
    for weight, row, col in zip(weights.astype(np.float32), rows, cols):
        window = padded[pad + row : pad + row + height, pad + col : pad + col + width]
        trail += weight * window
    return trail


def _centre_zoom(layer: np.ndarray, factor: float) -> np.ndarray:
    """The central ``1 / factor`` of ``layer`` enlarged back to its size (bilinear).

    Corner pixels map onto corner pixels of the enlarged ``round(crop * factor)`` grid (as
    scipy's ``zoom`` does), whose top-left part is kept. The choice matters: centre-aligned
    sampling at a zoom of exactly 2 never lands on an original sample, which lowers the
    variance of the enlarged noise and so the number of flakes above the threshold.
    """
    height, width = layer.shape
    crop_h = min(height, int(np.ceil(height / factor)))
    crop_w = min(width, int(np.ceil(width / factor)))
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    crop = layer[top : top + crop_h, left : left + crop_w]
    step_y = (crop_h - 1) / max(round(crop_h * factor) - 1, 1)
    step_x = (crop_w - 1) / max(round(crop_w * factor) - 1, 1)
    output_to_crop = np.array([[step_x, 0.0, 0.0], [0.0, step_y, 0.0]])
    return cv2.warpAffine(
        crop,
        output_to_crop,
        (width, height),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )


@corruption(
    "snow",
    family=FAMILY,
    # (flake mean, flake spread, flake zoom, flake threshold, trail radius, trail sigma,
    #  share of the image kept under the white-out)
    severity_params=[
        (0.1, 0.3, 3.0, 0.5, 10, 4.0, 0.8),
        (0.2, 0.3, 2.0, 0.5, 12, 4.0, 0.7),
        (0.55, 0.3, 4.0, 0.9, 12, 8.0, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 12.0, 0.65),
        (0.55, 0.3, 2.5, 0.85, 12, 12.0, 0.55),
    ],
    param_range=((0.1, 0.3, 3.0, 1.5, 10, 4.0, 1.0), (0.55, 0.3, 2.5, 0.7, 12, 12.0, 0.45)),
    reference=IMAGENET_C,
)
def snow(image: np.ndarray, param: tuple, rng: np.random.Generator) -> np.ndarray:
    """Falling flakes: bright streaked specks over a whitened image.

    Models particulate or bright debris crossing the field of view and a washed-out, glaring
    exposure (Hendrycks & Dietterich 2019, ImageNet-C "snow"). Gaussian noise enlarged by the
    flake zoom, thresholded, smeared by a motion trail at a random steep angle, added once as
    drawn and once turned by 180 degrees; the image is first blended towards a brightened grey
    copy.
    """
    mean, spread, zoom, threshold, radius, sigma, kept = param
    height, width = image.shape[:2]
    flakes = rng.standard_normal((height, width), dtype=np.float32)
    degrees = rng.uniform(-135.0, -45.0)
    flakes = _centre_zoom(np.float32(mean) + np.float32(spread) * flakes, zoom)
    flakes = np.where(flakes < threshold, np.float32(0.0), np.minimum(flakes, np.float32(1.0)))
    flakes = _motion_trail(flakes, int(radius), sigma, degrees)
    snowfall = (flakes + flakes[::-1, ::-1])[..., None]
    whiteout = np.maximum(image, _luma(image) * np.float32(1.5) + np.float32(0.5))
    return np.float32(kept) * image + np.float32(1.0 - kept) * whiteout + snowfall


# --------------------------------------------------------------------------- fog


def _plasma_fractal(size: int, decay: float, draws: np.ndarray) -> np.ndarray:
    """Diamond-square fractal on a ``size`` x ``size`` torus (``size`` a power of 2), in [0, 1].

    Each level halves the grid pitch: cell centres take the mean of their four corners, edge
    midpoints the mean of their four diamond neighbours, each plus uniform noise whose
    amplitude falls by ``decay ** 2`` per level (ImageNet-C's "wibble"). ``draws`` holds
    ``size * size - 1`` uniform numbers in [-1, 1], consumed level by level.
    """
    grid = np.zeros((1, 1), np.float32)
    amplitude = np.float32(1.0)
    used = 0
    while grid.shape[0] < size:
        n = grid.shape[0]
        noise = draws[used : used + 3 * n * n].reshape(3, n, n) * amplitude
        used += 3 * n * n
        right = np.roll(grid, -1, axis=1)
        below = np.roll(grid, -1, axis=0)
        centres = (grid + right + below + np.roll(right, -1, axis=0)) * 0.25 + noise[0]
        upper = (grid + right + centres + np.roll(centres, 1, axis=0)) * 0.25 + noise[1]
        lefts = (grid + below + centres + np.roll(centres, 1, axis=1)) * 0.25 + noise[2]
        finer = np.empty((2 * n, 2 * n), np.float32)
        finer[0::2, 0::2] = grid
        finer[1::2, 1::2] = centres
        finer[0::2, 1::2] = upper
        finer[1::2, 0::2] = lefts
        grid = finer
        amplitude = np.float32(amplitude / decay**2)
    grid -= grid.min()
    return grid / max(float(grid.max()), 1e-12)


@corruption(
    "fog",
    family=FAMILY,
    # (fog density, roughness decay per octave)
    severity_params=[(1.5, 2.0), (2.0, 2.0), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4)],
    param_range=((0.0, 2.0), (4.0, 1.3)),
    reference=IMAGENET_C + "; Fournier et al. 1982 (diamond-square fractal)",
)
def fog(image: np.ndarray, param: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """Fog: a fractal haze added and the result rescaled, lowering contrast unevenly.

    Models lens condensation or fogging (a warm humid cavity on a colder endoscope) and
    scattered veiling light (Hendrycks & Dietterich 2019, ImageNet-C "fog"; plasma fractal of
    Fournier, Fussell & Carpenter 1982). The fractal covers the next power of 2 above the
    image size and is cropped to it.
    """
    density, decay = param
    height, width = image.shape[:2]
    side = 1 << max(int(np.ceil(np.log2(max(height, width)))), 1)
    draws = rng.random(side * side - 1, dtype=np.float32) * np.float32(2.0) - np.float32(1.0)
    haze = _plasma_fractal(side, decay, draws)[:height, :width]
    peak = float(image.max())
    gain = np.float32(peak / (peak + density)) if peak + density > 0 else np.float32(1.0)
    return (image + np.float32(density) * haze[..., None]) * gain


# --------------------------------------------------------------------------- spatter

WATER_RGB = np.array([175, 238, 238], np.float32) / 255.0  # pale turquoise
MUD_RGB = np.array([63, 42, 20], np.float32) / 255.0  # mud brown
EMBOSS = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], np.float32)


def _water_drops(liquid: np.ndarray, intensity: float) -> np.ndarray:
    """Shading of transparent drops: bright rims and an embossed relief inside each drop."""
    levels = (liquid * 255.0).astype(np.uint8)
    rims = cv2.Canny(levels, 50, 150)
    to_rim = cv2.distanceTransform(255 - rims, cv2.DIST_L2, 5)
    to_rim = cv2.blur(np.minimum(to_rim, np.float32(20.0)), (3, 3)).astype(np.uint8)
    relief = cv2.filter2D(cv2.equalizeHist(to_rim), cv2.CV_8U, EMBOSS)
    relief = cv2.blur(relief, (3, 3)).astype(np.float32)
    drops = liquid * relief
    peak = float(drops.max())
    return drops * np.float32(intensity / peak) if peak > 0 else drops


@corruption(
    "spatter",
    family=FAMILY,
    # (liquid mean, liquid spread, drop smoothing, drop threshold, drop intensity or mud
    #  smoothing, 0 = water / 1 = mud)
    severity_params=[
        (0.65, 0.3, 4.0, 0.69, 0.6, 0),
        (0.65, 0.3, 3.0, 0.68, 0.6, 0),
        (0.65, 0.3, 2.0, 0.68, 0.5, 0),
        (0.65, 0.3, 1.0, 0.65, 1.5, 1),
        (0.67, 0.4, 1.0, 0.65, 1.5, 1),
    ],
    param_range=((0.65, 0.3, 3.0, 0.68, 0.0, 0), (0.65, 0.3, 3.0, 0.62, 1.2, 0)),
    channels="rgb",
    reference=IMAGENET_C,
)
def spatter(image: np.ndarray, param: tuple, rng: np.random.Generator) -> np.ndarray:
    """Spatter on the lens: transparent water drops, or opaque mud splashes.

    Models fluid, blood or debris on the objective of an endoscope or camera (Hendrycks &
    Dietterich 2019, ImageNet-C "spatter"). A smoothed Gaussian field above a threshold marks
    the liquid; water is drawn as pale-turquoise embossed drops added to the image, mud as
    brown blots that cover it. The continuous strength stays with water drops and raises
    their intensity.
    """
    mean, spread, smoothing, threshold, intensity, is_mud = param
    height, width = image.shape[:2]
    liquid = rng.standard_normal((height, width), dtype=np.float32)
    liquid = _gaussian(
        np.float32(mean) + np.float32(spread) * liquid, smoothing, 4.0, cv2.BORDER_REPLICATE
    )
    liquid[liquid < threshold] = 0.0
    if is_mud:
        blots = _gaussian(
            (liquid > threshold).astype(np.float32), intensity, 4.0, cv2.BORDER_REPLICATE
        )
        blots[blots < 0.8] = 0.0
        cover = blots[..., None]
        return image * (1.0 - cover) + MUD_RGB * cover
    return image + _water_drops(liquid, intensity)[..., None] * WATER_RGB


# --------------------------------------------------------------------------- frost

FROST_TINT = np.array([0.84, 0.92, 1.0], np.float32)  # bluish white of ice on glass
# The frost is drawn on a plate with a short side drawn from FROST_PLATE_SIDE pixels (aspect
# FROST_PLATE_ASPECT) and crystals of a fixed pixel size; an image larger than the plate stretches
# it to cover, and PLATE_ENLARGEMENT always applies. ImageNet-C crops its frost photographs
# (short sides 315-600 px) the same way, so crystal size in pixels matches on every image size.
FROST_PLATE_SIDE = (315.0, 600.0)
FROST_PLATE_ASPECT = 1.6
PLATE_ENLARGEMENT = 1.1
DENDRITE_AREA = 700.0  # grid pixels per feathery crystal
DENDRITE_LENGTH = (15.0, 60.0)  # grid pixels
BRANCH_PAIRS = 6  # side branches on each side of a crystal's spine
BRANCH_SPREAD = (45.0, 70.0)  # degrees between spine and branches
GRAIN_AREA = 50.0  # grid pixels per small six-armed ice star
GRAIN_ARM = 3  # grid pixels
BRIGHTNESS_LEVELS = 4  # crystals are drawn in this many brightness groups
SUBPIXEL_BITS = 3
# texture = FILM_LEVEL + FILM_SWING * film + CRYSTAL_GAIN * (crystals + GLOW_GAIN * glow).
# The gains give the texture the reference photographs' brightness (mean 0.67) and local contrast
# (7x7 std about 0.05 at full and quarter resolution), so that mean SSIM to the clean image
# matches imagecorruptions 1.1.2 averaged over its frost photographs, on photographs of any size
# (tuned on skimage astronaut, coffee, chelsea, rocket; checked on held-out ones).
FILM_LEVEL, FILM_SWING, CRYSTAL_GAIN, GLOW_GAIN = 0.53, 0.2, 0.37, 0.4


def _dendrite_paths(
    rng: np.random.Generator, count: int, grid_h: int, grid_w: int
) -> tuple[np.ndarray, np.ndarray]:
    """Feathery ice crystals as polylines: a spine with pairs of side branches.

    Each path runs from the root up the spine and out and back along every branch (tips
    shorten towards the end of the spine, as in dendritic frost), so that one polyline draws
    one crystal. Returns the paths (count x points x 2, in x, y) and a brightness in [0, 1).
    """
    roots = rng.random((count, 2)) * (grid_w, grid_h)
    heading = rng.uniform(0.0, 2.0 * np.pi, count)
    length = rng.uniform(*DENDRITE_LENGTH, count)
    spread = np.deg2rad(rng.uniform(*BRANCH_SPREAD, count))
    branch_share = rng.uniform(0.4, 1.0, (count, BRANCH_PAIRS, 2))
    brightness = rng.random(count)

    along = (np.arange(BRANCH_PAIRS) + 1.0) / (BRANCH_PAIRS + 1.0)
    spine = np.stack([np.cos(heading), np.sin(heading)], axis=1)
    bases = roots[:, None] + (along[None, :] * length[:, None])[..., None] * spine[:, None]
    reach = 0.45 * length[:, None, None] * (1.0 - along)[None, :, None] * branch_share
    angles = heading[:, None, None] + np.array([-1.0, 1.0]) * spread[:, None, None]
    tips = bases[:, :, None] + reach[..., None] * np.stack([np.cos(angles), np.sin(angles)], -1)

    out_and_back = np.stack([bases, tips[:, :, 0], bases, tips[:, :, 1], bases], axis=2)
    paths = np.concatenate(
        [
            roots[:, None],
            out_and_back.reshape(count, -1, 2),
            (roots + length[:, None] * spine)[:, None],
        ],
        axis=1,
    )
    return paths, brightness


def _draw_crystals(canvas: np.ndarray, paths: np.ndarray, brightness: np.ndarray) -> None:
    """Anti-aliased one-pixel polylines, brighter crystals drawn last (on top)."""
    scale = 1 << SUBPIXEL_BITS
    points = np.round(paths * scale).astype(np.int32)[:, :, None, :]
    order = np.argsort(brightness)
    for level, group in enumerate(np.array_split(order, BRIGHTNESS_LEVELS)):
        value = 0.35 + 0.65 * (level + 0.5) / BRIGHTNESS_LEVELS
        cv2.polylines(canvas, list(points[group]), False, value, 1, cv2.LINE_AA, SUBPIXEL_BITS)


def _ice_star_kernel(rotation: float) -> np.ndarray:
    """A small six-armed star (three lines through the centre at 60 degrees)."""
    size = 2 * GRAIN_ARM + 1
    kernel = np.zeros((size, size), np.float32)
    scale = 1 << SUBPIXEL_BITS
    centre = GRAIN_ARM * scale
    for k in range(3):
        angle = rotation + k * np.pi / 3.0
        dx, dy = GRAIN_ARM * scale * np.cos(angle), GRAIN_ARM * scale * np.sin(angle)
        start = (int(round(centre - dx)), int(round(centre - dy)))
        end = (int(round(centre + dx)), int(round(centre + dy)))
        cv2.line(kernel, start, end, 1.0, 1, cv2.LINE_AA, SUBPIXEL_BITS)
    return kernel / kernel.max()


def _ice_grain(rng: np.random.Generator, grid_h: int, grid_w: int) -> np.ndarray:
    """Fine hoar frost: scattered seeds of random brightness, each grown into a small ice star."""
    count = max(int(grid_h * grid_w / (2 * GRAIN_AREA)), 1)  # per star orientation
    rows = rng.integers(0, grid_h, (2, count))
    cols = rng.integers(0, grid_w, (2, count))
    values = rng.random((2, count), dtype=np.float32)
    rotations = rng.uniform(0.0, np.pi / 3.0, 2)
    grain = np.zeros((grid_h, grid_w), np.float32)
    for row, col, value, rotation in zip(rows, cols, values, rotations):
        seeds = np.zeros((grid_h, grid_w), np.float32)
        seeds[row, col] = value
        grain += cv2.filter2D(seeds, -1, _ice_star_kernel(rotation))
    return grain


def _frost_texture(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Brightness of a frost layer (H x W, mostly in [0, 1]), drawn procedurally from ``rng``.

    A faint uneven film, feathery dendrites with a soft glow, and fine hoar grain, drawn on a
    plate of at most ``FROST_PLATE_SIDE`` pixels and enlarged over bigger images (as ImageNet-C
    stretches its frost photographs over images larger than them), so the cost stays bounded.
    """
    plate_short = rng.uniform(*FROST_PLATE_SIDE)
    plate_long = FROST_PLATE_ASPECT * plate_short
    plate_h, plate_w = (plate_short, plate_long) if width >= height else (plate_long, plate_short)
    zoom = PLATE_ENLARGEMENT * max(1.0, height / plate_h, width / plate_w)
    grid_h, grid_w = int(np.ceil(height / zoom)), int(np.ceil(width / zoom))
    count = max(int(grid_h * grid_w / DENDRITE_AREA), 1)
    paths, brightness = _dendrite_paths(rng, count, grid_h, grid_w)
    crystals = np.zeros((grid_h, grid_w), np.float32)
    _draw_crystals(crystals, paths, brightness)
    crystals += 0.5 * _ice_grain(rng, grid_h, grid_w)
    glow = cv2.blur(cv2.blur(crystals, (5, 5)), (5, 5))
    film_cells = rng.random((max(grid_h // 32, 2), max(grid_w // 32, 2)), dtype=np.float32)
    film = cv2.resize(film_cells, (grid_w, grid_h), interpolation=cv2.INTER_LINEAR)
    texture = FILM_LEVEL + FILM_SWING * film + CRYSTAL_GAIN * (crystals + GLOW_GAIN * glow)
    if (grid_h, grid_w) != (height, width):
        texture = cv2.resize(texture, (width, height), interpolation=cv2.INTER_LINEAR)
    return texture


@corruption(
    "frost",
    family=FAMILY,
    # (share of the image kept, share of frost added)
    severity_params=[(1.0, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)],
    param_range=((1.0, 0.0), (0.5, 0.9)),
    channels="rgb",
    reference=IMAGENET_C,
)
def frost(image: np.ndarray, param: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """Frost on the lens: ice crystals blended over a dimmed image.

    Models condensation freezing on cold optics or a cold window in front of the camera
    (Hendrycks & Dietterich 2019, ImageNet-C "frost", with its blend weights). ImageNet-C
    blends photographs of frost; here the frost is generated from the rng: feathery
    dendrites (a spine with shortening side branches), fine six-armed hoar grain and an
    uneven film, tinted bluish white, with brightness and local contrast like the
    reference's photographs (see ``FILM_LEVEL``).
    """
    kept, added = param
    texture = _frost_texture(image.shape[0], image.shape[1], rng)
    ice = cv2.merge([texture * np.float32(tint) for tint in FROST_TINT])
    return cv2.addWeighted(image, float(kept), ice, float(added), 0.0)


CORRUPTIONS: tuple[Corruption, ...] = (
    snow,
    fog,
    spatter,
    frost,
)
