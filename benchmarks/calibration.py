"""SSIM-band calibration against an early-stopping bisection on the same probes: applications per
calibrated level, share in band, and CPU time, per corruption and overall.

    python benchmarks/calibration.py [--images 4] [--size 192] [--names a,b] [--repeats 3]
                                     [--shared] [--plain] [--photograph] [--bare] [--cold]

The reference is the strongest plain search: bisection on strength towards the band's middle that
stops at the first strength whose SSIM is in the band (at most 20 halvings, the paper's count).
``--plain`` also times the paper's fixed 20-step bisection, which never stops early.

What is timed: CPU time of this process (one thread for numpy and OpenCV). Both searches start
from a fresh ``StrengthProbe`` per level (the same image, corruption and seed, so the same SSIM
curve), made as the view layer makes one for a sample of the image's modality (its presentation,
and its imaged region where SSIM is averaged: a phantom's or the photograph's aperture; ``--bare``
probes the arrays without a modality, whole-frame SSIM); ``--shared`` lets our five levels of one (image, corruption) share
their measurements, as ``calibrate_levels`` does (the bisection still starts fresh). Per image the
two searches run back to back, which goes first alternating from one image and one repeat to the
next; the first image of the run is searched once untimed (imports, first allocations).

The clean side of SSIM (the image's imaged region and window sums) is kept between probes of
one image, as in runs and views (``ssim.REFERENCES``); ``--cold`` empties that cache before every
probe, so each level also pays for finding the region and the clean image's sums.

``--photograph`` searches scikit-image's colour fundus photograph (``retina``, 1411 x 1411) at its
full size instead, for every corruption meant for fundus images, and prints the seconds per
calibrated level (what a view in SSIM mode costs at that size).

"In band" is counted over every calibration and over those where either search found the band,
so a case our search calls unreachable still counts if the bisection reached it.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from _stats import a_first, load_average, spread, summarize_ratios, summary_over_repeats  # noqa: E402

from medfm_robust_plugin import list_corruptions  # noqa: E402
from medfm_robust_plugin.calibration import (  # noqa: E402
    PAPER_BANDS,
    StrengthProbe,
    bisection,
    calibrate,
)
from medfm_robust_plugin.data.phantoms import GENERATORS, phantom  # noqa: E402
from medfm_robust_plugin.engine import image_context, sample_seed  # noqa: E402
from medfm_robust_plugin.ssim import REFERENCES  # noqa: E402

cv2.setNumThreads(1)

LEVELS = (1, 2, 3, 4, 5)
BISECTION_STEPS = 20
COLD = False  # --cold: no clean reference kept from one probe to the next


def images_for(spec, count: int, size: int) -> list[tuple[np.ndarray, str | None]]:
    """(phantom, its modality) pairs for one corruption."""
    modality = next((m for m in spec.modalities if m in GENERATORS), None)
    modalities = [modality] if modality else ["dermoscopy", "ct", "endoscopy", "mri", "xray"]
    chosen = [modalities[k % len(modalities)] for k in range(count)]
    return [(phantom(m, size, seed=100 + k).image, m) for k, m in enumerate(chosen)]


def new_probe(sample: tuple[np.ndarray, str | None], spec, seed: int) -> StrengthProbe:
    """A fresh probe on a sample of a modality, as the view layer makes one: its presentation and
    imaged region (where SSIM is averaged) come from the modality (none: a bare array)."""
    image, modality = sample
    if COLD:
        REFERENCES.clear()
    _, _, context, _ = image_context(image, modality=modality)
    return StrengthProbe(image, spec, seed, context=context)


def early_stopping_bisection(
    probe: StrengthProbe, level: int, steps: int = BISECTION_STEPS
) -> tuple[float, float, bool]:
    """Bisection towards the band's middle that stops at the first SSIM inside the band:
    (strength, SSIM, in band)."""
    lo, hi = PAPER_BANDS[level]
    target = 0.5 * (lo + hi)
    a, b = 0.0, 1.0
    s, value = 0.5, 1.0
    for _ in range(steps):
        s = 0.5 * (a + b)
        value = probe(s)
        if lo <= value <= hi:
            return s, value, True
        if value > target:
            a = s
        else:
            b = s
    return s, value, False


def search_ours(image, spec, seed: int, shared: bool) -> list[tuple[int, bool, bool]]:
    """(applications, in band, reachable) per level from our search."""
    outcomes = []
    probe = new_probe(image, spec, seed)
    for level in LEVELS:
        if not shared:
            probe = new_probe(image, spec, seed)
        before = probe.applications
        _, record = calibrate(probe, level)
        outcomes.append((probe.applications - before, bool(record.in_band), record.reachable))
    return outcomes


def search_bisection(image, spec, seed: int) -> list[tuple[int, bool]]:
    """(applications, in band) per level from the early-stopping bisection."""
    outcomes = []
    for level in LEVELS:
        probe = new_probe(image, spec, seed)
        _, _, ok = early_stopping_bisection(probe, level)
        outcomes.append((probe.applications, ok))
    return outcomes


def search_plain(image, spec, seed: int) -> list[int]:
    outcomes = []
    for level in LEVELS:
        probe = new_probe(image, spec, seed)
        bisection(probe, level, steps=BISECTION_STEPS)
        outcomes.append(probe.applications)
    return outcomes


def timed(function, *args):
    start = time.process_time()
    result = function(*args)
    return result, time.process_time() - start


def run_once(specs, images, repeat: int, shared: bool, plain: bool) -> dict:
    """One pass over every (corruption, image): outcomes and CPU seconds per corruption."""
    seconds = defaultdict(lambda: defaultdict(float))
    outcomes = defaultdict(list)
    item = 0
    for spec in specs:
        for k, image in enumerate(images[spec.name]):
            seed = sample_seed(0, "benchmark", k, spec.name, "ssim")
            ours_first = a_first(repeat, item)
            item += 1
            for side in ("ours", "bisection") if ours_first else ("bisection", "ours"):
                if side == "ours":
                    result, spent = timed(search_ours, image, spec, seed, shared)
                else:
                    result, spent = timed(search_bisection, image, spec, seed)
                seconds[spec.name][side] += spent
                outcomes[side].extend((spec.name, k, level, r) for level, r in zip(LEVELS, result))
            if plain:
                result, spent = timed(search_plain, image, spec, seed)
                seconds[spec.name]["plain"] += spent
                outcomes["plain"].extend(result)
    return {"seconds": seconds, "outcomes": outcomes}


def report_outcomes(outcomes: dict, plain: bool) -> None:
    ours = {(n, k, level): r for n, k, level, r in outcomes["ours"]}
    bis = {(n, k, level): r for n, k, level, r in outcomes["bisection"]}
    count = len(ours)
    ours_apps = [r[0] for r in ours.values()]
    bis_apps = [r[0] for r in bis.values()]
    print(f"calibrations: {count} (corruption, image, level)")
    print(
        f"applications per calibration: ours mean {statistics.fmean(ours_apps):.2f}, median "
        f"{statistics.median(ours_apps):g}, max {max(ours_apps)}; early-stopping bisection mean "
        f"{statistics.fmean(bis_apps):.2f}, median {statistics.median(bis_apps):g}, max "
        f"{max(bis_apps)}"
        + (
            f"; fixed {BISECTION_STEPS}-step bisection {statistics.fmean(outcomes['plain']):.2f}"
            if plain
            else ""
        )
    )
    ours_in = sum(r[1] for r in ours.values())
    bis_in = sum(r[1] for r in bis.values())
    either = [key for key in ours if ours[key][1] or bis[key][1]]
    ours_unreachable = [key for key in ours if not ours[key][2]]
    found_by_bisection = [key for key in ours_unreachable if bis[key][1]]
    only_ours = sum(1 for key in either if ours[key][1] and not bis[key][1])
    print(
        f"in band over all calibrations: ours {ours_in}/{count} ({100 * ours_in / count:.1f}%), "
        f"bisection {bis_in}/{count} ({100 * bis_in / count:.1f}%)"
    )
    print(
        f"in band where either search found the band ({len(either)}): ours "
        f"{ours_in}/{len(either)} ({100 * ours_in / max(len(either), 1):.1f}%), bisection "
        f"{bis_in}/{len(either)} ({100 * bis_in / max(len(either), 1):.1f}%); only ours found "
        f"it in {only_ours}, only the bisection in {len(either) - ours_in}"
    )
    reachable = count - len(ours_unreachable)
    ours_in_reachable = sum(1 for key in ours if ours[key][2] and ours[key][1])
    print(
        f"our search calls {len(ours_unreachable)} unreachable; the bisection finds the band "
        f"for {len(found_by_bisection)} of them; in band where ours calls it reachable: "
        f"{ours_in_reachable}/{reachable} ({100 * ours_in_reachable / max(reachable, 1):.1f}%)"
    )
    for n, k, level in found_by_bisection[:10]:
        print(f"  unreachable for ours, in band for the bisection: {n} image {k} L{level}")
    misses = [key for key in ours if ours[key][2] and not ours[key][1]]
    for n, k, level in misses[:10]:
        print(f"  ours missed (reachable): {n} image {k} L{level}")
    by_corruption = defaultdict(lambda: [0, 0])
    for (n, _, _), r in ours.items():
        by_corruption[n][0] += r[0]
    for (n, _, _), r in bis.items():
        by_corruption[n][1] += r[0]
    app_ratios = {n: b / o for n, (o, b) in by_corruption.items() if o > 0}
    s = summarize_ratios(app_ratios)
    print(
        f"applications, bisection / ours per corruption: geometric mean {s.geomean:.2f}x, "
        f"median {s.median:.2f}x, min {s.low:.2f}x ({s.low_item}), max {s.high:.2f}x "
        f"({s.high_item}); total {sum(bis_apps) / sum(ours_apps):.2f}x"
    )
    fewer = sorted(n for n, r in app_ratios.items() if r <= 1.0)
    if fewer:
        print(f"bisection needs no more applications than ours for: {', '.join(fewer)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4, help="images per corruption")
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--names", help="comma-separated corruptions (default: all registered)")
    parser.add_argument("--repeats", type=int, default=3, help="full runs, for the spread")
    parser.add_argument("--shared", action="store_true", help="our levels share measurements")
    parser.add_argument(
        "--plain", action="store_true", help=f"also time the fixed {BISECTION_STEPS}-step bisection"
    )
    parser.add_argument(
        "--photograph",
        action="store_true",
        help="search the 1411 px fundus photograph of scikit-image instead of phantoms",
    )
    parser.add_argument(
        "--bare",
        action="store_true",
        help="probe the bare arrays, without their modality (whole-frame SSIM, as corrupt() on an "
        "array with no modality)",
    )
    parser.add_argument(
        "--cold",
        action="store_true",
        help="empty the cache of clean references before every probe",
    )
    args = parser.parse_args()
    global COLD
    COLD = args.cold
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    specs = list_corruptions()
    if args.names:
        wanted = set(args.names.split(","))
        specs = [s for s in specs if s.name in wanted]
    if args.photograph:
        from skimage import data

        photograph = data.retina()
        specs = [s for s in specs if s.applies_to("fundus")]
        images = {spec.name: [(photograph, "fundus")] for spec in specs}
        described = f"scikit-image's retina, {photograph.shape[1]}x{photograph.shape[0]}"
    else:
        images = {spec.name: images_for(spec, args.images, args.size) for spec in specs}
        described = f"{args.images} ({args.size}x{args.size})"
    if args.bare:
        images = {name: [(image, None) for image, _ in pairs] for name, pairs in images.items()}
        described += ", bare arrays (no modality: SSIM over the whole frame)"
    print(
        f"corruptions: {len(specs)}, images each: {described}, "
        f"levels: {LEVELS}, bands: {PAPER_BANDS}"
    )
    print(
        "timed: CPU time of this process, one thread; each level from a fresh probe"
        + (" (ours: levels share one probe)" if args.shared else "")
        + ("; clean references not kept (--cold)" if args.cold else "; clean references kept")
        + "; ours and the early-stopping bisection back to back per image, the first "
        f"alternating; {args.repeats} repeats; warm (one untimed search first)"
    )
    print(f"at start: {load_average()}")
    first = specs[0]
    search_ours(images[first.name][0], first, 0, args.shared)
    search_bisection(images[first.name][0], first, 0)

    runs = []
    for repeat in range(args.repeats):
        runs.append(run_once(specs, images, repeat, args.shared, args.plain))
        print(f"  repeat {repeat + 1} of {args.repeats} done; {load_average()}")
    report_outcomes(runs[0]["outcomes"], args.plain)  # the searches are deterministic

    per_repeat = []
    totals = defaultdict(list)
    for run in runs:
        seconds = run["seconds"]
        per_repeat.append(
            summarize_ratios({n: s["bisection"] / s["ours"] for n, s in seconds.items()})
        )
        for side in ("ours", "bisection", "plain"):
            totals[side].append(sum(s.get(side, 0.0) for s in seconds.values()))
    for side in ("ours", "bisection"):
        per_level = {
            n: statistics.median(run["seconds"][n][side] for run in runs)
            / (len(images[n]) * len(LEVELS))
            for n in runs[0]["seconds"]
        }
        values = sorted(per_level.values())
        worst = max(per_level, key=per_level.get)
        print(
            f"CPU seconds per calibrated level, {side}: mean {statistics.fmean(values):.3f}, "
            f"median {statistics.median(values):.3f}, max {per_level[worst]:.3f} ({worst}); "
            f"corruptions under 0.3 s: {sum(v < 0.3 for v in values)}/{len(values)}"
        )
    print(f"CPU time, bisection / ours per corruption, median (range) over {args.repeats} repeats:")
    for line in summary_over_repeats(per_repeat):
        print("  " + line)
    ratios = [b / o for o, b in zip(totals["ours"], totals["bisection"])]
    print(
        f"total CPU time (secondary): ours {spread(totals['ours'], unit=' s')}, early-stopping "
        f"bisection {spread(totals['bisection'], unit=' s')}, ratio {spread(ratios, unit='x')}"
    )
    if args.plain:
        plain = [p / o for o, p in zip(totals["ours"], totals["plain"])]
        print(
            f"fixed {BISECTION_STEPS}-step bisection (never stops early; not the baseline): "
            f"{spread(totals['plain'], unit=' s')}, ratio to ours {spread(plain, unit='x')}"
        )
    by_name = defaultdict(list)
    for run in runs:
        for n, s in run["seconds"].items():
            by_name[n].append(s["bisection"] / s["ours"])
    slower = [
        f"{n} {statistics.median(r):.2f}x" for n, r in by_name.items() if statistics.median(r) < 1.1
    ]
    print(
        "ours is not faster than the bisection (CPU ratio below 1.10) for: "
        + (", ".join(slower) if slower else "none")
    )
    print(f"at end: {load_average()}")


if __name__ == "__main__":
    main()
