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
    strongest of those is taken (the level is reachable). A
    level whose band lies below what full strength reaches is unreachable within the corruption's
    ``param_range``: it is reported, and takes a strength that keeps the table rising
    (``_fill_unreachable``); the levels after it are still searched.
    """
    bands = bands or PAPER_BANDS
    modality = references[0].modality
    strengths: list[float] = []
    reachable: list[bool] = []
    floor = 0.0
    for level in LEVELS:
        lo, hi = bands[level]
        target = 0.5 * (lo + hi)

        def median_at(s: float, level: int = level) -> float:
            values = [presented_ssim(r, spec, strength=s, seed_level=level) for r in references]
            return float(np.median(values))

        # Start just above the previous level, so that two levels never share a parameter.
        grid = np.linspace(floor, 1.0, GRID_POINTS)[1:] if floor < 1.0 else np.array([1.0])
        left, right = None, None
        previous = floor
        measured: dict[float, float] = {}
        for s in grid:
            measured[float(s)] = median_at(float(s))
            if measured[float(s)] <= target:
                left, right = previous, float(s)
                break
            previous = float(s)
        if right is None:
            # The target (the band's middle) is beyond reach, but the band's upper part may not
            # be: the strongest grid point inside the band is the level's strength.
            inside = [s for s, m in measured.items() if in_band(m, level, bands)]
            if inside:
                strengths.append(max(inside))
                reachable.append(True)
                floor = max(inside)
                continue
            strengths.append(math.nan)
            reachable.append(False)
            continue
        strength = _refine(median_at, left, right, target)
        strengths.append(strength)
        reachable.append(True)
        floor = strength
    strengths = _fill_unreachable(strengths)
    table = [param_at(spec, s) for s in strengths]
    tuned = dataclasses.replace(spec, severity_params=tuple(table))
    medians = table_medians(tuned, references)
    return TunedTable(spec.name, modality, strengths, table, medians, reachable)


def _refine(median_at, left: float, right: float, target: float) -> float:
    """Halve the bracket [left, right] (SSIM above the target at left, at or below it at right)."""
    best, best_gap = right, abs(median_at(right) - target)
    for _ in range(REFINE_STEPS):
        if best_gap < 0.015:  # well inside a band of width 0.08
            break
        middle = 0.5 * (left + right)
        value = median_at(middle)
        gap = abs(value - target)
        if gap < best_gap:
            best, best_gap = middle, gap
        if value > target:
            left = middle
        else:
            right = middle
    return best


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
