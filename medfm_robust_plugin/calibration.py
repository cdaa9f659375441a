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
# Two strengths this close (relative to the stronger) that straddle the band mean the SSIM steps
# over it; so do two whose whole-number parameters are neighbours (a kernel size, a count).
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
                self.reference = PresentedReference.of(self.array, self.context)
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

    strength = _first_guess(probe, target, level)
    sides: list[bool] = []  # which side of the band each probe fell on (True: too strong)
    while probe.applications - start < max_applications:
        value = probe(strength)
        if in_band(value):
            return finish(strength, True)
        sides.append(value < lo)
        weak, strong = _bracket(probe, hi, lo)
        if strong is None and weak is not None and weak[0] >= 1.0:
            tried = []
            for whole in _whole_number_tail(probe):
                if probe.applications - start >= max_applications:
                    break
                if in_band(probe(whole)):
                    return finish(whole, True)
                tried.append(whole)
            note = "band not reached: SSIM stays above it at full strength"
            if not tried:
                return finish(1.0, False, note)
            nearest = min(probe.seen, key=lambda s: _distance(probe.seen[s][0], lo, hi))
            n = len(tried)
            return finish(
                nearest, False, f"{note} and at the {n} whole-number parameters next to it"
            )
        if weak is None and strong is not None and strong[0] <= 0.0:
            return finish(0.0, False, "band not reached: SSIM is below it at zero strength")
        if weak is not None and strong is not None and _stepped(probe, weak[0], strong[0]):
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
            strength = _one_sided(probe, weak, strong, target)
            if strength is None:
                strength = _next_strength(weak, strong, target)
    nearest = min(probe.seen, key=lambda s: _distance(probe.seen[s][0], lo, hi))
    return finish(nearest, True, "band not reached within the search budget; nearest SSIM used")


FLAT = 1e-4  # two SSIMs closer than this are the same: the curve does not move between them
WHOLE_TAIL = 6  # whole-number parameters next to full strength tried before giving a band up


def _whole_number_tail(probe: StrengthProbe) -> list[float]:
    """The strengths of the ``WHOLE_TAIL`` whole-number parameters next to full strength that the
    probe has not measured, strongest first (none unless the parameter is one whole number).

    Such a curve need not fall all the way: JPEG quality 1 and 2 clamp every quantization step to
    255 and can keep more of the image than quality 4-9 (scikit-image's retina: SSIM 0.83 at
    quality 1, 0.70 at 5), so a band above full strength's SSIM may still lie among them.
    """
    spec = probe.corruption
    lo, hi = spec.strength_ends
    whole = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (lo, hi))
    if not whole or lo == hi:
        return []
    lo, hi = int(lo), int(hi)
    measured = {spec.param_for(strength=s) for s in probe.seen}
    step = 1 if hi > lo else -1
    tail = [p for p in range(hi, lo, -step) if p not in measured][:WHOLE_TAIL]
    return [(p - lo) / (hi - lo) for p in tail]


def _flat(probe: StrengthProbe, strength: float) -> bool:
    """The SSIM at ``strength`` equals that of the next measured strength above it."""
    above = sorted(s for s in probe.seen if s > strength)
    return bool(above) and abs(probe.seen[above[0]][0] - probe.seen[strength][0]) < FLAT


def _stepped(probe: StrengthProbe, weak: float, strong: float) -> bool:
    """Nothing lies between two strengths that straddle the band: they are within JUMP_STEP of
    each other relative to the stronger (a threshold), or their whole-number parameters are
    neighbours. Relative, because on a curve that changes fast near zero (shot noise on a dark
    image) a whole band can lie between strengths 1e-5 and 1e-4."""
    if strong - weak < JUMP_STEP * strong:
        return True
    spec = probe.corruption
    below, above = spec.param_for(strength=weak), spec.param_for(strength=strong)
    below = below if isinstance(below, (tuple, list)) else (below,)
    above = above if isinstance(above, (tuple, list)) else (above,)
    if len(below) != len(above):
        return False
    whole = (int, np.integer)
    return all(
        isinstance(a, whole) and isinstance(b, whole) and abs(int(a) - int(b)) <= 1
        for a, b in zip(below, above)
    )


def _jumped(probe, weak: float, strong: float, lo: float, hi: float, finish):
    """The SSIM steps over the whole band between two strengths with nothing between them
    (``_stepped``): the band is unreachable on this image."""
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


# Images with more pixels than this are first searched on a central crop of GUIDE_SIDE pixels
# (384 px: 7 % of a 1411 px photograph, and still a guess that ends most searches at once).
GUIDE_PIXELS = 640 * 640
GUIDE_SIDE = 384


def _first_guess(probe: StrengthProbe, target: float, level: int) -> float:
    if not probe.seen:
        h, w = probe.array.shape[:2]
        if h * w > GUIDE_PIXELS and min(h, w) > GUIDE_SIDE:
            return _guided_guess(probe, level)
        return table_strength(probe.corruption, level)
    weak, strong = _bracket(probe, target, target)
    return _next_strength(weak, strong, target)


def _guided_guess(probe: StrengthProbe, level: int) -> float:
    """The strength the search finds on the image's central GUIDE_SIDE square (same corruption,
    seed and presentation): at the same pixel scale a corruption changes a part of the image
    about as it changes the whole, for a tenth of the cost per application. Only a first guess:
    the search goes on on the whole image from there."""
    h, w = probe.array.shape[:2]
    top, left = (h - GUIDE_SIDE) // 2, (w - GUIDE_SIDE) // 2
    crop = np.ascontiguousarray(probe.array[top : top + GUIDE_SIDE, left : left + GUIDE_SIDE])
    guide = StrengthProbe(crop, probe.corruption, probe.seed, context=probe.context)
    _, record = calibrate(guide, level)
    return record.strength


def table_strength(spec: Corruption, level: int) -> float:
    """Where ``level``'s table parameter lies on the strength scale (the search's first guess).

    A table tuned on the reference set puts a typical image's SSIM in the level's band, so the
    search often ends at its first application. Tuple parameters take the mean of their entries'
    positions; a level outside the table or a parameter that is not a number gives 0.5.
    """
    if not 1 <= level <= len(spec.severity_params):
        return 0.5
    lo, hi = spec.strength_ends
    value = spec.severity_params[level - 1]
    entries = list(zip(*(v if isinstance(v, (tuple, list)) else (v,) for v in (lo, hi, value))))
    positions = []
    for a, b, v in entries:
        if isinstance(v, bool) or not all(
            isinstance(x, (int, float, np.number)) for x in (a, b, v)
        ):
            return 0.5
        if float(b) != float(a):
            positions.append((float(v) - float(a)) / (float(b) - float(a)))
    if not positions:
        return 0.5
    return float(np.clip(np.mean(positions), 0.0, 1.0))


# How far one extrapolation from one side of the band may step: a factor of this in strength.
MAX_EXTRAPOLATION = 30.0


def _one_sided(probe: StrengthProbe, weak, strong, target: float) -> float | None:
    """With every point on one side of the band and two or more of them, the power law fitted
    through the two nearest the band, extrapolated to the band's middle; None otherwise.

    The origin-through line of ``_next_strength`` (p = 1) creeps on the curves that saturate,
    such as shot noise on a dark photograph (1 - SSIM going as strength**0.1 there): each step
    would take a few percent off. The fitted exponent crosses such a stretch in one or two steps.
    """
    if (weak is None) == (strong is None):
        return None
    gap = 1.0 - target
    if strong is not None:  # only too strong: the two weakest points
        points = sorted((s, 1.0 - v) for s, (v, *_) in probe.seen.items() if s > 0.0)[:2]
    else:  # only too weak: the two strongest
        points = sorted((s, 1.0 - v) for s, (v, *_) in probe.seen.items() if s > 0.0)[-2:]
    if len(points) < 2:
        return None
    (s0, g0), (s1, g1) = points
    if not (s1 > s0 > 0.0 and g1 > g0 > 1e-6):
        return None
    p = math.log(g1 / g0) / math.log(s1 / s0)
    if strong is not None:
        return _power_law(s0, g0, gap, p, s0 / MAX_EXTRAPOLATION, 0.95 * s0)
    return _power_law(s1, g1, gap, p, 1.05 * s1, min(1.0, s1 * MAX_EXTRAPOLATION))


def _power_law(s: float, g: float, gap: float, p: float, lower: float, upper: float) -> float:
    """``s * (gap / g) ** (1 / p)`` held to [lower, upper], computed in logs: an exponent p
    near 0 (a flat stretch of the curve) would overflow the power itself."""
    log_guess = math.log(s) + math.log(gap / g) / p
    return float(math.exp(min(max(log_guess, math.log(lower)), math.log(upper))))


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
        margin = 0.02 * (s1 - s0)
        return _power_law(s0, g0, gap, p, s0 + margin, s1 - margin)
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
