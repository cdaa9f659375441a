"""Weather, digital and geometric corruptions of the natural family, beyond the shared contract.

Closed forms checked against the operations ImageNet-C runs (scikit-image HSV, PIL resizes and
JPEG), the rng rule (draws never depend on the parameter), procedural frost, and the geometry
of rotation, scale and translation.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from medfm_robust_plugin import corrupt
from medfm_robust_plugin.corruptions.natural import digital, geometric, weather
from medfm_robust_plugin.engine import get_corruption

NAMES = [
    "snow",
    "frost",
    "fog",
    "spatter",
    "brightness",
    "contrast",
    "saturate",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
    "rotation",
    "scale",
    "translation",
]


def random_rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth colour blobs plus fine detail, float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((4, 4, 3)).astype(np.float32)
    import cv2

    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(smooth + 0.1 * rng.random((height, width, 3), dtype=np.float32), 0, 1)


@pytest.mark.parametrize("name", NAMES)
def test_random_draws_do_not_depend_on_the_parameter(name):
    """The same seed draws the same numbers at every strength, so only the amount changes."""
    spec = get_corruption(name)
    image = random_rgb(48, 40)
    states = []
    for param in (
        spec.param_for(strength=0.0),
        spec.param_for(severity=3),
        spec.param_for(strength=1.0),
    ):
        rng = np.random.default_rng(11)
        spec.function(image if spec.channels != "gray" else image[..., :1], param, rng)
        states.append(rng.bit_generator.state["state"]["state"])
    assert states[0] == states[1] == states[2], name


@pytest.mark.parametrize("name", NAMES)
def test_grey_and_colour_non_square_images(name):
    for shape in [(16, 16), (23, 57), (57, 23, 1), (40, 33, 3)]:
        image = random_rgb(shape[0], shape[1])[..., : (shape[2] if len(shape) == 3 else 1)] * 255
        image = image.astype(np.uint8).reshape(shape)
        out = corrupt(image, name, severity=4, seed=2)
        assert out.shape == image.shape and out.dtype == np.uint8, (name, shape)


@pytest.mark.parametrize(
    "name", ["snow", "frost", "fog", "spatter", "brightness", "elastic_transform"]
)
def test_strength_zero_leaves_the_image_as_it_is(name):
    image = (random_rgb(40, 48) * 255).astype(np.uint8)
    out = corrupt(image, name, strength=0.0, seed=4)
    assert np.abs(out.astype(int) - image).max() <= 1, name


def _skimage_hsv_shift(rgb: np.ndarray, channel: int, scale: float, offset: float) -> np.ndarray:
    from skimage.color import hsv2rgb, rgb2hsv

    hsv = rgb2hsv(rgb.astype(np.float64))
    hsv[..., channel] = np.clip(hsv[..., channel] * scale + offset, 0, 1)
    return hsv2rgb(hsv)


def _colours_with_greys_and_black() -> np.ndarray:
    image = random_rgb(30, 30, seed=5)
    image[:5] = image[:5].mean(axis=2, keepdims=True)  # grey rows: no hue
    image[5:7] = 0.0  # black rows: no saturation either
    return image


@pytest.mark.parametrize("shift", [0.1, 0.5])
def test_brightness_is_scikit_image_hsv_value_shift(shift):
    image = _colours_with_greys_and_black()
    ours = digital.brightness.function(image, shift, np.random.default_rng(0))
    expected = _skimage_hsv_shift(image, 2, 1.0, shift)
    np.testing.assert_allclose(ours, expected, atol=1e-5)


@pytest.mark.parametrize("param", [(0.1, 0.0), (5.0, 0.1), (20.0, 0.2)])
def test_saturate_is_scikit_image_hsv_saturation_change(param):
    image = _colours_with_greys_and_black()
    ours = digital.saturate.function(image, param, np.random.default_rng(0))
    expected = _skimage_hsv_shift(image, 1, *param)
    np.testing.assert_allclose(ours, expected, atol=1e-5)


@pytest.mark.parametrize("scale", [0.6, 0.4, 0.25])
@pytest.mark.parametrize("size", [(37, 53), (64, 64)])
def test_pixelate_is_pil_box_then_nearest(scale, size):
    image = (random_rgb(*size) * 255).astype(np.uint8)
    height, width = size
    pil = Image.fromarray(image).resize((int(width * scale), int(height * scale)), Image.BOX)
    expected = np.asarray(pil.resize((width, height), Image.NEAREST)).astype(np.float32)
    ours = digital.pixelate.function(image.astype(np.float32) / 255, scale, None) * 255
    # PIL rounds to 8 bits after each of its two passes; we keep float throughout
    assert np.abs(ours - expected).max() <= 1.0 + 1e-3


def test_jpeg_of_a_grey_image_is_pil_jpeg():
    grey = (random_rgb(40, 56)[..., :1] * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(grey[..., 0]).save(buffer, format="JPEG", quality=10)
    expected = np.asarray(Image.open(buffer))
    ours = corrupt(grey, "jpeg_compression", severity=4)
    assert np.array_equal(ours[..., 0], expected)


def test_frost_is_generated_not_read_and_looks_like_ice():
    first = weather._frost_texture(224, 224, np.random.default_rng(0))
    second = weather._frost_texture(224, 224, np.random.default_rng(1))
    assert first.shape == (224, 224) and not np.allclose(first, second)
    rgb = first[..., None] * weather.FROST_TINT
    red, green, blue = rgb.reshape(-1, 3).mean(axis=0)
    assert red < green < blue, "frost is tinted bluish white"
    # statistics of the frost photographs ImageNet-C blends, measured on its crops: mean
    # brightness 0.66-0.68, 7x7 local standard deviation 0.05-0.06
    assert 0.6 < rgb.mean() < 0.75
    import cv2

    local_mean = cv2.blur(first, (7, 7))
    local_std = np.sqrt(np.maximum(cv2.blur(first * first, (7, 7)) - local_mean**2, 0))
    assert 0.04 < local_std.mean() < 0.08


def test_frost_texture_covers_large_and_thin_images():
    for height, width in [(900, 300), (20, 700)]:
        texture = weather._frost_texture(height, width, np.random.default_rng(3))
        assert texture.shape == (height, width)
        assert texture.std() > 0.02


def test_fog_fractal_is_normalised_and_rough_at_low_decay():
    draws = np.random.default_rng(0).random(64 * 64 - 1, dtype=np.float32) * 2 - 1
    smooth = weather._plasma_fractal(64, 2.0, draws)
    rough = weather._plasma_fractal(64, 1.4, draws)
    for haze in (smooth, rough):
        assert haze.min() == 0.0 and haze.max() == pytest.approx(1.0)
    assert np.abs(np.diff(rough, axis=1)).mean() > np.abs(np.diff(smooth, axis=1)).mean()


def test_rotation_turns_about_the_centre_and_fills_black():
    image = np.zeros((41, 41, 1), np.float32)
    image[20, 20:] = 1.0  # a ray from the centre to the right edge
    out = geometric.rotation.function(image, 90.0, np.random.default_rng(0))
    assert out[20, 20, 0] == pytest.approx(1.0)
    column = out[:, 20, 0]
    assert column[:19].sum() > 15 or column[22:].sum() > 15, "the ray now points up or down"
    ones = np.ones((41, 41, 1), np.float32)
    turned = geometric.rotation.function(ones, 45.0, np.random.default_rng(0))
    assert turned[0, 0, 0] == 0.0 and turned[20, 20, 0] == pytest.approx(1.0)


def test_translation_shifts_by_the_fraction_and_pads_with_the_range_minimum():
    hu = np.full((50, 50), -1000, np.int16)
    hu[20:30, 20:30] = 400
    out = corrupt(hu, "translation", strength=1.0, seed=1)
    assert out.min() == -1000 and out.max() <= 400
    moved = np.argwhere(out > 0).mean(axis=0) - np.array([24.5, 24.5])
    limit = get_corruption("translation").param_range[1] * 50
    assert np.hypot(*moved) == pytest.approx(limit, abs=1.0)


def test_scale_zooms_in_or_out_from_the_centre():
    image = np.ones((60, 60, 1), np.float32)
    outs = [geometric.scale.function(image, 0.25, np.random.default_rng(seed)) for seed in range(8)]
    black_frames = [o[0, 0, 0] == 0.0 for o in outs]
    assert any(black_frames) and not all(black_frames), "both directions occur across seeds"
    for out in outs:
        assert out[30, 30, 0] == pytest.approx(1.0)
