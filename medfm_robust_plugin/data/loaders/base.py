"""What every dataset loader shares: options, the data root, the released layout, the stream of items.

A loader subclasses ``FileDataset``, states its splits and options, and writes ``read(root, opts)``:
a generator of ``Sample`` and ``Skipped`` in a deterministic order. ``load`` does the rest: checks
the options, finds the root, stops at ``limit`` samples and turns repeated ids into skipped items.

Every file a dataset names must lie inside its data root (or a folder an option names, such as
``image_root``): ``opts["data_root"].check(sample_id, path)`` is the one place that decides, and
``load`` checks every sample's image and mask paths once more. ``allow_outside_data_root=True``
(``--allow-outside-data-root``, or ``MEDFM_ROBUST_ALLOW_OUTSIDE_DATA_ROOT=1``) lifts the rule.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ...errors import MedFMRobustError
from ..sample import LoadResult, Sample, Skipped, data_root

Item = Sample | Skipped

COMMON_OPTIONS = ("split", "limit", "allow_outside_data_root")
HUB_OPTIONS = ("hub_id", "hub_dataset")
ALLOW_OUTSIDE_ENV = "MEDFM_ROBUST_ALLOW_OUTSIDE_DATA_ROOT"


class DatasetLayoutError(MedFMRobustError):
    """A data root that is missing or does not hold the dataset's released layout."""


class OutsideDataRootError(MedFMRobustError):
    """A dataset names a file outside its data root (absolute, ``../`` or through a symlink)."""


def outside_allowed(explicit: bool | None = None) -> bool:
    """Whether files outside the data root may be read: ``explicit``, else the environment."""
    if explicit is not None:
        return bool(explicit)
    return os.environ.get(ALLOW_OUTSIDE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class DataRoot:
    """The folders a dataset's files must lie in, once symlinks and ``..`` are resolved."""

    dataset: str
    folders: tuple[Path, ...] = ()
    allow_outside: bool = False

    @classmethod
    def of(cls, dataset: str, places: Iterable[Any], allow_outside: bool = False) -> DataRoot:
        """The data root of ``dataset`` from folders or files (a file stands for its folder)."""
        folders = []
        for place in places:
            path = Path(place).resolve()
            folders.append(path.parent if path.is_file() else path)
        return cls(dataset, tuple(dict.fromkeys(folders)), allow_outside)

    def check(self, sample_id: str, path: str | os.PathLike, what: str = "image") -> Path:
        """``path`` when it lies inside the data root; else an error naming the sample and path."""
        path = Path(path)
        if self.allow_outside:
            return path
        resolved = path.resolve()
        if any(resolved.is_relative_to(folder) for folder in self.folders):
            return path
        where = (
            "outside the data root " + " and ".join(f"'{f}'" for f in self.folders)
            if self.folders
            else "and the dataset has no data root folder to keep it in (pass image_root=DIR)"
        )
        raise OutsideDataRootError(
            f"dataset '{self.dataset}', sample '{sample_id}': {what} path '{path}' resolves to "
            f"'{resolved}', {where}. If the dataset file is trusted, pass "
            f"--allow-outside-data-root (allow_outside_data_root=True, or {ALLOW_OUTSIDE_ENV}=1)"
        )

    def check_sample(self, sample: Sample) -> None:
        """The image and mask of ``sample``, where they are file paths."""
        for what, source in (("image", sample.image), ("mask", sample.mask)):
            if isinstance(source, (str, os.PathLike)):
                self.check(sample.id, source, what)


def layout_error(dataset: str, root: Path, expected: str) -> DatasetLayoutError:
    """The one error a loader raises for a root it cannot read: names dataset, path and layout."""
    return DatasetLayoutError(
        f"dataset '{dataset}': '{root}' does not hold the released layout; expected {expected}. "
        f"Point --data-root (or $MEDFM_ROBUST_DATA/{dataset}) at the unpacked release; "
        "docs/datasets.md shows each layout"
    )


class FileDataset:
    """Base of the file-based loaders; subclasses set the class attributes and ``read``."""

    name: ClassVar[str]
    kinds: ClassVar[tuple[str, ...]]
    modality: ClassVar[str | None]
    description: ClassVar[str]
    access: ClassVar[str]
    layout: ClassVar[str]  # the expected released layout, in one line (used in errors)
    splits: ClassVar[tuple[str, ...]] = ("all",)
    default_split: ClassVar[str] = "all"
    split_aliases: ClassVar[dict[str, str]] = {}
    options: ClassVar[dict[str, Any]] = {}  # loader-specific options and their defaults
    hub_id: ClassVar[str | None] = None  # Hugging Face hub id of the release, when it has one
    reads_hub: ClassVar[bool] = False  # accepts hub_id= / hub_dataset= instead of a root
    folder_options: ClassVar[tuple[str, ...]] = ()  # options naming more folders files may be in

    def load(self, root: Path | None = None, **options: Any) -> LoadResult:
        """Read the dataset from ``root`` (its released layout) or from the hub; skip bad items.

        A file the dataset names outside the data root raises ``OutsideDataRootError`` unless
        ``allow_outside_data_root=True``.
        """
        opts = self._check_options(options)
        limit = opts.pop("limit")
        allow = outside_allowed(opts.pop("allow_outside_data_root", None))
        hub = {key: opts.pop(key) for key in HUB_OPTIONS if key in opts}
        hub_id, hub_dataset = hub.get("hub_id"), hub.get("hub_dataset")
        if hub_id is True:  # the release's own hub id
            hub_id = self.hub_id
        from_hub = hub_id is not None or hub_dataset is not None
        if from_hub:
            places = [hub_id] if hub_dataset is None and Path(str(hub_id)).exists() else []
        else:
            root = self._root(root)
            places = [root]
        places += [opts[key] for key in self.folder_options if opts.get(key)]
        opts["data_root"] = DataRoot.of(self.name, places, allow)
        stream = self.read_hub(hub_id, hub_dataset, opts) if from_hub else self.read(root, opts)
        return take(stream, limit, opts["data_root"])

    def _root(self, root: Path | None) -> Path:
        try:
            return data_root(root, self.name)
        except MedFMRobustError as exc:
            hub = f", or load it with hub_id={self.hub_id!r}" if self.hub_id else ""
            raise DatasetLayoutError(
                f"{exc}. The root should hold {self.layout}{hub}; docs/datasets.md says where "
                "to obtain the data"
            ) from None

    def read(self, root: Path, opts: dict[str, Any]) -> Iterator[Item]:
        raise NotImplementedError

    def read_hub(
        self, hub_id: str | None, hub_dataset: Any, opts: dict[str, Any]
    ) -> Iterator[Item]:
        raise MedFMRobustError(f"dataset '{self.name}' has no Hugging Face release; pass its root")

    # ------------------------------------------------------------------ options

    def _check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        allowed = {*COMMON_OPTIONS, *self.options, *(HUB_OPTIONS if self.reads_hub else ())}
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise MedFMRobustError(
                f"dataset '{self.name}' has no option {', '.join(map(repr, unknown))}; "
                f"its options are {', '.join(sorted(allowed))}"
            )
        opts = {**self.options, **options}
        opts["split"] = self._split(options.get("split", self.default_split))
        opts["limit"] = _limit(self.name, options.get("limit"))
        return opts

    def _split(self, split: Any) -> str:
        key = str(split).lower()
        key = self.split_aliases.get(key, key)
        choices = (*self.splits, *(() if "all" in self.splits else ("all",)))
        if key not in choices:
            raise MedFMRobustError(
                f"dataset '{self.name}' has no split '{split}'; choose one of {', '.join(choices)}"
            )
        return key

    def wants(self, split: str, opts: dict[str, Any]) -> bool:
        """Whether items of ``split`` belong to the requested split."""
        return opts["split"] in ("all", split)


def _limit(dataset: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MedFMRobustError(
            f"dataset '{dataset}': limit must be a non-negative whole number, got {value!r}"
        )
    return value


def take(
    stream: Iterable[Item], limit: int | None = None, within: DataRoot | None = None
) -> LoadResult:
    """Collect a loader's stream: the first ``limit`` samples, every id once, files ``within``."""
    result = LoadResult([])
    seen: set[str] = set()
    if limit == 0:
        return result
    for item in stream:
        if isinstance(item, Skipped):
            result.skipped.append(item)
            continue
        if item.id in seen:
            result.skipped.append(Skipped(item.id, "duplicate id: an earlier item has the same id"))
            continue
        if within is not None:
            within.check_sample(item)
        seen.add(item.id)
        result.samples.append(item)
        if limit is not None and len(result.samples) >= limit:
            break
    return result


# ---------------------------------------------------------------------- finding files


def find_dirs(root: Path, name: str, depth: int = 3) -> list[Path]:
    """Folders called ``name`` at ``root`` or up to ``depth`` levels below (archives nest them)."""
    found = [root] if root.name == name else []
    frontier = [root]
    for _ in range(depth):
        below = []
        for folder in frontier:
            try:
                children = sorted(p for p in folder.iterdir() if p.is_dir())
            except OSError:
                continue
            found.extend(p for p in children if p.name == name)
            below.extend(children)
        frontier = below
    return found


def find_dir(root: Path, name: str, depth: int = 3) -> Path | None:
    """The shallowest folder called ``name`` under ``root`` (see ``find_dirs``), or None."""
    found = find_dirs(root, name, depth)
    return min(found, key=lambda p: len(p.parts)) if found else None


def files_with_suffix(folder: Path, suffixes: Iterable[str], recursive: bool = False) -> list[Path]:
    """The files in ``folder`` whose lower-case name ends in one of ``suffixes``, sorted."""
    ends = tuple(s.lower() for s in suffixes)
    paths = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in paths if p.is_file() and p.name.lower().endswith(ends))


def natural_key(text: str) -> tuple:
    """Sort key that orders 'case 2' before 'case 10'."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


def relative(path: Path, root: Path | None) -> str:
    """``path`` as shown in a skip reason: relative to the root when inside it."""
    if root is not None:
        try:
            return str(path.relative_to(root))
        except ValueError:
            pass
    return str(path)


def find_file(root: Path, name: str, depth: int = 2) -> Path | None:
    """The shallowest file called ``name`` at ``root`` or up to ``depth`` folder levels below."""
    if root.is_file():
        return root if root.name == name else None
    folders = [root]
    for _ in range(depth + 1):
        for folder in folders:
            if (folder / name).is_file():
                return folder / name
        folders = [c for f in folders for c in sorted(f.iterdir()) if c.is_dir()]
    return None


def read_csv(path: Path) -> list[dict[str, str]]:
    """A CSV file with a header line, as dictionaries (UTF-8, with or without BOM)."""
    import csv

    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))
