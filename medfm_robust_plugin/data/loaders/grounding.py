"""MeCoVQA-G-Plus: referring-expression grounding on medical images (a box per question).

MeCoVQA (Huang et al., MedPLIB, AAAI 2025) has a grounding part whose items are LLaVA-style
conversations over SA-Med2D-20M images, the answer pointing to a mask (``<mask>path</mask>``).
MeCoVQA-G-Plus (released with Citrus-V, Wang et al. 2025) gives the same items as boxes. Its files
come in two record shapes, both read here:

- detection records: ``{"image", "sentence", "bbox": [x1, y1, x2, y2], "width", "height"}`` with
  the box in pixels of the original image;
- conversation records: ``{"id", "image", "conversations": [{"from": "human", "value":
  "<image>\\n<question>"}, {"from": "gpt", "value": "... [x1, y1, x2, y2] ..." or
  "<mask>masks/....png</mask>"}]}``, with the box in pixels, or normalised to [0, 1] by the
  image's width and height, or given by the mask (its tight box).

``box_format`` says which convention the numbers follow: ``pixel``, ``unit`` (0-1 of width and
height), ``per_mille`` (0-1000, Qwen2-VL style) or ``auto`` (the default: ``unit`` when every
number is at most 1, else ``pixel``). Boxes become pixel x1, y1, x2, y2 with x2, y2 the far pixel
edges, clipped to the image.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from ...errors import MedFMRobustError
from ..sample import Sample, Skipped
from .base import FileDataset, Item, layout_error
from .checks import Size, box_of_mask, box_problem, image_problem, mask_problem
from .choices import is_blank
from .hub import hub_image_problem, lazy_hub_image, open_hub, row_id, undecoded
from .modality_names import modality_from_text

BOX_FORMATS = ("auto", "pixel", "unit", "per_mille")
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
MASK_TAG = re.compile(r"<mask>(.*?)</mask>", re.S)


def first_box_numbers(value: Any) -> list[float] | None:
    """Four numbers from a list, a '[x1, y1, x2, y2]' string or an answer sentence."""
    if isinstance(value, (list, tuple)):
        numbers = [float(v) for v in value[:4]] if len(value) >= 4 else None
        return numbers
    if isinstance(value, str):
        found = NUMBER.findall(value)
        return [float(v) for v in found[:4]] if len(found) >= 4 else None
    return None


def to_pixels(numbers: list[float], size: Size, box_format: str) -> tuple[list[float], str]:
    """Convert a box to pixels; return it with the convention that was applied."""
    if box_format == "auto":
        box_format = "unit" if max(abs(v) for v in numbers) <= 1.0 else "pixel"
    width, height = size
    if box_format == "unit":
        scale = (width, height, width, height)
    elif box_format == "per_mille":
        scale = (width / 1000, height / 1000, width / 1000, height / 1000)
    else:
        scale = (1, 1, 1, 1)
    return [v * s for v, s in zip(numbers, scale)], box_format


def conversation_turns(record: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The first human and first model turn of a LLaVA-style conversation."""
    human = model = None
    for turn in record.get("conversations") or []:
        if not isinstance(turn, Mapping):
            continue
        speaker = str(turn.get("from", "")).lower()
        if speaker in ("human", "user") and human is None:
            human = str(turn.get("value", ""))
        elif speaker in ("gpt", "assistant") and model is None:
            model = str(turn.get("value", ""))
    return human, model


def clean_question(text: str | None) -> str | None:
    if text is None:
        return None
    text = re.sub(r"<image>", "", text)
    return text.strip() or None


def record_question(record: Mapping[str, Any]) -> str | None:
    for key in ("sentence", "question", "problem", "expression", "text"):
        if not is_blank(record.get(key)):
            return clean_question(str(record[key]))
    return clean_question(conversation_turns(record)[0])


def record_size(record: Mapping[str, Any]) -> Size | None:
    if record.get("width") and record.get("height"):
        return int(record["width"]), int(record["height"])
    size = record.get("size")
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return int(size[0]), int(size[1])
    return None


def record_modality(record: Mapping[str, Any], image_name: str) -> str:
    """The record's modality field, else the SA-Med2D file-name prefix (``ct_00--...``)."""
    if not is_blank(record.get("modality")):
        return modality_from_text(str(record["modality"]))
    return modality_from_text(Path(image_name).name.split("--")[0])


class MeCoVQAGroundingPlus(FileDataset):
    name = "mecovqa_g_plus"
    kinds = ("grounding",)
    modality = None
    description = (
        "MeCoVQA-G-Plus: referring-expression grounding over eight modalities (SA-Med2D-20M "
        "images); the model names the box of the referred region. Boxes are converted to pixel "
        "x1, y1, x2, y2 from the release's convention (see box_format)."
    )
    access = (
        "Hugging Face hub dataset jdh-algo/MeCoVQA-G-Plus (accept its terms on the hub page; "
        "annotation files in JSON / JSONL). The images come from SA-Med2D-20M "
        "(OpenGVLab/SA-Med2D-20M on the hub, terms of use to accept) unless bundled. The original "
        "MeCoVQA grounding split (MedPLIB) is on Google Drive, linked from "
        "github.com/ShawnHuang497/MedPLIB. Source images keep their own licences."
    )
    layout = (
        "JSON / JSONL annotation files whose names contain the split (e.g. "
        "MeCoVQA_Grounding_test.json) with records holding image, a question (sentence or "
        "conversations) and a bbox (or <mask> path), next to the images"
    )
    splits = ("train", "test")
    default_split = "test"
    hub_id = "jdh-algo/MeCoVQA-G-Plus"
    reads_hub = True
    folder_options = ("image_root",)
    options: ClassVar[dict[str, Any]] = {
        "annotations": None,
        "image_root": None,
        "box_format": "auto",
    }

    def read(self, root: Path, opts: dict[str, Any]) -> Iterator[Item]:
        _check_box_format(self.name, opts["box_format"])
        for path in self._annotation_files(root, opts):
            try:
                records = _records(path)
            except (OSError, ValueError) as exc:
                yield Skipped(path.stem, f"annotation file {path.name} cannot be read ({exc})")
                continue
            for index, record in enumerate(records):
                yield self._record(record, f"{path.stem}_{index}", root, path.parent, opts)

    def _annotation_files(self, root: Path, opts: dict[str, Any]) -> list[Path]:
        if root.is_file():
            return [root]
        if opts["annotations"]:
            names = opts["annotations"]
            paths = [root / n for n in ([names] if isinstance(names, (str, Path)) else names)]
            missing = [str(p) for p in paths if not p.is_file()]
            if missing:
                raise layout_error(self.name, root, f"the annotation files {missing}")
            return paths
        words = [s for s in self.splits if self.wants(s, opts)]
        candidates = (
            [root, *sorted(p for p in root.iterdir() if p.is_dir())] if root.is_dir() else []
        )
        found = sorted(
            p
            for folder in candidates
            for p in folder.iterdir()
            if p.is_file()
            and p.suffix.lower() in (".json", ".jsonl")
            and any(w in p.name.lower() for w in words)
        )
        if not found:
            raise layout_error(self.name, root, self.layout)
        return found

    def _record(self, record: Any, fallback_id: str, root: Path, base: Path, opts) -> Item:
        if not isinstance(record, Mapping):
            return Skipped(fallback_id, "annotation record is not an object")
        sample_id = str(record.get("id") or record.get("question_id") or fallback_id)
        image_name = record.get("image") or record.get("image_path") or record.get("img_path")
        if is_blank(image_name):
            return Skipped(sample_id, "record has no image")
        image = _resolve(str(image_name), opts["image_root"], base, root)
        image = opts["data_root"].check(sample_id, image)
        size, problem = image_problem(image, root)
        if problem:
            return Skipped(sample_id, problem)
        question = record_question(record)
        if question is None:
            return Skipped(sample_id, "record has no referring question")
        sample = Sample(
            sample_id,
            self.name,
            record_modality(record, str(image_name)),
            image,
            question=question,
            meta={"source": base.name, "image_name": str(image_name)},
        )
        return _with_box(sample, record, size, record_size(record), opts, image.parent, root)

    def read_hub(
        self, hub_id: str | None, hub_dataset: Any, opts: dict[str, Any]
    ) -> Iterator[Item]:
        _check_box_format(self.name, opts["box_format"])
        for split, part in open_hub(self.name, hub_id, hub_dataset, opts["split"], {}):
            part = undecoded(part, "image")
            for index in range(len(part)):
                record = part[index]
                sample_id = str(
                    record.get("id") or record.get("question_id") or row_id(split, index)
                )
                size, problem = hub_image_problem(
                    record.get("image"), opts["image_root"], sample_id, opts
                )
                if problem:
                    yield Skipped(sample_id, problem)
                    continue
                question = record_question(record)
                if question is None:
                    yield Skipped(sample_id, "record has no referring question")
                    continue
                name = record.get("image_name") or _cell_name(record.get("image"))
                sample = Sample(
                    sample_id,
                    self.name,
                    record_modality(record, name),
                    lazy_hub_image(part, index, "image", opts["image_root"]),
                    question=question,
                    meta={"split": split, "image_name": name},
                )
                yield _with_box(sample, record, size, record_size(record), opts, None, None)


def _with_box(sample, record, size, stated_size, opts, mask_base, root) -> Item:
    """Attach the pixel box (from the bbox field, the answer text or the <mask> file)."""
    if stated_size is not None and tuple(stated_size) != tuple(size):
        sample.meta["stated_size"] = list(stated_size)  # the image file decides
    answer = conversation_turns(record)[1] or ""
    mask_tag = MASK_TAG.search(answer)
    numbers = next(
        (
            first_box_numbers(record[key])
            for key in ("bbox", "box", "answer_bbox", "gt_bbox")
            if record.get(key) is not None
        ),
        None,
    )
    if numbers is None and mask_tag and mask_base is not None:
        return _box_from_mask(sample, mask_tag.group(1).strip(), size, mask_base, root, opts)
    if numbers is None:
        numbers = first_box_numbers(answer)
    if numbers is None:
        return Skipped(sample.id, "record has no box (no bbox field, box in the answer, or mask)")
    pixels, convention = to_pixels(numbers, size, opts["box_format"])
    box, problem = box_problem(pixels, size)
    if problem:
        return Skipped(sample.id, problem)
    sample.box = box
    sample.meta["box_source"] = convention
    return sample


def _box_from_mask(
    sample: Sample, name: str, size: Size, base: Path, root: Path | None, opts: dict[str, Any]
) -> Item:
    candidates = [base / name, *([root / name] if root else [])]
    path = next((p for p in candidates if p.is_file()), candidates[0])
    path = opts["data_root"].check(sample.id, path, "mask")
    problem = mask_problem(path, size, root)
    if problem:
        return Skipped(sample.id, problem)
    sample.mask = path
    box, problem = box_of_mask(sample)
    if problem:
        return Skipped(sample.id, problem)
    sample.box = box
    sample.meta["box_source"] = "mask"
    return sample


def _records(path: Path) -> list[Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    data = json.loads(text)
    return data if isinstance(data, list) else [data]


def _resolve(name: str, image_root: str | None, base: Path, root: Path) -> Path:
    if image_root:
        return Path(image_root) / name
    candidates = [base / name, root / name, root / "images" / name]
    return next((p for p in candidates if p.is_file()), candidates[0])


def _cell_name(cell: Any) -> str:
    if isinstance(cell, Mapping):
        return str(cell.get("path") or "")
    return str(cell) if isinstance(cell, str) else ""


def _check_box_format(dataset: str, value: str) -> None:
    if value not in BOX_FORMATS:
        raise MedFMRobustError(
            f"dataset '{dataset}': box_format must be one of {', '.join(BOX_FORMATS)}, got {value!r}"
        )
