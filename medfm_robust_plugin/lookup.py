"""Every lookup by name in the registry, in one place: corruptions, suites, tasks, metrics, models,
hosts.

Each returns the registered item or raises the package's error for that kind with the close names.
This module stands above ``plugins`` (which holds the registry) and below everything that looks
things up (engine, suites, tasks, hosts, CLI), so that no lookup needs an import back up.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from .corruptions.spec import Corruption
from .errors import (
    HostError,
    MetricError,
    ModelError,
    SuiteError,
    TaskError,
    UnknownCorruptionError,
)
from .plugins import SINGULAR, get_registry


def _close(name: str, known: list[str], fallback: str) -> str:
    close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.6)
    return f"did you mean {', '.join(close)}?" if close else fallback


def _get(kind: str, name: str, error: type[Exception], listing: str | None = None) -> Any:
    """The item of ``kind`` registered as ``name`` (or an alias); ``error`` with close names, else
    the command that lists them (or, without one, the names themselves)."""
    registry = get_registry()
    try:
        return registry.get(kind, name)
    except KeyError:
        known = registry.names(kind)
        fallback = (
            f"run `medfm-robust {listing}`"
            if listing
            else f"known {SINGULAR[kind]}s: {', '.join(known) or 'none'}"
        )
        hint = _close(name, known, fallback)
        raise error(f"unknown {SINGULAR[kind]} '{name}'; {hint}") from None


def get_corruption(name: str | Corruption) -> Corruption:
    """The registered corruption called ``name``; the error suggests close names."""
    if isinstance(name, Corruption):
        return name
    return _get("corruptions", name, UnknownCorruptionError, "corruptions list")


def list_corruptions(modality: str | None = None, family: str | None = None) -> list[Corruption]:
    """Registered corruptions, optionally those of a modality and/or a family.

    For a modality with a suite, the suite decides (with its own severity tables); otherwise the
    corruptions that declare the modality, and those that declare none, are listed.
    """
    suite = suite_for_modality(modality) if modality else None
    if suite is not None:
        found = suite.corruptions()
    else:
        registry = get_registry()
        items = [registry.items["corruptions"][n] for n in registry.names("corruptions")]
        found = [c for c in items if c.applies_to(modality)]
    return [c for c in found if family is None or c.family == family]


def get_suite(name: str) -> Any:
    """The registered suite ``name``."""
    return _get("suites", name, SuiteError)


def suite_for_modality(modality: str) -> Any | None:
    """The suite whose modality is ``modality`` (the one named after it when several are)."""
    registry = get_registry()
    matches = [s for s in registry.items["suites"].values() if s.modality == modality]
    named = [s for s in matches if s.name == modality]
    return (named or matches or [None])[0]


def get_task(name: str) -> Any:
    """The registered task ``name`` (case-insensitive); the error lists close names, or says why
    a card of that name was refused (it names a suite, corruption, metric or dataset nothing has)."""
    registry = get_registry()
    names = registry.names("tasks")
    match = next((n for n in names if n.lower() == name.lower()), None)
    if match is not None:
        return registry.get("tasks", match)
    refused = registry.invalid["tasks"]
    reason = next((m for n, m in refused.items() if n.lower() == name.lower()), None)
    if reason is not None:
        raise TaskError(reason)
    raise TaskError(
        f"unknown task '{name}'; {_close(name, names, 'run `medfm-robust tasks list`')}"
    )


def get_metric(name: str) -> Any:
    """The registered metric ``name``."""
    return _get("metrics", name, MetricError)


def resolve_model(name: str) -> tuple[Any, str | None]:
    """The model spec and model id a name stands for (aliases followed, ``prefix:id`` split)."""
    registry = get_registry()
    name = canonical_model_name(name)
    if name in registry.items["models"]:
        return registry.items["models"][name], None
    head, sep, rest = name.partition(":")
    if sep and head in registry.items["models"] and registry.items["models"][head].prefix:
        return registry.items["models"][head], rest
    known = registry.names("models") + sorted(registry.aliases["models"])
    raise ModelError(
        f"unknown model '{name}'; {_close(name, known, 'run `medfm-robust models list`')}"
    )


def canonical_model_name(name: str) -> str:
    """The one name of a model however it is written: aliases followed to the registered name
    (``gpt-4o`` -> ``openai:gpt-4o``), so that one model gets one run folder and one report row.
    A ``prefix:id`` name, or a name nothing registers, comes back as it is."""
    registry = get_registry()
    aliases = registry.aliases["models"]
    seen: set[str] = set()
    while name in aliases and name not in seen:
        seen.add(name)
        name = aliases[name]
    return name


def get_host(name: str) -> Any:
    """The registered host ``name`` (a ``hosts.base.Host``)."""
    return _get("hosts", name, HostError, "hosts list")


def list_hosts() -> list[Any]:
    """The registered hosts, by name."""
    registry = get_registry()
    return [registry.items["hosts"][n] for n in registry.names("hosts")]


def host_reading(path: str | Path) -> Any | None:
    """The first registered host that reads the output folder ``path`` back, or None."""
    return next((host for host in list_hosts() if host.reads(path)), None)
