"""baselines model wrappers (filled in below)."""

from __future__ import annotations

from ..hookspecs import hookimpl


@hookimpl
def register_models(register):
    pass
