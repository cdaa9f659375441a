"""Projection radiography corruptions (family 'xray'): exposure, scatter, quantum noise, grid, display.

The radiograph is read as a display of log exposure (the 'for presentation' convention, MONOCHROME2):
bright pixels lie behind much attenuation (bone), dark ones behind little (lung). A display value
``v`` in [0, 1] then stands for the detected exposure ``E = exp(-ATTENUATION_SPAN * v)`` relative to
the unattenuated beam, so that exposure, scatter and photon statistics are applied where they act,
in the exposure domain, and mapped back through the same fixed logarithmic display curve.

The collimator's blades keep the beam off the frame's sides; the detector there reads nothing and
the processing shutters those bands to white. The acquisition corruptions (exposure, scatter,
quantum noise, grid) leave such bands as they are (``collimated_field``); a display error (the
window) changes them as it changes everything shown.
"""

from __future__ import annotations

import cv2
import numpy as np

from .registering import registers
from .spec import Corruption, corruption

FAMILY = "xray"
MODALITIES = ["xray"]
BUSHBERG = "Bushberg et al., The Essential Physics of Medical Imaging, 3rd ed. 2012"

# Attenuation (in nepers) spanned by the display range: white is exp(-4) ~ 2 % of the open-field
# exposure, about the lung-to-mediastinum transmission range of a chest radiograph.
ATTENUATION_SPAN = 4.0
# Detected X-ray quanta per pixel in the unattenuated field at a normal dose (~2.5 uGy at the
# detector, 0.15 mm pixels); the reference level that exposure corruptions change.
REFERENCE_QUANTA = 10_000.0
MIN_QUANTA = 0.5  # floor before the logarithm: a pixel that caught no quantum reads as one half
# Collimation: a display value at or above UNEXPOSED is white (no primary beam); a row or column
# white over BLADE_SHARE of its length lies under a collimator blade.
UNEXPOSED = 0.98
BLADE_SHARE = 0.95


def _leading(flags: np.ndarray) -> int:
    """How many of ``flags`` are True from the start on."""
    return len(flags) if flags.all() else int(np.argmin(flags))


def collimated_field(display: np.ndarray) -> np.ndarray | None:
    """The exposed field (bool H x W) between the shuttered bands at the frame's sides, or None.

    A band is a run of rows or columns from a side of the frame that are white nearly all along
    (axis-aligned blades, the usual case); the field is the rectangle they leave.
    """
    white = display >= UNEXPOSED
    rows = white.mean(axis=1) >= BLADE_SHARE
    columns = white.mean(axis=0) >= BLADE_SHARE
    top, bottom = _leading(rows), _leading(rows[::-1])
    left, right = _leading(columns), _leading(columns[::-1])
    if top + bottom + left + right == 0:
        return None
    field = np.zeros(white.shape, bool)
    field[top : white.shape[0] - bottom, left : white.shape[1] - right] = True
    return field


def _shuttered(out: np.ndarray, image: np.ndarray) -> np.ndarray:
    """The corrupted display inside the exposed field, the shuttered bands as they were."""
    field = collimated_field(image[..., 0])
    if field is None:
        return out
    return np.where(field[..., None], out, image).astype(np.float32, copy=False)


def exposure_from_display(display: np.ndarray) -> np.ndarray:
    """Relative detected exposure (1 = unattenuated beam) behind each display value."""
    return np.exp(-ATTENUATION_SPAN * display)


def display_from_exposure(exposure: np.ndarray) -> np.ndarray:
    """The fixed logarithmic display curve, the inverse of ``exposure_from_display``."""
    return -np.log(exposure) / ATTENUATION_SPAN


def reduced_dose(display: np.ndarray, dose_fraction: float, normal: np.ndarray) -> np.ndarray:
    """Display values of the same projection taken at ``dose_fraction`` of the normal dose.

    The image already carries the quantum noise of the normal dose: REFERENCE_QUANTA x exposure
    quanta per pixel, relative variance 1 / N0. At the dose f N0 a pixel counts N = f N0 E quanta,
    relative variance 1 / N, so only the difference 1 / N - 1 / N0 is added: in counts of the new
    dose a variance f (1 - f) N0 E (Poisson, normal approximation, drawn from the fixed field
    ``normal`` so that the pattern stays the same at every dose). The detector gain makes up for
    the dose (the mean display value stays); a dose above the normal one adds nothing.
    """
    fraction = min(float(dose_fraction), 1.0)
    if fraction >= 1.0:
        return display.copy()
    counts = fraction * REFERENCE_QUANTA * exposure_from_display(display)
    extra = np.sqrt((1.0 - fraction) * counts)
    noisy = np.maximum(counts + extra * normal, MIN_QUANTA)
    return display_from_exposure(noisy / (fraction * REFERENCE_QUANTA))


@corruption(
    "xray_scatter",
    family=FAMILY,
    modalities=MODALITIES,
    channels="gray",
    # Scatter-to-primary ratio: ~0.5 with a good grid, 1-2 chest without grid, 3-5 abdomen/obese.
    severity_params=[0.3, 0.6, 1.0, 1.5, 2.2],
    param_range=(0.0, 6.0),
    reference=BUSHBERG + " (scatter-to-primary ratio, contrast reduction)",
)
def xray_scatter(image: np.ndarray, scatter_to_primary: float, rng: np.random.Generator):
    """Scattered radiation: a broad, low-frequency veil added to the primary exposure.

    Compton scatter reaching the detector is the primary exposure spread by a kernel several
    centimetres wide; it adds a nearly uniform fog that lowers subject contrast by the factor
    1 / (1 + SPR) (Bushberg et al.). Modelled as the exposure plus SPR times a wide Gaussian blur
    of it, shown through the fixed display curve: the image fogs (darkens) and flattens, most in the
    dense regions that the primary beam barely reaches.
    """
    h, w = image.shape[:2]
    kernel_width = rng.uniform(0.08, 0.16)  # scatter kernel sigma as a fraction of the field
    sigma = kernel_width * max(h, w)
    exposure = exposure_from_display(image[..., 0])
    scatter = _wide_blur(exposure, sigma)
    veiled = exposure + scatter_to_primary * scatter
    out = display_from_exposure(veiled)[..., None]
    return _shuttered(out, image), {"kernel_sigma_fraction": kernel_width}


def _wide_blur(field: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with a wide kernel, done on a shrunken copy (a scatter field has no detail)."""
    h, w = field.shape
    factor = max(1, int(sigma // 4))
    small = cv2.resize(
        field, (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_AREA
    )
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=sigma / factor, borderType=cv2.BORDER_REFLECT)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _exposure_change(image: np.ndarray, stops: float, normal: np.ndarray) -> np.ndarray:
    """Change the exposure by ``stops`` (log2 of the mAs ratio) under a fixed display curve.

    Fewer quanta raise the relative Poisson noise; the noise already in the image stands for the
    reference dose, so only the variance difference is added (``reduced_dose``). More quanta
    cannot remove noise.
    """
    factor = 2.0**stops
    noisy = reduced_dose(image[..., 0], factor, normal)
    shifted = noisy - np.log(factor) / ATTENUATION_SPAN
    # The detector saturates at full exposure (black) and has a floor below (white).
    return np.clip(shifted, 0.0, 1.0)[..., None]


@corruption(
    "xray_under_exposure",
    family=FAMILY,
    modalities=MODALITIES,
    channels="gray",
    # Exposure below the technique chart, in stops (each halves the mAs).
    severity_params=[0.6, 1.2, 2.0, 3.0, 4.2],
    param_range=(0.0, 5.0),
    reference=BUSHBERG + " (exposure latitude, quantum mottle)",
)
def xray_under_exposure(image: np.ndarray, stops: float, rng: np.random.Generator) -> np.ndarray:
    """Under-exposure: too few quanta, so the radiograph is too light and grainy (quantum mottle).

    With a fixed log-exposure display, a mAs ratio of 2^-stops lifts every value by
    stops * ln 2 / ATTENUATION_SPAN; dense regions reach the detector floor and turn white, and the
    relative Poisson noise 1 / sqrt(N) grows most where the fewest quanta arrive (Bushberg et al.).
    """
    normal = rng.standard_normal(image.shape[:2], dtype=np.float32)
    return _shuttered(_exposure_change(image, -stops, normal), image)


@corruption(
    "xray_over_exposure",
    family=FAMILY,
    modalities=MODALITIES,
    channels="gray",
    # Exposure above the technique chart, in stops (each doubles the mAs).
    severity_params=[0.7, 1.1, 1.5, 1.85, 2.25],
    param_range=(0.0, 4.0),
    reference=BUSHBERG + " (exposure latitude, detector saturation)",
)
def xray_over_exposure(image: np.ndarray, stops: float, rng: np.random.Generator) -> np.ndarray:
    """Over-exposure: too many quanta, so the radiograph is too dark and thin tissue burns out.

    With a fixed log-exposure display, a mAs ratio of 2^stops lowers every value by
    stops * ln 2 / ATTENUATION_SPAN; the least attenuating regions (lung, skin line) saturate the
    detector and clip to black (Bushberg et al.). Quantum noise falls, which cannot be simulated on an
    image that already holds its own noise, so none is added.
    """
    normal = rng.standard_normal(image.shape[:2], dtype=np.float32)  # same draws as under-exposure
    return _shuttered(_exposure_change(image, stops, normal), image)


@corruption(
    "xray_quantum_noise",
    family=FAMILY,
    modalities=MODALITIES,
    channels="gray",
    # Dose as a fraction of the normal one (REFERENCE_QUANTA): 60 % down to 6.6 %, i.e. 6,000 down
    # to 660 quanta per pixel in the open field; the image's own noise stands for 100 %. The end
    # of the range, 1 %, is the dose of one fluoroscopy frame (~25 nGy at the detector against
    # ~2.5 uGy for a radiograph; Bushberg et al. ch. 9).
    severity_params=[0.6, 0.39, 0.22, 0.124, 0.066],
    param_range=(1.0, 0.01),
    reference=BUSHBERG + " (Poisson statistics of X-ray quanta, SNR = sqrt(N))",
)
def xray_quantum_noise(image: np.ndarray, dose_fraction: float, rng: np.random.Generator):
    """Quantum noise (mottle) of a low-dose radiograph whose processing restores the brightness.

    A pixel behind exposure E counts N = f N0 E quanta with variance N (Bushberg et al.), so its
    noise is largest in the dense, bright regions where few quanta arrive. The image already
    holds the noise of the normal dose N0, so a dose fraction f adds only the extra variance
    (``reduced_dose``); unlike ``xray_under_exposure``, the detector's gain keeps the mean.
    """
    normal = rng.standard_normal(image.shape[:2], dtype=np.float32)
    return _shuttered(reduced_dose(image[..., 0], dose_fraction, normal)[..., None], image)


@corruption(
    "xray_grid_lines",
    family=FAMILY,
    modalities=MODALITIES,
    channels="gray",
    # Fraction of the primary beam that the grid line shadows remove at their darkest.
    severity_params=[0.08, 0.14, 0.19, 0.24, 0.3],
    param_range=(0.0, 0.7),
    reference=BUSHBERG + " (anti-scatter grids: grid lines, aliasing and moire)",
)
def xray_grid_lines(image: np.ndarray, line_contrast: float, rng: np.random.Generator):
    """Anti-scatter grid lines: periodic shadows of the lead strips, aliased into a moire pattern.

    A stationary (or stalled Bucky) grid of 40-80 lines/cm projects its lead strips onto the
    detector; sampled at the pixel pitch, they alias to a lower spatial frequency and show as
    parallel bands (Bushberg et al.). The strips absorb a fraction of the primary exposure along a
    sinusoidal profile at the aliased frequency; the lines run along one image axis, slightly tilted.
    """
    h, w = image.shape[:2]
    frequency = rng.uniform(0.08, 0.3)  # aliased grid frequency, cycles per pixel
    vertical_lines = bool(rng.integers(2))
    tilt = np.deg2rad(rng.uniform(-2.0, 2.0))
    phase = rng.uniform(0.0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    across = xx + tilt * yy if vertical_lines else yy + tilt * xx  # coordinate across the lines
    shadow = 0.5 * (1.0 + np.cos(2 * np.pi * frequency * across + phase))
    exposure = exposure_from_display(image[..., 0]) * (1.0 - line_contrast * shadow)
    out = display_from_exposure(exposure)[..., None]
    return _shuttered(out, image), {
        "frequency": frequency,
        "vertical_lines": vertical_lines,
        "tilt_rad": float(tilt),
    }


@corruption(
    "xray_window_level_shift",
    family=FAMILY,
    modalities=MODALITIES,
    channels="gray",
    # (level shift as a fraction of the display range, window width as a fraction of the original)
    severity_params=[(0.06, 0.85), (0.09, 0.76), (0.12, 0.65), (0.15, 0.55), (0.19, 0.45)],
    param_range=((0.0, 1.0), (0.35, 0.2)),
    reference=BUSHBERG + " (display window width and level); DICOM PS3.3 C.11.2 (VOI LUT)",
)
def xray_window_level_shift(
    image: np.ndarray, param: tuple[float, float], rng: np.random.Generator
):
    """A mis-set display window: level moved and width narrowed, clipping the ends of the range.

    The VOI LUT (window centre and width, DICOM PS3.3 C.11.2) maps detector values to grey levels;
    a wrong level brightens or darkens the whole image and a narrow window saturates both ends
    (Bushberg et al.). The direction of the level shift is random.
    """
    level_shift, width = param
    direction = 1.0 if rng.integers(2) else -1.0
    centre = 0.5
    out = (image - centre - direction * level_shift) / width + centre
    return np.clip(out, 0.0, 1.0), {"direction": direction}


CORRUPTIONS: tuple[Corruption, ...] = (
    xray_scatter,
    xray_under_exposure,
    xray_over_exposure,
    xray_quantum_noise,
    xray_grid_lines,
    xray_window_level_shift,
)
register_corruptions = registers(CORRUPTIONS)
