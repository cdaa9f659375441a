"""CT corruptions (family 'ct'): acquisition and reconstruction artifacts, made in the sinogram.

Each physics-based corruption works where the scanner makes it: the slice is turned into linear
attenuation, projected (a parallel-beam Radon transform), the error of the artifact is made on the
projections (photon statistics, metal, beam hardening, detector gains), and only that error is
reconstructed by filtered back projection and added to the image in Hounsfield units. Adding the
reconstructed *error* leaves the clean image's own detail untouched by the coarse projector.

Sizes are physical. The image's pixel spacing (from its DICOM header, or ``pixel_spacing=`` for an
array) sets the millimetres of every path: the projections run on a square that covers the
image's longer side, its pixels as fine as the image's but no finer than the kernel needs
(``working_geometry``).
Without a spacing the image is assumed to span ``DEFAULT_FOV_MM`` across its longer side (a
whole adult slice), and the record shows no ``pixel_spacing``. Errors are reconstructed with one
fixed kernel (a ramp apodized to zero at ``KERNEL_CUTOFF_PER_MM``), as a scanner's standard kernel
is: the noise in HU then depends on the dose and the object, not on how finely the slice is
sampled or how much of it was cropped. The Radon transform rotates and sums (OpenCV); the ramp
filter is applied in Fourier space.

Values are read as Hounsfield units when the file or the caller says so (``units="HU"``), and
otherwise by ``hounsfield_scale``. Results are clipped to CT's 12-bit range, -1024 to 3071 HU;
pixels the clean image marks as outside the scanned field (below -1024) keep their value. All
functions ask for a single channel (``channels="gray"``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy import fft, ndimage

from .registering import registers
from .spec import Corruption, ImageContext, corruption

FAMILY = "ct"
MODALITIES = ["ct"]

HSIEH = (
    "Hsieh, Computed Tomography: Principles, Design, Artifacts, and Recent Advances, 2nd ed. (2009)"
)
BOAS = "Boas & Fleischmann, Imaging Med 4:229-240 (2012), CT artifacts: causes and reduction techniques"

# --------------------------------------------------------------------------- Hounsfield units

AIR_HU = -1000.0
# CT's valid range: the 12-bit stored values 0..4095 with the usual intercept of -1024 HU.
MIN_HU, MAX_HU = -1024.0, 3071.0
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


def hounsfield_scale(
    values: np.ndarray, dtype: np.dtype | str | None = None, units: str | None = None
) -> HounsfieldScale:
    """How to read ``values`` (one CT slice, any scale) as Hounsfield units.

    ``dtype`` is the caller's array type (the values may come as float32); ``units="HU"`` (a DICOM
    CT after its rescale, or the caller's word) is taken as it is. Otherwise, in this order:

    - any value at or below -100 (fat or air present): HU;
    - maximum at most 1 (float display) or 255 (8-bit PNG / JPEG): a display image, read through
      ``DISPLAY_WINDOW_HU`` (black = air, white = +1000 HU);
    - signed integer or float data above 255: HU (a crop of a body without air or fat);
    - unsigned data with a maximum at most 4095: 12-bit stored values, intercept -1024 HU;
    - unsigned data with a minimum at least 30000: HU + 32768, as in 16-bit DeepLesion PNGs;
    - other unsigned data: a 16-bit display image, read through ``DISPLAY_WINDOW_HU``.

    The result is mapped back with the same scale, so the caller gets its own scale back.
    """
    if units is not None and str(units).upper() == "HU":
        return HounsfieldScale(source="HU (stated)")
    kind = np.dtype(dtype if dtype is not None else values.dtype).kind
    lo, hi = float(values.min()), float(values.max())
    if lo <= -100.0:
        return HounsfieldScale()
    if hi > 255.0 and kind != "u":
        return HounsfieldScale(source="hounsfield (no air)")
    if hi > 255.0 and hi <= 4095.0:
        return HounsfieldScale(1.0, STORED_INTERCEPT_HU, "stored 12-bit")
    if lo >= 30000.0:
        return HounsfieldScale(1.0, -DEEPLESION_OFFSET, "HU + 32768")
    white = 1.0 if hi <= 1.0 else 255.0 if hi <= 255.0 else 65535.0
    black_hu, white_hu = DISPLAY_WINDOW_HU
    return HounsfieldScale((white_hu - black_hu) / white, black_hu, "display")


# --------------------------------------------------------------------------- projection geometry

# The working square's pixels: as fine as the image's, but no finer than the kernel needs (its
# cutoff at 0.7 cycles/mm samples at 0.7 mm) and at most MAX_WORK_SIZE across (a 400 mm field at
# 0.78 mm).
KERNEL_PIXEL_MM = 0.7
MAX_WORK_SIZE = 512
MIN_WORK_SIZE = 16
N_ANGLES = 180  # views over 180 degrees (parallel beam); even, so that views pair at 90 degrees
DEFAULT_FOV_MM = 400.0  # without a pixel spacing: the longer side spans a whole adult slice
WATER_MU_PER_MM = 0.0193  # linear attenuation of water at ~70 keV effective energy (Hsieh ch. 2)
# The reconstruction kernel: a ramp apodized by a Hann window reaching zero at 0.7 cycles/mm
# (half its response at ~3.5 lp/cm, a standard soft-tissue kernel). Fixed in mm, so that the
# noise it passes does not depend on the sampling of the working square.
KERNEL_CUTOFF_PER_MM = 0.7
ANGLES_DEG = np.arange(N_ANGLES) * (180.0 / N_ANGLES)


@dataclass(frozen=True)
class Geometry:
    """Where the working square sits: the image, at its physical aspect, centred in ``size`` pixels.

    The square covers the image's longer side in mm, so its pixels follow the image's spacing:
    paths, photon counts and streak widths are in millimetres whatever the image's size or crop.
    """

    shape: tuple[int, int]  # the image's (rows, columns)
    spacing: tuple[float, float]  # the image's (row, column) pixel spacing in mm
    size: int  # the working square's side, in working pixels

    @property
    def pixel_mm(self) -> float:
        """Working pixel size in millimetres."""
        h, w = self.shape
        return max(h * self.spacing[0], w * self.spacing[1]) / self.size

    @property
    def footprint(self) -> tuple[int, int]:
        """The image's (rows, columns) on the working grid."""
        p = self.pixel_mm
        h, w = self.shape
        rows = int(np.clip(round(h * self.spacing[0] / p), 1, self.size))
        cols = int(np.clip(round(w * self.spacing[1] / p), 1, self.size))
        return rows, cols

    @property
    def pad(self) -> tuple[int, int]:
        rows, cols = self.footprint
        return (self.size - rows) // 2, (self.size - cols) // 2


def pixel_spacing_of(shape: tuple[int, int], context: ImageContext | None) -> tuple[float, float]:
    """The (row, column) spacing in mm: the context's, else ``DEFAULT_FOV_MM`` over the longer side."""
    if context is not None and context.pixel_spacing is not None:
        dy, dx = context.pixel_spacing
        return float(dy), float(dx)
    assumed = DEFAULT_FOV_MM / max(shape)
    return assumed, assumed


def working_geometry(
    shape: tuple[int, int], spacing: tuple[float, float] | None = None
) -> Geometry:
    """The working square for an image: its longer side in mm, at the finer of the image's pixel
    and ``KERNEL_PIXEL_MM`` (within ``MIN_WORK_SIZE``..``MAX_WORK_SIZE`` pixels)."""
    shape = (int(shape[0]), int(shape[1]))
    if spacing is None:
        spacing = pixel_spacing_of(shape, None)
    dy, dx = float(spacing[0]), float(spacing[1])
    extent_mm = max(shape[0] * dy, shape[1] * dx)
    pixel_mm = max(min(dy, dx), KERNEL_PIXEL_MM)
    size = int(np.clip(np.ceil(extent_mm / pixel_mm - 1e-6), MIN_WORK_SIZE, MAX_WORK_SIZE))
    return Geometry(shape, (dy, dx), size)


def _resize(values: np.ndarray, rows: int, cols: int) -> np.ndarray:
    if values.shape == (rows, cols):
        return values
    shrinking = rows * cols < values.shape[0] * values.shape[1]
    method = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(values, (cols, rows), interpolation=method)


def attenuation_map(hu: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Linear attenuation per working pixel (dimensionless line-integral units) of a HU slice.

    The slice is resampled to its footprint on the working grid and padded with air.
    """
    rows, cols = geometry.footprint
    top, left = geometry.pad
    square = np.full((geometry.size, geometry.size), AIR_HU, np.float32)
    square[top : top + rows, left : left + cols] = _resize(hu.astype(np.float32), rows, cols)
    mu = WATER_MU_PER_MM * geometry.pixel_mm * (1.0 + square / 1000.0)
    return np.maximum(mu, 0.0).astype(np.float32)


def error_to_hu(error_mu: np.ndarray, geometry: Geometry) -> np.ndarray:
    """A reconstructed attenuation error on the working square -> HU error on the image's grid."""
    hu = error_mu * np.float32(1000.0 / (WATER_MU_PER_MM * geometry.pixel_mm))
    rows, cols = geometry.footprint
    top, left = geometry.pad
    return _resize(np.ascontiguousarray(hu[top : top + rows, left : left + cols]), *geometry.shape)


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


def ramp_filter(sinogram: np.ndarray, bin_mm: float | None = None) -> np.ndarray:
    """Filter each projection with the band-limited ramp (Ram-Lak) of Kak & Slaney (eq. 3.61).

    Its spatial samples (1/4 at 0, -1/(pi n)^2 at odd n) keep the zero-frequency response right,
    so slowly varying errors (cupping) reconstruct without an offset. With ``bin_mm`` (the
    detector bin in mm) the ramp is apodized to the scanner kernel (``KERNEL_CUTOFF_PER_MM``).
    """
    bins = sinogram.shape[1]
    padded = max(64, int(2 ** np.ceil(np.log2(2 * bins))))
    n = np.concatenate([np.arange(1, padded // 2 + 1, 2), np.arange(padded // 2 - 1, 0, -2)])
    kernel = np.zeros(padded)
    kernel[0] = 0.25
    kernel[1::2] = -1.0 / (np.pi * n) ** 2
    response = 2.0 * np.real(fft.fft(kernel))
    if bin_mm is not None:
        per_mm = np.abs(fft.fftfreq(padded)) / bin_mm
        response *= np.where(
            per_mm < KERNEL_CUTOFF_PER_MM,
            np.cos(0.5 * np.pi * per_mm / KERNEL_CUTOFF_PER_MM) ** 2,
            0.0,
        )
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


def filtered_back_projection(sinogram: np.ndarray, bin_mm: float | None = None) -> np.ndarray:
    """The image whose projections are ``sinogram`` (Kak & Slaney ch. 3), through the kernel when
    ``bin_mm`` is given (the plain ramp otherwise)."""
    return back_project(ramp_filter(sinogram, bin_mm))


def reconstruct_hu(error: np.ndarray, geometry: Geometry) -> np.ndarray:
    """A projection error on the working grid -> its HU error on the image, through the kernel."""
    return error_to_hu(filtered_back_projection(error, geometry.pixel_mm), geometry)


def detector_coordinates(size: int) -> np.ndarray:
    return np.arange(size, dtype=np.float32) - (size - 1) / 2.0


# --------------------------------------------------------------------------- slices in and out


@dataclass(frozen=True)
class Slice:
    """One slice in HU with how it was read: its scale, geometry and working attenuation."""

    hu: np.ndarray
    scale: HounsfieldScale
    geometry: Geometry
    mu: np.ndarray


def slice_scale(image: np.ndarray, context: ImageContext | None) -> HounsfieldScale:
    """How the gray slice (H x W x 1) reads as HU, by the context's units and dtype."""
    meta = context.meta if context is not None else {}
    units = context.units if context is not None else None
    return hounsfield_scale(image[..., 0], meta.get("dtype"), units)


def slice_hu(image: np.ndarray, context: ImageContext | None) -> np.ndarray:
    """The gray slice (H x W x 1) in HU, H x W."""
    return slice_scale(image, context).to_hu(image[..., 0])


def read_slice(image: np.ndarray, context: ImageContext | None) -> Slice:
    """The gray slice in HU (by the context's units and dtype), at its pixel spacing."""
    scale = slice_scale(image, context)
    hu = scale.to_hu(image[..., 0])
    geometry = working_geometry(hu.shape, pixel_spacing_of(hu.shape, context))
    return Slice(hu, scale, geometry, attenuation_map(hu, geometry))


def to_caller(hu: np.ndarray, clean: Slice) -> np.ndarray:
    """A corrupted HU slice -> the caller's scale, clipped to CT's 12-bit range.

    Pixels below -1024 HU in the clean slice (the padding outside a scanner's circular field)
    were never measured: they keep their value.
    """
    out = np.clip(hu, MIN_HU, MAX_HU)
    out = np.where(clean.hu < MIN_HU, clean.hu, out)
    return clean.scale.from_hu(out)[..., None].astype(np.float32)


# --------------------------------------------------------------------------- photon statistics

ELECTRONIC_NOISE_COUNTS = 20.0  # detector electronic noise, in photon-count units
MIN_COUNTS = 0.5  # counts are floored before the logarithm, as scanners do
# Photons per mm of detector (at the isocentre) per view (180 views) at a routine dose: a 30 cm
# water cylinder then shows ~10 HU of noise at its centre through the kernel, a routine abdomen's
# level (Hsieh ch. 5).
ROUTINE_PHOTONS_PER_MM = 3.1e6
REFERENCE_WATER_MM = 300.0
# How far the automatic exposure control follows the patient: the dose grows with the
# attenuation of the patient's central rays to this power (1 keeps the noise constant, as a
# noise-index control does; 0 is a fixed tube current). Partial, as dose-modulation systems are.
AEC_STRENGTH = 0.75


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


def projection_variance(
    projections: np.ndarray, incident_photons: np.ndarray | float
) -> np.ndarray:
    """Variance of log-converted projections: (N + sigma_e^2) / N^2 for N transmitted photons."""
    counts = np.maximum(incident_photons * np.exp(-projections.astype(np.float64)), 1e-12)
    return (counts + ELECTRONIC_NOISE_COUNTS**2) / counts**2


def routine_photons(projections: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Incident photons per working bin and view at the routine dose an exposure control sets.

    The tube current follows the angle as the square root of each view's largest attenuation
    (angular modulation) and its mean level follows the patient by ``AEC_STRENGTH``, measured on
    the central rays (the middle fifth of the detector) against a 30 cm water cylinder's.
    """
    bins = projections.shape[1]
    middle = projections[:, 2 * bins // 5 : 3 * bins // 5 + 1]
    peak = middle.max(axis=1, keepdims=True).astype(np.float64)
    modulation = np.exp(0.5 * (peak - peak.mean()))
    reference = WATER_MU_PER_MM * REFERENCE_WATER_MM
    level = np.exp(AEC_STRENGTH * (peak.mean() - reference))
    per_bin = ROUTINE_PHOTONS_PER_MM * geometry.pixel_mm
    return per_bin * level * modulation / modulation.mean()


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
def ct_low_dose_noise(
    image: np.ndarray,
    dose_halvings: float,
    rng: np.random.Generator,
    context: ImageContext | None = None,
):
    """Low-dose quantum noise: Poisson photon statistics on the projections, reconstructed by FBP.

    Fewer photons per ray raise the relative noise of each projection as 1 / sqrt(counts); FBP
    turns it into the fine-grained, slightly streaky noise of low-dose CT (Hsieh ch. 5). As in
    low-dose simulation tools (Yu et al. 2012), the image is taken to hold the noise of a routine
    dose, and only the extra variance of the reduced dose is added on the projections (Poisson
    plus electronic noise, through the log), reconstructed and added. The routine dose is the one
    an exposure control sets for this patient (``routine_photons``): noise grows behind long and
    dense paths, and somewhat with the patient's size, as on a scanner.
    """
    clean = read_slice(image, context)
    projections = radon(clean.mu)
    normal = rng.standard_normal(projections.shape, dtype=np.float32)
    routine = routine_photons(projections, clean.geometry)
    reduced = routine / 2.0**dose_halvings
    extra = projection_variance(projections, reduced) - projection_variance(projections, routine)
    error = (np.sqrt(np.maximum(extra, 0.0)) * normal).astype(np.float32)
    return to_caller(clean.hu + reconstruct_hu(error, clean.geometry), clean)


# Photon starvation's parameter counts photons per detector element of this width (a usual
# detector pitch at the isocentre is 0.5-1.5 mm).
STARVATION_ELEMENT_MM = 1.5


@corruption(
    "ct_photon_starvation",
    family=FAMILY,
    modalities=MODALITIES,
    channels="gray",
    domain="physical",
    # log10 of the photons per 1.5 mm detector element reaching the detector along the most
    # attenuating ray (shoulders, pelvis, obese patients): 3.35 is ~2200 photons, 2.25 ~180,
    # where the electronic noise (20 photons) takes over; below 1 (10 photons) the log of a few
    # noisy counts is unusable.
    severity_params=[3.35, 2.9, 2.6, 2.4, 2.25],
    param_range=(7.0, 0.0),
    reference=BOAS + " (photon starvation); " + HSIEH + ", ch. 7",
)
def ct_photon_starvation(
    image: np.ndarray,
    log10_photons_at_peak: float,
    rng: np.random.Generator,
    context: ImageContext | None = None,
):
    """Photon starvation: streaks along the most attenuating directions.

    Through the longest or densest paths (the shoulders, the pelvis side to side) only a few
    photons reach the detector; their relative noise and the electronic noise floor dominate,
    and after the logarithm and FBP the noisy rays become streaks along those directions (Boas &
    Fleischmann 2012). The tube current is fixed (no modulation) so that the most attenuating
    ray receives 10 ** ``log10_photons_at_peak`` photons per detector element; the others,
    exponentially more.
    """
    clean = read_slice(image, context)
    projections = radon(clean.mu)
    normal = rng.standard_normal(projections.shape, dtype=np.float32)
    per_bin = clean.geometry.pixel_mm / STARVATION_ELEMENT_MM
    incident = 10.0**log10_photons_at_peak * per_bin * np.exp(float(projections.max()))
    error = quantum_noise_error(projections, incident, normal)
    return to_caller(clean.hu + reconstruct_hu(error, clean.geometry), clean)


# --------------------------------------------------------------------------- metal

METAL_MU_PER_MM = 0.3  # titanium at ~70 keV effective
METAL_HU = MAX_HU  # the top of the 12-bit HU range, where scanners show metal
METAL_SATURATION = 2.5  # projection value the measured metal path saturates towards
MAX_METAL_OBJECTS = 3
BODY_HU = -500.0  # the body outline: above this, or enclosed by it (lungs, sinuses)
SOFT_TISSUE_HU = (-100.0, 150.0)  # where implants sit: fat, muscle, organs, brain
# Metal keeps this far (plus its radius) inside the skin, and at least a quarter of the body's
# deepest point, so that it sits in the body (brain, abdomen), not at the skull or the skin.
METAL_MARGIN_MM = 10.0
METAL_DEPTH_SHARE = 0.25


def metal_projections(centres_px: np.ndarray, radius_px: float, size: int) -> np.ndarray:
    """Exact projections of metal discs (centres in working pixels about the centre)."""
    theta = np.deg2rad(ANGLES_DEG)[:, None]
    u = detector_coordinates(size)[None, :]
    total = np.zeros((N_ANGLES, size), np.float32)
    for x, y in centres_px:
        offset = u - (x * np.cos(theta) + y * np.sin(theta))
        total += 2.0 * np.sqrt(np.maximum(radius_px**2 - offset**2, 0.0)).astype(np.float32)
    return total


def body_mask(hu: np.ndarray) -> np.ndarray:
    """The patient: the largest connected region above ``BODY_HU``, its holes filled."""
    inside = (hu > BODY_HU).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(inside, connectivity=4)
    if count < 2:
        return inside.astype(bool)
    body = (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
    # its holes: what of the rest the frame's border cannot reach (4-connected, as scipy's)
    h, w = body.shape
    outside = np.pad(1 - body, 1, constant_values=1)
    cv2.floodFill(outside, np.zeros((h + 4, w + 4), np.uint8), (0, 0), 2, flags=4)
    return outside[1:-1, 1:-1] != 2


def metal_sites(hu: np.ndarray, spacing: tuple[float, float], radius_mm: float) -> np.ndarray:
    """Where metal may sit: soft tissue at least the margin plus the radius inside the body.

    Distances are in mm (``spacing``). The margin shrinks for small bodies, then soft tissue
    anywhere in the body, then the body, then the whole slice are taken when nothing is left.
    """
    body = body_mask(hu)
    depth = ndimage.distance_transform_edt(body, sampling=spacing)
    soft = (hu > SOFT_TISSUE_HU[0]) & (hu < SOFT_TISSUE_HU[1])
    wanted = max(METAL_MARGIN_MM, METAL_DEPTH_SHARE * float(depth.max())) + radius_mm
    for candidates in (
        soft & (depth > wanted),
        soft & (depth > 0.5 * wanted),
        soft & body,
        depth > 0.5 * wanted,
        body,
    ):
        if candidates.any():
            return candidates
    return np.ones(hu.shape, bool)


def _metal_centres(sites: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Metal centres (row, column in image pixels), one per draw in [0, 1), among ``sites``."""
    flat = np.flatnonzero(sites)
    picks = flat[np.minimum((draws * flat.size).astype(int), flat.size - 1)]
    return np.stack(np.unravel_index(picks, sites.shape), axis=1).astype(np.float64)


@corruption(
    "ct_metal_streaks",
    family=FAMILY,
    modalities=MODALITIES,
    channels="gray",
    domain="physical",
    # Radius of each metal object in mm: clips, dental fillings and screws (2-4), rods and
    # plates, up to the head of a hip prosthesis (10-14; the largest femoral heads are 36 mm
    # across, the end of the range).
    severity_params=[2.1, 4.0, 5.7, 7.6, 10.3],
    param_range=(0.0, 18.0),
    reference=BOAS + " (metal artifacts); " + HSIEH + ", ch. 7",
)
def ct_metal_streaks(
    image: np.ndarray,
    radius_mm: float,
    rng: np.random.Generator,
    context: ImageContext | None = None,
):
    """Metal streaks: bright and dark streaks radiating from and between metal objects.

    Metal attenuates so strongly that its projections are wrong in several ways at once: the beam
    hardens (the measured path grows less than linearly), few photons pass (starvation noise), and
    the log-converted value saturates (Boas & Fleischmann 2012). One to three titanium discs are
    placed in soft tissue well inside the body (``metal_sites``); their exact projections are
    measured through a saturating response ``p_sat (1 - exp(-p / p_sat))`` with starvation noise
    behind them, and the reconstructed error - dark streaks between the objects, bright ones along
    their tangents - is added to the slice, in which the discs themselves show at the top of the
    HU range.
    """
    clean = read_slice(image, context)
    geometry = clean.geometry
    count = int(rng.integers(1, MAX_METAL_OBJECTS + 1))
    positions = rng.random(MAX_METAL_OBJECTS)[:count]
    normal = rng.standard_normal((N_ANGLES, geometry.size), dtype=np.float32)
    # Sites do not depend on the radius, so that a seed places the metal alike at every strength.
    centres = _metal_centres(metal_sites(clean.hu, geometry.spacing, 0.0), positions)

    dy, dx = geometry.spacing
    h, w = geometry.shape
    centres_mm = (centres - [(h - 1) / 2.0, (w - 1) / 2.0]) * [dy, dx]
    centres_work = centres_mm[:, ::-1] / geometry.pixel_mm  # (x, y) about the centre
    radius_work = radius_mm / geometry.pixel_mm
    metal = metal_projections(centres_work, radius_work, geometry.size) * (
        METAL_MU_PER_MM * geometry.pixel_mm
    )
    measured = METAL_SATURATION * (1.0 - np.exp(-metal / METAL_SATURATION))
    body = radon(clean.mu)
    # Extra variance behind the metal: 1/N with the metal minus 1/N without it.
    photons = routine_photons(body, geometry)
    extra_variance = (np.exp(body + measured) - np.exp(body)) / photons
    error = (measured - metal + np.sqrt(extra_variance) * normal).astype(np.float32)
    streaks_hu = reconstruct_hu(error, geometry)

    rows, cols = np.indices(clean.hu.shape, dtype=np.float32)
    cover = np.zeros(clean.hu.shape, np.float32)
    pixel = min(dy, dx)
    for row, col in centres:
        distance_mm = np.hypot((rows - row) * dy, (cols - col) * dx)
        cover = np.maximum(cover, np.clip((radius_mm - distance_mm) / pixel + 0.5, 0.0, 1.0))
    cover *= np.float32(min(1.0, 2.0 * radius_mm / pixel))  # a sub-pixel object fills part of it
    out = (clean.hu + streaks_hu) * (1.0 - cover) + METAL_HU * cover
    return to_caller(out, clean), {"metal_centres": centres.astype(int)}


# --------------------------------------------------------------------------- beam hardening

# Bone's share of a pixel's attenuation, from 150 HU (none) to 650 HU (all): the cortical and
# dense trabecular bone whose higher atomic number hardens the beam more than water does.
BONE_ONSET_HU, BONE_FULL_HU = 150.0, 650.0
# How much more bone hardens the beam than the same attenuation of water, once the scanner's
# water precorrection has removed most of water's own share: what is left is mostly bone's
# (its photoelectric absorption, which takes the soft photons, grows as the cube of the atomic
# number).
BONE_HARDENING = 20.0


@corruption(
    "ct_beam_hardening",
    family=FAMILY,
    modalities=MODALITIES,
    channels="gray",
    domain="physical",
    # beta of the measured projection p - beta (p_w^2 + 20 p_b^2): at 0.0015 a 36 x 28 cm
    # abdomen's centre falls by ~10 HU (a residue after water correction), at 0.01 by ~65 HU; the
    # dark bands between bones (skull base, pelvis) grow with it. The end of the range, 0.05, is a
    # low-kVp beam whose bone hardening is not corrected at all: the dark streaks between the
    # petrous bones of a head then reach a few hundred HU (Hsieh ch. 7, Boas & Fleischmann 2012).
    severity_params=[0.0015, 0.003, 0.005, 0.0075, 0.01],
    param_range=(0.0, 0.05),
    reference=HSIEH + ", ch. 7 (beam hardening); " + BOAS + " (cupping)",
)
def ct_beam_hardening(
    image: np.ndarray,
    beta: float,
    rng: np.random.Generator,
    context: ImageContext | None = None,
):
    """Beam hardening: cupping (a darker centre) and dark bands between dense structures.

    A polychromatic beam loses its soft photons first, so the measured projection grows less than
    linearly with path length; to first order p_measured = p - beta p^2 (Hsieh ch. 7). Bone
    hardens the beam more than water (``BONE_HARDENING`` times, on its own part of the path), and
    the scanner's water correction leaves that part: rays through two bones lose most, which
    reconstructs as dark streaks between them (the skull base, the pelvis), and long paths through
    the body centre as cupping (Boas & Fleischmann 2012). Deterministic: no random draws.
    """
    clean = read_slice(image, context)
    bone_share = np.clip((clean.hu - BONE_ONSET_HU) / (BONE_FULL_HU - BONE_ONSET_HU), 0.0, 1.0)
    geometry = clean.geometry
    bone = clean.mu * attenuation_share(bone_share, geometry)
    water_path = radon(clean.mu - bone)
    bone_path = radon(bone)
    error = -np.float32(beta) * (water_path**2 + BONE_HARDENING * bone_path**2)
    return to_caller(clean.hu + reconstruct_hu(error, geometry), clean)


def attenuation_share(share: np.ndarray, geometry: Geometry) -> np.ndarray:
    """A per-pixel fraction on the image's grid, resampled to the working square (0 outside)."""
    rows, cols = geometry.footprint
    top, left = geometry.pad
    square = np.zeros((geometry.size, geometry.size), np.float32)
    square[top : top + rows, left : left + cols] = _resize(share.astype(np.float32), rows, cols)
    return square


# --------------------------------------------------------------------------- ring artifacts

PROFILE_ANGLES = 720  # views over a full rotation for the radial profile of the rings
DETECTOR_PITCH_MM = 0.6  # detector channel width at the isocentre
MAX_DEFECTIVE_CHANNELS = 128


@corruption(
    "ct_ring_artifact",
    family=FAMILY,
    modalities=MODALITIES,
    channels="gray",
    domain="physical",
    # (largest relative gain error of the miscalibrated channels, how many channels). 0.5 % on
    # two channels just shows in a narrow brain window, several percent (a failing channel) makes
    # strong rings (Hsieh ch. 7). The strong levels are a calibration gone stale: gains drift with
    # the detector's temperature and radiation damage channel by channel, so a drifted detector
    # shows dozens of rings over the whole field, not one ring brighter. Full strength, 128
    # channels off by up to 10 %, is a detector that should not be scanning.
    severity_params=[(0.005, 2.0), (0.015, 3.0), (0.03, 5.0), (0.05, 12.0), (0.08, 24.0)],
    param_range=((0.0, 2.0), (0.1, float(MAX_DEFECTIVE_CHANNELS))),
    reference=HSIEH + ", ch. 7 (ring artifacts); " + BOAS + " (rings)",
)
def ct_ring_artifact(
    image: np.ndarray,
    param: tuple[float, float],
    rng: np.random.Generator,
    context: ImageContext | None = None,
):
    """Ring artifacts: concentric rings about the isocentre from miscalibrated channels.

    A detector channel whose gain differs from its calibration adds the same offset
    -log(1 + error) to its reading at every view; it sees, over the rotation, the circle of
    pixels at its distance from the isocentre, so FBP turns it into a ring (Hsieh ch. 7).
    ``param`` is (gain error, channels): that many channels within the image's inscribed circle
    (the last one fading in) get an error of up to the gain error. The isocentre is the centre of
    the reconstruction grid, the image's centre. A sinogram constant over angle reconstructs as a
    radially symmetric image, so the filtered channel offsets are back-projected once along a
    radius and laid out by distance (mm) from the centre, at the image's own resolution.
    """
    gain_error, count = param
    values = image[..., 0]
    meta = context.meta if context is not None else {}
    scale = hounsfield_scale(values, meta.get("dtype"), context.units if context else None)
    hu = scale.to_hu(values)
    h, w = hu.shape
    dy, dx = pixel_spacing_of((h, w), context)
    channels = int(np.ceil(np.hypot(h * dy, w * dx) / DETECTOR_PITCH_MM)) + 3
    inscribed = 0.5 * min(h * dy, w * dx) / DETECTOR_PITCH_MM
    offsets_from_centre = rng.uniform(0.0, 0.9 * inscribed, MAX_DEFECTIVE_CHANNELS)
    errors = rng.choice([-1.0, 1.0], MAX_DEFECTIVE_CHANNELS) * rng.uniform(
        0.5, 1.0, MAX_DEFECTIVE_CHANNELS
    )
    weights = np.clip(count - np.arange(MAX_DEFECTIVE_CHANNELS), 0.0, 1.0)
    offsets = np.zeros(channels, np.float32)
    middle = (channels - 1) / 2.0
    bins = np.rint(middle + offsets_from_centre).astype(int)
    # -log(1 + error), linearised: errors are small; two channels may share a bin
    np.add.at(offsets, bins, -gain_error * errors * weights)
    filtered = ramp_filter(offsets[None, :], DETECTOR_PITCH_MM)[0]

    u = detector_coordinates(channels)
    radii = np.arange(0.0, channels / 2.0, 0.25)
    # A full rotation sees every ray twice (hence 2 pi and the extra half): a channel offset then
    # makes a full ring, not the half ring of a 180-degree parallel scan.
    angles = np.arange(PROFILE_ANGLES) * (2.0 * np.pi / PROFILE_ANGLES)
    profile = np.interp(radii[:, None] * np.cos(angles)[None, :], u, filtered).sum(axis=1)
    profile *= np.pi / (2.0 * PROFILE_ANGLES)
    rows, cols = np.indices((h, w), dtype=np.float32)
    radius_bins = np.hypot((rows - (h - 1) / 2.0) * dy, (cols - (w - 1) / 2.0) * dx)
    radius_bins /= DETECTOR_PITCH_MM
    rings_hu = np.interp(radius_bins, radii, profile) * (
        1000.0 / (WATER_MU_PER_MM * DETECTOR_PITCH_MM)
    )
    clean = Slice(hu, scale, working_geometry((h, w), (dy, dx)), np.empty(0, np.float32))
    # every drawn channel, in the order they join as the count grows (the record is the same at
    # every strength)
    draws = {"ring_radii_mm": np.round(offsets_from_centre * DETECTOR_PITCH_MM, 1)}
    return to_caller(hu + rings_hu.astype(np.float32), clean), draws


# --------------------------------------------------------------------------- display


@corruption(
    "ct_window_level_shift",
    family=FAMILY,
    modalities=MODALITIES,
    channels="gray",
    # Reads the values beyond the intended window (a wrong window shows what the right one clips:
    # air stays black under a level a fifth of a brain window off, fat comes into view under a
    # wider one); its result is what the intended window presents as the wrong one.
    domain="physical",
    # (level offset in window widths, width error factor) of the presented window: the default
    # table goes up to a level a fifth of the window off (80 HU in a soft-tissue window) and a
    # width 40 % off, a slip of a drifted level. The range reaches a neighbouring preset chosen
    # by mistake: brain (W80 L40) shown as subdural (W215 L75: 2.7x wider, level 0.44 widths
    # off) or as soft tissue (W400 L40: 5x wider), liver (W150 L30) as abdomen (W400 L50: 2.7x),
    # stroke (W40 L40) as brain (2x). Hsieh ch. 4; common CT window presets.
    severity_params=[(0.03, 1.05), (0.06, 1.1), (0.1, 1.17), (0.15, 1.27), (0.2, 1.4)],
    param_range=((0.0, 1.0), (0.5, 4.0)),
    reference=HSIEH + ", ch. 4 (image presentation: window width and level)",
)
def ct_window_level_shift(
    image: np.ndarray,
    error: tuple[float, float],
    rng: np.random.Generator,
    context: ImageContext | None = None,
):
    """Mis-set window / level: the slice shown with the wrong display window.

    A CT slice is viewed through a window (level L, width W); values outside it saturate to
    black or white. A wrong preset or a drifted level in a viewer or an export pipeline shifts
    the level and stretches or compresses the width. This is a display error: the wrong window
    moves the level by the first parameter times the width (up or down, drawn) and makes the
    width wider or narrower (drawn) by the second. A narrower window saturates more of the slice,
    a wider one flattens its contrast.

    The wrong window is applied to the slice's own values, not to the presented image: the
    presented image has already clipped what lies outside the intended window, and a wrong window
    does not lift air at -1000 HU off black because the intended one showed it black. The result
    is the values that the intended window (the presentation's) shows as the wrong window shows
    the slice; values whose grey level does not change keep their own value.
    """
    level_offset, width_factor = error
    level_sign = float(rng.choice([-1.0, 1.0]))
    narrower = bool(rng.integers(2))
    gain = width_factor if narrower else 1.0 / width_factor
    values = image[..., 0].astype(np.float64)
    if context is not None and context.window is not None:
        low, high = (float(v) for v in context.window)
    else:
        low, high = float(values.min()), float(values.max())
    width = max(high - low, 1e-12)
    unit = (values - low) / width  # the intended window, before its clipping
    right = np.clip(unit, 0.0, 1.0)
    wrong = np.clip((unit - 0.5 - level_sign * level_offset) * gain + 0.5, 0.0, 1.0)
    out = np.where(np.abs(wrong - right) <= 1e-9, values, low + wrong * width)
    draws = {"level_direction": level_sign, "narrower": narrower, "window": [low, high]}
    return out.astype(np.float32)[..., None], draws


# --------------------------------------------------------------------------- registration


CORRUPTIONS: tuple[Corruption, ...] = (
    ct_low_dose_noise,
    ct_photon_starvation,
    ct_metal_streaks,
    ct_beam_hardening,
    ct_ring_artifact,
    ct_window_level_shift,
)
register_corruptions = registers(CORRUPTIONS)
