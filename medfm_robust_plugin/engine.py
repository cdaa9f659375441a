"""Corrupting images at a severity: ``corrupt``, ``corrupt_batch``, ``sample_seed``.

A severity is a table level or, in SSIM mode, a level calibrated on the presented image
(``calibration``); one application of one parameter is ``application.apply_corruption``. The
registry lookups (``get_corruption``, ``list_corruptions``) live in ``lookup`` and are handed on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from . import image as img
from .application import DICOM_MODALITIES, _jsonable, apply_corruption, image_context
from .corruptions.spec import Corruption, ImageContext
from .errors import SeverityError
from .lookup import get_corruption, list_corruptions

__all__ = [
    "DICOM_MODALITIES",
    "apply_corruption",
    "corrupt",
    "corrupt_batch",
    "get_corruption",
    "image_context",
    "list_corruptions",
    "sample_seed",
]

SEED_BITS = 63


def sample_seed(
    global_seed: int, dataset: str, sample_id: object, corruption: str, severity: object
) -> int:
    """A stable seed for one (dataset, sample, corruption, severity), the same in every process.

    Derived by hashing, never from call order, so that workers, reruns and hosts agree.
    """
    key = json.dumps(
        [int(global_seed), str(dataset), str(sample_id), str(corruption), str(severity)]
    )
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & ((1 << SEED_BITS) - 1)


def corrupt(
    image: Any,
    name: str | Corruption,
    severity: float = 3,
    seed: int = 0,
    return_params: bool = False,
    *,
    strength: float | None = None,
    window: str | tuple[float, float] | None = None,
    value_range: tuple[float, float] | None = None,
    modality: str | None = None,
    pixel_spacing: tuple[float, float] | None = None,
    units: str | None = None,
    sample_id: object | None = None,
    mode: str = "table",
    bands: dict[int, tuple[float, float]] | None = None,
) -> Any:
    """Corrupt one image and return it in the dtype, shape and channels it came in.

    ``image`` is a numpy array (H x W or H x W x 1/3/4), a PIL image, a ``MedicalImage`` from
    ``load_image``, or a path (PNG, JPEG, TIFF, DICOM, NIfTI). ``severity`` is 1-5 (fractions
    interpolate the table); ``strength`` in [0, 1] overrides it. ``mode="ssim"`` calibrates the
    level on this image instead: the strength whose SSIM to the clean image falls in the level's
    band (``bands``, the paper's by default).

    What the model sees - the presentation - decides where natural corruptions act and where SSIM
    is measured: 8-bit images as they are; otherwise the ``window`` (``(bottom, top)`` values shown
    black and white, or a CT preset name such as ``"brain"``; ``value_range`` is its older name),
    else the file's DICOM window, else by ``modality`` (CT in HU: soft tissue W400/L40; MR, X-ray,
    ultrasound, OCT: the 0.5-99.5 percentiles), else the image's value range (0 or its minimum to
    its maximum). Pixels a natural corruption leaves unchanged in the presented image keep their
    original values (bone outside a soft-tissue window stays bone). Physical corruptions use
    ``pixel_spacing`` (row, column) in mm and ``units="HU"`` when given or known from the file.

    With ``return_params=True`` the result is ``(image, params)``: everything needed to replay the
    corruption, with the presented-image SSIM to the clean image (``params["ssim"]``).
    """
    source = sample_id if sample_id is not None else (image if isinstance(image, str) else None)
    spec = get_corruption(name)
    if mode not in ("table", "ssim"):
        raise SeverityError(f"severity mode {mode!r} is unknown; use 'table' or 'ssim'")
    array, pil_mode, context, presentation = image_context(
        image,
        source,
        modality=modality,
        pixel_spacing=pixel_spacing,
        window=window if window is not None else value_range,
        units=units,
    )
    if mode == "ssim":
        from .ssim import WIN

        if min(array.shape[:2]) < WIN:
            raise SeverityError(
                f"{source or 'image'}: severity mode 'ssim' measures SSIM in {WIN} x {WIN} windows, "
                f"and the image is {array.shape[0]} x {array.shape[1]}; use mode='table'"
            )
        return _corrupt_calibrated(
            array, pil_mode, spec, severity, seed, return_params, context, bands, source
        )
    param = spec.param_for(severity=severity if strength is None else None, strength=strength)
    out, params = apply_corruption(
        array, spec, param, int(seed), context, source, measure=return_params
    )
    result: Any = img.array_to_pil(out, pil_mode) if pil_mode is not None else out
    if not return_params:
        return result
    params["severity"] = None if strength is not None else _jsonable(severity)
    params["strength"] = None if strength is None else float(strength)
    return result, params


def _corrupt_calibrated(
    array: np.ndarray,
    pil_mode: Any,
    spec: Corruption,
    level: Any,
    seed: int,
    return_params: bool,
    context: ImageContext,
    bands: dict[int, tuple[float, float]] | None,
    source: object | None,
) -> Any:
    from .calibration import StrengthProbe, calibrate

    probe = StrengthProbe(array, spec, int(seed), context=context, source=source)
    out, record = calibrate(probe, level, bands)
    result: Any = img.array_to_pil(out, pil_mode) if pil_mode is not None else out
    if not return_params:
        return result
    return result, calibrated_params(probe, level, record)


def calibrated_params(probe: Any, level: Any, record: Any) -> dict[str, Any]:
    """The replay record of an SSIM-calibrated application: the engine's, plus the search."""
    params = probe.params(record.strength)
    params.update(severity=level, mode="ssim", calibration=record.as_record())
    return params


def corrupt_batch(
    images: Sequence[Any],
    name: str | Corruption,
    severity: float = 3,
    seed: int | Sequence[int] = 0,
    return_params: bool = False,
    *,
    sample_ids: Sequence[object] | None = None,
    dataset: str = "batch",
    workers: int = 1,
    strength: float | None = None,
) -> list[Any]:
    """Corrupt many images. With one integer ``seed``, each image gets ``sample_seed(seed, dataset,
    id, name, severity)`` from its sample id (its index when no ids are given), so the result of an
    image does not depend on its neighbours or on ``workers``.
    """
    spec = get_corruption(name)
    ids = list(sample_ids) if sample_ids is not None else list(range(len(images)))
    if len(ids) != len(images):
        raise ValueError(f"{len(images)} images but {len(ids)} sample ids")
    if isinstance(seed, (int, np.integer)):
        level = severity if strength is None else f"strength={strength}"
        seeds = [sample_seed(int(seed), dataset, i, spec.name, level) for i in ids]
    else:
        seeds = [int(s) for s in seed]
        if len(seeds) != len(images):
            raise ValueError(f"{len(images)} images but {len(seeds)} seeds")

    def one(k: int) -> Any:
        return corrupt(
            images[k], spec, severity, seeds[k], return_params, strength=strength, sample_id=ids[k]
        )

    if workers <= 1:
        return [one(k) for k in range(len(images))]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, range(len(images))))
