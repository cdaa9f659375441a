"""Multiple-choice questions: reading options in their usual shapes, finding the answer's letter."""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from ..sample import ImageSource, Sample, Skipped

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def is_blank(value: Any) -> bool:
    """None, NaN (an empty CSV cell read by pandas) or whitespace only."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def options_from_value(value: Any) -> dict[str, str] | None:
    """Options given as one value: a list, a {letter: text} mapping, or JSON / Python text of one."""
    if is_blank(value):
        return None
    if isinstance(value, str):
        text = value.strip()
        parsed: Any = None
        for parse in (json.loads, ast.literal_eval):
            try:
                parsed = parse(text)
                break
            except (ValueError, SyntaxError):
                continue
        if parsed is None:
            return None
        value = parsed
    if isinstance(value, Mapping):
        return {str(k).strip().upper(): str(v) for k, v in value.items() if not is_blank(v)}
    if isinstance(value, (list, tuple)):
        texts = [_strip_letter(str(v)) for v in value if not is_blank(v)]
        return dict(zip(LETTERS, texts)) if texts else None
    return None


def options_from_columns(row: Mapping[str, Any], prefix: str = "") -> dict[str, str] | None:
    """Options in one column per letter (``A``, ``B``... or ``option_A``... with ``prefix``)."""
    options = {}
    for letter in LETTERS:
        value = row.get(f"{prefix}{letter}")
        if is_blank(value):
            break  # options run A, B, C... without gaps
        options[letter] = str(value).strip()
    return options or None


def _strip_letter(text: str) -> str:
    """'A. text' or '(B) text' -> 'text' (lists sometimes carry their letters)."""
    return re.sub(r"^\s*\(?[A-Z][.):]\s+", "", text).strip()


def _normalise(text: str) -> str:
    return re.sub(r"[\s.,;:!]+", " ", str(text).casefold()).strip()


def answer_letter(answer: Any, options: Mapping[str, str]) -> str | None:
    """The letter of ``answer`` among ``options``: the option's exact text, its letter, or its
    text up to case, spaces and punctuation; None when the answer is none of the options."""
    text = str(answer).strip()
    for letter, option in options.items():
        if option.strip() == text:
            return letter
    letter = re.fullmatch(r"\(?([A-Za-z])[.):]?", text)
    if letter and letter.group(1).upper() in options:
        return letter.group(1).upper()
    wanted = _normalise(text)
    for letter, option in options.items():
        if _normalise(option) == wanted:
            return letter
    return None


def multiple_choice_item(
    *,
    dataset: str,
    sample_id: str,
    modality: str,
    image: ImageSource,
    question: Any,
    options: dict[str, str] | None,
    answer: Any,
    meta: dict[str, Any] | None = None,
) -> Sample | Skipped:
    """A VQA sample with its answer as an option letter, or why the item is skipped.

    Without options the question is open-ended and the answer is kept as text.
    """
    if is_blank(question):
        return Skipped(sample_id, "item has no question text")
    if is_blank(answer):
        return Skipped(sample_id, "question has no answer")
    if options is not None and len(options) < 2:
        return Skipped(sample_id, f"a multiple-choice question needs two options, got {options}")
    if options:
        letter = answer_letter(answer, options)
        if letter is None:
            return Skipped(
                sample_id,
                f"answer {str(answer).strip()!r} is not among the options "
                f"{', '.join(f'{k}: {v!r}' for k, v in options.items())}",
            )
        answer = letter
    return Sample(
        sample_id,
        dataset,
        modality,
        image,
        question=str(question).strip(),
        options=options,
        answer=str(answer).strip(),
        meta=dict(meta or {}),
    )
