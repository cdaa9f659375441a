"""Corrupt what a lab already has: a PyTorch ``Dataset``, a Hugging Face ``datasets`` dataset, or a
list of arrays, with the same per-sample seeds and pixels as the benchmark's own hosts.

    from medfm_robust_plugin.lab import CorruptedDataset
    loader = DataLoader(CorruptedDataset(my_dataset, "mri_motion", severity=3, dataset_name="brats"))

    ds = ds.map(hf_corrupt("gaussian_noise", 3, id_column="case_id"), batched=True)

Each item's seed is ``sample_seed(seed, dataset_name, item_id, corruption, severity)``: the ids,
not the order, decide the artifact, so shuffling, workers and reruns do not change an image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .corruptions.spec import Corruption
from .data.sample import Sample
from .engine import get_corruption
from .tasks import Condition
from .views import CorruptedViews, View


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.split(".")[0] == "torch"


def _to_numpy(image: Any) -> tuple[np.ndarray, Callable[[np.ndarray], Any]]:
    """An H x W (x C) array, and how to turn a result back into the item's own type and layout."""
    if isinstance(image, np.ndarray):
        return image, lambda out: out
    if _is_tensor(image):
        import torch

        tensor = image.detach().cpu()
        channels_first = (
            tensor.ndim == 3 and tensor.shape[0] in (1, 3, 4) and tensor.shape[2] not in (1, 3, 4)
        )
        array = tensor.permute(1, 2, 0).numpy() if channels_first else tensor.numpy()

        def back(out: np.ndarray) -> Any:
            result = torch.from_numpy(np.ascontiguousarray(out))
            return result.permute(2, 0, 1).contiguous() if channels_first else result

        return array, back
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        Image = None
    if Image is not None and isinstance(image, Image.Image):
        mode = image.mode
        return np.asarray(image), lambda out: Image.fromarray(out).convert(mode)
    raise TypeError(
        f"cannot corrupt an item image of type {type(image).__name__}; use an array, tensor or PIL image"
    )


class ItemCorrupter:
    """Corrupts single images given their ids, through the shared view layer."""

    def __init__(
        self,
        corruption: str | Corruption,
        severity: int,
        *,
        dataset_name: str = "lab",
        modality: str = "",
        seed: int = 0,
        mode: str = "table",
        views: CorruptedViews | None = None,
    ) -> None:
        self.spec = get_corruption(corruption)
        self.condition = Condition(self.spec.name, int(severity))
        self.dataset_name = dataset_name
        self.modality = modality
        self.views = views or CorruptedViews(global_seed=seed, mode=mode, memory_items=8)

    def view(self, image: np.ndarray, item_id: object) -> View:
        sample = Sample(str(item_id), self.dataset_name, self.modality, image)
        return self.views.get(sample, self.condition, corruption=self.spec)

    def __call__(self, image: Any, item_id: object) -> Any:
        array, back = _to_numpy(image)
        return back(np.array(self.view(array, item_id).image))


class CorruptedDataset:
    """Wrap an indexable dataset (PyTorch ``Dataset``, list, ...) so that its images come corrupted.

    ``image_key`` picks the image out of an item: an index for tuples/lists (default 0), a key for
    dicts (default ``"image"``). ``id_of(index, item)`` gives the item's stable id (default: the index).
    Everything else in the item (masks, labels, boxes) passes through untouched.
    """

    def __init__(
        self,
        dataset: Sequence[Any],
        corruption: str | Corruption,
        severity: int,
        *,
        image_key: int | str | None = None,
        id_of: Callable[[int, Any], object] | None = None,
        dataset_name: str = "lab",
        modality: str = "",
        seed: int = 0,
        mode: str = "table",
    ) -> None:
        self.dataset = dataset
        self.image_key = image_key
        self.id_of = id_of or (lambda index, item: index)
        self.corrupter = ItemCorrupter(
            corruption, severity, dataset_name=dataset_name, modality=modality, seed=seed, mode=mode
        )

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        item = self.dataset[index]
        item_id = self.id_of(index, item)
        if isinstance(item, dict):
            key = self.image_key if self.image_key is not None else "image"
            return {**item, key: self.corrupter(item[key], item_id)}
        if isinstance(item, (tuple, list)):
            key = self.image_key if self.image_key is not None else 0
            parts = list(item)
            parts[key] = self.corrupter(parts[key], item_id)
            return type(item)(parts) if isinstance(item, tuple) else parts
        return self.corrupter(item, item_id)


def corrupt_arrays(
    images: Sequence[Any],
    corruption: str | Corruption,
    severity: int,
    *,
    ids: Sequence[object] | None = None,
    dataset_name: str = "lab",
    seed: int = 0,
) -> list[Any]:
    """Corrupt a plain list of images (ids default to positions)."""
    corrupter = ItemCorrupter(corruption, severity, dataset_name=dataset_name, seed=seed)
    ids = list(ids) if ids is not None else list(range(len(images)))
    return [corrupter(image, item_id) for image, item_id in zip(images, ids, strict=True)]


def hf_corrupt(
    corruption: str | Corruption,
    severity: int,
    *,
    image_column: str = "image",
    id_column: str | None = None,
    dataset_name: str = "lab",
    seed: int = 0,
) -> Callable[..., dict[str, list[Any]]]:
    """A batched function for ``Dataset.map(fn, batched=True, with_indices=...)`` or ``with_transform``.

    With ``id_column`` the ids come from that column (works with ``with_transform``); without it,
    use ``map(..., with_indices=True)`` so that the row index is the id.
    """
    corrupter = ItemCorrupter(corruption, severity, dataset_name=dataset_name, seed=seed)

    def apply(
        batch: dict[str, list[Any]], indices: list[int] | None = None
    ) -> dict[str, list[Any]]:
        if id_column is not None:
            ids = batch[id_column]
        elif indices is not None:
            ids = indices
        else:
            raise ValueError(
                "hf_corrupt needs stable ids: pass id_column=..., or call map(..., with_indices=True)"
            )
        out = dict(batch)
        out[image_column] = [
            corrupter(image, i) for image, i in zip(batch[image_column], ids, strict=True)
        ]
        return out

    return apply
