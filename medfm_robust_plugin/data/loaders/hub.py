"""Reading Hugging Face ``datasets``: the hub releases of the benchmark's datasets, and any dataset.

``datasets`` is imported only here and only when a hub source is asked for, so the package does
not need it. ``hub_id`` is a hub name (downloaded by ``datasets.load_dataset``) or a local folder
written by ``save_to_disk``; ``hub_dataset`` is a ``Dataset`` / ``DatasetDict`` already in memory.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ...errors import MedFMRobustError
from ..sample import TASK_KINDS, Sample, Skipped
from .base import FileDataset, Item
from .checks import Size, box_of_mask, box_problem, bytes_size, image_problem
from .choices import is_blank, multiple_choice_item, options_from_columns, options_from_value
from .modality_names import OTHER, modality_from_text
from .sources import hub_image


def open_hub(
    dataset: str, hub_id: str | None, hub_dataset: Any, split: str, hub_splits: Mapping[str, str]
) -> list[tuple[str, Any]]:
    """The (split name, ``datasets.Dataset``) pairs to read, in a fixed order."""
    if hub_dataset is None:
        hub_dataset = _fetch(
            dataset, str(hub_id), None if split == "all" else hub_splits.get(split, split)
        )
    if isinstance(hub_dataset, dict):  # a DatasetDict
        names = sorted(hub_dataset)
        if split != "all":
            wanted = hub_splits.get(split, split)
            if wanted not in hub_dataset:
                raise MedFMRobustError(
                    f"dataset '{dataset}': the hub dataset has no split '{wanted}' "
                    f"(it has {', '.join(names)})"
                )
            names = [wanted]
        return [(name, hub_dataset[name]) for name in names]
    return [(split, hub_dataset)]


def _fetch(dataset: str, hub_id: str, split: str | None) -> Any:
    try:
        import datasets
    except ImportError:
        raise MedFMRobustError(
            f"dataset '{dataset}': reading '{hub_id}' needs the Hugging Face `datasets` package; "
            "pip install datasets (or pass the unpacked release as the data root)"
        ) from None
    try:
        if Path(hub_id).exists():
            loaded = datasets.load_from_disk(hub_id)
            return (
                loaded[split] if split and isinstance(loaded, dict) and split in loaded else loaded
            )
        return datasets.load_dataset(hub_id, split=split)
    except Exception as exc:
        raise MedFMRobustError(
            f"dataset '{dataset}': could not load '{hub_id}' with `datasets` "
            f"({type(exc).__name__}: {exc}); check the hub id, your network and any licence "
            "you must accept on the hub page, or pass the unpacked release as the data root"
        ) from exc


def row_id(split: str, index: int) -> str:
    """The id of a row without an id column: its split and position."""
    return f"row{index:06d}" if split == "all" else f"{split}_{index:06d}"


def undecoded(hub_dataset: Any, column: str) -> Any:
    """The dataset with an image column left encoded, so that rows read cheaply."""
    feature = getattr(hub_dataset, "features", {}).get(column)
    if (
        feature is not None
        and type(feature).__name__ == "Image"
        and getattr(feature, "decode", False)
    ):
        return hub_dataset.cast_column(column, type(feature)(decode=False))
    return hub_dataset


def hub_image_problem(
    value: Any, image_root: str | None, sample_id: str, opts: dict[str, Any]
) -> tuple[Size | None, str | None]:
    """The size of an image cell (encoded bytes, a path, or a decoded image), or why it is unusable.

    A path must lie inside the data root (``opts["data_root"]``), else the load stops naming it.
    """
    if isinstance(value, Mapping):
        if value.get("bytes"):
            try:
                return bytes_size(value["bytes"]), None
            except Exception as exc:
                return None, f"image cannot be decoded ({type(exc).__name__})"
        value = value.get("path")
    if is_blank(value):
        return None, "row has no image"
    if isinstance(value, (str, Path)):
        path = Path(image_root, value) if image_root else Path(value)
        return image_problem(opts["data_root"].check(sample_id, path))
    size = getattr(value, "size", None)  # a decoded PIL image
    if isinstance(size, tuple) and len(size) == 2:
        return (int(size[0]), int(size[1])), None
    shape = getattr(value, "shape", None)
    if shape is not None and len(shape) >= 2:
        return (int(shape[1]), int(shape[0])), None
    return None, f"image cell of type {type(value).__name__} is not an image"


def lazy_hub_image(hub_dataset: Any, index: int, column: str, image_root: str | None) -> Any:
    return functools.partial(hub_image, hub_dataset, index, column, image_root)


# ---------------------------------------------------------------------- any dataset


class HubDataset(FileDataset):
    """``hf_dataset``: any Hugging Face dataset, with its columns mapped to sample fields."""

    name = "hf_dataset"
    kinds = TASK_KINDS
    modality = None
    description = (
        "Any Hugging Face `datasets` dataset (hub id, save_to_disk folder or Dataset object) with a "
        "column mapping; rows become VQA, caption, grounding or segmentation samples by the "
        "columns they have."
    )
    access = "Whatever the dataset's hub page asks; `pip install datasets` to read it."
    layout = "a folder written by datasets' save_to_disk (or use hub_id= / hub_dataset=)"
    reads_hub = True
    options: ClassVar[dict[str, Any]] = {"columns": None, "modality": None, "image_root": None}
    folder_options = ("image_root",)
    splits = ("all",)

    FIELD_COLUMNS: ClassVar[dict[str, tuple[str, ...]]] = {
        "id": ("id", "question_id", "index", "image_id"),
        "image": ("image", "img", "image_path"),
        "question": ("question", "query", "prompt"),
        "options": ("options", "choices"),
        "answer": ("answer", "caption", "report", "gt_answer"),
        "modality": ("modality", "modality_type"),
        "box": ("box", "bbox"),
        "mask": ("mask", "label_mask"),
    }

    def _split(self, split: Any) -> str:
        return str(split)  # hub datasets name their own splits

    def read(self, root: Path, opts: dict[str, Any]) -> Iterator[Item]:
        return self.read_hub(str(root), None, opts)

    def read_hub(
        self, hub_id: str | None, hub_dataset: Any, opts: dict[str, Any]
    ) -> Iterator[Item]:
        for split, part in open_hub(self.name, hub_id, hub_dataset, opts["split"], {}):
            yield from self._rows(split, part, opts)

    def _columns(self, part: Any, wanted: Mapping[str, str] | None) -> dict[str, str]:
        present = list(part.column_names)
        wanted = dict(wanted or {})
        unknown = sorted(set(wanted) - set(self.FIELD_COLUMNS))
        if unknown:
            raise MedFMRobustError(
                f"dataset '{self.name}': columns= maps unknown fields {unknown}; "
                f"fields are {', '.join(self.FIELD_COLUMNS)}"
            )
        missing = sorted(c for c in wanted.values() if c not in present)
        if missing:
            raise MedFMRobustError(
                f"dataset '{self.name}': columns {missing} are not in the dataset "
                f"(it has {', '.join(present)})"
            )
        mapping = {}
        for field, candidates in self.FIELD_COLUMNS.items():
            column = wanted.get(field) or next((c for c in candidates if c in present), None)
            if column:
                mapping[field] = column
        if "image" not in mapping:
            raise MedFMRobustError(
                f"dataset '{self.name}': no image column found among {', '.join(present)}; "
                'map it with columns={"image": "<column>"}'
            )
        return mapping

    def _rows(self, split: str, part: Any, opts: dict[str, Any]) -> Iterator[Item]:
        columns = self._columns(part, opts["columns"])
        for field in ("image", "mask"):
            if field in columns:
                part = undecoded(part, columns[field])
        for index in range(len(part)):
            row = part[index]
            fields = {field: row.get(column) for field, column in columns.items()}
            sample_id = (
                str(fields["id"]) if not is_blank(fields.get("id")) else row_id(split, index)
            )
            size, problem = hub_image_problem(fields["image"], opts["image_root"], sample_id, opts)
            if problem:
                yield Skipped(sample_id, problem)
                continue
            row_ref = HubRow(part, index, split, row, fields, size, columns)
            yield self._sample(sample_id, row_ref, opts)

    def _sample(self, sample_id: str, ref: HubRow, opts: dict[str, Any]) -> Item:
        fields = ref.fields
        modality = opts["modality"] or (
            modality_from_text(fields.get("modality")) if "modality" in fields else OTHER
        )
        image = lazy_hub_image(ref.part, ref.index, ref.columns["image"], opts["image_root"])
        meta = {"split": ref.split, "row": ref.index}
        if "mask" in fields:
            mask_path = _cell_path(fields["mask"], opts["image_root"])
            if mask_path is not None:
                opts["data_root"].check(sample_id, mask_path, "mask")
            mask = lazy_hub_image(ref.part, ref.index, ref.columns["mask"], opts["image_root"])
            sample = Sample(sample_id, self.name, modality, image, mask=mask, meta=meta)
            box, problem = box_of_mask(sample)
            if problem:
                return Skipped(sample_id, problem)
            sample.box = box
            return sample
        if "box" in fields:
            box, problem = box_problem(list(fields["box"] or []), ref.size)
            if problem:
                return Skipped(sample_id, problem)
            if is_blank(fields.get("question")):
                return Skipped(sample_id, "grounding item has no referring question")
            question = str(fields["question"]).strip()
            return Sample(
                sample_id, self.name, modality, image, question=question, box=box, meta=meta
            )
        options = options_from_value(fields.get("options")) or options_from_columns(ref.row)
        if "question" in fields or options:
            return multiple_choice_item(
                dataset=self.name,
                sample_id=sample_id,
                modality=modality,
                image=image,
                question=fields.get("question"),
                options=options,
                answer=fields.get("answer"),
                meta=meta,
            )
        if is_blank(fields.get("answer")):
            return Skipped(sample_id, "row has no caption or answer text")
        answer = str(fields["answer"]).strip()
        return Sample(sample_id, self.name, modality, image, answer=answer, meta=meta)


def _cell_path(value: Any, image_root: str | None) -> Path | None:
    """The file an image cell points to (a path, or a path without bytes), or None."""
    if isinstance(value, Mapping) and not value.get("bytes"):
        value = value.get("path")
    if isinstance(value, (str, Path)) and not is_blank(value):
        return Path(image_root, value) if image_root else Path(value)
    return None


@dataclass(frozen=True)
class HubRow:
    """One row of a hub dataset and where it sits."""

    part: Any
    index: int
    split: str
    row: Mapping[str, Any]
    fields: dict[str, Any]
    size: Size | None
    columns: dict[str, str]
