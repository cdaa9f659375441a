"""Corrupted views: (sample, corruption, severity) -> image, made on demand and cached by content.

Every host goes through this layer (VLMEvalKit, lm-eval, the native runner, materialize), so that
they all see the same pixels for the same (sample, corruption, severity, seed). The seed comes from
the ids (``sample_seed``), never from call order. Views are cached in memory (LRU) and optionally
on disk under a content key; disk writes are atomic, so several processes may share one cache.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .atomic_files import write_atomic
from .corruptions.spec import Corruption
from .data.sample import Sample
from .engine import _jsonable, corrupt, get_corruption, sample_seed
from .presentation import Presentation, presentation_for
from .tasks import CLEAN_CONDITION, Condition

CACHE_VERSION = 2  # 2: corruptions act on and SSIM is measured on the presented image


@dataclass(frozen=True)
class View:
    """One image as a model sees it under one condition, with what was applied."""

    sample: Sample
    condition: Condition
    image: np.ndarray  # the sample's dtype and range
    seed: int | None
    params: dict[str, Any] | None  # the corruption record; None when clean
    key: str

    def record(self) -> dict[str, Any]:
        """What a per-sample result records about the view."""
        return {
            "sample_id": self.sample.id,
            "dataset": self.sample.dataset,
            "modality": self.sample.modality,
            "condition": self.condition.key,
            "corruption": self.condition.corruption,
            "severity": self.condition.severity,
            "seed": self.seed,
            "params": self.params,
            "view_key": self.key,
        }


class CorruptedViews:
    """The shared view layer. One instance per run; safe to use from several threads."""

    def __init__(
        self,
        global_seed: int = 0,
        mode: str = "table",
        cache_dir: str | os.PathLike | None = None,
        memory_items: int = 256,
        bands: dict[int, tuple[float, float]] | None = None,
    ) -> None:
        if mode not in ("table", "ssim"):
            raise ValueError(f"severity mode {mode!r} is unknown; use 'table' or 'ssim'")
        self.global_seed = int(global_seed)
        self.mode = mode
        self.bands = bands
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._memory: OrderedDict[str, tuple[np.ndarray, dict[str, Any] | None]] = OrderedDict()
        self._clean: OrderedDict[str, tuple[np.ndarray, dict[str, Any]]] = OrderedDict()
        self._limit = memory_items
        self._lock = threading.Lock()
        self.stats = {"computed": 0, "memory_hits": 0, "disk_hits": 0}

    # ------------------------------------------------------------------ keys

    def seed_for(self, sample: Sample, condition: Condition) -> int | None:
        if condition.is_clean:
            return None
        # SSIM mode keeps one artifact pattern across levels, so that levels differ only in strength.
        level: Any = condition.severity if self.mode == "table" else "ssim"
        return sample_seed(self.global_seed, sample.dataset, sample.id, condition.corruption, level)

    def key_for(self, sample: Sample, condition: Condition, spec: Corruption | None) -> str:
        parts: list[Any] = [
            CACHE_VERSION,
            sample.dataset,
            sample.id,
            sample.image_key(),
            condition.key,
            # what decides the presentation and the physics besides the pixels
            sample.modality,
            [sample.meta.get(k) for k in ("display_window", "pixel_spacing", "units")],
        ]
        if spec is not None:
            parts += [
                self.mode,
                self.seed_for(sample, condition),
                _jsonable(spec.severity_params),
                _jsonable(spec.param_range),
                spec.plugin,
                _jsonable(self.bands),
            ]
        return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()

    # ------------------------------------------------------------------ views

    def clean_image(self, sample: Sample) -> np.ndarray:
        return self._clean_entry(sample)[0]

    def clean_info(self, sample: Sample) -> dict[str, Any]:
        """What is known about the clean image: its file's metadata (DICOM modality, units,
        window, pixel spacing) under the sample's own (``display_window``, ``pixel_spacing``)."""
        return self._clean_entry(sample)[1]

    def _clean_entry(self, sample: Sample) -> tuple[np.ndarray, dict[str, Any]]:
        key = sample.image_key()
        with self._lock:
            if key in self._clean:
                self._clean.move_to_end(key)
                return self._clean[key]
        image, info = _read_clean(sample)
        image.setflags(write=False)
        with self._lock:
            self._clean[key] = (image, info)
            while len(self._clean) > max(8, self._limit // 8):
                self._clean.popitem(last=False)
        return image, info

    def presentation(self, sample: Sample) -> Presentation:
        """How the sample and all its views are shown to a model (see ``presentation``)."""
        return presentation_for(self.clean_image(sample), sample.modality, self.clean_info(sample))

    def get(
        self,
        sample: Sample,
        condition: Condition | None = None,
        corruption: str | Corruption | None = None,
    ) -> View:
        """The view of ``sample`` under ``condition`` (clean when None).

        ``corruption`` may pass the suite's own Corruption (with its table); by default the
        registered one of ``condition.corruption`` is used.
        """
        condition = condition or CLEAN_CONDITION
        spec = None
        if not condition.is_clean:
            spec = (
                corruption
                if isinstance(corruption, Corruption)
                else get_corruption(corruption or condition.corruption)
            )
        key = self.key_for(sample, condition, spec)
        seed = self.seed_for(sample, condition)
        cached = self._lookup(key)
        if cached is not None:
            image, params = cached
            return View(sample, condition, image, seed, params, key)
        clean = self.clean_image(sample)
        if spec is None:
            image, params = clean, None
        else:
            info = self.clean_info(sample)
            image, params = corrupt(
                clean,
                spec,
                condition.severity,
                seed,
                return_params=True,
                mode=self.mode,
                bands=self.bands,
                sample_id=f"{sample.dataset}/{sample.id}",
                modality=sample.modality,
                window=self.presentation(sample).window,
                pixel_spacing=info.get("pixel_spacing"),
                units=info.get("units"),
            )
            image.setflags(write=False)
        self.stats["computed"] += 1
        self._store(key, image, params, to_disk=spec is not None)
        return View(sample, condition, image, seed, params, key)

    def display(self, view: View) -> np.ndarray:
        """The view as 8-bit RGB for a vision-language model, through the clean image's window."""
        gray_or_rgb = self.presentation(view.sample).to_uint8(view.image)
        if gray_or_rgb.ndim == 2:
            gray_or_rgb = gray_or_rgb[..., None]
        if gray_or_rgb.shape[2] == 1:
            gray_or_rgb = np.repeat(gray_or_rgb, 3, axis=2)
        return np.ascontiguousarray(gray_or_rgb)

    def window(self, sample: Sample) -> tuple[float, float]:
        """The presentation window of a sample (values shown black and white)."""
        return self.presentation(sample).window

    def png_bytes(self, view: View) -> bytes:
        """The display image of a view as PNG bytes (what API models are sent)."""
        import cv2

        rgb = self.display(view)
        ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        if not ok:
            raise RuntimeError(f"{view.sample.id}: PNG encoding failed")
        return data.tobytes()

    def pil(self, view: View) -> Any:
        from PIL import Image

        return Image.fromarray(self.display(view))

    def png_path(self, view: View, folder: str | os.PathLike | None = None) -> Path:
        """A PNG file of the view's display image (content-addressed), for hosts that want paths."""
        folder = Path(folder) if folder is not None else self._need_cache_dir() / "png"
        path = folder / view.key[:2] / f"{view.key}.png"
        if not path.exists():
            write_atomic(path, self.png_bytes(view))
        return path

    # ------------------------------------------------------------------ caches

    def _need_cache_dir(self) -> Path:
        if self.cache_dir is None:
            self.cache_dir = Path(tempfile.mkdtemp(prefix="medfm-robust-views-"))
        return self.cache_dir

    def _lookup(self, key: str) -> tuple[np.ndarray, dict[str, Any] | None] | None:
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                self.stats["memory_hits"] += 1
                return self._memory[key]
        if self.cache_dir is None:
            return None
        path = self._disk_path(key)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                image = data["image"]
                params = json.loads(str(data["params"]))
        except (OSError, ValueError, KeyError):
            return None  # a torn or foreign file: recompute and overwrite
        image.setflags(write=False)
        self.stats["disk_hits"] += 1
        self._remember(key, image, params)
        return image, params

    def _store(
        self, key: str, image: np.ndarray, params: dict[str, Any] | None, to_disk: bool
    ) -> None:
        self._remember(key, image, params)
        if to_disk and self.cache_dir is not None:
            buffer = io.BytesIO()
            np.savez(buffer, image=image, params=np.array(json.dumps(params)))
            write_atomic(self._disk_path(key), buffer.getvalue())

    def _remember(self, key: str, image: np.ndarray, params: dict[str, Any] | None) -> None:
        with self._lock:
            self._memory[key] = (image, params)
            self._memory.move_to_end(key)
            while len(self._memory) > self._limit:
                self._memory.popitem(last=False)

    def _disk_path(self, key: str) -> Path:
        return self._need_cache_dir() / "views" / key[:2] / f"{key}.npz"


def _read_clean(sample: Sample) -> tuple[np.ndarray, dict[str, Any]]:
    """The clean image and its metadata: the file's (when it is one), then the sample's."""
    from .image import MedicalImage, check_array, load_image

    info: dict[str, Any] = {}
    source = sample.image
    if isinstance(source, (str, os.PathLike)):
        medical: MedicalImage = load_image(source)
        image = medical.array
        info.update(medical.meta)
        if medical.spacing:
            info["pixel_spacing"] = tuple(medical.spacing[:2])
        check_array(image, f"{sample.dataset}/{sample.id}")
    else:
        image = sample.load_image()
    for key in ("display_window", "pixel_spacing", "units"):
        if sample.meta.get(key) is not None:
            info[key] = sample.meta[key]
    return image, info
