"""JSON Lines files that survive being killed, and JSON that stays JSON.

Every JSONL file the package writes goes through ``JsonlAppender`` (appended and flushed one whole
line per record, starting on a fresh line when a kill left a torn one) and every one it reads goes
through ``read_jsonl`` (a torn line is skipped and reported with its file and line number; its item
is simply redone). Numbers are written as strict JSON: a non-finite value (NaN, inf) becomes
``null`` and the record says where under ``"non_finite"``, because ``NaN`` is not JSON and other
readers (``jq``, browsers, pandas' strict mode) reject the whole file.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

log = logging.getLogger(__name__)

NON_FINITE = "non_finite"  # the record's note: where non-finite numbers were written as null

_reported: set[tuple[str, int, int]] = set()  # torn lines already reported by this process


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """The records of ``path`` in order (none when it does not exist).

    A line that is not a JSON object - the torn end of a record whose writer was killed - is
    skipped and reported as a warning naming the file and line. When a writer without the fresh-line
    rule glued a whole record onto such a fragment, that record is recovered.
    """
    path = Path(path)
    if not path.exists():
        return
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.strip()
            if not line:
                continue
            record = _parse(line)
            if record is not None:
                yield record
                continue
            glued = _glued_record(line)
            seen = (str(path.resolve()), number, hash(line))
            if seen in _reported:
                if glued is not None:
                    yield glued
                continue
            _reported.add(seen)
            log.warning(
                "%s:%d: skipped a line that is not a whole JSON record (%d characters from %r; "
                "a write cut short)%s",
                path,
                number,
                len(line),
                line[:40],
                "; the record appended after it on the same line was kept" if glued else "",
            )
            if glued is not None:
                yield glued


def parse_record_line(line: str) -> dict[str, Any]:
    """The record of one line that ``record_line`` wrote (handed between processes, not read
    back from a file: a torn line here is an error, not a line to skip)."""
    record = _parse(line)
    if record is None:
        raise ValueError(f"not a JSON record line: {line[:80]!r}")
    return record


def _parse(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _glued_record(line: str) -> dict[str, Any] | None:
    """The whole record at the end of ``line`` after a torn fragment, if there is one."""
    start = line.find("{", 1)
    while start != -1:
        record = _parse(line[start:])
        if record is not None:
            return record
        start = line.find("{", start + 1)
    return None


class JsonlAppender:
    """Appends records to a JSONL file, one whole flushed line each, in strict JSON.

    Opening it repairs what a killed writer left: when the file does not end with a newline, a
    newline is written first, so that the next record starts on its own line and the fragment
    stays a line of its own that readers skip.
    """

    def __init__(self, path: str | Path, default: Callable[[Any], Any] | None = None) -> None:
        self.path = Path(path)
        self.default = default or json_default
        self._handle: IO[str] = _open_on_fresh_line(self.path)

    def write(self, record: dict[str, Any]) -> None:
        self._handle.write(record_line(record, self.default))
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open_on_fresh_line(path: Path) -> IO[str]:
    with path.open("a+b") as raw:
        if raw.seek(0, os.SEEK_END) > 0:
            raw.seek(-1, os.SEEK_END)
            if raw.read(1) != b"\n":
                raw.seek(0, os.SEEK_END)
                raw.write(b"\n")
    return path.open("a", encoding="utf-8")


def write_jsonl(
    path: str | Path, records: Iterable[dict[str, Any]], default: Callable[[Any], Any] | None = None
) -> Path:
    """Write ``records`` as a new JSONL file (replacing one that is there)."""
    path = Path(path)
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(record_line(record, default or json_default))
    return path


def record_line(record: dict[str, Any], default: Callable[[Any], Any] | None = None) -> str:
    """One JSONL line (with its newline) of ``record`` in strict JSON; see ``finite``."""
    default = default or json_default
    try:
        text = json.dumps(record, default=default, allow_nan=False)
    except ValueError:
        cleaned, where = finite(record, default)
        if where:
            cleaned[NON_FINITE] = sorted(set(cleaned.get(NON_FINITE) or []) | set(where))
        text = json.dumps(cleaned, default=default, allow_nan=False)
    return text + "\n"


def dumps(value: Any, indent: int | None = 2, default: Callable[[Any], Any] | None = None) -> str:
    """JSON text of ``value`` with non-finite numbers written as null (never ``NaN``)."""
    default = default or json_default
    try:
        return json.dumps(value, indent=indent, default=default, allow_nan=False)
    except ValueError:
        cleaned, _ = finite(value, default)
        return json.dumps(cleaned, indent=indent, default=default, allow_nan=False)


def write_json(path: str | Path, value: Any, indent: int | None = 2) -> Path:
    """Write ``value`` to ``path`` as strict JSON (see ``dumps``)."""
    path = Path(path)
    path.write_text(dumps(value, indent=indent), encoding="utf-8")
    return path


def finite(value: Any, default: Callable[[Any], Any] | None = None) -> tuple[Any, list[str]]:
    """A copy of ``value`` with NaN and inf replaced by None, and the dotted paths where they were."""
    default = default or json_default
    where: list[str] = []

    def walk(item: Any, at: str) -> Any:
        if isinstance(item, dict):
            return {k: walk(v, f"{at}.{k}" if at else str(k)) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [walk(v, f"{at}[{i}]") for i, v in enumerate(item)]
        if isinstance(item, (float, np.floating)):
            if math.isfinite(item):
                return item
            where.append(at or "value")
            return None
        if isinstance(item, (str, int, bool)) or item is None:
            return item
        return walk(default(item), at)

    return walk(value, ""), where


def json_default(value: Any) -> Any:
    """How values that JSON does not know are written: numpy as Python, the rest as text."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return str(value)
