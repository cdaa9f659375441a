"""segmentation metrics (filled in below)."""

from __future__ import annotations

from ..hookspecs import hookimpl


@hookimpl
def register_metrics(register):
    pass
