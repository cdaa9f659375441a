"""mri corruptions (family 'mri'): to be filled with this modality's physics-based corruptions."""

from __future__ import annotations

from ..hookspecs import hookimpl


@hookimpl
def register_corruptions(register):
    pass
