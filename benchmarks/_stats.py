"""What every benchmark prints beside a sum: the distribution of per-item ratios, and the spread of
each figure over repeated runs, plus the A/B order and the machine's load while it ran.

A sum of times is ruled by its slowest item (one slow reference corruption can carry it), so the
scripts lead with the geometric mean and the median of the per-item ratios and give the smallest
(the item where we gain least, or lose) by name.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


def geometric_mean(values: Sequence[float]) -> float:
    """The geometric mean of positive ``values`` (the mean of ratios that treats 2x and 0.5x alike)."""
    if not values or any(v <= 0 for v in values):
        raise ValueError(f"a geometric mean needs positive values, got {list(values)}")
    return math.exp(statistics.fmean(math.log(v) for v in values))


@dataclass(frozen=True)
class RatioSummary:
    """The distribution of ``reference / ours`` (or any other ratio) over the items of one run."""

    geomean: float
    median: float
    low: float
    low_item: str
    high: float
    high_item: str
    count: int


def summarize_ratios(ratios: Mapping[str, float]) -> RatioSummary:
    """Geometric mean, median, smallest and largest of per-item ratios, the extremes by name."""
    if not ratios:
        raise ValueError("no ratios to summarize")
    low_item = min(ratios, key=ratios.__getitem__)
    high_item = max(ratios, key=ratios.__getitem__)
    values = list(ratios.values())
    return RatioSummary(
        geometric_mean(values),
        statistics.median(values),
        ratios[low_item],
        low_item,
        ratios[high_item],
        high_item,
        len(values),
    )


def spread(values: Sequence[float], fmt: str = "{:.2f}", unit: str = "") -> str:
    """``median (min-max over N)`` of one figure over repeats; the bare value for one repeat."""
    middle = fmt.format(statistics.median(values)) + unit
    if len(values) < 2:
        return middle
    low, high = fmt.format(min(values)), fmt.format(max(values))
    return f"{middle} ({low}-{high}{unit} over {len(values)})"


def summary_over_repeats(summaries: Sequence[RatioSummary], unit: str = "x") -> list[str]:
    """Lines for the distribution of ratios, each statistic as its spread over the repeats."""
    fmt = "{:.2f}"
    lows = sorted({s.low_item for s in summaries})
    highs = sorted({s.high_item for s in summaries})
    return [
        f"geometric mean {spread([s.geomean for s in summaries], fmt, unit)}",
        f"median         {spread([s.median for s in summaries], fmt, unit)}",
        f"min (worst)    {spread([s.low for s in summaries], fmt, unit)}  [{', '.join(lows)}]",
        f"max            {spread([s.high for s in summaries], fmt, unit)}  [{', '.join(highs)}]",
        f"items          {summaries[0].count}",
    ]


def a_first(repeat: int, item: int = 0) -> bool:
    """Whether A runs before B for this (repeat, item): alternates, so neither side always gets
    the warmer caches or the fresher allocator."""
    return (repeat + item) % 2 == 0


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages and the CPU count, for the record next to times."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} CPUs"


def not_faster_note(ratio: float, margin: float = 0.10) -> str:
    """A plain warning where ``reference / ours`` shows no gain: below 1, or within ``margin``."""
    if ratio < 1.0:
        return "  << SLOWER than the reference"
    if ratio < 1.0 + margin:
        return f"  << not faster (within {margin:.0%} of the reference)"
    return ""
