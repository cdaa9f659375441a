"""Dataset loaders for the public datasets of the benchmark, and generic ones for your own data."""

from __future__ import annotations

from ...hookspecs import hookimpl


@hookimpl
def register_datasets(register):
    pass
