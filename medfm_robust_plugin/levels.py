"""Severity levels judged on the reference set: where a table's levels land in the paper's SSIM
bands, and the strengths that put each level's median in its band.

The paper defines a level by the SSIM of the presented corrupted image to the presented clean one
(``calibration.PAPER_BANDS``). A severity table is a fixed parameter per level, so it can only
land in band on average: the check here is the median over a modality's reference images of the
presented SSIM at level k, which must lie in band k. ``benchmarks/tune_levels.py`` searches the
tables with ``tune_levels`` and ``benchmarks/validity.py`` reports the figures.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .calibration import PAPER_BANDS
from .corruptions.spec import Corruption
from .engine import corrupt, sample_seed

LEVELS = (1, 2, 3, 4, 5)
GRID_POINTS = 11  # strengths from the previous level to 1 bracket each level's target
PLATEAU = 0.01  # medians this close count as one where the SSIM curve has flattened
REFINE_STEPS = 7  # halvings of the bracket; the band is ~0.09 wide, SSIM moves smoothly
SEED_DATASET = "reference_set"


def medical_corruptions(modality: str) -> list[Corruption]:
    """The modality's own corruptions, with its suite's tables (the natural family stays ImageNet-C)."""
    from .suites import suite_for_modality

    suite = suite_for_modality(modality)
    if suite is None:
        return []
    return [suite.corruption(name) for name in suite.corruption_names("modality_specific")]


def level_seed(image_name: str, corruption: str, level: object) -> int:
    """The seed of one (reference image, corruption, level), as a runner derives it."""
    return sample_seed(0, SEED_DATASET, image_name, corruption, level)


def presented_ssim(
    reference: Any,
    spec: Corruption,
    *,
    level: int | None = None,
    strength: float | None = None,
    seed_level: object = None,
) -> float:
    """Presented SSIM of one reference image corrupted at a table level or a strength."""
    seed = level_seed(reference.name, spec.name, seed_level if seed_level is not None else level)
    _, params = corrupt(
        reference.image,
        spec,
        level if level is not None else 3,
        seed,
        True,
        strength=strength,
        modality=reference.modality,
    )
    return float(params["ssim"])


def table_medians(spec: Corruption, references: Sequence[Any]) -> list[float]:
    """Median presented SSIM over ``references`` at each table level 1-5."""
    return [
        float(np.median([presented_ssim(r, spec, level=k) for r in references])) for k in LEVELS
    ]


def in_band(value: float, level: int, bands: dict[int, tuple[float, float]] | None = None) -> bool:
    lo, hi = (bands or PAPER_BANDS)[level]
    return lo <= value <= hi


@dataclass
class TunedTable:
    """A table searched on the reference set: its parameters and what they measured."""

    corruption: str
    modality: str
    strengths: list[float]
    severity_params: list[Any]
    medians: list[float] = field(default_factory=list)
    reachable: list[bool] = field(default_factory=list)

    @property
    def in_band(self) -> list[bool]:
        return [in_band(m, k) for k, m in zip(LEVELS, self.medians)]


def tune_levels(
    spec: Corruption,
    references: Sequence[Any],
    bands: dict[int, tuple[float, float]] | None = None,
) -> TunedTable:
    """Search the strength of each level so that its median presented SSIM hits the band's middle.

    Each level uses its own seeds (those the table is checked and run with): a coarse grid of
    strengths from the previous level's up to 1 brackets the target, and the bracket is halved.
    When no strength gets down to the target but some lie inside the band's upper part, the
    one nearest the target is taken (the weakest of those within ``PLATEAU`` of it, where the
    curve has flattened); the level is reachable. Each strength is measured at the
    parameter the table will hold (rounded as written); a level whose SSIM steps over its band
    between two neighbouring parameters keeps the nearest and is reported unreachable. A
    level whose band lies below what full strength reaches is unreachable within the corruption's
    ``param_range``: it is reported, and takes a strength that keeps the table rising
    (``_fill_unreachable``); the levels after it are still searched.
    """
    bands = bands or PAPER_BANDS
    modality = references[0].modality
    measured: dict[int, dict[float, float]] = {level: {} for level in LEVELS}

    def median_at(s: float, level: int) -> float:
        # Measured at the parameter the table will hold (rounded as written, whole numbers
        # whole), so that a level is never judged at a strength its table entry differs from.
        s = float(s)
        if s not in measured[level]:
            fixed = _at_parameter(spec, param_at(spec, s))
            values = [presented_ssim(r, fixed, level=1, seed_level=level) for r in references]
            measured[level][s] = float(np.median(values))
        return measured[level][s]

    strengths: list[float] = []
    reachable: list[bool] = []
    floor = 0.0
    for level in LEVELS:
        strength, ok = _search_level(lambda s, k=level: median_at(s, k), bands[level], floor)
        previous = level - 1
        if not ok and previous >= 1 and median_at(floor, level) < bands[level][0]:
            # Even the previous level's strength is too strong for this level's seeds (each
            # level has its own draws): move the previous level to the weakest strength that
            # still holds it in its band, if that is weaker, and search this level again.
            weaker = [
                t
                for t, m in measured[previous].items()
                if t < floor and in_band(m, previous, bands)
            ]
            if weaker and reachable[previous - 1]:
                retry, retry_ok = _search_level(
                    lambda s, k=level: median_at(s, k), bands[level], min(weaker)
                )
                if retry_ok:
                    strengths[previous - 1] = min(weaker)
                    strength, ok = retry, retry_ok
        strengths.append(strength)
        reachable.append(ok)
        if not math.isnan(strength):
            floor = strength
    strengths = _fill_unreachable(strengths)
    table = [param_at(spec, s) for s in strengths]
    tuned = dataclasses.replace(spec, severity_params=tuple(table))
    medians = table_medians(tuned, references)
    return TunedTable(spec.name, modality, strengths, table, medians, reachable)


def _search_level(median_at, band: tuple[float, float], floor: float) -> tuple[float, bool]:
    """(strength, whether the median there lies in ``band``) for one level, at or above ``floor``.

    A grid from ``floor`` up to 1 brackets the band's middle and the bracket is halved. When no
    strength gets down to the middle but some lie in the band's upper part, the one nearest the
    middle is taken (the weakest within ``PLATEAU`` of it). NaN when the whole grid stays above
    the band.
    """
    lo, hi = band
    target = 0.5 * (lo + hi)
    # Start just above the previous level, so that two levels share a parameter only when the
    # floor itself is the nearest to this level's target.
    grid = np.linspace(floor, 1.0, GRID_POINTS)[1:] if floor < 1.0 else np.array([1.0])
    left, right = None, None
    previous = floor
    seen: dict[float, float] = {}
    for s in grid:
        seen[float(s)] = median_at(float(s))
        if seen[float(s)] <= target:
            left, right = previous, float(s)
            break
        previous = float(s)
    if right is None:
        # The target (the band's middle) is beyond reach, but the band's upper part may not
        # be: the grid point nearest the middle is the level's strength, or the weakest of
        # those within PLATEAU of it where the SSIM has stopped falling (a blur of a smooth
        # image), so that the table does not jump to full strength for nothing.
        inside = {s: m for s, m in seen.items() if lo <= m <= hi}
        if inside:
            nearest = min(inside.values())
            return min(s for s, m in inside.items() if m - nearest <= PLATEAU), True
        return math.nan, False
    strength, median = _refine(median_at, left, right, band)
    # Out of band here means the SSIM steps over the band between two neighbouring parameters
    # (a whole number of bubbles or hairs), or that the floor is already past it: recorded, the
    # nearest kept.
    return strength, lo <= median <= hi


def _at_parameter(spec: Corruption, param: Any) -> Corruption:
    """``spec`` with ``param`` at every level (a table entry, to measure it as it will be run)."""
    entry = tuple(param) if isinstance(param, list) else param
    return dataclasses.replace(spec, severity_params=(entry,) * len(LEVELS))


def _refine(median_at, left: float, right: float, band: tuple[float, float]) -> tuple[float, float]:
    """Halve the bracket [left, right] (SSIM above the band's middle at left, at or below it at
    right); the strength nearest the middle and its median.

    The left end is the previous level's strength when the first grid point is already past the
    middle: it is taken only when nothing inside the bracket lands in the band, so that two levels
    share a parameter only when they must.
    """
    lo, hi = band
    target = 0.5 * (lo + hi)
    start = left
    best_value = median_at(right)
    best, best_gap = right, abs(best_value - target)
    for _ in range(REFINE_STEPS):
        if best_gap < 0.015:  # well inside a band of width 0.08
            break
        middle = 0.5 * (left + right)
        value = median_at(middle)
        gap = abs(value - target)
        if gap < best_gap:
            best, best_gap, best_value = middle, gap, value
        if value > target:
            left = middle
        else:
            right = middle
    if not lo <= best_value <= hi:
        start_value = median_at(start)
        if abs(start_value - target) < best_gap:
            best, best_value = start, start_value
    return best, best_value


def _fill_unreachable(strengths: list[float]) -> list[float]:
    """Strengths for the levels beyond reach, so that the table still rises.

    Levels after the last reachable one rise evenly from it to 1. An unreachable level between
    reachable ones (each level has its own seeds, so a later level may reach its band where an
    earlier one does not) takes a strength evenly between its neighbours, and the reachable
    levels after it keep theirs.
    """
    filled = list(strengths)
    n = len(filled)
    i = 0
    while i < n:
        if not math.isnan(filled[i]):
            i += 1
            continue
        j = i
        while j + 1 < n and math.isnan(filled[j + 1]):
            j += 1
        last = filled[i - 1] if i > 0 else 0.0
        count = j - i + 1
        if j + 1 < n:
            following = filled[j + 1]
            for k in range(count):
                filled[i + k] = last + (following - last) * (k + 1) / (count + 1)
        else:
            for k in range(count):
                filled[i + k] = last + (1.0 - last) * (k + 1) / count
        i = j + 1
    return filled


def param_at(spec: Corruption, strength: float) -> Any:
    """The parameter at ``strength``, rounded as a person would write it in a table.

    Components that are whole numbers in the corruption's own table stay whole numbers.
    """
    value = spec.param_for(strength=float(min(max(strength, 0.0), 1.0)))
    whole = _whole_components(spec.severity_params)
    if isinstance(value, tuple):
        return [_round(v, w) for v, w in zip(value, whole)]
    return _round(value, whole[0])


def _whole_components(table: Sequence[Any]) -> list[bool]:
    first = table[0]
    if isinstance(first, (tuple, list)):
        return [
            all(
                isinstance(row[i], (int, np.integer)) and not isinstance(row[i], bool)
                for row in table
            )
            for i in range(len(first))
        ]
    return [all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in table)]


def _round(value: Any, whole: bool) -> Any:
    if whole:
        return int(round(float(value)))
    value = float(value)
    if value == 0.0:
        return 0.0
    digits = 3 - int(math.floor(math.log10(abs(value)))) - 1
    return round(value, max(digits, 0) if abs(value) >= 1 else digits)
