"""Digital corruptions of the natural family (ImageNet-C severity constants).

Colour changes work in HSV the way ImageNet-C does (scikit-image's conversion), but without the
round trip: keeping hue and one of value/saturation fixed makes each change a closed form on the
RGB channels. Resampling and JPEG follow the PIL operations ImageNet-C applies.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..spec import Corruption, corruption

FAMILY = "natural"
IMAGENET_C = "Hendrycks & Dietterich 2019 (ImageNet-C)"


def _value(image: np.ndarray) -> np.ndarray:
    """HSV value: the brightest channel, kept as H x W x 1."""
    if image.shape[2] == 1:
        return image
    return np.maximum(np.maximum(image[..., 0:1], image[..., 1:2]), image[..., 2:3])


def _minimum(image: np.ndarray) -> np.ndarray:
    if image.shape[2] == 1:
        return image
    return np.minimum(np.minimum(image[..., 0:1], image[..., 1:2]), image[..., 2:3])


@corruption(
    "brightness",
    family=FAMILY,
    severity_params=[0.1, 0.2, 0.3, 0.4, 0.5],
    param_range=(0.0, 1.0),
    reference=IMAGENET_C,
)
def brightness(image: np.ndarray, shift: float, rng: np.random.Generator) -> np.ndarray:
    """Over-exposure: HSV value raised by ``shift``, hue and saturation kept.

    Models a too-bright exposure or display gain (Hendrycks & Dietterich 2019, ImageNet-C
    "brightness"). With hue and saturation fixed every channel scales with the value, so the
    result is ``channel * new_value / value``; black pixels become grey at the new value.
    """
    value = _value(image)
    lifted = np.minimum(value + np.float32(shift), np.float32(1.0))
    gain = lifted / np.maximum(value, np.float32(1e-12))
    return np.where(value > 0, image * gain, lifted)


@corruption(
    "contrast",
    family=FAMILY,
    severity_params=[0.4, 0.3, 0.2, 0.1, 0.05],
    param_range=(1.0, 0.0),
    reference=IMAGENET_C,
)
def contrast(image: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """Low contrast: each channel pulled towards its mean by ``factor`` (1 = unchanged).

    Models a flat window/level or a washed-out display (Hendrycks & Dietterich 2019, ImageNet-C
    "contrast").
    """
    means = np.array(cv2.mean(image)[: image.shape[2]], np.float32)
    return image * np.float32(factor) + means * np.float32(1.0 - factor)


@corruption(
    "saturate",
    family=FAMILY,
    severity_params=[(0.3, 0.0), (0.1, 0.0), (2.0, 0.0), (5.0, 0.1), (20.0, 0.2)],
    param_range=((1.0, 0.0), (30.0, 0.3)),
    channels="rgb",
    reference=IMAGENET_C,
)
def saturate(image: np.ndarray, param: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """Colour saturation changed: HSV saturation becomes ``clip(s * scale + offset, 0, 1)``.

    Models a mis-set camera colour gain or display saturation (Hendrycks & Dietterich 2019,
    ImageNet-C "saturate"; its first two severities desaturate, the last three oversaturate).
    With hue and value fixed every channel keeps its place between the brightest and the
    darkest, so ``channel = value - (value - channel) * new_s / s``. Grey pixels have no hue;
    like scikit-image's HSV conversion we read it as red, so an additive offset tints them red.
    """
    scale, offset = param
    value = _value(image)
    chroma = value - _minimum(image)
    saturation = chroma / np.maximum(value, np.float32(1e-12))
    new_saturation = np.clip(saturation * np.float32(scale) + np.float32(offset), 0.0, 1.0)
    # (value - channel) * new_s / s, with s = chroma / value
    spread = new_saturation * value / np.maximum(chroma, np.float32(1e-12))
    coloured = value - (value - image) * spread
    grey_as_red = value * (1.0 - new_saturation * np.array([0.0, 1.0, 1.0], np.float32))
    return np.where(chroma > 0, coloured, grey_as_red)


def _box_groups(size: int, new_size: int) -> tuple[np.ndarray, np.ndarray]:
    """First input index and pixel count of each output pixel of PIL's BOX down-sampling.

    PIL averages, with equal weights, the input pixels whose centres fall in the output
    pixel's span ``(k * ratio, (k + 1) * ratio]``. The membership test is done in double
    precision in the order PIL's resampler does it, so that ties at a boundary fall the way
    PIL's do (a pixel exactly on a boundary can belong to neither neighbour).
    """
    ratio = size / new_size
    inverse = 1.0 / ratio
    centres = (np.arange(new_size) + 0.5) * ratio
    first = np.maximum((centres - 0.5 * ratio + 0.5).astype(np.int64), 0)
    candidates = first[:, None] + np.arange(int(np.ceil(ratio)) + 2)
    position = ((candidates - centres[:, None]) + 0.5) * inverse
    inside = (position > -0.5) & (position <= 0.5) & (candidates < size)
    starts = candidates[np.arange(new_size), np.argmax(inside, axis=1)]
    return starts, inside.sum(axis=1)


def _sum_row_groups(padded: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Sums of consecutive rows ``starts[k] .. starts[k] + counts[k] - 1``.

    ``padded`` ends with one extra row of zeros that stands in for the rows a shorter group
    does not have. Whole-row gathers are contiguous copies, far faster than numpy's reductions
    along the first axis.
    """
    zero_row = padded.shape[0] - 1
    total = padded[starts]
    for offset in range(1, int(counts.max())):
        total += padded[np.where(counts > offset, starts + offset, zero_row)]
    return total


def _box_shrink(image: np.ndarray, new_h: int, new_w: int) -> np.ndarray:
    """PIL's BOX resize to a smaller size, in float (no 8-bit rounding)."""
    height, width = image.shape[:2]
    row_starts, row_counts = _box_groups(height, new_h)
    col_starts, col_counts = _box_groups(width, new_w)
    padded = cv2.copyMakeBorder(image, 0, 1, 0, 0, cv2.BORDER_CONSTANT, value=0)
    rows = _sum_row_groups(padded.reshape(height + 1, width, -1), row_starts, row_counts)
    turned = cv2.copyMakeBorder(cv2.transpose(rows), 0, 1, 0, 0, cv2.BORDER_CONSTANT, value=0)
    sums = _sum_row_groups(turned.reshape(width + 1, new_h, -1), col_starts, col_counts)
    counts = np.outer(row_counts, col_counts).astype(np.float32)[..., None]
    return cv2.transpose(sums).reshape(new_h, new_w, -1) / counts


@corruption(
    "pixelate",
    family=FAMILY,
    severity_params=[0.6, 0.5, 0.4, 0.3, 0.25],
    param_range=(1.0, 0.1),
    reference=IMAGENET_C,
    accepts_uint8=True,
)
def pixelate(image: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Pixelation: box-averaged down to ``scale`` of the size, then blown up by pixel repetition.

    Models a low-resolution acquisition or a thumbnail shown enlarged (Hendrycks & Dietterich
    2019, ImageNet-C "pixelate", which uses PIL's BOX then NEAREST resize).
    """
    height, width = image.shape[:2]
    small_h, small_w = max(int(height * scale), 1), max(int(width * scale), 1)
    if image.dtype == np.uint8:  # 8-bit input: PIL's own BOX and NEAREST, as the reference
        from PIL import Image

        pil = Image.fromarray(image[..., 0] if image.shape[2] == 1 else image)
        pil = pil.resize((small_w, small_h), Image.BOX).resize((width, height), Image.NEAREST)
        return np.asarray(pil).reshape(image.shape)
    small = _box_shrink(image, small_h, small_w)
    # OpenCV's exact nearest neighbour samples at pixel centres, as PIL's NEAREST does
    blown_up = cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST_EXACT)
    return blown_up.reshape(image.shape)


@corruption(
    "jpeg_compression",
    family=FAMILY,
    severity_params=[25, 18, 15, 10, 7],
    param_range=(95, 1),
    reference=IMAGENET_C,
    accepts_uint8=True,
)
def jpeg_compression(image: np.ndarray, quality: int, rng: np.random.Generator) -> np.ndarray:
    """JPEG compression at libjpeg ``quality`` (8-bit, 4:2:0 chroma for colour images).

    Models lossy storage or transfer of images (PACS export, telemedicine, web downloads)
    (Hendrycks & Dietterich 2019, ImageNet-C "jpeg_compression"; ITU-T T.81). OpenCV and PIL
    drive the same libjpeg with the same settings and give the same bytes; OpenCV is faster.
    """
    as_uint8 = image.dtype == np.uint8
    pixels = image if as_uint8 else cv2.convertScaleAbs(image, alpha=255.0)  # round, saturate
    colour = pixels.ndim == 3 and pixels.shape[2] == 3
    if colour:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for an image of shape {image.shape}")
    decoded = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
    if colour:
        decoded = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    if as_uint8:
        return decoded.reshape(image.shape)
    return np.multiply(decoded, np.float32(1.0 / 255.0), dtype=np.float32).reshape(image.shape)


@corruption(
    "elastic_transform",
    family=FAMILY,
    severity_params=[250 * 0.05, 250 * 0.065, 250 * 0.085, 250 * 0.1, 250 * 0.12],
    param_range=(0.0, 250 * 0.3),
    reference=IMAGENET_C + "; Simard et al. 2003 (elastic distortion)",
)
def elastic_transform(image: np.ndarray, alpha: float, rng: np.random.Generator) -> np.ndarray:
    """Elastic deformation: a smooth random displacement field of strength ``alpha``.

    Models soft-tissue deformation, breathing and non-rigid positioning differences (Simard et
    al. 2003, "Best practices for convolutional neural networks"; ImageNet-C
    "elastic_transform" as imagecorruptions 1.1.2 computes it). Uniform noise in
    +/- 0.5 % of the height per pixel, Gaussian-smoothed with sigma = 1 % of each side
    (truncated at 3 sigma, mirrored borders), times ``alpha``, then bilinear resampling with
    mirrored borders.
    """
    height, width = image.shape[:2]
    noise = rng.random((2, height, width), dtype=np.float32) * np.float32(2.0) - np.float32(1.0)
    sigma_y, sigma_x = 0.01 * height, 0.01 * width
    kernel = (2 * int(3 * sigma_x + 0.5) + 1, 2 * int(3 * sigma_y + 0.5) + 1)
    gain = np.float32(0.005 * height * alpha)
    grid_y, grid_x = np.indices((height, width), dtype=np.float32)
    shifts = []
    for field in noise:
        smooth = cv2.GaussianBlur(
            field, kernel, sigmaX=sigma_x, sigmaY=sigma_y, borderType=cv2.BORDER_REFLECT
        )
        shifts.append(smooth * gain)
    map_x, map_y = grid_x + shifts[0], grid_y + shifts[1]
    warped = cv2.remap(
        image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
    return warped.reshape(image.shape)


CORRUPTIONS: tuple[Corruption, ...] = (
    brightness,
    contrast,
    saturate,
    pixelate,
    jpeg_compression,
    elastic_transform,
)
