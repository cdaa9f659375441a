"""Where the package's files live: the bundled YAML (top-level ``tasks/`` and ``corruptions/`` in a
source checkout or editable install, ``medfm_robust_plugin/_bundled/`` inside an installed wheel)
and the cache (API answers, built lm-eval task folders)."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "MEDFM_ROBUST_CACHE"

PACKAGE_DIR = Path(__file__).resolve().parent
BUNDLED_KINDS = ("tasks", "corruptions")


def bundled_dir(kind: str) -> Path:
    """The directory holding the bundled ``kind`` YAML files ('tasks' or 'corruptions')."""
    if kind not in BUNDLED_KINDS:
        raise ValueError(f"unknown bundled kind {kind!r}; expected one of {BUNDLED_KINDS}")
    bundled = PACKAGE_DIR / "_bundled" / kind
    if bundled.is_dir():
        return bundled
    checkout = PACKAGE_DIR.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / kind).is_dir():
        return checkout / kind
    raise FileNotFoundError(
        f"the bundled '{kind}' directory is missing from {PACKAGE_DIR}; reinstall medfm-robust-plugin"
    )


def bundled_files(kind: str) -> list[Path]:
    """The bundled YAML files of ``kind``, sorted by name."""
    return sorted(bundled_dir(kind).glob("*.yaml"))


def cache_dir(kind: str) -> Path:
    """``$MEDFM_ROBUST_CACHE/<kind>``, else ``$XDG_CACHE_HOME`` or ``~/.cache``, + ``medfm-robust/<kind>``."""
    root = os.environ.get(CACHE_ENV)
    if root:
        return Path(root).expanduser() / kind
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "medfm-robust" / kind
