"""The natural family: the ImageNet-C corruptions (Hendrycks & Dietterich, ICLR 2019) with its
four extras, plus the paper's geometric base corruptions. Severity tables are ImageNet-C's.

Modules: ``noise``, ``blur``, ``weather``, ``digital``, ``geometric``.
"""

from __future__ import annotations

from ..registering import registers
from ..spec import Corruption
from . import blur, digital, geometric, noise, weather

CORRUPTIONS: tuple[Corruption, ...] = (
    noise.CORRUPTIONS
    + blur.CORRUPTIONS
    + weather.CORRUPTIONS
    + digital.CORRUPTIONS
    + geometric.CORRUPTIONS
)
register_corruptions = registers(CORRUPTIONS)
