"""Corruption suites: which corruptions a modality gets, and the tables it overrides.

A suite is a YAML file (``corruptions/<modality>.yaml`` in the repo; your own anywhere)::

    suite: mri
    modality: mri
    description: Scanner and reconstruction artifacts of MR magnitude images.
    base: [gaussian_noise, defocus_blur, motion_blur]        # natural-family corruptions
    modality_specific:
      - mri_rician_noise
      - name: mri_bias_field                                 # a mapping may override the table
        severity_params: [0.1, 0.2, 0.3, 0.4, 0.5]

The built-in suites are registered by this module (a built-in plugin) through ``register_suites``;
plugins ship their own through the same hook, and directories listed in ``MEDFM_ROBUST_SUITES``
(separated by ``os.pathsep``) are read too.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import SuiteError
from .hookspecs import hookimpl
from .lookup import get_corruption, get_suite, suite_for_modality
from .resources import bundled_files

SUITES_ENV = "MEDFM_ROBUST_SUITES"
__all__ = [
    "Suite",
    "SuiteEntry",
    "SuiteError",
    "get_suite",
    "load_suite_file",
    "suite_for_modality",
]


@dataclass(frozen=True)
class SuiteEntry:
    """One corruption of a suite, with the suite's own table when it overrides the default."""

    name: str
    group: str  # "base" or "modality_specific"
    severity_params: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class Suite:
    """The corruptions one modality is evaluated under."""

    name: str
    modality: str
    description: str
    entries: tuple[SuiteEntry, ...]
    source: str = ""

    def corruption_names(self, group: str | None = None) -> list[str]:
        return [e.name for e in self.entries if group is None or e.group == group]

    def corruptions(self) -> list[Any]:
        """The suite's corruptions, each carrying the suite's table where it overrides one."""
        return [self.corruption(e.name) for e in self.entries]

    def corruption(self, name: str) -> Any:
        entry = next((e for e in self.entries if e.name == name), None)
        if entry is None:
            raise SuiteError(f"suite '{self.name}' has no corruption '{name}'")
        spec = get_corruption(name)
        if entry.severity_params is None:
            return spec
        return dataclasses.replace(spec, severity_params=entry.severity_params, plugin=spec.plugin)

    def check(self) -> list[str]:
        """Names in the suite that no loaded plugin registered (empty when the suite is usable)."""
        from .plugins import get_registry

        known = set(get_registry().names("corruptions"))
        return [e.name for e in self.entries if e.name not in known]


def load_suite_file(path: str | os.PathLike) -> Suite:
    """Read and check one suite YAML file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SuiteError(f"suite file '{path}' could not be read: {exc}") from exc
    return parse_suite(data, str(path))


def parse_suite(data: Any, source: str = "<suite>") -> Suite:
    """Build a Suite from its YAML mapping; errors name the file and the offending entry."""
    if not isinstance(data, dict):
        raise SuiteError(
            f"suite file '{source}' must hold a mapping with 'suite', 'modality', 'base'"
        )
    missing = [k for k in ("suite", "modality") if not data.get(k)]
    if missing:
        raise SuiteError(f"suite file '{source}' lacks {', '.join(missing)}")
    entries: list[SuiteEntry] = []
    seen: set[str] = set()
    for group in ("base", "modality_specific"):
        raw = data.get(group) or []
        if not isinstance(raw, list):
            raise SuiteError(f"suite file '{source}': '{group}' must be a list of corruption names")
        for item in raw:
            entry = _entry(item, group, source)
            if entry.name in seen:
                raise SuiteError(f"suite file '{source}' lists '{entry.name}' twice")
            seen.add(entry.name)
            entries.append(entry)
    if not entries:
        raise SuiteError(f"suite file '{source}' lists no corruptions")
    return Suite(
        name=str(data["suite"]),
        modality=str(data["modality"]),
        description=str(data.get("description", "")),
        entries=tuple(entries),
        source=source,
    )


def _entry(item: Any, group: str, source: str) -> SuiteEntry:
    if isinstance(item, str):
        return SuiteEntry(item, group)
    if isinstance(item, dict) and isinstance(item.get("name"), str):
        table = item.get("severity_params")
        if table is not None and (not isinstance(table, list) or len(table) != 5):
            raise SuiteError(
                f"suite file '{source}': severity_params of '{item['name']}' must list 5 values"
            )
        unknown = set(item) - {"name", "severity_params"}
        if unknown:
            raise SuiteError(
                f"suite file '{source}': entry '{item['name']}' has unknown keys {sorted(unknown)}"
            )
        params = (
            None if table is None else tuple(tuple(v) if isinstance(v, list) else v for v in table)
        )
        return SuiteEntry(item["name"], group, params)
    raise SuiteError(
        f"suite file '{source}': entry {item!r} in '{group}' must be a name or a mapping with 'name'"
    )


def user_suite_files() -> list[Path]:
    """Suite files in the directories named by MEDFM_ROBUST_SUITES."""
    files: list[Path] = []
    for folder in filter(None, os.environ.get(SUITES_ENV, "").split(os.pathsep)):
        path = Path(folder)
        if not path.is_dir():
            raise SuiteError(f"{SUITES_ENV} names '{folder}', which is not a directory")
        files.extend(sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml")))
    return files


@hookimpl
def register_suites(register):
    for path in bundled_files("corruptions") + user_suite_files():
        register(load_suite_file(path))
