"""Dermoscopy corruptions (family 'dermoscopy'): artefacts of contact and non-contact dermatoscopes.

Hair, glare, the dark corners of the scope's circular aperture, air bubbles in the immersion gel
and printed ruler scales are the artefacts that dermoscopy datasets (PH2, ISIC) are known for and
that lesion-segmentation pipelines remove first (Mendonca et al. 2013, "PH2 - A dermoscopic image
database for research and benchmarking", IEEE EMBC; Bissoto et al. 2019, "(De)Constructing bias
on skin lesion datasets", CVPR Workshops, who annotated hair, dark corners, gel bubbles, rulers
and ink in ISIC).
"""

from __future__ import annotations

import numpy as np

from . import overlays
from .registering import registers
from .spec import Corruption, corruption

FAMILY = "dermoscopy"
MODALITIES = ["dermoscopy"]
GLARE = "Mendonca et al. 2013 (PH2); Benvenuto-Andrade et al. 2007 (glare)"

MAX_HAIRS = 80
MAX_GLARES = 24
LED_COUNT = 8
MAX_GEL_BUBBLES = 90
MM_PER_CM = 10


@corruption(
    "dermoscopy_hair",
    family=FAMILY,
    modalities=MODALITIES,
    severity_params=[5, 13, 21, 33, 47],
    param_range=(0.0, float(MAX_HAIRS)),  # floats: the count fades in continuously
    reference="Lee et al. 1997 (DullRazor); Mendonca et al. 2013 (PH2)",
)
def dermoscopy_hair(image: np.ndarray, count: float, rng: np.random.Generator) -> np.ndarray:
    """Hair: dark, thin, curved strands lying over the lesion.

    Terminal hairs between lens and skin occlude the pigment network; their removal is the classic
    first step of dermoscopy analysis (Lee et al. 1997, "DullRazor: a software approach to hair
    removal from images", Comput. Biol. Med. 27:533; Mendonca et al. 2013). ``count`` hairs are
    shown, each a quadratic curve 30-90 % of the short side long.
    """
    h, w = image.shape[:2]
    short = min(h, w)
    start = rng.uniform(-0.1, 1.1, (MAX_HAIRS, 2)) * np.array([w, h])
    heading = rng.uniform(0.0, 2 * np.pi, MAX_HAIRS)
    length = rng.uniform(0.3, 0.9, MAX_HAIRS) * short
    bend = rng.uniform(-0.3, 0.3, MAX_HAIRS) * length
    widths = rng.uniform(0.004, 0.011, MAX_HAIRS) * short
    opacity = rng.uniform(0.75, 1.0, MAX_HAIRS)
    melanin = rng.uniform(0.0, 1.0)
    direction = np.stack([np.cos(heading), np.sin(heading)], axis=1)
    normal = np.stack([-direction[:, 1], direction[:, 0]], axis=1)
    middle = start + direction * (length / 2)[:, None] + normal * bend[:, None]
    end = start + direction * length[:, None]
    curves = overlays.bezier_points(np.stack([start, middle, end], axis=1).astype(np.float32))
    weights = overlays.fractional_weights(count, MAX_HAIRS) * opacity
    strands = overlays.draw_curves((h, w), curves, widths, weights)
    # Dark brown to black: eumelanin-rich hair absorbs across the visible range.
    hair_colour = np.array([0.16, 0.11, 0.08], np.float32) * (0.4 + 0.8 * melanin)
    if image.shape[2] == 1:
        hair_colour = hair_colour.mean(keepdims=True)
    return overlays.blend(image, hair_colour, strands)


@corruption(
    "dermoscopy_light_reflection",
    family=FAMILY,
    modalities=MODALITIES,
    severity_params=[0.1, 0.25, 0.45, 0.7, 1.0],
    param_range=(0.0, 1.0),
    reference=GLARE,
)
def dermoscopy_light_reflection(
    image: np.ndarray, amount: float, rng: np.random.Generator
) -> np.ndarray:
    """Light reflection: white glare patches and the mirrored ring of the scope's LEDs.

    Without full immersion (or with non-polarised light), the stratum corneum and the contact
    plate reflect the illumination specularly: soft saturated patches on the skin plus a ring of
    LED images around the field centre (Mendonca et al. 2013; Benvenuto-Andrade et al. 2007,
    "Differences between polarized light dermoscopy and immersion contact dermoscopy for the
    evaluation of skin lesions", Arch. Dermatol. 143:329). ``amount`` in [0, 1] sets how many
    glare patches show and how bright the LED ring is.
    """
    h, w = image.shape[:2]
    short = min(h, w)
    centres = rng.uniform(0.1, 0.9, (MAX_GLARES, 2)) * np.array([w, h])
    major = rng.uniform(0.04, 0.14, MAX_GLARES) * short
    aspect = rng.uniform(1.0, 2.5, MAX_GLARES)
    angles = rng.uniform(0.0, 180.0, MAX_GLARES)
    ring_centre = (0.5 + rng.uniform(-0.05, 0.05, 2)) * np.array([w, h])
    ring_radius = rng.uniform(0.3, 0.42) * short
    ring_phase = rng.uniform(0.0, 2 * np.pi)
    half_axes = np.stack([major, major / aspect], axis=1)
    glare = overlays.draw_ellipses(
        (h, w),
        centres,
        half_axes,
        angles,
        overlays.fractional_weights(amount * MAX_GLARES, MAX_GLARES),
    )
    theta = ring_phase + 2 * np.pi * np.arange(LED_COUNT) / LED_COUNT
    leds = ring_centre + ring_radius * np.stack([np.cos(theta), np.sin(theta)], axis=1)
    led_size = np.full((LED_COUNT, 2), 0.022 * short)
    led_weight = np.full(LED_COUNT, min(1.0, 2.0 * amount))
    ring = overlays.draw_ellipses((h, w), leds, led_size, np.zeros(LED_COUNT), led_weight)
    halo = overlays.soft_edges(np.maximum(glare, ring), max(0.02 * short, 0.5))
    alpha = np.clip(1.6 * halo, 0.0, 1.0)
    # Reflected light adds to what the skin returns: a pixel brighter than the glare stays as it is.
    return np.maximum(overlays.blend(image, np.float32(0.98), alpha), image)


@corruption(
    "dermoscopy_dark_corners",
    family=FAMILY,
    modalities=MODALITIES,
    severity_params=[0.37, 0.47, 0.54, 0.6, 0.66],
    param_range=(0.0, 1.0),
    reference="Mendonca et al. 2013 (PH2); Bissoto et al. 2019 (dark corners)",
)
def dermoscopy_dark_corners(
    image: np.ndarray, extent: float, rng: np.random.Generator
) -> np.ndarray:
    """Dark corners: the dermatoscope's circular aperture vignettes a rectangular sensor.

    The scope's lens tube leaves the image corners black, with a soft edge and optical fall-off
    towards it (Bissoto et al. 2019 annotate these 'dark corners' in ISIC). ``extent`` in [0, 1]
    shrinks the aperture from beyond the corners (clean) to a quarter of the half-diagonal.
    """
    h, w = image.shape[:2]
    offset = rng.uniform(-0.06, 0.06, 2)
    softness = rng.uniform(0.05, 0.12)
    ellipticity = rng.uniform(0.95, 1.05)
    floor = rng.uniform(0.0, 0.05)  # the tube's black is rarely pure zero
    half_diagonal = 0.5 * np.hypot(h, w)
    y = (np.arange(h, dtype=np.float32) + 0.5 - h / 2) / half_diagonal - offset[1]
    x = (np.arange(w, dtype=np.float32) + 0.5 - w / 2) / half_diagonal - offset[0]
    radius = np.sqrt((x[None, :] * ellipticity) ** 2 + (y[:, None] / ellipticity) ** 2)
    aperture = 1.15 + softness - 0.9 * extent  # darkening starts at aperture - softness
    edge = np.clip((aperture - radius) / softness, 0.0, 1.0)
    edge = edge * edge * (3 - 2 * edge)  # smoothstep
    falloff = 1.0 - 0.35 * extent * np.clip(radius / aperture, 0.0, 1.0) ** 2
    gain = (floor + (1 - floor) * edge * falloff).astype(np.float32)
    return image * gain[..., None]


@corruption(
    "dermoscopy_gel_bubbles",
    family=FAMILY,
    modalities=MODALITIES,
    severity_params=[6, 14, 25, 36, 48],
    param_range=(0.0, float(MAX_GEL_BUBBLES)),
    reference="Mendonca et al. 2013 (PH2); Bissoto et al. 2019 (air bubbles)",
)
def dermoscopy_gel_bubbles(image: np.ndarray, count: float, rng: np.random.Generator) -> np.ndarray:
    """Air bubbles trapped in the immersion gel or oil between the contact plate and the skin.

    At the gel-air interface light is refracted away, so each bubble shows a dark rim, a slightly
    magnified bright interior and a small reflection of the illumination (Mendonca et al. 2013;
    Bissoto et al. 2019). ``count`` bubbles show, radii 2-10 % of the short side.
    """
    shape = image.shape[:2]
    bubbles = overlays.Bubbles.draw(shape, rng, MAX_GEL_BUBBLES, (0.02, 0.1))
    weights = overlays.fractional_weights(count, MAX_GEL_BUBBLES)
    layers = overlays.bubble_layers(shape, bubbles, weights, rim_width=0.14, magnification=0.15)
    out = overlays.displace(image, layers.shift_x, layers.shift_y)
    out = overlays.blend(out, np.float32(1.0), 0.12 * layers.inside)
    out = overlays.blend(out, out * 0.25, 0.85 * layers.rim)
    return overlays.blend(out, np.float32(1.0), np.clip(1.3 * layers.highlight, 0.0, 1.0))


@corruption(
    "dermoscopy_ruler_marks",
    family=FAMILY,
    modalities=MODALITIES,
    severity_params=[0.06, 0.15, 0.3, 0.5, 0.7],
    param_range=(0.0, 0.85),
    reference="Bissoto et al. 2019 (rulers); Winkler et al. 2019, JAMA Dermatol. 155:1135",
)
def dermoscopy_ruler_marks(image: np.ndarray, depth: float, rng: np.random.Generator) -> np.ndarray:
    """Ruler marks: a millimetre scale printed on the contact plate or laid on the skin.

    Rulers are the best-known spurious cue in ISIC (Bissoto et al. 2019; Winkler et al. 2019,
    "Association between surgical skin markings in dermoscopic images and diagnostic performance
    of a deep learning CNN"). A plastic strip, white or yellowish and nearly opaque, enters from
    one edge; its inner edge carries millimetre ticks, longer at 5 mm and 1 cm. ``depth`` is how
    far the strip reaches in, as a fraction of the short side.
    """
    h, w = image.shape[:2]
    short = min(h, w)
    edge = int(rng.integers(0, 4))
    tilt = np.tan(np.deg2rad(rng.uniform(-6.0, 6.0)))
    pitch = rng.uniform(0.03, 0.05) * short  # one millimetre, in pixels
    first_tick = rng.uniform(0.0, MM_PER_CM)
    plastic_colour = np.array([0.95, 0.93, rng.uniform(0.6, 0.92)], np.float32)
    plastic_opacity = rng.uniform(0.7, 0.9)
    yy = np.arange(h, dtype=np.float32)[:, None] + 0.5
    xx = np.arange(w, dtype=np.float32)[None, :] + 0.5
    across, along = {0: (yy, xx), 1: (h - yy, xx), 2: (xx, yy), 3: (w - xx, yy)}[edge]
    across = across + (along - along.mean()) * tilt
    strip = depth * short
    if strip <= 0:
        return image.copy()
    mm = along / pitch + first_tick
    nearest = np.rint(mm)
    tick_mm = np.where(nearest % MM_PER_CM == 0, 2.6, np.where(nearest % 5 == 0, 1.8, 1.0))
    half_width = max(0.1 * pitch, 0.5)
    on_tick = np.clip(half_width + 0.5 - np.abs(mm - nearest) * pitch, 0.0, 1.0)
    from_edge = strip - across  # ticks hang from the strip's inner edge towards the image border
    within_tick = np.clip(tick_mm * pitch - from_edge + 0.5, 0.0, 1.0) * (from_edge > 0)
    edge_line = np.clip(half_width + 0.5 - np.abs(from_edge), 0.0, 1.0)
    ink = np.clip(on_tick * within_tick * (across > 0) + edge_line, 0.0, 1.0)
    plastic = np.clip(strip - across + 0.5, 0.0, 1.0)
    if image.shape[2] == 1:
        plastic_colour = plastic_colour.mean(keepdims=True)
    out = overlays.blend(image, plastic_colour, plastic_opacity * plastic)
    return overlays.blend(out, np.float32(0.05), ink.astype(np.float32))


CORRUPTIONS: tuple[Corruption, ...] = (
    dermoscopy_hair,
    dermoscopy_light_reflection,
    dermoscopy_dark_corners,
    dermoscopy_gel_bubbles,
    dermoscopy_ruler_marks,
)
register_corruptions = registers(CORRUPTIONS)
