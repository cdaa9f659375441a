"""Applying one corruption with a chosen parameter: the image's context (modality, spacing,
units, presentation window), the domain the corruption works in, the check of what it returns, and
the replay record with the presented SSIM. ``engine`` (severities, SSIM calibration, batches) and
``calibration`` both stand on this module.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from . import image as img
from .corruptions.spec import Corruption, ImageContext
from .errors import (
    CorruptionOutputError,
    InvalidImageError,
    MedFMRobustError,
    describe_source,
)
from .plugins import get_registry
from .presentation import Presentation, presentation_for

# DICOM Modality codes -> the benchmark's modality keys.
DICOM_MODALITIES = {
    "CT": "ct",
    "MR": "mri",
    "US": "ultrasound",
    "CR": "xray",
    "DX": "xray",
    "DR": "xray",
    "RG": "xray",
    "MG": "xray",
    "OP": "fundus",
    "OPT": "oct",
    "ES": "endoscopy",
    "SM": "pathology",
    "XC": "dermoscopy",
}


def image_context(
    image: Any,
    source: object | None = None,
    *,
    modality: str | None = None,
    pixel_spacing: tuple[float, float] | None = None,
    window: str | tuple[float, float] | None = None,
    units: str | None = None,
    meta: dict[str, Any] | None = None,
) -> tuple[np.ndarray, Any, ImageContext, Presentation]:
    """Read ``image`` and say what is known about it: (array, PIL mode, context, presentation).

    A ``MedicalImage`` (or a path) brings its file's metadata - DICOM modality, rescale to HU,
    pixel spacing, window - and the keyword arguments override it.
    """
    medical = image if isinstance(image, img.MedicalImage) else None
    if isinstance(image, (str, os.PathLike)):
        medical = img.load_image(image)
    array, pil_mode = img.as_array(medical if medical is not None else image, source)
    img.check_array(array, source)
    info: dict[str, Any] = dict(medical.meta) if medical is not None else {}
    info.update(meta or {})
    # the caller's array type: float32 working copies no longer tell int16 HU from uint16 counts
    info.setdefault("dtype", array.dtype.name)
    modality = (
        modality
        or info.get("medfm_modality")
        or DICOM_MODALITIES.get(str(info.get("modality", "")).upper())
    )
    if pixel_spacing is None and medical is not None and medical.spacing:
        pixel_spacing = medical.spacing[:2]
    if pixel_spacing is None and info.get("pixel_spacing") is not None:
        pixel_spacing = info["pixel_spacing"]
    if pixel_spacing is not None:
        pixel_spacing = _check_spacing(pixel_spacing, source)
    if units is not None:
        info["units"] = units
    presentation = presentation_for(array, modality, info, window)
    context = ImageContext(
        modality=modality,
        pixel_spacing=pixel_spacing,
        units=info.get("units"),
        window=presentation.window,
        meta=info,
    )
    return array, pil_mode, context, presentation


def _check_spacing(spacing: Any, source: object | None) -> tuple[float, float]:
    try:
        dy, dx = (float(v) for v in tuple(spacing)[:2])
    except (TypeError, ValueError):
        raise InvalidImageError(
            f"{describe_source(source)}: pixel_spacing {spacing!r} must be (row, column) in mm"
        ) from None
    if not (np.isfinite(dy) and np.isfinite(dx) and dy > 0 and dx > 0):
        raise InvalidImageError(
            f"{describe_source(source)}: pixel_spacing {spacing!r} must be positive millimetres"
        )
    return dy, dx


def apply_corruption(
    array: np.ndarray,
    spec: Corruption,
    param: Any,
    seed: int,
    context: ImageContext,
    source: object | None = None,
    measure: bool = True,
    reference: Any = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Apply ``spec`` with a chosen parameter; return the image and its replay record.

    With ``measure``, the record holds the SSIM of the presented result to the presented clean
    image (``ssim``), which calibration, records and reports all read. It is averaged over the
    clean image's imaged region (``imaged_region``: the scan, the aperture, the body) where the
    modality has one; the record then also holds the whole-frame mean (``ssim_frame``) and the
    region's kind and share of the frame (``ssim_region``). ``reference`` may hand over the
    clean side of that SSIM already computed (``ssim.PresentedReference.of``; a severity search
    measures many results against one clean image).
    """
    rng = np.random.Generator(np.random.PCG64(int(seed)))
    out, draws = _apply(spec, array, param, rng, context, source)
    params: dict[str, Any] = {
        "corruption": spec.name,
        "param": _jsonable(param),
        "seed": int(seed),
        "value_range": list(context.window),  # the presentation window
    }
    if context.pixel_spacing is not None:
        params["pixel_spacing"] = list(context.pixel_spacing)
    if draws:
        params["draws"] = _jsonable(draws)
    if measure:
        from .ssim import WIN, PresentedReference

        if min(array.shape[:2]) < WIN:  # no SSIM window fits: recorded as unmeasured
            params["ssim"] = None
        else:
            reference = (
                reference if reference is not None else PresentedReference.of(array, context)
            )
            in_region, frame = reference.scores(out)
            params["ssim"] = round(in_region, 6)
            if reference.region is not None:
                params["ssim_frame"] = round(frame, 6)
                params["ssim_region"] = reference.region.as_record()
    return out, params


def _apply(
    spec: Corruption,
    array: np.ndarray,
    param: Any,
    rng: np.random.Generator,
    context: ImageContext,
    source: object | None,
) -> tuple[np.ndarray, dict[str, Any] | None]:
    body, alpha, layout = img.split(array, context.window)
    if spec.accepts_uint8 and spec.channels == "any" and img.is_plain_uint8(layout):
        work = np.ascontiguousarray(body)
    elif spec.domain == "unit":
        work = img.to_unit(body, layout)
    else:
        work = img.to_physical(body)
    work_in, undo = img.adapt_channels(work, spec.channels)
    try:
        if spec.wants_context:
            returned = spec.function(np.ascontiguousarray(work_in), param, rng, context)
        else:
            returned = spec.function(np.ascontiguousarray(work_in), param, rng)
    except MedFMRobustError:
        raise
    except Exception as exc:
        raise MedFMRobustError(
            f"{describe_source(source)}: corruption '{spec.name}' ({_plugin_of(spec)}) failed "
            f"on a {array.dtype} image of shape {array.shape}: {type(exc).__name__}: {exc}"
        ) from exc
    out, draws = returned if isinstance(returned, tuple) else (returned, None)
    out = _checked_output(spec, out, work_in, layout.valid_range, source, array)
    out = img.restore_channels(out, undo, work)
    if out.dtype == np.uint8:
        values = out  # an 8-bit function's own result, already in the caller's dtype and range
    elif spec.domain == "unit":
        if img.is_plain_uint8(layout):
            values = img.from_unit(out, layout)
        else:
            # What the presentation does not change keeps its own values: the window's clipping
            # must not flatten bone or air that the corruption left alone.
            clipped = np.clip(out, 0.0, 1.0)
            unchanged = clipped == work
            values = img.from_unit(clipped, layout, clipped=True)  # may reuse ``clipped``
            np.copyto(values, body, casting="unsafe", where=unchanged)
    else:
        values = out
    return img.merge(values, alpha, layout), draws


# How far a result may reach past its domain's range, in spans of that range. Results are clipped
# to the range afterwards, so noise may overshoot; values further out mean a corruption working in
# the wrong units (0-255 where [0, 1] was given) or a numerical blow-up.
OUTPUT_RANGE_SPANS = 64.0


def _checked_output(
    spec: Corruption,
    returned: Any,
    work_in: np.ndarray,
    valid: tuple[float, float],
    source: object | None,
    array: np.ndarray,
) -> np.ndarray:
    """A corruption's result as the engine works on it (uint8 or float32), once it is known to be
    an image: same shape as given, finite, within its domain's range. Checked before any
    conversion, because converting NaN to an integer type silently makes it 0 or 255."""

    def fail(problem: str) -> CorruptionOutputError:
        return CorruptionOutputError(
            f"{describe_source(source)}: corruption '{spec.name}' ({_plugin_of(spec)}) returned "
            f"{problem} for a {array.dtype} image of shape {array.shape}; the item is not usable. "
            "Fix the corruption, or leave its plugin out (MEDFM_ROBUST_PLUGINS=name1,name2)"
        )

    try:
        out = np.asarray(returned)
    except Exception as exc:
        raise fail(f"something that is not an array ({type(exc).__name__}: {exc})") from None
    if out.dtype.kind not in "buif":
        raise fail(f"values of type {out.dtype}, not real numbers")
    if out.ndim == 2:
        out = out[..., None]
    if out.shape != work_in.shape:
        raise fail(f"shape {out.shape} for input {work_in.shape}; a corruption must keep the shape")
    if out.dtype == np.uint8 and work_in.dtype == np.uint8:
        return out  # 8-bit in, 8-bit out: nothing can be out of range
    out = out.astype(np.float32, copy=False)
    if not out.size:
        return out
    low, high = float(out.min()), float(out.max())  # NaN and inf show in the extremes
    if not (np.isfinite(low) and np.isfinite(high)):
        bad = int(out.size - np.count_nonzero(np.isfinite(out)))
        raise fail(f"{bad} non-finite values (NaN or inf) among {out.size}")
    if spec.domain == "unit":
        valid = (0.0, 1.0)
    lo, hi = valid
    if np.isfinite(lo) and np.isfinite(hi):
        span = (hi - lo) * OUTPUT_RANGE_SPANS
        if low < lo - span or high > hi + span:
            raise fail(
                f"values from {low:g} to {high:g}, far outside its {spec.domain} domain's range "
                f"{lo:g} to {hi:g}"
            )
    return out


def _plugin_of(spec: Corruption) -> str:
    """Which plugin registered ``spec``, for messages."""
    plugin = spec.plugin
    if plugin is None:
        registry = get_registry()
        if registry.items["corruptions"].get(spec.name) is spec:
            plugin = registry.owners["corruptions"].get(spec.name)
    return f"plugin '{plugin}'" if plugin else "registered by no plugin"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
