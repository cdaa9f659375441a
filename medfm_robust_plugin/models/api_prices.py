"""List prices of the API models, and what a call costs at them."""

from __future__ import annotations

import re
from dataclasses import dataclass

PRICES_AS_OF = "2025-07"  # when the list prices below were read from the providers' pricing pages


@dataclass(frozen=True)
class Price:
    """List price in USD per 1M tokens; ``long_*`` apply when a prompt exceeds ``long_context``."""

    input: float
    output: float
    long_context: int | None = None
    long_input: float | None = None
    long_output: float | None = None


# Standard (non-batch, non-cached-input) list prices, USD per 1M tokens, as published by OpenAI
# (openai.com/api/pricing) and Google (ai.google.dev/gemini-api/docs/pricing) in PRICES_AS_OF.
# Prices change: check the providers' pages before budgeting a run. Gemini output includes
# thinking tokens. A dated snapshot (gpt-4o-2024-08-06, gemini-2.5-flash-001) takes its family's
# price unless it has its own row.
PRICES: dict[str, Price] = {
    "gpt-4o": Price(input=2.50, output=10.00),
    "gpt-4o-2024-05-13": Price(input=5.00, output=15.00),
    "gpt-4o-mini": Price(input=0.15, output=0.60),
    "gemini-2.5-flash": Price(input=0.30, output=2.50),
    "gemini-2.5-flash-lite": Price(input=0.10, output=0.40),
    "gemini-2.5-pro": Price(
        input=1.25, output=10.00, long_context=200_000, long_input=2.50, long_output=15.00
    ),
}

_SNAPSHOT_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{3}|latest)$")


def price_for(model: str) -> Price | None:
    """The list price of ``model`` (a dated snapshot falls back to its family), or None."""
    model = model.removeprefix("models/")
    if model in PRICES:
        return PRICES[model]
    family = _SNAPSHOT_SUFFIX.sub("", model)
    return PRICES.get(family)


def cost_usd(model: str, input_tokens: int | None, output_tokens: int | None) -> float | None:
    """What one call cost at list price; None when the model has no price in ``PRICES``."""
    price = price_for(model)
    if price is None:
        return None
    n_in, n_out = input_tokens or 0, output_tokens or 0
    per_in, per_out = price.input, price.output
    if price.long_context is not None and n_in > price.long_context:
        per_in, per_out = price.long_input or per_in, price.long_output or per_out
    return (n_in * per_in + n_out * per_out) / 1_000_000
