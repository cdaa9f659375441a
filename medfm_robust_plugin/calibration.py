"""Severity calibrated per image by SSIM: find the strength whose SSIM to the clean image falls in
the level's band (the paper's bands by default).

The seed stays fixed while the strength moves, so SSIM is a smooth, falling function of strength.
The search brackets the band and interpolates a power law ``1 - SSIM = c * strength ** p`` between
the bracket's ends, which lands in a band of width 0.08 in a handful of applications, instead of a
fixed 20-step bisection.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .application import apply_corruption, image_context
from .corruptions.spec import Corruption, ImageContext
from .errors import SeverityError
from .ssim import WIN, PresentedReference

# The paper's SSIM bands per severity level (SSIM of corrupted to clean).
PAPER_BANDS: dict[int, tuple[float, float]] = {
    1: (0.90, 0.98),
    2: (0.80, 0.89),
    3: (0.70, 0.79),
    4: (0.60, 0.69),
    5: (0.50, 0.59),
}
MAX_APPLICATIONS = 16
# Two strengths this close that straddle the band mean the SSIM steps over it (strength is in [0, 1];
# a step of 1e-3 is below any table's resolution).
JUMP_STEP = 1e-3


@dataclass(frozen=True)
class Calibration:
    """What the search found for one (image, corruption, level): recorded with every sample."""

    level: int
    band: tuple[float, float]
    strength: float
    ssim: float
    in_band: bool
    reachable: bool
    applications: int
    note: str = ""

    def as_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["band"] = list(self.band)
        return record


@dataclass
class StrengthProbe:
    """Applies one corruption to one image at chosen strengths, remembering every result.

    SSIM is measured on the presented image (``presentation``): the probe's ``context`` carries
    the window, taken from ``value_range`` or chosen by the presentation rules when not given.

    Sharing one probe across the levels of an image lets each level's search start from what the
    others measured (``calibrate_levels``), but then a level's result depends on which levels were
    searched before it. The view layer and the engine therefore search every level from scratch,
    so that a view is the same whatever was asked before it.
    """

    image: Any
    corruption: Corruption
    seed: int
    value_range: tuple[float, float] | None = None
    context: ImageContext | None = None
    source: object | None = None
    applications: int = 0
    seen: dict[float, tuple[float, np.ndarray, dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from .image import as_array

        if self.context is None:
            self.array, _, self.context, _ = image_context(
                self.image, self.source, window=self.value_range
            )
        else:
            self.array, _ = as_array(self.image)
        self.reference = None  # the clean side of every probe's SSIM, computed at the first

    def __call__(self, strength: float) -> float:
        strength = float(min(max(strength, 0.0), 1.0))
        if strength not in self.seen:
            param = self.corruption.param_for(strength=strength)
            if self.reference is None and min(self.array.shape[:2]) >= WIN:
                self.reference = PresentedReference(self.array, self.context.window)
            out, params = apply_corruption(
                self.array,
                self.corruption,
                param,
                self.seed,
                self.context,
                self.source,
                reference=self.reference,
            )
            params.update(severity=None, strength=strength)
            self.seen[strength] = (params["ssim"], out, params)
            self.applications += 1
        return self.seen[strength][0]

    def output(self, strength: float) -> np.ndarray:
        return self.seen[strength][1]

    def params(self, strength: float) -> dict[str, Any]:
        """What the engine recorded for the application at ``strength`` (for replay)."""
        return dict(self.seen[strength][2])


def calibrate(
    probe: StrengthProbe,
    level: int,
    bands: dict[int, tuple[float, float]] | None = None,
    max_applications: int = MAX_APPLICATIONS,
) -> tuple[np.ndarray, Calibration]:
    """The corrupted image whose SSIM lies in ``level``'s band, and the record of the search.

    When the band cannot be reached (the corruption is too weak even at strength 1, or too strong
    even at 0, or jumps over the band), the nearest achieved SSIM is used and the record says so.
    """
    bands = bands or PAPER_BANDS
    if isinstance(level, bool) or level not in bands:
        raise SeverityError(
            f"SSIM calibration has no band for level {level!r}; levels: {sorted(bands)}"
        )
    lo, hi = bands[level]
    target = 0.5 * (lo + hi)
    start = probe.applications

    def in_band(value: float) -> bool:
        return lo <= value <= hi

    def finish(strength: float, reachable: bool, note: str = "") -> tuple[np.ndarray, Calibration]:
        value = probe(strength)
        ok = in_band(value)
        result = Calibration(
            level,
            (lo, hi),
            strength,
            round(value, 6),
            ok,
            reachable or ok,
            probe.applications - start,
            "" if ok else note,
        )
        return probe.output(strength), result

    for s, (value, *_) in sorted(probe.seen.items()):
        if in_band(value):
            return finish(s, True)

    strength = _first_guess(probe, target)
    sides: list[bool] = []  # which side of the band each probe fell on (True: too strong)
    while probe.applications - start < max_applications:
        value = probe(strength)
        if in_band(value):
            return finish(strength, True)
        sides.append(value < lo)
        weak, strong = _bracket(probe, hi, lo)
        if strong is None and weak is not None and weak[0] >= 1.0:
            return finish(1.0, False, "band not reached: SSIM stays above it at full strength")
        if weak is None and strong is not None and strong[0] <= 0.0:
            return finish(0.0, False, "band not reached: SSIM is below it at zero strength")
        if weak is not None and strong is not None and strong[0] - weak[0] < JUMP_STEP:
            return _jumped(probe, weak[0], strong[0], lo, hi, finish)
        if weak is None and strong is not None and _flat(probe, strong[0]):
            # Only too-strong points, and the SSIM did not move between the two weakest: the
            # curve is flat here (a corruption that saturates, such as colour saturation clipped
            # at full), so the power law creeps down a few percent a step. Jump a factor of 4
            # towards zero instead.
            strength = 0.25 * strong[0]
            continue
        if weak is not None and strong is not None and sides[-2:] in ([True, True], [False, False]):
            # The power law keeps landing on one side (a saturating or stepped curve): halve the
            # bracket instead, which always closes in on the band or on the step that skips it.
            strength = 0.5 * (weak[0] + strong[0])
            sides.clear()
        else:
            strength = _next_strength(weak, strong, target)
    nearest = min(probe.seen, key=lambda s: _distance(probe.seen[s][0], lo, hi))
    return finish(nearest, True, "band not reached within the search budget; nearest SSIM used")


FLAT = 1e-4  # two SSIMs closer than this are the same: the curve does not move between them


def _flat(probe: StrengthProbe, strength: float) -> bool:
    """The SSIM at ``strength`` equals that of the next measured strength above it."""
    above = sorted(s for s in probe.seen if s > strength)
    return bool(above) and abs(probe.seen[above[0]][0] - probe.seen[strength][0]) < FLAT


def _jumped(probe, weak: float, strong: float, lo: float, hi: float, finish):
    """The SSIM steps over the whole band between two strengths closer than JUMP_STEP: the band is
    unreachable on this image (a whole-number parameter such as a kernel size, or a threshold)."""
    above, below = probe.seen[weak][0], probe.seen[strong][0]
    nearest = weak if _distance(above, lo, hi) <= _distance(below, lo, hi) else strong
    note = (
        f"band not reached: SSIM jumps over it from {above:.3f} to {below:.3f} between "
        f"strengths {weak:.4f} and {strong:.4f}"
    )
    return finish(nearest, False, note)


def _distance(value: float, lo: float, hi: float) -> float:
    return 0.0 if lo <= value <= hi else min(abs(value - lo), abs(value - hi))


def _bracket(probe: StrengthProbe, hi: float, lo: float):
    """(strongest point still above the band, weakest point already below it) as (strength, 1-SSIM)."""
    above_band = [(s, 1 - v) for s, (v, *_) in probe.seen.items() if v > hi]
    below_band = [(s, 1 - v) for s, (v, *_) in probe.seen.items() if v < lo]
    weak = max(above_band) if above_band else None  # too weak: strength must rise
    strong = min(below_band) if below_band else None  # too strong: strength must fall
    return weak, strong


def _first_guess(probe: StrengthProbe, target: float) -> float:
    if not probe.seen:
        return 0.5
    weak, strong = _bracket(probe, target, target)
    return _next_strength(weak, strong, target)


def _next_strength(weak, strong, target: float) -> float:
    """Interpolate the power law 1 - SSIM = c * s**p through the bracket's ends."""
    gap = 1.0 - target
    if weak is None and strong is None:
        return 0.5
    if weak is None:  # only a too-strong point: take the origin as the other end (p = 1)
        s, g = strong
        if s < 0.02:  # settle whether even zero strength is too strong
            return 0.0
        return float(np.clip(s * gap / max(g, 1e-6), 0.05 * s, 0.95 * s))
    if (
        strong is None
    ):  # only a too-weak point: extrapolate upwards (p = 1), capped at full strength
        s, g = weak
        if s <= 0.0:
            return 0.5
        return float(min(1.0, max(s * gap / max(g, 1e-6), s * 1.2)))
    (s0, g0), (s1, g1) = weak, strong
    if s1 <= s0:  # not monotone here: fall back to the middle of the two
        return 0.5 * (s0 + s1)
    if s0 <= 0.0 or g0 <= 1e-6 or g1 <= g0:
        guess = s0 + (s1 - s0) * (gap - g0) / max(g1 - g0, 1e-9)
    else:
        p = math.log(g1 / g0) / math.log(s1 / s0)
        guess = s0 * (gap / g0) ** (1.0 / p) if p > 0 else 0.5 * (s0 + s1)
    margin = 0.02 * (s1 - s0)
    return float(np.clip(guess, s0 + margin, s1 - margin))


def calibrate_levels(
    image: Any,
    corruption: Corruption,
    seed: int,
    levels: tuple[int, ...] = (1, 2, 3, 4, 5),
    bands: dict[int, tuple[float, float]] | None = None,
    value_range: tuple[float, float] | None = None,
) -> list[tuple[np.ndarray, Calibration]]:
    """Calibrate several levels of one image with one seed, sharing every measured point."""
    probe = StrengthProbe(image, corruption, seed, value_range)
    return [calibrate(probe, level, bands) for level in levels]


def bisection(
    probe: StrengthProbe,
    level: int,
    steps: int = 20,
    bands: dict[int, tuple[float, float]] | None = None,
) -> tuple[float, float]:
    """The plain search of the paper's code: ``steps`` halvings towards the band's middle."""
    lo, hi = (bands or PAPER_BANDS)[level]
    target = 0.5 * (lo + hi)
    a, b = 0.0, 1.0
    s, value = 0.5, 1.0
    for _ in range(steps):
        s = 0.5 * (a + b)
        value = probe(s)
        if value > target:
            a = s
        else:
            b = s
    return s, value
