"""OmniMedVQA (Hu et al., CVPR 2024): multiple-choice medical VQA over 12 modalities.

Released layout (``OmniMedVQA.zip`` on the Hugging Face hub, unpacked)::

    OmniMedVQA/
      Images/<source dataset>/...                     images of the open-access part
      QA_information/Open-access/<source dataset>.json
      QA_information/Restricted-access/<source dataset>.json

Each JSON file is a list of items with ``question_id``, ``dataset``, ``question_type``,
``question``, ``gt_answer`` (the text of the right option), ``option_A`` .. ``option_D`` (two to
four of them), ``image_path`` (relative to the ``OmniMedVQA`` folder) and ``modality_type``.
Restricted-access items point into the original source datasets as
``${dataset_root_path}/<path>``; pass ``restricted_root`` to resolve them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from ..sample import Skipped
from .base import FileDataset, Item, find_dir, layout_error
from .checks import image_problem
from .choices import multiple_choice_item, options_from_columns
from .modality_names import modality_from_text

PLACEHOLDER = "${dataset_root_path}"
ACCESS_FOLDERS = {"open_access": "Open-access", "restricted_access": "Restricted-access"}


class OmniMedVQA(FileDataset):
    name = "omnimedvqa"
    kinds = ("vqa",)
    modality = None
    description = (
        "OmniMedVQA: multiple-choice VQA over 12 modalities built from 73 public datasets; the "
        "open-access part ships its images. Each item's modality_type is mapped to the benchmark's "
        "modality keys (unlisted modalities become 'other')."
    )
    access = (
        "Hugging Face hub dataset foreverbeliever/OmniMedVQA: one file OmniMedVQA.zip (about 11 GB; "
        "not a `datasets` table, so unzip it and pass the OmniMedVQA folder as the root). The "
        "open-access part includes images; restricted-access items need each source dataset "
        "obtained under its own licence. Each source dataset keeps its own licence."
    )
    layout = (
        "OmniMedVQA/QA_information/Open-access/*.json (question, option_A..option_D, gt_answer, "
        "image_path, modality_type) and the images under OmniMedVQA/Images/"
    )
    splits = ("open_access", "restricted_access")
    default_split = "open_access"
    split_aliases: ClassVar[dict[str, str]] = {
        "open": "open_access",
        "open-access": "open_access",
        "restricted": "restricted_access",
        "restricted-access": "restricted_access",
    }
    options: ClassVar[dict[str, Any]] = {"datasets": None, "restricted_root": None}
    folder_options = ("restricted_root",)

    def read(self, root: Path, opts: dict[str, Any]) -> Iterator[Item]:
        qa_root = find_dir(root, "QA_information")
        if qa_root is None:
            raise layout_error(self.name, root, self.layout)
        base = qa_root.parent
        wanted = {str(d) for d in opts["datasets"]} if opts["datasets"] else None
        files = []
        for split, folder in ACCESS_FOLDERS.items():
            if self.wants(split, opts) and (qa_root / folder).is_dir():
                files += [(split, f) for f in sorted((qa_root / folder).glob("*.json"))]
        if not files:
            raise layout_error(self.name, root, self.layout)
        seen: set[str] = set()
        for split, path in files:
            if wanted is not None and path.stem not in wanted:
                continue
            for item in self._file(path, split, base, opts):
                if item.id in seen:  # question ids are meant to be unique; keep both if not
                    item = dataclasses.replace(item, id=f"{path.stem}/{item.id}")
                seen.add(item.id)
                yield item

    def _file(self, path: Path, split: str, base: Path, opts: dict[str, Any]) -> Iterator[Item]:
        try:
            items = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            yield Skipped(path.stem, f"QA file {path.name} cannot be read ({exc})")
            return
        if isinstance(items, dict):
            items = [items]
        restricted_root = Path(opts["restricted_root"]) if opts["restricted_root"] else base
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                yield Skipped(
                    f"{path.stem}_{index}", f"item {index} of {path.name} is not an object"
                )
                continue
            sample_id = str(item.get("question_id") or f"{path.stem}_{index}")
            if not item.get("image_path"):
                yield Skipped(sample_id, "item has no image_path")
                continue
            image = _image_path(str(item["image_path"]), base, restricted_root)
            image = opts["data_root"].check(sample_id, image)
            _, problem = image_problem(image, base)
            if problem:
                yield Skipped(sample_id, problem)
                continue
            modality_type = item.get("modality_type", item.get("modality"))
            yield multiple_choice_item(
                dataset=self.name,
                sample_id=sample_id,
                modality=modality_from_text(modality_type),
                image=image,
                question=item.get("question"),
                options=options_from_columns(item, prefix="option_"),
                answer=item.get("gt_answer"),
                meta={
                    "source_dataset": item.get("dataset", path.stem),
                    "question_type": item.get("question_type"),
                    "modality_type": modality_type,
                    "access": split,
                },
            )


def _image_path(value: str, base: Path, restricted_root: Path) -> Path:
    if value.startswith(PLACEHOLDER):
        return restricted_root / value[len(PLACEHOLDER) :].lstrip("/\\")
    return base / value
