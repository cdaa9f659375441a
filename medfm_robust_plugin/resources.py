"""Where the bundled YAML lives: top-level ``tasks/`` and ``corruptions/`` in a source checkout or
editable install, ``medfm_robust_plugin/_bundled/`` inside an installed wheel."""

from __future__ import annotations

from pathlib import Path

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
