"""CT corruptions (family 'ct'): acquisition and reconstruction artifacts, made in the sinogram.

Each physics-based corruption works where the scanner makes it: the slice is turned into linear
attenuation, projected (a parallel-beam Radon transform), the error of the artifact is made on the
projections (photon statistics, metal, beam hardening, detector gains), and only that error is
reconstructed by filtered back projection and added to the image in Hounsfield units. Adding the
reconstructed *error* leaves the clean image's own detail untouched by the coarse projector, and
lets the projections run on a ``WORK_SIZE`` square copy (1.56 mm pixels over the nominal field of
view, whatever the image's size) while the image keeps its own. The Radon transform rotates and
sums (OpenCV); the ramp filter is applied in Fourier space.

Inputs in Hounsfield units are used as they are; other inputs are mapped to HU and back by
``hounsfield_scale`` (see there). All functions ask for a single channel (``channels="gray"``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy import fft

from ..hookspecs import hookimpl
from .spec import Corruption, corruption

FAMILY = "ct"
MODALITIES = ["ct"]

HSIEH = (
    "Hsieh, Computed Tomography: Principles, Design, Artifacts, and Recent Advances, 2nd ed. (2009)"
)
BOAS = "Boas & Fleischmann, Imaging Med 4:229-240 (2012), CT artifacts: causes and reduction techniques"

# --------------------------------------------------------------------------- Hounsfield units

AIR_HU = -1000.0
# How a display image (no HU kept) is read: black is air, white +1000 HU - a wide window centred on
# water, so that air and the body outline, which dominate the projections, attenuate correctly.
DISPLAY_WINDOW_HU = (-1000.0, 1000.0)
STORED_INTERCEPT_HU = -1024.0  # DICOM's usual RescaleIntercept for 12-bit CT stored values
DEEPLESION_OFFSET = 32768.0  # 16-bit PNGs storing HU + 32768 (DeepLesion)


@dataclass(frozen=True)
class HounsfieldScale:
    """The linear map between an image's values and Hounsfield units: ``hu = slope * v + intercept``."""

    slope: float = 1.0
    intercept: float = 0.0
    source: str = "hounsfield"

    def to_hu(self, values: np.ndarray) -> np.ndarray:
        return values * np.float32(self.slope) + np.float32(self.intercept)

    def from_hu(self, hu: np.ndarray) -> np.ndarray:
        return (hu - np.float32(self.intercept)) / np.float32(self.slope)


def hounsfield_scale(values: np.ndarray) -> HounsfieldScale:
    """How to read ``values`` (one CT slice, any scale) as Hounsfield units.

    - any value at or below -100 (fat or air present): already HU (int16 / float HU, DICOM after
      its rescale);
    - maximum at most 1 (float display) or 255 (8-bit PNG / JPEG): a display image, read through
      ``DISPLAY_WINDOW_HU`` (black = air, white = +1000 HU);
    - maximum at most 4095: 12-bit stored values with DICOM's usual intercept of -1024 HU;
    - minimum at least 30000: HU + 32768, as in 16-bit DeepLesion PNGs;
    - otherwise: a 16-bit display image, read through ``DISPLAY_WINDOW_HU``.

    The result is mapped back with the same scale, so the caller gets its own scale back.
    """
    lo, hi = float(values.min()), float(values.max())
    if lo <= -100.0:
        return HounsfieldScale()
    if hi <= 4095.0 and hi > 255.0:
        return HounsfieldScale(1.0, STORED_INTERCEPT_HU, "stored 12-bit")
    if lo >= 30000.0:
        return HounsfieldScale(1.0, -DEEPLESION_OFFSET, "HU + 32768")
    white = 1.0 if hi <= 1.0 else 255.0 if hi <= 255.0 else 65535.0
    black_hu, white_hu = DISPLAY_WINDOW_HU
    return HounsfieldScale((white_hu - black_hu) / white, black_hu, "display")


# --------------------------------------------------------------------------- projection geometry

WORK_SIZE = 256  # projections run on a square copy of this many pixels across
N_ANGLES = 180  # views over 180 degrees (parallel beam); even, so that views pair at 90 degrees
NOMINAL_FOV_MM = 400.0  # field of view assumed across the image's longer side (an abdomen)
WATER_MU_PER_MM = 0.0193  # linear attenuation of water at ~70 keV effective energy (Hsieh ch. 2)
ANGLES_DEG = np.arange(N_ANGLES) * (180.0 / N_ANGLES)


@dataclass(frozen=True)
class Geometry:
    """Where the working square sits: the image padded to a square, then resized to ``size``.

    The working grid is the same for every image, so that a corruption's strength means the same
    noise or streak level in HU whether the slice comes at 64 or 512 pixels.
    """

    shape: tuple[int, int]  # the image's (rows, columns)
    side: int  # the padded square's side, in image pixels
    size: int  # the working square's side, in working pixels

    @property
    def pad(self) -> tuple[int, int]:
        return (self.side - self.shape[0]) // 2, (self.side - self.shape[1]) // 2

    @property
    def pixel_mm(self) -> float:
        """Working pixel size in millimetres."""
        return NOMINAL_FOV_MM / self.size

    @property
    def image_pixel_mm(self) -> float:
        return NOMINAL_FOV_MM / self.side


def working_geometry(shape: tuple[int, int]) -> Geometry:
    side = max(shape)
    return Geometry((int(shape[0]), int(shape[1])), side, WORK_SIZE)


def attenuation_map(hu: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Linear attenuation per working pixel (dimensionless line-integral units) of a HU slice.

    The slice is padded with air to a square and resampled to the working size.
    """
    top, left = geometry.pad
    square = np.full((geometry.side, geometry.side), AIR_HU, np.float32)
    square[top : top + geometry.shape[0], left : left + geometry.shape[1]] = hu
    if geometry.size < geometry.side:
        square = cv2.resize(square, (geometry.size, geometry.size), interpolation=cv2.INTER_AREA)
    elif geometry.size > geometry.side:
        square = cv2.resize(square, (geometry.size, geometry.size), interpolation=cv2.INTER_LINEAR)
    mu = WATER_MU_PER_MM * geometry.pixel_mm * (1.0 + square / 1000.0)
    return np.maximum(mu, 0.0).astype(np.float32)


def error_to_hu(error_mu: np.ndarray, geometry: Geometry) -> np.ndarray:
    """A reconstructed attenuation error on the working square -> HU error on the image's grid."""
    hu = error_mu * np.float32(1000.0 / (WATER_MU_PER_MM * geometry.pixel_mm))
    if geometry.size < geometry.side:
        hu = cv2.resize(hu, (geometry.side, geometry.side), interpolation=cv2.INTER_LINEAR)
    elif geometry.size > geometry.side:
        hu = cv2.resize(hu, (geometry.side, geometry.side), interpolation=cv2.INTER_AREA)
    top, left = geometry.pad
    return hu[top : top + geometry.shape[0], left : left + geometry.shape[1]]


def _rotation(size: int, degrees: float) -> np.ndarray:
    centre = (size - 1) / 2.0
    return cv2.getRotationMatrix2D((centre, centre), degrees, 1.0)


def radon(image: np.ndarray) -> np.ndarray:
    """Parallel-beam projections (``N_ANGLES`` x detector bins) of a square image, rotate-and-sum.

    At angle theta the detector coordinate of pixel (x, y) about the centre is
    ``u = x cos(theta) + y sin(theta)`` (x along columns, y along rows). The image rotated by theta
    has u along its columns and the coordinate of theta + 90 degrees along its rows, so one
    rotation gives two projections.
    """
    size = image.shape[0]
    half = N_ANGLES // 2
    sinogram = np.empty((N_ANGLES, size), np.float32)
    for k in range(half):
        rotated = cv2.warpAffine(
            image, _rotation(size, ANGLES_DEG[k]), (size, size), flags=cv2.INTER_LINEAR
        )
        sinogram[k] = rotated.sum(axis=0)
        sinogram[k + half] = rotated.sum(axis=1)
    return sinogram


def ramp_filter(sinogram: np.ndarray) -> np.ndarray:
    """Filter each projection with the band-limited ramp (Ram-Lak) of Kak & Slaney (eq. 3.61).

    Its spatial samples (1/4 at 0, -1/(pi n)^2 at odd n) keep the zero-frequency response right,
    so slowly varying errors (cupping) reconstruct without an offset.
    """
    bins = sinogram.shape[1]
    padded = max(64, int(2 ** np.ceil(np.log2(2 * bins))))
    n = np.concatenate([np.arange(1, padded // 2 + 1, 2), np.arange(padded // 2 - 1, 0, -2)])
    kernel = np.zeros(padded)
    kernel[0] = 0.25
    kernel[1::2] = -1.0 / (np.pi * n) ** 2
    response = 2.0 * np.real(fft.fft(kernel))
    spectrum = fft.fft(sinogram, n=padded, axis=1) * response
    return np.real(fft.ifft(spectrum, axis=1))[:, :bins].astype(np.float32)


def back_project(filtered: np.ndarray) -> np.ndarray:
    """Smear each filtered projection back across the square along its rays and sum.

    As in ``radon``, the projections at theta and theta + 90 degrees are smeared together (along
    the columns and the rows of one square) and rotated back once.
    """
    size = filtered.shape[1]
    half = N_ANGLES // 2
    image = np.zeros((size, size), np.float32)
    for k in range(half):
        smear = filtered[k][None, :] + filtered[k + half][:, None]
        image += cv2.warpAffine(
            smear,
            _rotation(size, -ANGLES_DEG[k]),
            (size, size),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
    return image * np.float32(np.pi / (2.0 * N_ANGLES))


def filtered_back_projection(sinogram: np.ndarray) -> np.ndarray:
    """The image whose projections are ``sinogram`` (Kak & Slaney ch. 3)."""
    return back_project(ramp_filter(sinogram))


def detector_coordinates(size: int) -> np.ndarray:
    return np.arange(size, dtype=np.float32) - (size - 1) / 2.0


# --------------------------------------------------------------------------- photon statistics

ELECTRONIC_NOISE_COUNTS = 20.0  # detector electronic noise, in photon-count units
MIN_COUNTS = 0.5  # counts are floored before the logarithm, as scanners do


def quantum_noise_error(
    projections: np.ndarray, incident_photons: np.ndarray | float, normal: np.ndarray
) -> np.ndarray:
    """Projection error from counting photons: Poisson counts plus electronic noise, through the log.

    The counts use the normal approximation N + sqrt(N + sigma_e^2) z with pre-drawn ``normal``
    fields z, so that the noise pattern stays fixed and only its amplitude follows the dose.
    """
    expected = incident_photons * np.exp(-projections)
    counts = expected + np.sqrt(expected + ELECTRONIC_NOISE_COUNTS**2) * normal
    return -np.log(np.maximum(counts, MIN_COUNTS) / np.maximum(expected, 1e-30)).astype(np.float32)


def _slice(image: np.ndarray) -> tuple[np.ndarray, HounsfieldScale, Geometry, np.ndarray]:
    """The gray slice in HU, its scale and geometry, and its working attenuation map."""
    values = image[..., 0]
    scale = hounsfield_scale(values)
    hu = scale.to_hu(values)
    geometry = working_geometry(hu.shape)
    return hu, scale, geometry, attenuation_map(hu, geometry)


def _to_caller(hu: np.ndarray, scale: HounsfieldScale) -> np.ndarray:
    return scale.from_hu(hu)[..., None].astype(np.float32)


# Incident photons per reading of the working projection (180 views) at a routine dose: a 30 cm
# water cylinder then shows ~10 HU of noise on the 1.56 mm working grid, a routine abdomen's
# level (Hsieh ch. 5).
ROUTINE_PHOTONS = 7.2e6


def projection_variance(
    projections: np.ndarray, incident_photons: np.ndarray | float
) -> np.ndarray:
    """Variance of log-converted projections: (N + sigma_e^2) / N^2 for N transmitted photons."""
    counts = np.maximum(incident_photons * np.exp(-projections.astype(np.float64)), 1e-12)
    return (counts + ELECTRONIC_NOISE_COUNTS**2) / counts**2


@corruption(
    "ct_low_dose_noise",
    family=FAMILY,
    modalities=MODALITIES,
    channels="gray",
    domain="physical",
    # Halvings of the routine dose (log2 of the dose reduction): 2 = quarter dose, as in the
    # AAPM low-dose CT challenge; the noise doubles every two halvings.
    severity_params=[1.8, 3.0, 3.85, 4.5, 5.05],
    param_range=(0.0, 8.0),
    reference=HSIEH + ", ch. 5 (noise); Yu et al., Med Phys 39:5216 (2012), low-dose simulation",
)
def ct_low_dose_noise(image: np.ndarray, dose_halvings: float, rng: np.random.Generator):
    """Low-dose quantum noise: Poisson photon statistics on the projections, reconstructed by FBP.

    Fewer photons per ray raise the relative noise of each projection as 1 / sqrt(counts); FBP
    turns it into the fine-grained, slightly streaky noise of low-dose CT (Hsieh ch. 5). As in
    low-dose simulation tools (Yu et al. 2012), the image is taken to hold the noise of a routine
    dose, and only the extra variance of the reduced dose is added on the projections (Poisson
    plus electronic noise, through the log), reconstructed and added. The tube current is
    modulated with angle as the square root of the largest attenuation, as automatic exposure
    control does, so that noise is fairly even across directions.
    """
    hu, scale, geometry, mu = _slice(image)
    projections = radon(mu)
    normal = rng.standard_normal(projections.shape, dtype=np.float32)
    peak = projections.max(axis=1, keepdims=True)
    modulation = np.exp(0.5 * (peak - peak.mean()))
    routine = ROUTINE_PHOTONS * modulation / modulation.mean()
    reduced = routine / 2.0**dose_halvings
    extra = projection_variance(projections, reduced) - projection_variance(projections, routine)
    error = (np.sqrt(np.maximum(extra, 0.0)) * normal).astype(np.float32)
    noise_hu = error_to_hu(filtered_back_projection(error), geometry)
    return _to_caller(hu + noise_hu, scale)


@corruption(
    "ct_photon_starvation",
    family=FAMILY,
    modalities=MODALITIES,
    channels="gray",
    domain="physical",
    # log10 of the photons reaching the detector along the most attenuating ray (shoulders,
    # pelvis, obese patients): 3.35 is ~2200 photons, 2.25 ~180, where the electronic noise (20
    # photons) takes over; below 1 (10 photons) the log of a few noisy counts is unusable.
    severity_params=[3.35, 2.9, 2.6, 2.4, 2.25],
    param_range=(7.0, 0.0),
    reference=BOAS + " (photon starvation); " + HSIEH + ", ch. 7",
)
def ct_photon_starvation(image: np.ndarray, log10_photons_at_peak: float, rng: np.random.Generator):
    """Photon starvation: streaks along the most attenuating directions.

    Through the longest or densest paths (the shoulders, the pelvis side to side) only a few
    photons reach the detector; their relative noise and the electronic noise floor dominate,
    and after the logarithm and FBP the noisy rays become streaks along those directions (Boas &
    Fleischmann 2012). The tube current is fixed (no modulation) so that the most attenuating
    ray receives 10 ** ``log10_photons_at_peak`` photons; the others, exponentially more.
    """
    hu, scale, geometry, mu = _slice(image)
    projections = radon(mu)
    normal = rng.standard_normal(projections.shape, dtype=np.float32)
    incident = 10.0**log10_photons_at_peak * np.exp(float(projections.max()))
    error = quantum_noise_error(projections, incident, normal)
    streaks_hu = error_to_hu(filtered_back_projection(error), geometry)
    return _to_caller(hu + streaks_hu, scale)


# --------------------------------------------------------------------------- metal

METAL_MU_PER_MM = 0.3  # titanium at ~70 keV effective
METAL_HU = 3071.0  # the top of the 12-bit HU range, where scanners show metal
METAL_SATURATION = 2.5  # projection value the measured metal path saturates towards
MAX_METAL_OBJECTS = 3


def metal_projections(centres_px: np.ndarray, radius_px: float, size: int) -> np.ndarray:
    """Exact projections of metal discs (centres in working pixels about the centre)."""
    theta = np.deg2rad(ANGLES_DEG)[:, None]
    u = detector_coordinates(size)[None, :]
    total = np.zeros((N_ANGLES, size), np.float32)
    for x, y in centres_px:
        offset = u - (x * np.cos(theta) + y * np.sin(theta))
        total += 2.0 * np.sqrt(np.maximum(radius_px**2 - offset**2, 0.0)).astype(np.float32)
    return total


def _metal_centres(hu: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Metal centres (row, column in image pixels) in soft tissue or bone, one per draw in [0, 1)."""
    body = np.flatnonzero(hu > -50.0)
    if body.size == 0:
        body = np.arange(hu.size)
    picks = body[np.minimum((draws * body.size).astype(int), body.size - 1)]
    return np.stack(np.unravel_index(picks, hu.shape), axis=1).astype(np.float64)


@corruption(
    "ct_metal_streaks",
    family=FAMILY,
    modalities=MODALITIES,
    channels="gray",
    domain="physical",
    # Radius of each metal object in mm: clips, dental fillings and screws (2-4), rods and
    # plates, up to the head of a hip prosthesis (10-14).
    severity_params=[2.1, 4.0, 5.7, 7.6, 10.3],
    param_range=(0.0, 16.0),
    reference=BOAS + " (metal artifacts); " + HSIEH + ", ch. 7",
)
def ct_metal_streaks(image: np.ndarray, radius_mm: float, rng: np.random.Generator):
    """Metal streaks: bright and dark streaks radiating from and between metal objects.

    Metal attenuates so strongly that its projections are wrong in several ways at once: the beam
    hardens (the measured path grows less than linearly), few photons pass (starvation noise), and
    the log-converted value saturates (Boas & Fleischmann 2012). One to three titanium discs are
    placed in the body; their exact projections are measured through a saturating response
    ``p_sat (1 - exp(-p / p_sat))`` with starvation noise behind them, and the reconstructed error
    - dark streaks between the objects, bright ones along their tangents - is added to the slice,
    in which the discs themselves show at the top of the HU range.
    """
    hu, scale, geometry, mu = _slice(image)
    count = int(rng.integers(1, MAX_METAL_OBJECTS + 1))
    positions = rng.random(MAX_METAL_OBJECTS)[:count]
    normal = rng.standard_normal((N_ANGLES, geometry.size), dtype=np.float32)
    centres = _metal_centres(hu, positions)

    top, left = geometry.pad
    ratio = geometry.size / geometry.side
    centre = (geometry.side - 1) / 2.0
    centres_work = (centres[:, ::-1] + [left, top] - centre) * ratio  # (x, y) about the centre
    radius_work = radius_mm / geometry.pixel_mm
    metal = metal_projections(centres_work, radius_work, geometry.size) * (
        METAL_MU_PER_MM * geometry.pixel_mm
    )
    measured = METAL_SATURATION * (1.0 - np.exp(-metal / METAL_SATURATION))
    body = radon(mu)
    # Extra variance behind the metal: 1/N with the metal minus 1/N without it.
    extra_variance = (np.exp(body + measured) - np.exp(body)) / ROUTINE_PHOTONS
    error = measured - metal + np.sqrt(extra_variance) * normal
    streaks_hu = error_to_hu(filtered_back_projection(error), geometry)

    rows, cols = np.indices(hu.shape, dtype=np.float32)
    radius_px = radius_mm / geometry.image_pixel_mm
    cover = np.zeros(hu.shape, np.float32)
    for row, col in centres:
        distance = np.sqrt((rows - row) ** 2 + (cols - col) ** 2)
        cover = np.maximum(cover, np.clip(radius_px + 0.5 - distance, 0.0, 1.0))
    cover *= np.float32(min(1.0, 2.0 * radius_px))  # a sub-pixel object only partly fills its pixel
    out = (hu + streaks_hu) * (1.0 - cover) + METAL_HU * cover
    return _to_caller(out, scale), {"metal_centres": centres.astype(int)}


# --------------------------------------------------------------------------- beam hardening


@corruption(
    "ct_beam_hardening",
    family=FAMILY,
    modalities=MODALITIES,
    channels="gray",
    domain="physical",
    # beta of the measured projection p - beta p^2: in a 36 x 28 cm abdomen 0.004 lowers the
    # centre by ~25 HU (a residue after water correction), 0.0085 by ~60 HU.
    severity_params=[0.0028, 0.004, 0.0058, 0.0071, 0.0085],
    param_range=(0.0, 0.06),
    reference=HSIEH + ", ch. 7 (beam hardening); " + BOAS + " (cupping)",
)
def ct_beam_hardening(image: np.ndarray, beta: float, rng: np.random.Generator):
    """Beam hardening: cupping (a darker centre) and dark bands between dense structures.

    A polychromatic beam loses its soft photons first, so the measured projection grows less than
    linearly with path length; to first order p_measured = p - beta p^2 (Hsieh ch. 7). Long paths
    through the body centre and paths through two bones are underestimated most, which
    reconstructs as cupping and as dark streaks between the bones (Boas & Fleischmann 2012).
    Deterministic: no random draws.
    """
    hu, scale, geometry, mu = _slice(image)
    projections = radon(mu)
    error = -np.float32(beta) * projections**2
    cupping_hu = error_to_hu(filtered_back_projection(error), geometry)
    return _to_caller(hu + cupping_hu, scale)


# --------------------------------------------------------------------------- ring artifacts

PROFILE_ANGLES = 720  # views over a full rotation for the radial profile of the rings
DEFECTIVE_CHANNELS = 8


@corruption(
    "ct_ring_artifact",
    family=FAMILY,
    modalities=MODALITIES,
    channels="gray",
    domain="physical",
    # Standard deviation of every detector channel's relative gain error (eight defective
    # channels get 3-6 times more); ~0.5 % already shows in a soft-tissue window (Hsieh ch. 7).
    severity_params=[0.0135, 0.025, 0.038, 0.052, 0.069],
    param_range=(0.0, 0.3),
    reference=HSIEH + ", ch. 7 (ring artifacts); " + BOAS + " (rings)",
)
def ct_ring_artifact(image: np.ndarray, gain_error: float, rng: np.random.Generator):
    """Ring artifacts: concentric rings from miscalibrated detector channels.

    A detector channel whose gain differs from its calibration adds the same offset
    -log(1 + error) to its reading at every view; each such channel sees, over the rotation,
    the circle of pixels at its distance from the isocentre, so FBP turns it into a ring (Hsieh ch.
    7). Every channel gets a small drawn error and a few defective ones a larger one. A sinogram
    constant over angle reconstructs as a radially symmetric image, so the ramp-filtered channel
    offsets are back-projected once along a radius and laid out by distance from the centre, at
    the image's own resolution.
    """
    values = image[..., 0]
    scale = hounsfield_scale(values)
    hu = scale.to_hu(values)
    h, w = hu.shape
    channels = int(np.ceil(np.hypot(h, w))) + 3
    gains = rng.standard_normal(channels)
    defective = rng.integers(0, channels, DEFECTIVE_CHANNELS)
    gains[defective] += rng.choice([-1.0, 1.0], DEFECTIVE_CHANNELS) * rng.uniform(
        3.0, 6.0, DEFECTIVE_CHANNELS
    )
    offsets = -gain_error * gains  # -log(1 + error), linearised: errors are small
    filtered = ramp_filter(offsets[None, :].astype(np.float32))[0]

    u = detector_coordinates(channels)
    radii = np.arange(0.0, channels / 2.0, 0.25)
    # A full rotation sees every ray twice (hence 2 pi and the extra half): a channel offset then
    # makes a full ring, not the half ring of a 180-degree parallel scan.
    angles = np.arange(PROFILE_ANGLES) * (2.0 * np.pi / PROFILE_ANGLES)
    profile = np.interp(radii[:, None] * np.cos(angles)[None, :], u, filtered).sum(axis=1)
    profile *= np.pi / (2.0 * PROFILE_ANGLES)
    pixel_mm = NOMINAL_FOV_MM / max(h, w)
    rows, cols = np.indices((h, w), dtype=np.float32)
    radius = np.hypot(rows - (h - 1) / 2.0, cols - (w - 1) / 2.0)
    rings_hu = np.interp(radius, radii, profile) * (1000.0 / (WATER_MU_PER_MM * pixel_mm))
    return _to_caller(hu + rings_hu.astype(np.float32), scale)


# --------------------------------------------------------------------------- display


@corruption(
    "ct_window_level_shift",
    family=FAMILY,
    modalities=MODALITIES,
    channels="gray",
    domain="physical",
    # (level offset in window widths, width error factor): up to a level 4 % of the range off
    # (70 HU on -1000..700) and a width 16 % off, the size of a slip between neighbouring presets.
    severity_params=[(0.01, 1.04), (0.017, 1.07), (0.024, 1.1), (0.031, 1.125), (0.04, 1.16)],
    param_range=((0.0, 1.0), (0.5, 3.0)),
    reference=HSIEH + ", ch. 4 (image presentation: window width and level)",
)
def ct_window_level_shift(image: np.ndarray, error: tuple[float, float], rng: np.random.Generator):
    """Mis-set window / level: the slice exported or shown with the wrong display window.

    A CT slice is viewed through a window (level L, width W); values outside it saturate to
    black or white. A wrong preset or a drifted level in a viewer or an export pipeline shifts
    the level and stretches or compresses the width. The intended window is the image's own
    range; the wrong one moves the level by the first parameter times the width (up or down, drawn)
    and makes the width wider or narrower (drawn) by the second; the windowed result is stored
    back through the intended window, so it saturates where the wrong window clips.
    """
    level_offset, width_factor = error
    level_sign = float(rng.choice([-1.0, 1.0]))
    narrower = bool(rng.integers(2))
    values = image[..., 0]
    lo, hi = float(values.min()), float(values.max())
    width = max(hi - lo, 1e-6)
    level = (lo + hi) / 2.0
    wrong_level = level + level_sign * level_offset * width
    wrong_width = width / width_factor if narrower else width * width_factor
    shown = np.clip((values - wrong_level) / wrong_width + 0.5, 0.0, 1.0)
    out = level + (shown - 0.5) * width
    draws = {"level_direction": level_sign, "narrower": narrower}
    return out[..., None].astype(np.float32), draws


# --------------------------------------------------------------------------- registration


def ct_corruptions() -> list[Corruption]:
    """Every corruption defined in this module, in definition order."""
    return [v for v in globals().values() if isinstance(v, Corruption)]


@hookimpl
def register_corruptions(register):
    for item in ct_corruptions():
        register(item)
