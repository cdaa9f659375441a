"""The natural family: the ImageNet-C corruptions (Hendrycks & Dietterich, ICLR 2019) with its
four extras, plus the paper's geometric base corruptions. Severity tables are ImageNet-C's.

Modules: ``noise``, ``blur``, ``weather``, ``digital``, ``geometric``.
"""

from __future__ import annotations

from ...hookspecs import hookimpl
from ..spec import Corruption
from . import blur, digital, geometric, noise, weather

MODULES = (noise, blur, weather, digital, geometric)


def natural_corruptions() -> list[Corruption]:
    """Every corruption defined in this family's modules, in module order."""
    found: list[Corruption] = []
    for module in MODULES:
        found.extend(v for v in vars(module).values() if isinstance(v, Corruption))
    return found


@hookimpl
def register_corruptions(register):
    for item in natural_corruptions():
        register(item)
