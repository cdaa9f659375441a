"""MR corruptions (family 'mri'): acquisition and reconstruction artifacts of magnitude images.

An MR image is the magnitude of the inverse Fourier transform of the sampled k-space, so every
artifact here is made where the scanner makes it: noise on the complex signal, errors on k-space
lines or points, missing k-space, a multiplicative receive-coil field. They act on the MR magnitudes
themselves (``domain="physical"``): the Fourier transform is linear and the coil field multiplies
the signal, which a display window's offset would break. The result is then shown through the
clean image's window. Amplitudes are stated relative to the signal scale (the top of the
presentation window, see ``signal_scale``); sizes in k-space are stated in absolute terms - lines
of a 256 mm reference field of view, scaled by the image's own field (``pixel_spacing`` times the
matrix; without a spacing the image is taken to span the reference field) - so that a 64- and a
512-pixel image of one head get the same acquired resolution, not the same fraction of their own.

The phase-encode axis (rows or columns) is drawn per image; along it the k-space lines are
acquired one after another in time, which is what motion, ghosting and undersampling act on.
Each corruption is split, as in MONAI / TorchIO, into a deterministic operation with explicit
parameters (``rician_magnitude``, ``bias_field``, ``ghost_lines``, ...) and the registered function
that draws those parameters from ``rng``. The FFTs use scipy's thread setting of the caller
(``scipy.fft.set_workers``), never a private one.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import fft

from ..presentation import percentiles
from .registering import registers
from .spec import Corruption, ImageContext, corruption

FAMILY = "mri"
MODALITIES = ["mri"]

ZAITSEV = "Zaitsev, Maclaren & Herbst, J Magn Reson Imaging 42:887-901 (2015), MR artifacts"
BERNSTEIN = "Bernstein, King & Zhou, Handbook of MRI Pulse Sequences (2004)"
SMITH_NAYAK = (
    "Smith & Nayak, Radiographics 30:1431-1449 (2010), an image-based approach to MR artifacts"
)


# --------------------------------------------------------------------------- k-space


def to_kspace(image: np.ndarray) -> np.ndarray:
    """Centred 2-D k-space of an image (zero frequency at index ``n // 2`` on each axis)."""
    return fft.fftshift(fft.fft2(image))


def to_magnitude(kspace: np.ndarray) -> np.ndarray:
    """Magnitude image of a centred k-space: what an MR scanner displays."""
    return np.abs(fft.ifft2(fft.ifftshift(kspace))).astype(np.float32)


def _centred_offsets(n: int) -> np.ndarray:
    """Each sample's distance from the k-space centre (``n // 2`` once centred), in the order
    ``fft2`` leaves them: masks built with it apply to the uncentred k-space directly, skipping
    the two shifts (a permutation, so the values are those of the centred computation)."""
    return (np.arange(n) + n // 2) % n - n // 2


def _line_index(shape: tuple[int, int], axis: int) -> np.ndarray:
    """Index along ``axis`` of each k-space sample, shaped to broadcast against the k-space."""
    index = np.arange(shape[axis])
    return index[:, None] if axis == 0 else index[None, :]


def _gray(image: np.ndarray) -> np.ndarray:
    return image[..., 0]


# --------------------------------------------------------------------------- scale and size

REFERENCE_FOV_MM = 256.0  # the field the k-space tables are stated for: a head, 1 mm at 256 lines
MIN_KEPT_LINES = (
    16  # fewest k-space lines a truncation or undersampling keeps (a head stays a head)
)
OBJECT_THRESHOLD = 0.1  # pixels above this fraction of the signal scale are the imaged object


def magnitude_floor(image: np.ndarray) -> float:
    """The value that stands for zero signal: 0, or the minimum of data stored with negatives.

    A magnitude is never negative; negative values come from a converter's offset or signed
    storage, so the physics acts on the values above the lowest one and adds it back.
    """
    return min(0.0, float(image.min()))


def above_floor(image: np.ndarray) -> tuple[np.ndarray, np.float32]:
    """(the magnitude above ``magnitude_floor``, contiguous and to be read only; the floor).

    A floor of 0 (the usual magnitude) hands the image itself back, without a subtraction; add
    the floor back with ``on_floor``.
    """
    floor = np.float32(magnitude_floor(image))
    return (np.ascontiguousarray(image) if floor == 0.0 else image - floor), floor


def on_floor(values: np.ndarray, floor: np.float32) -> np.ndarray:
    """``values`` above ``floor`` back in the image's own values (in place when the floor is not 0)."""
    if floor != 0.0:
        values += floor
    return values


def on_signal(image: np.ndarray, operation) -> np.ndarray:
    """Apply a k-space ``operation`` to the magnitude above ``magnitude_floor``; H x W x 1 out."""
    signal, floor = above_floor(_gray(image))
    return on_floor(operation(signal), floor)[..., None]


def signal_scale(image: np.ndarray, context: ImageContext | None) -> float:
    """The bright-tissue signal level noise and spikes are relative to: the window's top.

    The presentation window's top is the robust maximum (99.5th percentile) of an MR image, or
    its DICOM window's top; either way what the model sees as white. Without a context (a direct
    call) the 99.5th percentile is used. Measured from ``magnitude_floor``.
    """
    floor = magnitude_floor(image)
    top = context.window[1] if context is not None and context.window is not None else None
    if top is None or top <= floor:
        top = float(np.percentile(image, 99.5))
    return max(float(top) - floor, 1e-12)


def object_mask(image: np.ndarray, context: ImageContext | None) -> np.ndarray:
    """The imaged object: pixels above ``OBJECT_THRESHOLD`` of the signal scale (else all)."""
    above, _ = above_floor(image)
    mask = above > OBJECT_THRESHOLD * signal_scale(image, context)
    return mask if np.count_nonzero(mask) >= max(16, mask.size // 100) else np.ones_like(mask)


def field_of_view_mm(shape: tuple[int, int], context: ImageContext | None) -> tuple[float, float]:
    """Field of view (rows, columns) in mm; the reference field when no spacing is known."""
    if context is None or context.pixel_spacing is None:
        return REFERENCE_FOV_MM, REFERENCE_FOV_MM
    return shape[0] * context.pixel_spacing[0], shape[1] * context.pixel_spacing[1]


def lines_for_field(resolution_mm: float, lines: int, fov_mm: float) -> int:
    """k-space lines an acquisition of ``resolution_mm`` takes over a field of ``fov_mm``.

    At least ``MIN_KEPT_LINES`` and at most the ``lines`` the image has (a resolution of 0 keeps
    them all).
    """
    if resolution_mm <= 0.0:
        return int(lines)
    wanted = int(round(fov_mm / resolution_mm))
    return int(min(lines, max(wanted, MIN_KEPT_LINES)))


# --------------------------------------------------------------------------- Rician noise


def rician_magnitude(
    image: np.ndarray, sigma: float, real: np.ndarray, imag: np.ndarray
) -> np.ndarray:
    """Magnitude of the complex signal after adding ``sigma`` times the two Gaussian fields."""
    return np.sqrt((image + np.float32(sigma) * real) ** 2 + (np.float32(sigma) * imag) ** 2)


@corruption(
    "mri_rician_noise",
    family=FAMILY,
    modalities=MODALITIES,
    domain="physical",
    channels="gray",
    # Standard deviation of the noise in each of the real and imaginary channels, relative to the
    # signal scale (the window's top, bright tissue): 0.01 (SNR ~ 60 in brain tissue) is a good
    # clinical scan, 0.036 (SNR ~ 17) a fast or low-field one.
    severity_params=[0.01, 0.015, 0.021, 0.028, 0.036],
    param_range=(0.0, 0.1),
    reference="Gudbjartsson & Patz, Magn Reson Med 34:910-914 (1995), the Rician distribution of noisy MRI data",
)
def mri_rician_noise(
    image: np.ndarray,
    sigma: float,
    rng: np.random.Generator,
    context: ImageContext | None = None,
) -> np.ndarray:
    """Rician noise: thermal noise on the complex MR signal, seen through the magnitude.

    The receiver adds white Gaussian noise of equal variance to the real and imaginary channels;
    the orthonormal Fourier transform keeps it white and Gaussian in the image, so it is drawn
    there. Taking the magnitude makes it Rician: Gaussian-like in bright tissue, Rayleigh in the
    background, which therefore brightens (mean sigma * sqrt(pi / 2)) - the signature of magnitude
    MR noise (Gudbjartsson & Patz 1995). The magnitude never falls below zero signal.
    """
    real, imag = rng.standard_normal((2, *image.shape), dtype=np.float32)
    signal, floor = above_floor(image)
    noise_sigma = sigma * signal_scale(image, context)
    return on_floor(rician_magnitude(signal, noise_sigma, real, imag), floor)


# --------------------------------------------------------------------------- bias field

BIAS_FIELD_ORDER = 3


def bias_monomials(order: int = BIAS_FIELD_ORDER) -> list[tuple[int, int]]:
    """Exponents (row, column) of the polynomial terms of a bias field, constant first.

    The order is TorchIO's (row exponent outer, column exponent inner), so that its coefficients
    can be passed through unchanged.
    """
    return [(i, j) for i in range(order + 1) for j in range(order + 1 - i)]


def bias_log_field(
    shape: tuple[int, int],
    coefficients: np.ndarray,
    order: int = BIAS_FIELD_ORDER,
    dtype: type = np.float64,
) -> np.ndarray:
    """The polynomial over pixel centres scaled to [-1, 1] on each axis (TorchIO's coordinates).

    Summed in ``dtype``: float64 by default; the registered corruption takes float32 (the field
    to ~1e-6 of its range, far below a float32 image's own rounding after ``exp``).
    """
    rows = np.linspace(-1.0, 1.0, shape[0]) if shape[0] > 1 else np.zeros(1)
    cols = np.linspace(-1.0, 1.0, shape[1]) if shape[1] > 1 else np.zeros(1)
    # sum_ij c_ij r^i q^j = sum_i r^i (sum_j c_ij q^j): one (H x order+1) @ (order+1 x W) product
    # instead of a full-size outer product per term (the same field to ~1e-15)
    row_powers = np.vander(rows, order + 1, increasing=True)  # H x (order + 1): r^i
    table = np.zeros((order + 1, order + 1))  # table[i, j] = c_ij
    rows_of, columns_of = np.array(bias_monomials(order)).T
    table[rows_of, columns_of] = coefficients
    column_terms = table @ np.vander(cols, order + 1, increasing=True).T
    return row_powers.astype(dtype, copy=False) @ column_terms.astype(dtype, copy=False)


def bias_field(
    shape: tuple[int, int], coefficients: np.ndarray, order: int = BIAS_FIELD_ORDER
) -> np.ndarray:
    """exp(polynomial) over pixel centres scaled to [-1, 1] on each axis: a smooth gain field."""
    return np.exp(bias_log_field(shape, coefficients, order)).astype(np.float32)


def log_gain_span(log_field: np.ndarray, mask: np.ndarray | None = None) -> float:
    """log(p95 / p5) of a gain field over the object: how far its bright and dark sides differ.

    ``log_field`` holds the whole field (with ``mask`` the object), or, without a mask, the values
    over the object already gathered.
    """
    values = log_field if mask is None else log_field[mask]
    lo, hi = percentiles(values, (5.0, 95.0))
    return float(hi - lo)


@corruption(
    "mri_bias_field",
    family=FAMILY,
    modalities=MODALITIES,
    domain="physical",
    channels="gray",
    # Gain ratio across the object (95th over 5th percentile of the field inside it). TorchIO
    # RandomBiasField's default (coefficients up to 0.5) gives a median of 1.5-1.7 on a head or
    # spine slice (2.7 where the object fills the square); 4 is an uncorrected surface coil or
    # 3 T body imaging, where the far side is a quarter as bright but still readable.
    severity_params=[1.6, 2.0, 2.5, 3.2, 4.0],
    param_range=(1.0, 6.0),
    reference="Sled, Zijdenbos & Evans, IEEE TMI 17:87-97 (1998); Reinhold et al., SPIE Med Imaging 2019; "
    "TorchIO RandomBiasField (Perez-Garcia et al. 2021)",
)
def mri_bias_field(
    image: np.ndarray,
    gain_ratio: float,
    rng: np.random.Generator,
    context: ImageContext | None = None,
):
    """Intensity non-uniformity: a smooth multiplicative field from the receive coils and B1.

    Coil sensitivity profiles and RF (B1) inhomogeneity multiply the signal by a slowly varying
    gain (Sled et al. 1998), modelled as TorchIO does by exp of a cubic polynomial in the
    normalised coordinates, coefficients drawn in [-1, 1]. The drawn shape is scaled so that the
    gain varies by ``gain_ratio`` across the object (p95 / p5), which means the same on every
    image; scaling TorchIO's coefficients instead gives ratios anywhere from 1.2 to 6 for one
    setting, depending on the draw and on how much of the square the object fills. The scanner
    stores the magnitude rescaled to its range, so the result is scaled to keep the clean
    maximum: no tissue saturates, the far side of the field darkens. Outside the object the
    polynomial is held to the range it takes inside it: a cubic extrapolated into the corners of a
    small object's square would otherwise lift the background noise tens of times.
    """
    terms = len(bias_monomials())
    unit_coefficients = rng.uniform(-1.0, 1.0, terms)
    unit_coefficients[0] = 0.0  # a constant term is a global gain, undone by the rescaling below
    gray = _gray(image)
    signal, floor = above_floor(gray)  # read, never written
    inside = object_mask(gray, context)
    unit_log_field = bias_log_field(gray.shape, unit_coefficients, dtype=np.float32)
    over_object = unit_log_field[inside]  # gathered once: the span and the held range
    span = log_gain_span(over_object)
    scale = np.log(max(gain_ratio, 1.0)) / span if span > 0.0 else 0.0
    # in place on the float32 field: hold it to its range over the object, scale, exponentiate
    gain = np.clip(unit_log_field, over_object.min(), over_object.max(), out=unit_log_field)
    gain *= np.float32(scale)
    biased = np.exp(gain, out=gain)
    # in place for float32 signal (the engine's); a float64 one gives a float64 result, as ever
    biased = np.multiply(biased, signal, out=biased if signal.dtype == np.float32 else None)
    peak, biased_peak = float(signal.max()), float(biased.max())
    if biased_peak > 0.0:
        biased *= np.float32(peak / biased_peak)
    biased = on_floor(biased, floor)
    # the applied coefficients are the unit ones times log(gain_ratio) / unit_log_span
    return biased[..., None], {
        "unit_coefficients": unit_coefficients,
        "unit_log_span": round(span, 6),
    }


# --------------------------------------------------------------------------- ghosting


def ghost_lines(
    image: np.ndarray, axis: int, period: int, intensity: float, restored_lines: int = 0
) -> np.ndarray:
    """Scale every ``period``-th phase-encode line (counted from the centre) by ``1 - intensity``.

    A line-to-line amplitude (or, for ``intensity`` above 1, phase) inconsistency with period
    ``period`` puts ghosts of the object at multiples of FOV / ``period`` along the phase-encode
    axis. The ``restored_lines`` central lines on each side of the centre keep their values.

    The scaled lines come in mirrored pairs (offsets +o and -o) and the factor is real, so the
    k-space stays Hermitian and the image real: the edit is made on the half spectrum of a real
    transform (``rfft2``: columns 0 to n // 2 of the uncentred k-space), which holds every line
    once. The magnitude of that real image is the magnitude of the full complex computation.
    """
    kspace = fft.rfft2(image)  # uncentred: line u is at offset u, or u - n past the middle
    n = image.shape[axis]
    first = (restored_lines // period + 1) * period  # the first offset scaled on either side
    factor = np.float32(1.0 - intensity)
    if axis == 1:
        # the half spectrum holds offsets 0 .. n // 2 along the columns (an even n's Nyquist
        # line, offset -n / 2, is column n / 2 and is scaled when n / 2 is a multiple of period)
        kspace[:, first : n // 2 + 1 : period] *= factor
    else:
        above = slice(first, n - n // 2, period)
        below = slice(n - first, n - n // 2 - 1, -period) if first <= n // 2 else slice(0, 0)
        for lines in (above, below):
            kspace[lines] *= factor
    return np.abs(fft.irfft2(kspace, s=image.shape))


@corruption(
    "mri_ghosting",
    family=FAMILY,
    modalities=MODALITIES,
    domain="physical",
    channels="gray",
    # Change of the affected lines: 1 removes them, 2 inverts them (a 180 degree phase error).
    severity_params=[0.3, 0.6, 0.95, 1.3, 1.75],
    param_range=(0.0, 2.0),
    reference=ZAITSEV + "; " + BERNSTEIN + " (N/2 ghosts); TorchIO Ghosting",
)
def mri_ghosting(image: np.ndarray, intensity: float, rng: np.random.Generator):
    """Ghosting: shifted replicas of the object along the phase-encode axis.

    Periodic motion (respiration, pulsation) or a periodic line-to-line inconsistency (the N/2
    ghost of EPI) modulates the k-space lines with the phase-encode period; the object then
    reappears at multiples of FOV / period (Zaitsev et al. 2015). Here every ``period``-th line
    (period 2-4, drawn) is scaled by ``1 - intensity``; the central 2 % of k-space keeps its value,
    as in TorchIO, so that the image's contrast is not lost.
    """
    axis = int(rng.integers(2))
    period = int(rng.integers(2, 5))
    restored = max(1, round(0.01 * image.shape[axis]))
    out = on_signal(image, lambda signal: ghost_lines(signal, axis, period, intensity, restored))
    return out, {"phase_encode_axis": axis, "period": period}


# --------------------------------------------------------------------------- motion

TRAJECTORY_STEPS = 32  # random-walk steps over the scan: head motion is smooth at this scale
ROTATION_SEGMENTS = 7  # the rotation is held constant over this many k-space segments (odd)


def motion_trajectory(steps: np.ndarray, samples: int) -> np.ndarray:
    """A smooth path through time from random-walk ``steps``: zero at mid-scan, peak magnitude 1.

    Zero at the middle because the image appears where the object was while the k-space centre
    was acquired; the path then wanders away on either side.
    """
    walk = np.concatenate([[0.0], np.cumsum(steps)])
    path = np.interp(np.linspace(0.0, 1.0, samples), np.linspace(0.0, 1.0, walk.size), walk)
    path -= np.interp(0.5, np.linspace(0.0, 1.0, samples), path)
    peak = float(np.abs(path).max())
    return path / peak if peak > 0.0 else path


def shift_ramp(shift_along: np.ndarray, shift_across: np.ndarray, m: int) -> np.ndarray:
    """exp(-2 pi i (f_u s_along[u] + f_k s_across[u])) for uncentred line ``u`` (``n`` of them, at
    ``fftfreq(n)``) and sample ``k`` across it (at ``fftfreq(m)``): the k-space of a shift of
    ``s[u]`` pixels, complex64, n x m.

    Computed in float32 without losing the phase of a large shift: ``f_k = k' / m`` with an
    integer ``k'``, so ``k' s / m`` is taken mod 1 exactly by splitting ``s / m`` (itself reduced
    mod 1) into a coarse part of few bits, whose products with ``k'`` are exact in float32 and
    reduce exactly, and a remainder whose products stay below 1/64 of a cycle. The along term is
    one number per line, reduced in float64. The angle, within half a cycle, is then accurate to
    float32 rounding (~1e-7 rad), as the complex64 result is.
    """
    n = shift_along.size
    along = fft.fftfreq(n) * shift_along
    along -= np.rint(along)
    per_sample = shift_across / m
    per_sample -= np.rint(per_sample)  # k' is an integer: only s / m mod 1 matters
    bits = max(1, 23 - int(np.ceil(np.log2(max(m, 2)))))  # |k'| * 2^bits / 2 < 2^23: exact
    coarse = np.rint(per_sample * 2.0**bits) / 2.0**bits
    fine = (per_sample - coarse).astype(np.float32)
    k = np.rint(fft.fftfreq(m) * m).astype(np.float32)  # k' = 0, 1, ..., -1
    cycles = np.multiply.outer(coarse.astype(np.float32), k)  # exact
    cycles -= np.rint(cycles)  # exact
    cycles += np.multiply.outer(fine, k)
    cycles += along.astype(np.float32)[:, None]
    cycles -= np.rint(cycles)
    cycles *= np.float32(-2.0 * np.pi)
    ramp = np.empty((n, m), np.complex64)
    np.cos(cycles, out=ramp.real)
    np.sin(cycles, out=ramp.imag)
    return ramp


def rigid_motion_kspace(
    image: np.ndarray, axis: int, degrees: np.ndarray, shifts: np.ndarray
) -> np.ndarray:
    """k-space of ``image`` whose phase-encode line ``i`` saw the object in pose ``i``.

    ``shifts[i]`` (rows, columns, in pixels) is applied exactly, as the linear phase ramp it is in
    k-space; ``degrees[i]`` (about the centre) is applied by resampling the image, so it is taken
    as constant over ``ROTATION_SEGMENTS`` segments of lines (the value at each segment's middle).
    Centred, as ``to_kspace``; the corruption itself works on the uncentred lines
    (``motion_kspace_lines``).
    """
    lines = motion_kspace_lines(image, axis, degrees, shifts)
    return fft.fftshift(lines if axis == 0 else lines.T)


def motion_kspace_lines(
    image: np.ndarray, axis: int, degrees: np.ndarray, shifts: np.ndarray
) -> np.ndarray:
    """``rigid_motion_kspace`` uncentred and phase-encode lines first (its transpose for axis 1).

    Line ``u`` (offset ``u``, or ``u - n`` past the middle) is the one acquired ``(u + n // 2) % n``-th
    (the centred index), so no shifts are needed. Each segment's lines come from the transform of
    the real posed image along the phase-encode axis (``rfft``, offsets 0 to n // 2), then across
    (``fft``, only for those lines); a line at a negative offset is the conjugate of its mirror
    with the frequencies across reversed (Hermitian symmetry of a real image's spectrum). The
    phase ramp of the shifts is computed per line in cycles reduced to [-0.5, 0.5] (float64),
    then as float32 angles, cos and sin.
    """
    n = image.shape[axis]
    m = image.shape[1 - axis]
    centred = (np.arange(n) + n // 2) % n  # the acquisition index of each uncentred line
    kspace = np.empty((n, m), np.complex64)
    reversed_across = (-np.arange(m)) % m
    edges = np.round(np.linspace(0, n, ROTATION_SEGMENTS + 1)).astype(int)
    h, w = image.shape
    rotation_centre = ((w - 1) / 2.0, (h - 1) / 2.0)
    for lo, hi in zip(edges[:-1], edges[1:]):
        if hi <= lo:
            continue
        angle = float(degrees[(lo + hi - 1) // 2])
        posed = image
        if angle != 0.0:
            matrix = cv2.getRotationMatrix2D(rotation_centre, angle, 1.0)
            posed = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=0.0)
        lines = (np.arange(lo, hi) - n // 2) % n  # uncentred
        mirrored = lines > n // 2
        # offsets 0 .. n // 2 along the phase-encode axis (for rows, transposed first: the
        # transform along contiguous memory is the faster one; the values are the same)
        half = fft.rfft(cv2.transpose(posed) if axis == 0 else posed, axis=1).T
        segment = fft.fft(half[np.where(mirrored, n - lines, lines)], axis=1)
        kspace[lines[~mirrored]] = segment[~mirrored]
        if mirrored.any():
            kspace[lines[mirrored]] = np.conj(segment[mirrored][:, reversed_across])
    kspace *= shift_ramp(shifts[centred, axis], shifts[centred, 1 - axis], m)
    return kspace


@corruption(
    "mri_motion",
    family=FAMILY,
    modalities=MODALITIES,
    domain="physical",
    channels="gray",
    # (largest rotation in degrees, largest translation in % of the field of view) reached during
    # the scan; 1 % of a 24 cm head FOV is 2.4 mm. A degree or two is a restless patient, 5 or
    # more an uncooperative one.
    severity_params=[(0.4, 0.4), (1.0, 1.0), (2.6, 2.6), (5.2, 5.2), (8.6, 8.6)],
    param_range=((0.0, 0.0), (20.0, 20.0)),
    reference=ZAITSEV + "; Shaw et al., MIDL 2019 (k-space motion simulation); TorchIO Motion",
)
def mri_motion(image: np.ndarray, amplitude: tuple[float, float], rng: np.random.Generator):
    """Rigid patient motion during the scan: ghosts, ringing and blur along the phase-encode axis.

    The phase-encode lines are acquired one after another; when the patient moves, each line
    samples a rotated and translated object, and the inconsistent k-space gives the ringing,
    ghosting and blurring of motion artifacts (Zaitsev et al. 2015). The pose follows a smooth
    random walk through the scan (one per rotation and translation axis), zero at mid-scan where
    the k-space centre is acquired, scaled to reach the largest rotation and translation.
    """
    max_degrees, max_shift_percent = amplitude
    axis = int(rng.integers(2))
    steps = rng.standard_normal((3, TRAJECTORY_STEPS))
    h, w = image.shape[:2]
    lines = image.shape[axis]
    degrees = max_degrees * motion_trajectory(steps[0], lines)
    shifts = np.stack(
        [
            max_shift_percent / 100.0 * size * motion_trajectory(s, lines)
            for s, size in zip(steps[1:], (h, w))
        ],
        axis=1,
    )

    def moved(signal: np.ndarray) -> np.ndarray:
        # the inverse transform of the lines-first k-space is the transposed image
        magnitude = np.abs(fft.ifft2(motion_kspace_lines(signal, axis, degrees, shifts)))
        return magnitude if axis == 0 else np.ascontiguousarray(magnitude.T)

    return on_signal(image, moved), {"phase_encode_axis": axis}


# --------------------------------------------------------------------------- Gibbs ringing


def truncate_kspace(image: np.ndarray, kept_lines: tuple[int, int]) -> np.ndarray:
    """Keep the central ``kept_lines`` (rows, columns) of k-space, zero-filled: Gibbs ringing.

    The kept lines are symmetric about the centre (an even count keeps one line fewer), so the
    k-space stays Hermitian and the ringing is that of a real object: the truncation is made on
    the half spectrum of a real transform (``rfft2``, columns at offsets 0 to n // 2).
    """
    kspace = fft.rfft2(image)
    for axis in (0, 1):
        n = image.shape[axis]
        half = (int(kept_lines[axis]) - 1) // 2
        if kept_lines[axis] >= n or 2 * half + 1 >= n:
            continue  # everything is kept along this axis (an even n's Nyquist line too)
        if axis == 1:
            kspace[:, half + 1 :] = 0  # offsets half + 1 .. n // 2 (the Nyquist line included)
        else:
            # uncentred, the lines farther than ``half`` from the centre are one block in the middle
            dropped = np.flatnonzero(np.abs(_centred_offsets(n)) > half)
            kspace[int(dropped[0]) : int(dropped[-1]) + 1] = 0
    return np.abs(fft.irfft2(kspace, s=image.shape))


def gibbs_kept_lines(
    shape: tuple[int, int], resolution_mm: float, context: ImageContext | None = None
) -> tuple[int, int]:
    """k-space lines (rows, columns) an acquisition at ``resolution_mm`` keeps of an image."""
    fov = field_of_view_mm(shape, context)
    return (
        lines_for_field(resolution_mm, shape[0], fov[0]),
        lines_for_field(resolution_mm, shape[1], fov[1]),
    )


@corruption(
    "mri_gibbs_ringing",
    family=FAMILY,
    modalities=MODALITIES,
    domain="physical",
    channels="gray",
    # Acquired in-plane resolution in mm (the 256 mm reference field over 160, 96, 64, 44 and 32
    # lines): 1.6 mm is a quick clinical scan, 4 mm an EPI-like one, 8 mm a scout. An image keeps
    # at least MIN_KEPT_LINES and never more than it has: a 2 mm image is untouched at 1.
    severity_params=[1.6, 2.67, 4.0, 5.8, 8.0],
    param_range=(0.0, 16.0),
    reference=SMITH_NAYAK + "; " + BERNSTEIN + " (truncation artifact)",
)
def mri_gibbs_ringing(
    image: np.ndarray,
    resolution_mm: float,
    rng: np.random.Generator,
    context: ImageContext | None = None,
) -> np.ndarray:
    """Gibbs (truncation) ringing: oscillations parallel to sharp edges from finite k-space.

    A Cartesian acquisition samples only the central part of k-space; the image is the true one
    convolved with a sinc, which overshoots and rings at sharp edges (skull, CSF) and blurs
    (Smith & Nayak 2010). The acquisition is stated as an acquired resolution in mm; the lines it
    keeps are the image's field (pixel spacing times size; without a spacing the image is taken
    to span the 256 mm reference field) over that resolution: so a 64- and a 512-pixel image of one
    head keep the same lines and ring with the same period relative to their edges, where a
    fraction of each image's own k-space would leave the 64-pixel one a blob. k-space outside
    those lines is zeroed on both axes and the image reconstructed by zero filling.
    Deterministic: no random draws.
    """
    kept = gibbs_kept_lines(image.shape[:2], resolution_mm, context)
    return on_signal(image, lambda signal: truncate_kspace(signal, kept))


# --------------------------------------------------------------------------- k-space spike

MAX_SPIKES = 3


def add_kspace_spikes(
    image: np.ndarray, locations: np.ndarray, amplitudes: np.ndarray, phases: np.ndarray
) -> np.ndarray:
    """Add spikes of the given complex values (relative to the k-space centre) at integer locations.

    ``locations`` are in the centred k-space. A single k-space point is, in the image, one complex
    plane wave: a spike of value ``a`` at offsets (u, v) from the centre adds
    ``a / (h w) exp(2 pi i (u y / h + v x / w))`` to the (real) image. So the spikes are added in
    the image, as a sum of a few rank-one waves, and the magnitude taken there: the inverse
    transform of the spiked k-space without computing a transform. The k-space centre, which
    the amplitudes are relative to, is the sum of the image.
    """
    h, w = image.shape
    dc = abs(float(np.sum(image, dtype=np.float64))) or float(h * w)
    locations = np.asarray(locations, dtype=np.int64).reshape(-1, 2)
    if not locations.size:
        return np.abs(image).astype(np.float32)
    values = np.asarray(amplitudes, np.float64) * dc / (h * w)
    values = values * np.exp(1j * np.asarray(phases, np.float64))
    # the waves' phases in whole cycles of h and w, reduced exactly in integers
    down = np.exp(2j * np.pi * ((np.arange(h)[:, None] * (locations[:, 0] - h // 2)) % h) / h)
    across = np.exp(2j * np.pi * ((np.arange(w)[None, :] * (locations[:, 1:] - w // 2)) % w) / w)
    down = down * values  # h x spikes
    # real and imaginary parts of down @ across, as two real products
    real = np.concatenate([down.real, -down.imag], axis=1).astype(np.float32)
    imag = np.concatenate([down.real, down.imag], axis=1).astype(np.float32)
    real = real @ np.concatenate([across.real, across.imag]).astype(np.float32)
    imag = imag @ np.concatenate([across.imag, across.real]).astype(np.float32)
    real += image
    real *= real
    imag *= imag
    real += imag
    return np.sqrt(real, out=real)


@corruption(
    "mri_kspace_spike",
    family=FAMILY,
    modalities=MODALITIES,
    domain="physical",
    channels="gray",
    # Spike amplitude relative to the k-space centre, which is also the stripe amplitude relative
    # to the image's mean signal. The end of the range, half the centre, is a discharge that
    # drives the receiver towards saturation (a spike can outshine the centre; Zaitsev et al.).
    severity_params=[0.025, 0.045, 0.062, 0.08, 0.105],
    param_range=(0.0, 0.5),
    reference=ZAITSEV + "; " + SMITH_NAYAK + " (spike / herringbone); MONAI KSpaceSpikeNoise",
)
def mri_kspace_spike(image: np.ndarray, relative_amplitude: float, rng: np.random.Generator):
    """k-space spike (herringbone): stripes across the whole image from a few corrupt k-space points.

    An electrostatic discharge or a loose connection puts a burst of signal into one or a few
    k-space samples; each spike becomes a sinusoidal stripe pattern over the whole image, with the
    spike's spatial frequency and direction (Zaitsev et al. 2015). One to three spikes are placed
    at drawn positions between 10 % and 60 % of the way to the k-space edge.
    """
    h, w = image.shape[:2]
    count = int(rng.integers(1, MAX_SPIKES + 1))
    radii = rng.uniform(0.1, 0.6, MAX_SPIKES)
    angles = rng.uniform(0.0, 2.0 * np.pi, MAX_SPIKES)
    phases = rng.uniform(0.0, 2.0 * np.pi, MAX_SPIKES)
    rows = np.clip(np.round(h // 2 + radii * (h / 2.0) * np.sin(angles)), 0, h - 1).astype(int)
    cols = np.clip(np.round(w // 2 + radii * (w / 2.0) * np.cos(angles)), 0, w - 1).astype(int)
    locations = np.stack([rows, cols], axis=1)[:count]
    amplitudes = np.full(count, relative_amplitude)
    out = on_signal(
        image, lambda signal: add_kspace_spikes(signal, locations, amplitudes, phases[:count])
    )
    return out, {"locations": locations, "phases": phases[:count].round(4)}


# --------------------------------------------------------------------------- undersampling

# Always-acquired centre: 16 lines over the 256 mm reference field (fastMRI's 8x masks: ~15) at
# the default table's mild levels; stronger levels acquire a smaller centre (below).
CENTRE_RESOLUTION_MM = REFERENCE_FOV_MM / 16
MIN_CENTRE_LINES = 4  # the fewest centre lines of a mask: the mean and the coarsest shape
DENSITY_JITTER = 0.35  # width of the band where lines are kept at random (fraction of half k-space)


def undersampling_mask(
    line_scores: np.ndarray, acceleration: float, centre_lines: int = MIN_KEPT_LINES
) -> np.ndarray:
    """Phase-encode lines acquired at ``acceleration``: variable density, nested in ``acceleration``.

    The ``centre_lines`` lines nearest the k-space centre are always acquired; the others are
    ranked by distance from the centre plus ``DENSITY_JITTER`` times their random score, and one
    in R of them is kept, in that order: the centre is fully sampled, the periphery sparsely and
    at random (a variable-density mask, Lustig et al. 2007). Accelerating the lines outside the
    centre (rather than counting n / R in all) keeps a few aliasing outer lines at every R, so a
    higher R never falls back to a merely blurred centre. A fixed ranking makes the masks nested,
    so a higher acceleration only drops lines.
    """
    n = line_scores.size
    offset = np.abs(np.arange(n) - n // 2)
    distance = offset / max(n / 2.0, 1.0)
    centre = np.zeros(n, bool)
    centre[np.argsort(offset, kind="stable")[: min(n, max(1, centre_lines))]] = True
    priority = np.where(centre, distance - 1.0, distance + DENSITY_JITTER * line_scores)
    outer = n - int(centre.sum())
    kept = int(centre.sum()) + int(round(outer / max(acceleration, 1.0)))
    mask = np.zeros(n, bool)
    mask[np.argsort(priority, kind="stable")[:kept]] = True
    return mask


@corruption(
    "mri_undersampling_aliasing",
    family=FAMILY,
    modalities=MODALITIES,
    domain="physical",
    channels="gray",
    # (acceleration R of the lines outside the fully sampled centre, centre lines per 256 mm of
    # field), as in accelerated / compressed-sensing scans. fastMRI's masks shrink the centre as
    # R grows (8 % of the lines at 4x, 4 % at 8x); the strong end, R 32 around a 6-line centre, is
    # a highly accelerated scan whose compressed-sensing reconstruction failed (a 256-line image:
    # 136, 76, 54, 34 and 24 lines in all along the table).
    severity_params=[(2.0, 16.0), (4.0, 16.0), (6.0, 14.0), (11.0, 12.0), (20.0, 12.0)],
    param_range=((1.0, 16.0), (32.0, 6.0)),
    reference="Lustig, Donoho & Pauly, Magn Reson Med 58:1182-1195 (2007); "
    "Zbontar et al., fastMRI, arXiv:1811.08839 (2018)",
)
def mri_undersampling_aliasing(
    image: np.ndarray,
    param: tuple[float, float],
    rng: np.random.Generator,
    context: ImageContext | None = None,
):
    """Undersampling aliasing: accelerated Cartesian acquisition reconstructed by zero filling.

    Skipping phase-encode lines shortens the scan; without a (parallel-imaging or compressed-
    sensing) reconstruction that restores them, the zero-filled image shows incoherent aliasing
    and blur along the phase-encode axis (Lustig et al. 2007). The mask is variable-density
    random: a fully sampled centre, then one in R of the other lines, sparser towards the edges.
    ``param`` is (R, centre lines per 256 mm of field): the centre is an absolute low-resolution
    image (at least ``MIN_CENTRE_LINES``) that a small matrix keeps as a large one does, where a
    fraction of a 64-pixel image's lines would leave three.
    """
    acceleration, centre_lines = param
    axis = int(rng.integers(2))
    n = image.shape[axis]
    line_scores = rng.random(n)
    fov = field_of_view_mm(image.shape[:2], context)[axis]
    wanted = int(round(fov * centre_lines / REFERENCE_FOV_MM))
    centre = int(min(n, max(wanted, MIN_CENTRE_LINES)))
    mask = undersampling_mask(line_scores, acceleration, centre)
    kept = mask[:, None] if axis == 0 else mask[None, :]
    out = on_signal(image, lambda signal: to_magnitude(np.where(kept, to_kspace(signal), 0)))
    return out, {"phase_encode_axis": axis}


# --------------------------------------------------------------------------- registration


CORRUPTIONS: tuple[Corruption, ...] = (
    mri_rician_noise,
    mri_bias_field,
    mri_ghosting,
    mri_motion,
    mri_gibbs_ringing,
    mri_kspace_spike,
    mri_undersampling_aliasing,
)
register_corruptions = registers(CORRUPTIONS)
