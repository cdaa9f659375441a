"""Parquet shards of a materialization: fixed groups of the plan's items, each whole or absent.

The plan's items, in plan order, are cut into shards of ``shard_size`` items: shard ``i`` holds the
items at plan positions ``[i * size, (i + 1) * size)``, so the same plan always cuts the same
shards, whichever executor writes them. A shard is ``shards/part-<i>.parquet`` (one row per item
that succeeded: the encoded image, the sample's mask for segmentation, and the manifest's columns)
and its completion marker ``shards/part-<i>.done.json`` (the shard's manifest records and the keys
that failed), written after the Parquet file. A rerun skips the shards whose marker lists no
failure and redoes the others whole; both files are written through a temporary file and renamed,
so a killed writer leaves the old file or none.

The Parquet files carry ``datasets`` features in their metadata, so

    datasets.load_dataset("parquet", data_files="out/shards/*.parquet")   # image, mask: PIL images
    ray.data.read_parquet("out/shards")                                  # image: {bytes, path}

both read them.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic_files import write_atomic
from .errors import MedFMRobustError

SHARDS = "shards"
LAYOUT = "shards.json"
DEFAULT_SHARD_SIZE = 256

# One made item: (plan position, manifest record, files by their name in the folder layout).
Made = tuple[int, dict[str, Any], dict[str, bytes]]


@dataclass(frozen=True)
class Shard:
    """Plan positions ``[start, stop)``, written as one Parquet file."""

    index: int
    start: int
    stop: int

    @property
    def name(self) -> str:
        return f"part-{self.index:05d}"

    @property
    def parquet(self) -> str:
        return f"{SHARDS}/{self.name}.parquet"

    @property
    def marker(self) -> str:
        return f"{SHARDS}/{self.name}.done.json"


def cut(total: int, size: int) -> list[Shard]:
    """The shards of a plan of ``total`` items, ``size`` items each (the last may be shorter)."""
    if size < 1:
        raise MedFMRobustError(f"shard size {size} must be at least 1 item")
    return [
        Shard(index, start, min(start + size, total))
        for index, start in enumerate(range(0, total, size))
    ]


def check_layout(out: Path, size: int, total: int) -> None:
    """Record the shard size of ``out``; a rerun with another size would cut other shards."""
    path = out / LAYOUT
    layout = {"shard_size": size, "items": total}
    if path.exists():
        previous = json.loads(path.read_text())
        if previous != layout:
            raise MedFMRobustError(
                f"'{out}' holds shards of {previous['shard_size']} items over a plan of "
                f"{previous['items']} items, not {size} over {total}; pass --shard-size "
                f"{previous['shard_size']} with the same plan, or use another --out"
            )
        return
    write_atomic(path, json.dumps(layout).encode())


def read_marker(out: Path, shard: Shard) -> dict[str, Any] | None:
    """A shard's completion marker, or None when the shard is not finished."""
    path = out / shard.marker
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # not readable as a whole: the shard is redone


def is_complete(marker: dict[str, Any] | None) -> bool:
    """A finished shard none of whose items failed: a rerun leaves it alone."""
    return marker is not None and not marker.get("failed")


def pending(out: Path, shards: Iterable[Shard]) -> list[Shard]:
    """The shards a run still has to write."""
    return [shard for shard in shards if not is_complete(read_marker(out, shard))]


def finished_records(out: Path, shards: Iterable[Shard]) -> Iterator[dict[str, Any]]:
    """The manifest records of every item written in a shard with a marker."""
    for shard in shards:
        marker = read_marker(out, shard)
        if marker is not None:
            yield from marker["records"]


def write_shard(out: Path, shard: Shard, made: Sequence[Made], failed: Sequence[str]) -> list[dict]:
    """Write a shard's Parquet file (its items in plan order), then its marker; return the
    manifest records, each naming its shard."""
    from .jsonl import record_line

    items = sorted(made, key=lambda m: m[0])
    # as the manifest will hold them: strict JSON (numpy values as Python, NaN as null)
    records = [
        json.loads(record_line({**record, "shard": shard.parquet})) for _, record, _ in items
    ]
    if items:
        data = parquet_bytes([(record, files) for (_, _, files), record in zip(items, records)])
        write_atomic(out / shard.parquet, data, suffix=".partial")
    else:
        (out / shard.parquet).unlink(missing_ok=True)  # nothing succeeded: no rows to read
    marker = {"shard": shard.name, "records": records, "failed": sorted(failed)}
    write_atomic(out / shard.marker, json.dumps(marker, sort_keys=True).encode(), suffix=".partial")
    return records


# ---------------------------------------------------------------------- the Parquet table

_STRING_COLUMNS = ("key", "sample_id", "dataset", "modality", "condition", "corruption")


def _features(with_mask: bool) -> dict[str, Any]:
    """The ``datasets`` features of a shard (read by ``load_dataset("parquet", ...)``)."""
    value = {"_type": "Value"}
    features: dict[str, Any] = {name: {**value, "dtype": "string"} for name in _STRING_COLUMNS}
    features.update(
        {
            "severity": {**value, "dtype": "int32"},
            "seed": {**value, "dtype": "int64"},
            "ssim": {**value, "dtype": "float64"},
            "sha256": {**value, "dtype": "string"},
            "params": {**value, "dtype": "string"},
            "view_key": {**value, "dtype": "string"},
            # "Sequence": what datasets 2.x writes, and 4.x reads as its List
            "window": {"_type": "Sequence", "feature": {**value, "dtype": "float64"}},
            "label": {**value, "dtype": "string"},
            "image": {"_type": "Image"},
        }
    )
    if with_mask:
        features["mask"] = {"_type": "Image"}
        features["mask_sha256"] = {**value, "dtype": "string"}
    return features


def parquet_bytes(rows: Sequence[tuple[dict[str, Any], dict[str, bytes]]]) -> bytes:
    """One Parquet file of ``(record, files)`` rows; the same rows give the same bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with_mask = any(record.get("mask") for record, _ in rows)
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    columns: dict[str, tuple[Any, list[Any]]] = {
        **{name: (pa.string(), []) for name in _STRING_COLUMNS},
        "severity": (pa.int32(), []),
        "seed": (pa.int64(), []),
        "ssim": (pa.float64(), []),
        "sha256": (pa.string(), []),
        "params": (pa.string(), []),
        "view_key": (pa.string(), []),
        "window": (pa.list_(pa.float64()), []),
        "label": (pa.string(), []),
        "image": (image, []),
    }
    if with_mask:
        columns["mask"] = (image, [])
        columns["mask_sha256"] = (pa.string(), [])
    for record, files in rows:
        for name in (*_STRING_COLUMNS, "severity", "seed", "ssim", "sha256", "view_key"):
            columns[name][1].append(record.get(name))
        columns["params"][1].append(json.dumps(record.get("params"), sort_keys=True))
        columns["label"][1].append(json.dumps(record.get("label"), sort_keys=True))
        columns["window"][1].append(record.get("window"))
        columns["image"][1].append({"bytes": files[record["image"]], "path": record["image"]})
        if with_mask:
            mask = record.get("mask")
            columns["mask"][1].append({"bytes": files[mask], "path": mask} if mask else None)
            columns["mask_sha256"][1].append(record.get("mask_sha256"))
    schema = pa.schema(
        [(name, kind) for name, (kind, _) in columns.items()],
        metadata={"huggingface": json.dumps({"info": {"features": _features(with_mask)}})},
    )
    table = pa.table({name: values for name, (_, values) in columns.items()}, schema=schema)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()
