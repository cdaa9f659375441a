"""The one way a corruption module offers its corruptions: it lists them once, in order, and a
plugin module hands that list to ``registers`` for its ``register_corruptions`` hook.

    CORRUPTIONS: tuple[Corruption, ...] = (mri_rician_noise, mri_bias_field, mri_ghosting)
    register_corruptions = registers(CORRUPTIONS)

A family split over several modules (``natural``) joins its modules' lists. Tests and suites read
the same ``CORRUPTIONS`` that is registered; the registry records which plugin registered each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ..hookspecs import Register, hookimpl

if TYPE_CHECKING:
    from .spec import Corruption


def registers(corruptions: Iterable[Corruption]) -> Callable[[Register], None]:
    """The ``register_corruptions`` hook of a module that offers ``corruptions``, in that order."""
    offered = tuple(corruptions)

    @hookimpl
    def register_corruptions(register: Register) -> None:
        for item in offered:
            register(item)

    return register_corruptions
