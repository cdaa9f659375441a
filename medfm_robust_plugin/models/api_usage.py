"""Running totals of an API model (calls, cached answers, tokens, dollars) and token estimates."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass
class APIUsage(Mapping[str, Any]):
    """Running totals of one model object: calls made, answers from the cache, tokens, dollars.

    Read as attributes (``model.usage.cost_usd``) or as a mapping (``model.usage["cost_usd"]``).
    """

    calls: int = 0
    cached: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_calls: int = 0  # calls of a model that has no row in PRICES (counted as $0)

    def __getitem__(self, key: str) -> Any:
        if key not in self.__dataclass_fields__:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.__dataclass_fields__)

    def __len__(self) -> int:
        return len(self.__dataclass_fields__)


def text_tokens(text: str | None) -> int:
    """About four characters per token (English and most tokenizers)."""
    return math.ceil(len(text or "") / 4)
