"""MedFM-Robust-Mini: the embedded procedural suite (filled in below)."""

from __future__ import annotations

from ..hookspecs import hookimpl


@hookimpl
def register_datasets(register):
    pass
