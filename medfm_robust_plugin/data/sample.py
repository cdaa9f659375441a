"""Samples and dataset loaders: what every task kind is built from.

A loader reads one public dataset in its released layout and yields ``Sample`` objects; bad items
are skipped with a ``Skipped`` record saying why, never silently. Images and masks load lazily, so
that a loader of a large dataset costs almost nothing until a sample is used.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

ImageSource = str | os.PathLike | np.ndarray | Callable[[], np.ndarray]

DATA_ROOT_ENV = "MEDFM_ROBUST_DATA"
TASK_KINDS = ("vqa", "caption", "report", "grounding", "segmentation")


@dataclass
class Sample:
    """One benchmark item: a clean image and the label its task kind needs."""

    id: str
    dataset: str
    modality: str
    image: ImageSource
    question: str | None = None
    options: dict[str, str] | None = None  # multiple choice: {"A": "...", "B": "..."}
    answer: str | None = None  # option letter, caption or report text
    box: tuple[float, float, float, float] | None = None  # x1, y1, x2, y2 in pixels
    mask: ImageSource | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def load_image(self) -> np.ndarray:
        """The clean image as an array (read from disk on each call; views cache it)."""
        return _load(self.image, self)

    def load_mask(self) -> np.ndarray | None:
        """The ground-truth mask as a boolean H x W array, or None.

        Foreground is above half the mask's maximum, so 0/1 label maps, 0/255 PNGs and JPEG masks
        with compression noise all read the same way.
        """
        if self.mask is None:
            return None
        mask = _load(self.mask, self, is_mask=True)
        if mask.ndim == 3:
            mask = mask[..., 0] if mask.shape[2] in (1, 3, 4) else mask.max(axis=2)
        peak = float(mask.max())
        return mask > peak / 2 if peak > 0 else np.zeros(mask.shape, bool)

    def image_key(self) -> str:
        """A content key of the clean image: ``meta["content_key"]`` when the loader gives one (generated
        images), the file's path, size and mtime for a path, the bytes otherwise."""
        if "content_key" in self.meta:
            return str(self.meta["content_key"])
        source = self.image
        if isinstance(source, (str, os.PathLike)):
            stat = os.stat(source)
            text = f"{os.fspath(source)}|{stat.st_size}|{stat.st_mtime_ns}"
            return hashlib.sha256(text.encode()).hexdigest()
        array = self.load_image()
        digest = hashlib.sha256(array.tobytes())
        digest.update(f"{array.dtype}|{array.shape}".encode())
        return digest.hexdigest()


def _load(source: ImageSource, sample: Sample, is_mask: bool = False) -> np.ndarray:
    from ..image import check_array, load_image

    if isinstance(source, np.ndarray):
        array = source
    elif callable(source):
        array = np.asarray(source())
    else:
        array = load_image(source).array
    if is_mask and array.dtype == np.bool_:
        array = array.view(np.uint8)
    check_array(array, f"{sample.dataset}/{sample.id}")
    return array


@dataclass(frozen=True)
class Skipped:
    """An item of a dataset that was left out, and why."""

    id: str
    reason: str


@dataclass
class LoadResult:
    """What a loader produced: the usable samples and the skipped items."""

    samples: list[Sample]
    skipped: list[Skipped] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{len(self.samples)} samples"
        if self.skipped:
            text += f", {len(self.skipped)} skipped (first: {self.skipped[0].id}: {self.skipped[0].reason})"
        return text


@runtime_checkable
class DatasetLoader(Protocol):
    """A registered dataset: ``register_datasets`` hooks register objects of this shape."""

    name: str
    kinds: tuple[str, ...]  # task kinds the dataset can feed
    modality: str | None  # fixed modality, or None when it varies per sample
    description: str
    access: str  # where to obtain it and what the licence asks

    def load(self, root: Path | None = None, **options: Any) -> LoadResult:
        """Read the dataset from ``root`` (its released layout) or from the hub; skip bad items."""
        ...


def data_root(explicit: str | os.PathLike | None, dataset: str) -> Path:
    """Where a dataset lives: ``explicit``, else ``$MEDFM_ROBUST_DATA/<dataset>``."""
    from ..errors import MedFMRobustError

    if explicit:
        root = Path(explicit)
    elif os.environ.get(DATA_ROOT_ENV):
        root = Path(os.environ[DATA_ROOT_ENV]) / dataset
    else:
        raise MedFMRobustError(
            f"dataset '{dataset}' needs its files: pass --data-root DIR or set {DATA_ROOT_ENV}=DIR "
            f"(with the dataset in DIR/{dataset}); `medfm-robust tasks show` says how to get it"
        )
    if not root.exists():
        raise MedFMRobustError(f"dataset '{dataset}': data root '{root}' does not exist")
    return root


def mask_box(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    """The tight box (x1, y1, x2, y2, pixel edges) around a mask's foreground, or None when empty."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def collect(items: Iterable[Sample | Skipped]) -> LoadResult:
    """Split a loader's stream into samples and skipped items."""
    result = LoadResult([])
    for item in items:
        (result.skipped if isinstance(item, Skipped) else result.samples).append(item)
    return result
