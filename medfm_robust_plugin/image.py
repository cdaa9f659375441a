"""Images as the benchmark sees them: reading medical and natural formats, checking them, and
moving between the caller's representation and the corruption's working one.

A corruption works on float32 H x W x C arrays, either in [0, 1] (``domain="unit"``) or in the
image's physical values (``domain="physical"``: HU, MR magnitude). The caller gets back the dtype,
shape, channel count and value range it gave; an alpha channel passes through untouched.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ImageReadError, InvalidImageError, describe_source

MAX_PIXELS_ENV = "MEDFM_ROBUST_MAX_PIXELS"
DEFAULT_MAX_PIXELS = 120_000_000  # well above a whole-slide tile or a 10k x 10k photo

SUPPORTED_DTYPES = (np.uint8, np.uint16, np.int16, np.int32, np.float32, np.float64)
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601

RASTER_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
DICOM_SUFFIXES = {".dcm", ".dicom"}
NIFTI_SUFFIXES = {".nii", ".nii.gz"}


def max_pixels() -> int:
    """The decompression-bomb guard: the largest image accepted, in pixels."""
    raw = os.environ.get(MAX_PIXELS_ENV)
    if raw is None:
        return DEFAULT_MAX_PIXELS
    try:
        return int(raw)
    except ValueError:
        raise InvalidImageError(f"{MAX_PIXELS_ENV}={raw!r} is not an integer pixel count") from None


def check_size(height: int, width: int, name: str, limit: int | None = None) -> None:
    """Refuse an image of ``height`` x ``width`` pixels over the limit, before anything is decoded."""
    limit = max_pixels() if limit is None else limit
    pixels = int(height) * int(width)
    if pixels > limit:
        raise InvalidImageError(
            f"{name}: {height} x {width} pixels ({pixels:,}) exceeds the limit of {limit} pixels "
            f"({limit:,}); if the image is trusted, raise the limit with {MAX_PIXELS_ENV}={pixels}"
        )


@dataclass
class MedicalImage:
    """A decoded image with what the file said about it."""

    array: np.ndarray
    source: str | None = None
    spacing: tuple[float, ...] | None = None
    value_range: tuple[float, float] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- checking


def check_array(array: np.ndarray, source: object | None = None, limit: int | None = None) -> None:
    """Raise InvalidImageError (naming ``source``) unless ``array`` is an image we can corrupt."""
    name = describe_source(source)
    if not isinstance(array, np.ndarray):
        raise InvalidImageError(
            f"{name}: expected a numpy array, PIL image or file path, got {type(array).__name__}"
        )
    if array.dtype == np.bool_:
        raise InvalidImageError(
            f"{name}: boolean arrays are masks, not images; convert with .astype(np.uint8) * 255"
        )
    if array.dtype.type not in SUPPORTED_DTYPES:
        raise InvalidImageError(
            f"{name}: dtype {array.dtype} is not supported; use uint8, uint16, int16, int32, "
            "float32 or float64"
        )
    if array.ndim not in (2, 3):
        raise InvalidImageError(
            f"{name}: expected H x W or H x W x C, got an array of shape {array.shape}; "
            "pass 2-D slices of a volume one at a time"
        )
    if array.size == 0 or array.shape[0] == 0 or array.shape[1] == 0:
        raise InvalidImageError(f"{name}: image is empty (shape {array.shape})")
    if array.ndim == 3 and array.shape[2] not in (1, 3, 4):
        raise InvalidImageError(
            f"{name}: {array.shape[2]} channels is not supported; use 1 (gray), 3 (RGB) or 4 (RGBA)"
        )
    check_size(array.shape[0], array.shape[1], name, limit)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise InvalidImageError(
            f"{name}: image contains NaN or infinite values; replace them (np.nan_to_num) first"
        )


# --------------------------------------------------------------------------- layout and conversion


@dataclass(frozen=True)
class Layout:
    """How the caller's array was laid out, so that the result can be put back the same way."""

    dtype: np.dtype
    ndim: int
    channels: int
    value_range: tuple[float, float]  # the window that maps to [0, 1] (the presentation)
    valid_range: tuple[float, float] = (-np.inf, np.inf)  # what results are clipped to

    @property
    def has_alpha(self) -> bool:
        return self.channels == 4


def infer_value_range(array: np.ndarray) -> tuple[float, float]:
    """The range that maps to [0, 1]: the dtype's for uint8, otherwise the data's.

    uint8 is always 0-255. Float data already in [0, 1] keeps [0, 1]. Other data (12-bit X-ray in
    uint16, HU in int16 or float, MR magnitude) uses its own minimum and maximum (0 as minimum for
    non-negative data), so that a 12-bit image is not squeezed into the bottom of a 16-bit range.
    """
    if array.dtype == np.uint8:
        return 0.0, 255.0
    lo, hi = float(array.min()), float(array.max())
    if array.dtype.kind == "f" and lo >= 0.0 and hi <= 1.0:
        return 0.0, 1.0
    if lo >= 0.0:
        lo = 0.0
    if hi <= lo:
        hi = lo + (1.0 if array.dtype.kind == "f" else 255.0)
    return lo, hi


def valid_range(array: np.ndarray) -> tuple[float, float]:
    """The values a result may take: the dtype's for integers, [0, 1] for floats in [0, 1].

    Other float data (HU, MR magnitude) is not clipped here: a physical corruption may leave the
    clean image's range (metal above the brightest bone) and clips to its modality's range itself.
    """
    if array.dtype.kind in "ui":
        info = np.iinfo(array.dtype)
        return float(info.min), float(info.max)
    if float(array.min()) >= 0.0 and float(array.max()) <= 1.0:
        return 0.0, 1.0
    return -np.inf, np.inf


def split(
    array: np.ndarray, value_range: tuple[float, float] | None = None
) -> tuple[np.ndarray, np.ndarray | None, Layout]:
    """Caller's array -> (H x W x C colour/gray part, still in the caller's dtype, alpha, layout)."""
    channels = 1 if array.ndim == 2 else array.shape[2]
    if value_range is None:
        value_range = infer_value_range(array[..., :3] if channels == 4 else array)
    lo, hi = float(value_range[0]), float(value_range[1])
    if not hi > lo:
        raise InvalidImageError(
            f"value_range {value_range} must have its maximum above its minimum"
        )
    layout = Layout(array.dtype, array.ndim, channels, (lo, hi), valid_range(array))
    alpha = array[..., 3].copy() if channels == 4 else None
    body = array[..., :3] if channels == 4 else array
    if body.ndim == 2:
        body = body[..., None]
    return body, alpha, layout


def is_plain_uint8(layout: Layout) -> bool:
    """An 8-bit image whose full 0-255 range maps to [0, 1]."""
    return layout.dtype == np.uint8 and layout.value_range == (0.0, 255.0)


def to_unit(body: np.ndarray, layout: Layout) -> np.ndarray:
    """The caller's values -> float32 in [0, 1] (one pass for plain uint8 images)."""
    lo, hi = layout.value_range
    if is_plain_uint8(layout):
        return np.multiply(body, np.float32(1.0 / 255.0), dtype=np.float32)
    out = body.astype(np.float32)
    out -= np.float32(lo)
    out *= np.float32(1.0 / (hi - lo))
    return np.clip(out, 0.0, 1.0, out=out)


def to_physical(body: np.ndarray) -> np.ndarray:
    """The caller's values as float32, for corruptions that work in physical units."""
    return body.astype(np.float32)


def from_unit(work: np.ndarray, layout: Layout, clipped: bool = False) -> np.ndarray:
    """[0, 1] working values -> the caller's value range (already 8-bit for plain uint8 images).

    ``clipped``: ``work`` is already within [0, 1] and is the caller's to overwrite (it may be
    scaled in place and returned).
    """
    lo, hi = layout.value_range
    if is_plain_uint8(layout):
        import cv2

        # clip, scale, round and saturate in one pass (the float path costs ~30x more)
        out = cv2.convertScaleAbs(work if clipped else np.clip(work, 0.0, 1.0), alpha=255.0)
        return out.reshape(work.shape)
    dtype = np.float64 if layout.dtype == np.float64 else np.float32
    values = (work if clipped else np.clip(work, 0.0, 1.0)).astype(dtype, copy=False)
    values *= dtype(hi - lo)
    values += dtype(lo)
    return values


def merge(values: np.ndarray, alpha: np.ndarray | None, layout: Layout) -> np.ndarray:
    """Values in the caller's range (H x W x C) -> the caller's dtype, channels and alpha."""
    if not (values.dtype == np.uint8 == layout.dtype):  # the uint8 fast path is final already
        lo, hi = layout.valid_range
        if layout.dtype.kind == "f":
            # clip in the caller's float type: a float32 bound can round past a float64 one
            values = values.astype(layout.dtype, copy=False)
            if np.isfinite(lo) or np.isfinite(hi):  # unbounded data: nothing to clip
                values = np.clip(values, lo, hi)
        else:
            values = np.clip(values, lo, hi)
            np.rint(values, out=values)
            values = values.astype(layout.dtype)
    out = values
    if alpha is not None:
        out = np.concatenate([out, alpha[..., None].astype(layout.dtype, copy=False)], axis=2)
    elif layout.ndim == 2:
        out = out[..., 0]
    return np.ascontiguousarray(out)


def adapt_channels(work: np.ndarray, wanted: str) -> tuple[np.ndarray, str | None]:
    """Give a corruption the channels it asks for; return how to undo it."""
    c = work.shape[2]
    if wanted == "rgb" and c == 1:
        return np.repeat(work, 3, axis=2), "to_gray"
    if wanted == "gray" and c == 3:
        if np.array_equal(work[..., 0], work[..., 1]) and np.array_equal(
            work[..., 0], work[..., 2]
        ):
            return work[..., :1], "to_rgb"
        return luma(work)[..., None], "add_luma_delta"
    return work, None


def restore_channels(out: np.ndarray, undo: str | None, original: np.ndarray) -> np.ndarray:
    if undo == "to_gray":
        return luma(out)[..., None]
    if undo == "to_rgb":
        return np.repeat(out, 3, axis=2)
    if undo == "add_luma_delta":
        return original + (out - luma(original)[..., None])
    return out


def luma(rgb: np.ndarray) -> np.ndarray:
    return rgb @ LUMA.astype(rgb.dtype)


# --------------------------------------------------------------------------- reading and writing


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def as_array(image: Any, source: object | None = None) -> tuple[np.ndarray, Any]:
    """Accept an array, PIL image, path or MedicalImage; return (array, how to return it)."""
    if isinstance(image, np.ndarray):
        return image, None
    if isinstance(image, MedicalImage):
        return image.array, None
    if isinstance(image, (str, os.PathLike)):
        return load_image(image).array, None
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is a core dependency
        Image = None
    if Image is not None and isinstance(image, Image.Image):
        return pil_to_array(image, source), image.mode
    raise InvalidImageError(
        f"{describe_source(source)}: expected a numpy array, PIL image or file path, "
        f"got {type(image).__name__}"
    )


def pil_to_array(img: Any, source: object | None = None) -> np.ndarray:
    mode = img.mode
    if mode in ("P", "PA"):
        img = img.convert("RGBA" if "transparency" in img.info or mode == "PA" else "RGB")
    elif mode == "LA":
        img = img.convert("RGBA")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        img = img.convert("RGB")
    elif mode == "1":
        img = img.convert("L")
    array = np.asarray(img)
    if img.mode.startswith("I;16"):
        array = array.astype(np.uint16)
    return array


def array_to_pil(array: np.ndarray, mode: str) -> Any:
    from PIL import Image

    if array.dtype == np.uint16 and array.ndim == 2:
        return Image.fromarray(array.astype(np.uint16))
    out = Image.fromarray(array)
    if mode in ("L", "RGB", "RGBA", "I", "F", "I;16") or mode == out.mode:
        return out
    return out.convert(mode) if mode in ("LA", "P", "CMYK", "1") else out


def load_image(
    path: str | os.PathLike, *, slice_index: int | None = None, frame: int | None = None
) -> MedicalImage:
    """Read PNG, JPEG, TIFF (8/16-bit, float), BMP, DICOM or a NIfTI slice.

    DICOM comes back as the image a viewer shows: rescaled to physical values (HU for CT),
    MONOCHROME1 inverted so that higher is brighter, palette colour and YBR as RGB, and one frame
    of a multi-frame file (``frame``, default the middle one, as for a NIfTI ``slice_index``).
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"'{path}': no such file; check the path")
    suffix = _suffix(path)
    try:
        if suffix in DICOM_SUFFIXES:
            image = _read_dicom(path, frame)
        elif suffix in NIFTI_SUFFIXES:
            image = _read_nifti(path, slice_index)
        else:
            image = _read_raster(path)
    except (ImageReadError, InvalidImageError):
        raise
    except Exception as exc:
        raise ImageReadError(
            f"'{path}': could not be read as an image ({type(exc).__name__}: {exc}); "
            "supported: PNG, JPEG, TIFF, BMP, DICOM, NIfTI"
        ) from exc
    check_array(image.array, path)
    return image


def _read_raster(path: Path) -> MedicalImage:
    import cv2

    # The header alone tells the size: refuse decompression bombs before decoding any pixel.
    header = raster_header(path)
    if header is None:
        raise ImageReadError(
            f"'{path}': not a readable image file (is it truncated or mislabelled?)"
        )
    check_size(*header, f"'{path}'")
    data = np.fromfile(path, dtype=np.uint8)
    foreign_zlib = _suffix(path) == ".png" and _foreign_zlib_loaded()
    array = None
    if foreign_zlib and not _pil_reads_png_losslessly(data):
        array = _decode_png_in_python(data, path)
    elif data.size and not foreign_zlib:
        array = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        if array is not None and array.ndim == 3:
            code = cv2.COLOR_BGRA2RGBA if array.shape[2] == 4 else cv2.COLOR_BGR2RGB
            array = cv2.cvtColor(array, code)
    if array is None:
        array = _decode_with_pil(path, path)
    return MedicalImage(
        np.ascontiguousarray(array), source=str(path), meta={"format": _suffix(path)}
    )


def _pil_reads_png_losslessly(data: np.ndarray) -> bool:
    """PIL keeps every PNG but the 16-bit colour ones (RGB, RGBA, grey + alpha), which it cuts to
    8 bits: those still go to OpenCV."""
    header = data[:26].tobytes()
    if len(header) < 26 or header[12:16] != b"IHDR":
        return True
    bit_depth, colour_type = header[24], header[25]
    return not (bit_depth == 16 and colour_type in (2, 4, 6))


def _decode_png_in_python(data: np.ndarray, path: Path) -> np.ndarray | None:
    """A 16-bit colour PNG decoded by pypng (pure Python, Python's own zlib), for processes where
    OpenCV's PNG reader is broken and PIL would cut it to 8 bits; None without pypng (PIL then
    reads it, with a warning that the bit depth is lost)."""
    try:
        import png
    except ImportError:
        import warnings

        warnings.warn(
            f"'{path}': a 16-bit colour PNG in a process where OpenCV cannot read PNGs (decord is "
            "loaded); PIL reads it at 8 bits. pip install pypng to keep all 16.",
            stacklevel=3,
        )
        return None
    width, height, rows, info = png.Reader(bytes=data.tobytes()).asDirect()
    planes = int(info["planes"])
    array = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows])
    array = array.reshape(height, width, planes)
    return array if planes > 1 else array[..., 0]


def _foreign_zlib_loaded() -> bool:
    """Whether OpenCV's PNG reader would meet an old zlib: decord (imported by VLMEvalKit) loads
    its bundled zlib 1.2.3 into the process's global symbols, OpenCV's libpng then binds to it,
    prints "libpng error: bad parameters to zlib" and decodes nothing. PIL reads PNGs instead."""
    import sys

    return "decord" in sys.modules


def raster_header(source: str | os.PathLike | bytes) -> tuple[int, int] | None:
    """(height, width) of a PNG, JPEG, TIFF, BMP... file (or its bytes) from its header alone.

    None when no reader knows the header. PIL's own decompression-bomb guard (a warning, then an
    error above twice its ``MAX_IMAGE_PIXELS``) is not what decides here: ``max_pixels`` is.
    """
    import warnings

    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(_file_like(source)) as probe:
                width, height = probe.size
                return height, width
        except Image.DecompressionBombError:
            return _header_past_pil_limit(source)
        except Exception:
            return _tiff_header(source)


def _file_like(source: str | os.PathLike | bytes) -> Any:
    import io

    return io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source


def _header_past_pil_limit(source: str | os.PathLike | bytes) -> tuple[int, int] | None:
    """The header of an image PIL refuses to open for its size: its format readers, unchecked."""
    from PIL import Image

    Image.init()
    with _open_binary(source) as fp:
        prefix = fp.read(16)
        for name in Image.ID:
            factory, accept = Image.OPEN[name]
            accepted = True if accept is None else accept(prefix)
            if isinstance(accepted, str) or not accepted:  # a str: known but unsupported
                continue
            fp.seek(0)
            try:
                width, height = factory(fp, "").size
            except Exception:
                continue
            return height, width
    return None


def _tiff_header(source: str | os.PathLike | bytes) -> tuple[int, int] | None:
    """ImageWidth and ImageLength of a TIFF that PIL cannot open (float RGB, unusual samples)."""
    from PIL import TiffImagePlugin

    try:
        with _open_binary(source) as fp:
            ifd = TiffImagePlugin.ImageFileDirectory_v2(fp.read(8))
            fp.seek(ifd.next)
            ifd.load(fp)
            return int(ifd[257]), int(ifd[256])
    except Exception:
        return None


def _open_binary(source: str | os.PathLike | bytes) -> Any:
    import io

    if isinstance(source, (bytes, bytearray)):
        return io.BytesIO(source)
    return open(source, "rb")


def _decode_with_pil(source: str | os.PathLike | bytes, name: object) -> np.ndarray:
    """Decode with PIL once the size was checked (PIL's own bomb guard would stop at its limit)."""
    import warnings

    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(_file_like(source)) as img:
                img.load()
                return pil_to_array(img, name)
        except Image.DecompressionBombError:
            raise InvalidImageError(
                f"{describe_source(name)}: PIL refuses to decode an image this large "
                f"({Image.MAX_IMAGE_PIXELS * 2:,} pixels is its limit)"
            ) from None
        except Exception as exc:
            raise ImageReadError(
                f"{describe_source(name)}: not a readable image file ({type(exc).__name__}: "
                f"{exc}); is it truncated or mislabelled?"
            ) from exc


def decode_image_bytes(data: bytes, name: object | None = None) -> np.ndarray:
    """An encoded image held in memory (PNG, JPEG, ...) as an array, its size checked first."""
    header = raster_header(data)
    if header is None:
        raise ImageReadError(f"{describe_source(name)}: the bytes are not a readable image")
    check_size(*header, describe_source(name))
    return _decode_with_pil(data, name)


# Enhanced (multi-frame) DICOM keeps per frame, inside functional groups, what a classic file
# holds at the top level; the classic place is looked at first.
_FUNCTIONAL_GROUP_OF = {
    "PixelSpacing": "PixelMeasuresSequence",
    "RescaleSlope": "PixelValueTransformationSequence",
    "RescaleIntercept": "PixelValueTransformationSequence",
    "WindowCenter": "FrameVOILUTSequence",
    "WindowWidth": "FrameVOILUTSequence",
}


def _frame_attribute(ds: Any, keyword: str, frame: int) -> Any:
    """``keyword``'s value for one frame: top level, else its per-frame or shared group."""
    if keyword in ds:
        return ds[keyword].value
    group = _FUNCTIONAL_GROUP_OF.get(keyword)
    if group is None:
        return None
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    shared = ds.get("SharedFunctionalGroupsSequence") or []
    candidates = ([per_frame[frame]] if frame < len(per_frame) else []) + list(shared[:1])
    for item in candidates:
        inner = item.get(group)
        if inner and keyword in inner[0]:
            return inner[0][keyword].value
    return None


def _frame_count(ds: Any) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


def _stored_range(ds: Any) -> tuple[int, int]:
    """The values the stored pixels can take (BitsStored, signed or not)."""
    bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 16)))
    if int(ds.get("PixelRepresentation", 0)) == 1:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def _read_dicom(path: Path, frame: int | None = None) -> MedicalImage:
    import pydicom
    from pydicom.pixels import pixel_array

    _check_dicom_size(path)
    ds = pydicom.dcmread(str(path))
    if "PixelData" not in ds:
        raise ImageReadError(f"'{path}': DICOM file has no pixel data")
    frames = _frame_count(ds)
    index = frames // 2 if frame is None else int(frame)
    if not 0 <= index < frames:
        raise InvalidImageError(
            f"'{path}': frame {index} is outside 0..{frames - 1} (the file has {frames} "
            f"frame{'s' if frames > 1 else ''})"
        )
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    # Only the requested frame is decoded (a cine loop can hold hundreds); as_rgb makes pydicom
    # turn YBR_FULL / YBR_FULL_422 into RGB itself, so converting again here would be wrong.
    stored = pixel_array(ds, index=index, as_rgb=True)
    meta: dict[str, Any] = {
        "format": ".dcm",
        "modality": str(ds.get("Modality", "")),
        "rescale_slope": 1.0,
        "rescale_intercept": 0.0,
        "stored_dtype": str(stored.dtype),
        "photometric": photometric,
        "frame": index,
        "frames": frames,
    }
    if photometric == "PALETTE COLOR":
        array = _apply_palette(stored, ds)
        meta["color"] = "RGB"
    elif stored.ndim == 3:
        array = stored
        meta["color"] = "RGB"
        if photometric.startswith("YBR"):
            meta["converted_from"] = photometric
    else:
        array = _grayscale_values(stored, ds, index, meta)
    if "color" in meta and ("RescaleSlope" in ds or "RescaleIntercept" in ds):
        # the modality rescale and VOI window apply to grayscale pixels only (PS3.3 C.11)
        meta["rescale_ignored"] = True
    raw_spacing = _frame_attribute(ds, "PixelSpacing", index)
    spacing = tuple(float(s) for s in raw_spacing) if raw_spacing else None
    if spacing is not None and not all(np.isfinite(s) and s > 0 for s in spacing):
        # some writers store 0 for "not measured" (a computed radiograph): no spacing is known
        meta["spacing_dropped"] = f"PixelSpacing {list(spacing)} in the header is not a size"
        spacing = None
    return MedicalImage(np.ascontiguousarray(array), source=str(path), spacing=spacing, meta=meta)


def _check_dicom_size(path: Path) -> None:
    """Rows x Columns from the header (pixel data not read) against the limit; one frame is decoded."""
    import pydicom

    header = pydicom.dcmread(str(path), stop_before_pixels=True)
    rows, columns = header.get("Rows"), header.get("Columns")
    if rows is None or columns is None:
        return  # no image in the file: reading says so
    frames = _frame_count(header)
    samples = int(header.get("SamplesPerPixel", 1) or 1)
    what = f"'{path}' ({frames} frame{'s' if frames > 1 else ''}, {samples} sample(s) per pixel)"
    check_size(int(rows), int(columns), what)


def _grayscale_values(stored: np.ndarray, ds: Any, frame: int, meta: dict[str, Any]) -> np.ndarray:
    """Stored grayscale pixels -> output values (rescaled, higher = brighter); fills ``meta``."""
    inverted = str(ds.get("PhotometricInterpretation", "")).strip().upper() == "MONOCHROME1"
    low, high = _stored_range(ds)
    if inverted:
        # MONOCHROME1 shows its lowest value white. Mirroring within the stored range (not the
        # image's own min..max) keeps values comparable between files and keeps the dtype.
        stored = ((low + high) - stored.astype(np.int64)).astype(stored.dtype)
        meta["inverted"] = True
        meta["stored_range"] = (low, high)
    slope = float(_frame_attribute(ds, "RescaleSlope", frame) or 1)
    intercept = float(_frame_attribute(ds, "RescaleIntercept", frame) or 0)
    meta["rescale_slope"], meta["rescale_intercept"] = slope, intercept
    if slope != 1.0 or intercept != 0.0:
        array = stored.astype(np.float32) * np.float32(slope) + np.float32(intercept)
    elif "ModalityLUTSequence" in ds:
        from pydicom.pixels import apply_modality_lut

        array = apply_modality_lut(stored, ds)
        meta["modality_lut"] = True
    else:
        array = stored
    if meta["modality"] == "CT":
        meta["units"] = "HU"  # CT pixel data after the modality rescale is HU by definition
    window = _dicom_window(ds, frame)
    if window is not None:
        if inverted:
            # the header's window is in MONOCHROME1 values; mirror it like the pixels
            mirror = slope * (low + high) + 2.0 * intercept
            window = (mirror - window[1], mirror - window[0])
        meta["window"] = window
    return array


def _apply_palette(indices: np.ndarray, ds: Any) -> np.ndarray:
    """PALETTE COLOR indices -> RGB through the file's lookup tables.

    16-bit tables that hold 8-bit colours (every entry a multiple of 256, or of 257) come back
    as uint8, as a display shows them; genuine 16-bit colours stay uint16.
    """
    from pydicom.pixels import apply_color_lut

    rgb = apply_color_lut(indices, ds)
    if rgb.dtype == np.uint16:
        if not (rgb % 256).any():
            return (rgb >> 8).astype(np.uint8)
        if not (rgb % 257).any():
            return (rgb // 257).astype(np.uint8)
    return rgb


def _dicom_window(ds: Any, frame: int = 0) -> tuple[float, float] | None:
    """The first VOI window of a DICOM header as (bottom, top) in rescaled units, or None."""
    raw_centre = _frame_attribute(ds, "WindowCenter", frame)
    raw_width = _frame_attribute(ds, "WindowWidth", frame)
    if raw_centre is None or raw_width is None:
        return None

    from pydicom.multival import MultiValue

    def first(value: Any) -> float:
        return float(value[0]) if isinstance(value, (MultiValue, list, tuple)) else float(value)

    try:
        centre, width = first(raw_centre), first(raw_width)
    except (TypeError, ValueError, IndexError):
        return None
    if not (np.isfinite(centre) and np.isfinite(width) and width > 1):
        return None
    return centre - width / 2.0, centre + width / 2.0


def _read_nifti(path: Path, slice_index: int | None) -> MedicalImage:
    import nibabel as nib

    img = nib.load(str(path))  # the header only; voxels are read below, one slice of them
    shape = tuple(int(n) for n in img.shape)
    axes = [i for i, n in enumerate(shape) if n != 1]
    if len(axes) not in (2, 3):
        raise InvalidImageError(f"'{path}': NIfTI data of shape {shape} is neither 2-D nor 3-D")
    check_size(shape[axes[0]], shape[axes[1]], f"'{path}' (NIfTI of shape {shape})")
    index = None
    if len(axes) == 3:
        depth = shape[axes[2]]
        index = depth // 2 if slice_index is None else slice_index
        if not 0 <= index < depth:
            raise InvalidImageError(f"'{path}': slice {index} is outside 0..{depth - 1}")
    slicer = tuple(
        slice(None) if i in axes[:2] else (index if len(axes) == 3 and i == axes[2] else 0)
        for i in range(len(shape))
    )
    # unscaled data keeps its stored dtype; a scale slope or intercept gives floats
    data = np.asanyarray(img.dataobj[slicer])
    zooms = img.header.get_zooms()[:2]
    return MedicalImage(
        np.ascontiguousarray(data),
        source=str(path),
        spacing=tuple(float(z) for z in zooms),
        meta={"format": ".nii", "affine": img.affine.tolist(), "slice_index": slice_index},
    )


def save_image(
    path: str | os.PathLike, array: np.ndarray, like: MedicalImage | None = None
) -> Path:
    """Write ``array`` in the format its suffix names, keeping its dtype where the format allows."""
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = _suffix(path)
    if suffix in DICOM_SUFFIXES:
        _write_dicom(path, array, like)
    elif suffix in NIFTI_SUFFIXES:
        import nibabel as nib

        affine = (
            np.array(like.meta["affine"])
            if like is not None and "affine" in like.meta
            else np.eye(4)
        )
        nib.save(nib.Nifti1Image(array, affine), str(path))
    elif suffix == ".npy":
        np.save(path, array)
    elif suffix in RASTER_SUFFIXES:
        out = array
        if suffix in (".jpg", ".jpeg") and out.dtype != np.uint8:
            raise InvalidImageError(
                f"'{path}': JPEG holds 8-bit images only; save {out.dtype} as PNG or TIFF"
            )
        if suffix == ".png" and out.dtype not in (np.uint8, np.uint16):
            raise InvalidImageError(
                f"'{path}': PNG holds 8/16-bit images; save {out.dtype} as .tif, .npy, .nii or .dcm"
            )
        if out.ndim == 3 and out.shape[2] in (3, 4):
            code = cv2.COLOR_RGBA2BGRA if out.shape[2] == 4 else cv2.COLOR_RGB2BGR
            out = cv2.cvtColor(out, code)
        if not cv2.imwrite(str(path), out):
            raise ImageReadError(f"'{path}': could not write a {array.dtype} image in this format")
    else:
        raise InvalidImageError(
            f"'{path}': unknown output format {suffix!r}; use .png, .jpg, .tif, .npy, .nii(.gz) or .dcm"
        )
    return path


def _write_dicom(path: Path, array: np.ndarray, like: MedicalImage | None) -> None:
    """Write ``array`` uncompressed under the header of the DICOM file ``like`` was read from.

    Reading undid the file's encoding (rescale, MONOCHROME1, palette, YBR, frames); writing
    undoes the grayscale ones and stores colour as plain RGB and a single frame.
    """
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian

    if like is None or not like.source or _suffix(Path(like.source)) not in DICOM_SUFFIXES:
        raise InvalidImageError(
            f"'{path}': writing DICOM needs a DICOM input to take the header from"
        )
    ds = pydicom.dcmread(like.source)
    if array.ndim == 3 and array.shape[2] == 3:
        stored = _rgb_for_dicom(ds, array)
    else:
        stored = _grayscale_for_dicom(array, like)
    frame = int(like.meta.get("frame", 0))
    if int(like.meta.get("frames", 1)) > 1:
        ds.NumberOfFrames = 1
        per_frame = ds.get("PerFrameFunctionalGroupsSequence")
        if per_frame is not None and frame < len(per_frame):
            ds.PerFrameFunctionalGroupsSequence = [per_frame[frame]]
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian  # the pixels are no longer compressed
    ds.PixelData = stored.tobytes()
    ds["PixelData"].VR = "OW" if stored.dtype.itemsize > 1 else "OB"
    ds.Rows, ds.Columns = stored.shape[:2]
    # a big-endian source is re-encoded: the pixels written are native little-endian bytes
    pydicom.dcmwrite(str(path), ds, implicit_vr=False, little_endian=True, force_encoding=True)


def _grayscale_for_dicom(array: np.ndarray, like: MedicalImage) -> np.ndarray:
    """Output values -> the stored values of the source file (rescale and MONOCHROME1 undone)."""
    slope = like.meta.get("rescale_slope", 1.0)
    intercept = like.meta.get("rescale_intercept", 0.0)
    stored_dtype = np.dtype(like.meta.get("stored_dtype", "uint16"))
    stored = (array.astype(np.float64) - intercept) / slope
    if like.meta.get("inverted"):
        low, high = like.meta["stored_range"]
        stored = (low + high) - stored
    info = np.iinfo(stored_dtype)
    return np.clip(np.rint(stored), info.min, info.max).astype(stored_dtype)


def _rgb_for_dicom(ds: Any, array: np.ndarray) -> np.ndarray:
    """Set the header up for interleaved RGB pixels of ``array``'s bit depth."""
    for keyword in list(ds.dir()):
        if "PaletteColorLookupTable" in keyword:
            delattr(ds, keyword)
    bits = 16 if array.dtype == np.uint16 else 8
    ds.PhotometricInterpretation = "RGB"
    ds.SamplesPerPixel = 3
    ds.PlanarConfiguration = 0
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    return np.ascontiguousarray(array.astype(np.uint16 if bits == 16 else np.uint8))
