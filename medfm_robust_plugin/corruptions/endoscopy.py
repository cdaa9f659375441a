"""Endoscopy corruptions (family 'endoscopy'): the artefact classes of clinical video endoscopy.

The classes follow the EAD challenge taxonomy (Ali et al. 2020, "An objective comparison of
detection and segmentation algorithms for artefacts in clinical endoscopy", Sci. Rep. 10:2748):
specularity, bubbles, saturation, contrast (fog) and motion blur; EAD2020 added blood (Ali et al.
2021, "Deep learning for detection and segmentation of artefact and disease instances in
gastrointestinal endoscopy", Med. Image Anal. 70:102002). The light source sits at the scope tip,
next to the camera, which is why highlights are many, small and pure white.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..image import luma
from . import overlays
from .registering import registers
from .spec import Corruption, corruption

FAMILY = "endoscopy"
MODALITIES = ["endoscopy"]
EAD = "Ali et al. 2020, Sci. Rep. 10:2748 (EAD artefact classes)"
EAD2020 = "Ali et al. 2021, Med. Image Anal. 70:102002 (EAD2020 class blood)"

MAX_HIGHLIGHTS = 64
MAX_BUBBLES = 72
WHITE = np.float32(1.0)
# Absorbance of a blood film per unit thickness in R, G, B (natural log): haemoglobin absorbs
# green and blue strongly (Soret and Q bands) and lets red through (Prahl, optical spectra of Hb).
BLOOD_ABSORBANCE = np.array([0.25, 1.9, 1.6], np.float32)
DISPLAY_GAMMA = 2.2


def field_of_view(image: np.ndarray) -> np.ndarray:
    """Soft mask of the scope's image circle: everything but the near-black frame at the border.

    The frame is a property of the optics, fixed on the sensor, so artefacts in front of the lens
    never show in it. Dark regions that do not touch the border (the lumen) stay in view.
    """
    brightness = luma(image) if image.shape[2] == 3 else image[..., 0]
    dark = (brightness <= 0.04).astype(np.uint8)
    _, labels = cv2.connectedComponents(dark, connectivity=4)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    frame = np.isin(labels, border[border > 0])
    view = overlays.soft_edges((~frame).astype(np.float32), 1.0)
    view[frame] = 0.0  # soften the edge inwards only: the frame itself stays untouched
    return view


def _keep_frame(corrupted: np.ndarray, image: np.ndarray) -> np.ndarray:
    view = field_of_view(image)[..., None]
    return corrupted * view + image * (1.0 - view)


@corruption(
    "endoscopy_specular_reflection",
    family=FAMILY,
    modalities=MODALITIES,
    severity_params=[(12, 1.5), (22, 2.0), (30, 2.4), (39, 2.8), (48, 3.2)],
    param_range=((0.0, 1.0), (64.0, 4.0)),
    reference=EAD,
)
def endoscopy_specular_reflection(
    image: np.ndarray, param: tuple[float, float], rng: np.random.Generator
) -> np.ndarray:
    """Specular highlights: saturated white spots and streaks on wet mucosa.

    The coaxial light at the scope tip is mirrored by the mucus film wherever the surface faces the
    camera, giving clipped white cores with a soft halo (EAD class 'specularity'; Ali et al. 2020;
    Arnold et al. 2010, "Automatic segmentation and inpainting of specular highlights for
    endoscopic imaging"). ``param`` = (number of highlights, size factor).
    """
    count, size = param
    h, w = image.shape[:2]
    short = min(h, w)
    centres = rng.uniform(0, 1, (MAX_HIGHLIGHTS, 2)) * np.array([w, h])
    major = np.exp(rng.uniform(np.log(0.006), np.log(0.035), MAX_HIGHLIGHTS)) * short
    aspect = rng.uniform(1.0, 3.0, MAX_HIGHLIGHTS)
    angles = rng.uniform(0, 180, MAX_HIGHLIGHTS)
    half_axes = np.stack([major, major / aspect], axis=1) * size
    weights = overlays.fractional_weights(count, MAX_HIGHLIGHTS)
    core = overlays.draw_ellipses((h, w), centres, half_axes, angles, weights)
    halo = overlays.soft_edges(core, max(0.012 * short * size, 0.5))
    alpha = np.clip(core + 1.5 * halo, 0.0, 1.0) * field_of_view(image)
    return overlays.blend(image, WHITE, alpha)


@corruption(
    "endoscopy_bubbles",
    family=FAMILY,
    modalities=MODALITIES,
    severity_params=[5, 15, 26, 38, 53],
    param_range=(0.0, float(MAX_BUBBLES)),  # floats: the count fades in continuously
    reference=EAD,
)
def endoscopy_bubbles(image: np.ndarray, count: float, rng: np.random.Generator) -> np.ndarray:
    """Air bubbles in the irrigation fluid or mucus film in front of the mucosa.

    Each bubble is a thin lens with a bright refracting rim and a mirror highlight of the scope's
    light (EAD class 'bubbles'; Ali et al. 2020). ``count`` bubbles are shown, radii log-uniform
    between 2 % and 12 % of the short side (many small, a few large).
    """
    shape = image.shape[:2]
    bubbles = overlays.Bubbles.draw(shape, rng, MAX_BUBBLES, (0.02, 0.12))
    weights = overlays.fractional_weights(count, MAX_BUBBLES)
    layers = overlays.bubble_layers(shape, bubbles, weights, rim_width=0.1, magnification=0.2)
    out = overlays.displace(image, layers.shift_x, layers.shift_y)
    out = overlays.blend(out, WHITE, 0.15 * layers.inside)
    out = overlays.blend(out, np.float32(0.95), 0.8 * layers.rim)
    out = overlays.blend(out, WHITE, np.clip(1.2 * layers.highlight, 0, 1))
    return _keep_frame(out, image)


@corruption(
    "endoscopy_blood",
    family=FAMILY,
    modalities=MODALITIES,
    channels="rgb",
    severity_params=[(0.18, 0.7), (0.32, 1.3), (0.44, 1.8), (0.56, 2.2), (0.7, 2.8)],
    param_range=((0.0, 0.0), (0.9, 3.6)),
    reference=EAD2020,
)
def endoscopy_blood(
    image: np.ndarray, param: tuple[float, float], rng: np.random.Generator
) -> np.ndarray:
    """Blood on the mucosa or lens: red, semi-transparent pools that absorb green and blue.

    A film of thickness ``d`` transmits exp(-d * absorbance) per channel (Beer-Lambert), with
    haemoglobin's absorbance high in green and blue, so thin blood looks red and thick blood dark red
    (EAD2020 class 'blood'; Ali et al. 2021). ``param`` = (area fraction covered, peak thickness).
    """
    coverage, depth = param
    shape = image.shape[:2]
    field = overlays.smooth_field(shape, rng, cells=4)
    pooling = overlays.smooth_field(shape, rng, cells=10)
    if coverage <= 0 or depth <= 0:
        return image.copy()
    threshold = float(np.quantile(field[::4, ::4], 1.0 - min(coverage, 1.0)))
    extent = np.clip((field - threshold) / 0.35, 0.0, 1.0)
    thickness = depth * extent * np.clip(0.75 + 0.25 * pooling, 0.3, 1.2)
    return image * np.exp(-thickness[..., None] * BLOOD_ABSORBANCE)


@corruption(
    "endoscopy_over_saturation",
    family=FAMILY,
    modalities=MODALITIES,
    severity_params=[1.35, 1.65, 1.95, 2.25, 2.7],
    param_range=(1.0, 5.0),
    reference=EAD,
)
def endoscopy_over_saturation(
    image: np.ndarray, gain: float, rng: np.random.Generator
) -> np.ndarray:
    """Over-exposure: the auto-exposure loop overshoots when the scope tip nears the wall.

    Light falls off with distance squared, so tissue close to the tip is flooded; the sensor clips,
    and charge overflowing saturated pixels blooms into their neighbours, whitening them (EAD class
    'saturation'; Ali et al. 2020). ``gain`` is the exposure factor at the hot spot.
    """
    h, w = image.shape[:2]
    centre = rng.uniform(0.25, 0.75, 2) * np.array([w, h])
    spread = rng.uniform(0.35, 0.6) * min(h, w)
    along_x = np.exp(-0.5 * ((np.arange(w, dtype=np.float32) + 0.5 - centre[0]) / spread) ** 2)
    along_y = np.exp(-0.5 * ((np.arange(h, dtype=np.float32) + 0.5 - centre[1]) / spread) ** 2)
    hot_spot = np.outer(along_y, along_x).astype(np.float32)  # a separable Gaussian
    exposure = image * (1.0 + (gain - 1.0) * (0.5 + 0.5 * hot_spot))[..., None]
    overflow = np.clip(exposure - 1.0, 0.0, None).mean(axis=2)
    bloom = overlays.soft_edges(overflow.astype(np.float32), max(0.01 * min(h, w), 0.5))
    return _keep_frame(np.clip(exposure + bloom[..., None], 0.0, 1.0), image)


@corruption(
    "endoscopy_lens_fog",
    family=FAMILY,
    modalities=MODALITIES,
    severity_params=[0.16, 0.27, 0.4, 0.6, 0.85],
    param_range=(0.0, 1.0),
    reference=EAD,
)
def endoscopy_lens_fog(image: np.ndarray, density: float, rng: np.random.Generator) -> np.ndarray:
    """Lens fogging: condensation on the cold distal lens scatters light into a bright, soft haze.

    The droplet film both blurs the image and adds veiling light from the scope's own lamp, lowering
    contrast unevenly (EAD class 'contrast'; Ali et al. 2020; Lawrentschuk et al. 2010, "Laparoscopic
    lens fogging: a review of etiology and methods to maintain a clear visual field").
    ``density`` in [0, 1] is the fog's mean opacity.
    """
    h, w = image.shape[:2]
    patchiness = overlays.smooth_field((h, w), rng, cells=3)
    veil_tint = rng.uniform(0.82, 0.92)
    opacity = np.clip(density * (0.85 + 0.25 * patchiness), 0.0, 1.0)
    blurred = overlays.gaussian_blur(image, density * 0.05 * min(h, w))
    veil = np.float32(0.5 * veil_tint + 0.5 * float(image.mean()))
    return _keep_frame(overlays.blend(blurred, veil, opacity), image)


@corruption(
    "endoscopy_motion_smear",
    family=FAMILY,
    modalities=MODALITIES,
    severity_params=[0.02, 0.04, 0.08, 0.14, 0.22],
    param_range=(0.0, 0.4),
    reference=EAD,
)
def endoscopy_motion_smear(
    image: np.ndarray, length: float, rng: np.random.Generator
) -> np.ndarray:
    """Motion smear from fast scope movement during the exposure of a frame.

    The camera sweeps along one direction while the shutter is open; integrating in linear light
    turns highlights into bright streaks, and the trailing part of the sweep is dimmer as the
    lamp-to-tissue distance grows (EAD class 'blur'; Ali et al. 2020). ``length`` is the
    sweep as a fraction of the short side.
    """
    angle = rng.uniform(0.0, np.pi)
    decay = rng.uniform(0.5, 1.0)
    pixels = length * min(image.shape[:2])
    if pixels < 0.5:
        return image.copy()
    kernel = sweep_kernel(pixels, angle, decay)
    linear = np.power(np.clip(image, 0, 1), DISPLAY_GAMMA)
    smeared = cv2.filter2D(linear, -1, kernel, borderType=cv2.BORDER_REFLECT).reshape(image.shape)
    return _keep_frame(np.power(np.clip(smeared, 0, 1), 1 / DISPLAY_GAMMA), image)


def sweep_kernel(length: float, angle: float, decay: float) -> np.ndarray:
    """A normalised line kernel of ``length`` pixels at ``angle``, weighted exp(-t / decay) along it.

    Samples are splatted bilinearly, so the kernel changes continuously with ``length``.
    """
    radius = int(np.ceil(length / 2)) + 1
    size = 2 * radius + 1
    t = np.linspace(0.0, 1.0, max(2, int(np.ceil(length * 3))), dtype=np.float32)
    weights = np.exp(-t / decay)
    x = radius + (t - 0.5) * length * np.cos(angle)
    y = radius + (t - 0.5) * length * np.sin(angle)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    kernel = np.zeros((size, size), np.float32)
    for dy, dx, share in (
        (0, 0, (1 - fx) * (1 - fy)),
        (0, 1, fx * (1 - fy)),
        (1, 0, (1 - fx) * fy),
        (1, 1, fx * fy),
    ):
        np.add.at(
            kernel, (np.clip(y0 + dy, 0, size - 1), np.clip(x0 + dx, 0, size - 1)), weights * share
        )
    return kernel / kernel.sum()


CORRUPTIONS: tuple[Corruption, ...] = (
    endoscopy_specular_reflection,
    endoscopy_bubbles,
    endoscopy_blood,
    endoscopy_over_saturation,
    endoscopy_lens_fog,
    endoscopy_motion_smear,
)
register_corruptions = registers(CORRUPTIONS)
