"""Your own VQA data as a table: ``qa_table`` (CSV / JSONL) and ``vlmeval_tsv`` (VLMEvalKit TSV)."""

from __future__ import annotations

import base64
import binascii
import csv
import functools
import io
import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from ...errors import MedFMRobustError
from ..sample import Skipped
from .base import FileDataset, Item, layout_error
from .checks import image_problem
from .choices import is_blank, multiple_choice_item, options_from_columns, options_from_value
from .modality_names import OTHER, modality_from_text
from .sources import base64_image

# Leading bytes of the encodings an image cell may hold.
IMAGE_SIGNATURES = (
    b"\x89PNG",
    b"\xff\xd8\xff",
    b"GIF8",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"RIFF",
)


def table_file(dataset: str, root: Path, name: str | None, suffixes: tuple[str, ...]) -> Path:
    """The table to read: ``root`` itself, ``root/name``, or the one table file in ``root``."""
    if root.is_file():
        return root
    if name:
        path = root / name
        if not path.is_file():
            raise layout_error(dataset, root, f"the table file '{name}' in it")
        return path
    found = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    if len(found) != 1:
        what = "none" if not found else ", ".join(p.name for p in found)
        raise layout_error(
            dataset, root, f"exactly one {'/'.join(suffixes)} file (found {what}); pass file=NAME"
        )
    return found[0]


def read_rows(path: Path, delimiter: str | None = None) -> list[dict[str, Any]]:
    """Rows of a CSV / TSV (header line), JSONL (one object a line) or JSON (a list of objects)."""
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8-sig")
    if suffix == ".jsonl":
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError as exc:
                    rows.append({"__error__": f"line {number} is not JSON ({exc})"})
        return rows
    if suffix == ".json":
        data = json.loads(text)
        return data if isinstance(data, list) else [data]
    csv.field_size_limit(max(csv.field_size_limit(), min(sys.maxsize, 2**31 - 1)))
    sep = delimiter or ("\t" if suffix == ".tsv" else ",")
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=sep))


class QATable(FileDataset):
    """``qa_table``: multiple-choice (or open) questions in a CSV or JSONL file."""

    name = "qa_table"
    kinds = ("vqa",)
    modality = None
    description = (
        "Your own VQA items in a CSV or JSONL file: image (path relative to the file), question, "
        "options (columns A, B, C... or one list/JSON column) and answer (letter or option text)."
    )
    access = "Your own data."
    layout = "a .csv, .jsonl or .json file with columns image, question, options or A..D, answer"
    options: ClassVar[dict[str, Any]] = {"file": None, "columns": None, "modality": None}

    FIELD_COLUMNS: ClassVar[dict[str, tuple[str, ...]]] = {
        "id": ("id", "question_id", "index", "qid"),
        "image": ("image", "image_path", "img", "file"),
        "question": ("question", "query", "prompt"),
        "options": ("options", "choices"),
        "answer": ("answer", "label", "gt_answer"),
        "modality": ("modality", "modality_type"),
    }

    def read(self, root: Path, opts: dict[str, Any]) -> Iterator[Item]:
        path = table_file(self.name, root, opts["file"], (".csv", ".jsonl", ".json"))
        try:
            rows = read_rows(path)
        except (OSError, ValueError, csv.Error) as exc:
            raise layout_error(self.name, path, f"a readable table ({exc})") from exc
        columns = _mapping(self.name, self.FIELD_COLUMNS, rows, opts["columns"])
        for number, row in enumerate(rows, start=1):
            sample_id = _row_id(row, columns, number)
            if not isinstance(row, Mapping) or "__error__" in row:
                reason = row["__error__"] if isinstance(row, Mapping) else "row is not an object"
                yield Skipped(sample_id, reason)
                continue
            value = row.get(columns["image"])
            if is_blank(value):
                yield Skipped(sample_id, "row has no image")
                continue
            image = opts["data_root"].check(sample_id, path.parent / str(value).strip())
            _, problem = image_problem(image, path.parent)
            if problem:
                yield Skipped(sample_id, problem)
                continue
            options = options_from_value(
                row.get(columns.get("options", ""))
            ) or options_from_columns(row)
            yield multiple_choice_item(
                dataset=self.name,
                sample_id=sample_id,
                modality=_modality(row, columns, opts),
                image=image,
                question=row.get(columns.get("question", "")),
                options=options,
                answer=row.get(columns.get("answer", "")),
                meta={"row": number, "source": path.name},
            )


class VLMEvalTSV(FileDataset):
    """``vlmeval_tsv``: a VLMEvalKit multiple-choice TSV (base64 images decoded on use)."""

    name = "vlmeval_tsv"
    kinds = ("vqa",)
    modality = None
    description = (
        "A VLMEvalKit-style TSV: index, image (base64) or image_path, question, A, B, C, D..., "
        "answer, optionally hint, category and modality. Images are decoded only when used."
    )
    access = "Your own data, or any VLMEvalKit MCQ TSV you may use."
    layout = "a .tsv file with columns index, image or image_path, question, A, B, ..., answer"
    options: ClassVar[dict[str, Any]] = {"file": None, "modality": None}

    def read(self, root: Path, opts: dict[str, Any]) -> Iterator[Item]:
        path = table_file(self.name, root, opts["file"], (".tsv",))
        try:
            rows = read_rows(path, delimiter="\t")
        except (OSError, ValueError, csv.Error) as exc:
            raise layout_error(self.name, path, f"a readable TSV ({exc})") from exc
        if rows and not ({"image", "image_path"} & set(rows[0])):
            raise layout_error(self.name, path, self.layout)
        by_index = {str(r.get("index", "")).strip(): r for r in rows}
        for number, row in enumerate(rows, start=1):
            sample_id = str(row.get("index") or f"row{number}").strip()
            image, problem = self._image(row, by_index, path.parent, sample_id, opts)
            if problem:
                yield Skipped(sample_id, problem)
                continue
            question = row.get("question")
            meta = {"row": number, "category": row.get("category"), "source": path.name}
            if not is_blank(row.get("hint")):
                meta["hint"] = row["hint"]
            yield multiple_choice_item(
                dataset=self.name,
                sample_id=sample_id,
                modality=_tsv_modality(row, opts),
                image=image,
                question=question,
                options=options_from_columns(row),
                answer=row.get("answer"),
                meta=meta,
            )

    def _image(
        self,
        row: Mapping[str, Any],
        by_index: Mapping[str, Any],
        folder: Path,
        sample_id: str,
        opts: dict[str, Any],
    ):
        cell = row.get("image")
        if not is_blank(cell):
            text = str(cell).strip()
            # VLMEvalKit stores a repeated image once and points to its row by index.
            if len(text) < 64 and text in by_index and by_index[text] is not row:
                text = str(by_index[text].get("image") or "").strip()
            problem = _base64_problem(text)
            return (None, problem) if problem else (functools.partial(base64_image, text), None)
        value = row.get("image_path")
        if is_blank(value):
            return None, "row has neither an image nor an image_path"
        value = str(value).strip()
        if value.startswith("["):  # a multi-image row: the first image is the one corrupted
            parsed = options_from_value(value)
            value = next(iter(parsed.values())) if parsed else value
        image = opts["data_root"].check(sample_id, folder / value)
        _, problem = image_problem(image, folder)
        return (None, problem) if problem else (image, None)


def _base64_problem(text: str) -> str | None:
    """Check the first bytes only: decoding the whole image waits until it is used."""
    head = text[:32]
    head = head[: len(head) - len(head) % 4]
    try:
        start = base64.b64decode(head, validate=True)
    except (binascii.Error, ValueError):
        return "image cell is not base64 text"
    if not start.startswith(IMAGE_SIGNATURES):
        return "image cell does not hold a PNG, JPEG, GIF, BMP, TIFF or WebP image"
    return None


def _mapping(
    dataset: str,
    fields: Mapping[str, tuple[str, ...]],
    rows: list[dict[str, Any]],
    wanted: Mapping[str, str] | None,
) -> dict[str, str]:
    present: list[str] = []
    for row in rows[:100]:
        present += [c for c in row if c not in present]
    wanted = dict(wanted or {})
    unknown = sorted(set(wanted) - set(fields))
    if unknown:
        raise MedFMRobustError(
            f"dataset '{dataset}': columns= maps unknown fields {unknown}; fields are {list(fields)}"
        )
    mapping = {}
    for field, candidates in fields.items():
        column = wanted.get(field) or next((c for c in candidates if c in present), None)
        if column:
            mapping[field] = column
    if "image" not in mapping or "question" not in mapping:
        raise MedFMRobustError(
            f"dataset '{dataset}': the table needs an image and a question column "
            f"(it has {', '.join(present) or 'no columns'}); map them with columns={{...}}"
        )
    return mapping


def _row_id(row: Any, columns: Mapping[str, str], number: int) -> str:
    if isinstance(row, Mapping) and "id" in columns and not is_blank(row.get(columns["id"])):
        return str(row[columns["id"]]).strip()
    return f"row{number}"


def _modality(row: Mapping[str, Any], columns: Mapping[str, str], opts: Mapping[str, Any]) -> str:
    if "modality" in columns and not is_blank(row.get(columns["modality"])):
        return modality_from_text(row[columns["modality"]])
    return opts["modality"] or OTHER


def _tsv_modality(row: Mapping[str, Any], opts: Mapping[str, Any]) -> str:
    if not is_blank(row.get("modality")):
        return modality_from_text(row["modality"])
    if opts["modality"]:
        return opts["modality"]
    return modality_from_text(row.get("category")) if not is_blank(row.get("category")) else OTHER
