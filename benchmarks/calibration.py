"""SSIM-band calibration: applications per calibrated image, share in band, and speed against the
plain 20-step bisection of the paper's code, both measured in this run on the same images.

    python benchmarks/calibration.py [--images 4] [--size 192] [--names a,b] [--shared]

By default every level is calibrated from scratch, as the view layer (and so every host) does, so
that a view does not depend on what was asked before it; ``--shared`` lets the five levels of one
(image, corruption) share their measurements, as ``calibrate_levels`` does.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from medfm_robust_plugin import list_corruptions
from medfm_robust_plugin.calibration import PAPER_BANDS, StrengthProbe, bisection, calibrate
from medfm_robust_plugin.data.phantoms import GENERATORS, phantom
from medfm_robust_plugin.engine import sample_seed

LEVELS = (1, 2, 3, 4, 5)


def images_for(spec, count: int, size: int) -> list[np.ndarray]:
    modality = next((m for m in spec.modalities if m in GENERATORS), None)
    modalities = [modality] if modality else ["dermoscopy", "ct", "endoscopy", "mri", "xray"]
    return [
        phantom(modalities[k % len(modalities)], size, seed=100 + k).image for k in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4, help="images per corruption")
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--names", help="comma-separated corruptions (default: all registered)")
    parser.add_argument("--shared", action="store_true", help="levels share their measurements")
    args = parser.parse_args()

    specs = list_corruptions()
    if args.names:
        wanted = set(args.names.split(","))
        specs = [s for s in specs if s.name in wanted]

    calibrations = applications = reachable = in_band = 0
    ours_seconds = plain_seconds = 0.0
    plain_applications = 0
    misses: list[str] = []
    for spec in specs:
        for k, image in enumerate(images_for(spec, args.images, args.size)):
            seed = sample_seed(0, "benchmark", k, spec.name, "ssim")
            start = time.perf_counter()
            probe = StrengthProbe(image, spec, seed)
            for level in LEVELS:
                if not args.shared:
                    probe = StrengthProbe(image, spec, seed)
                before = probe.applications
                _, record = calibrate(probe, level)
                calibrations += 1
                applications += probe.applications - before
                if record.reachable:
                    reachable += 1
                    in_band += record.in_band
                    if not record.in_band:
                        misses.append(f"{spec.name} image {k} L{level}: SSIM {record.ssim:.3f}")
            ours_seconds += time.perf_counter() - start

            start = time.perf_counter()
            for level in LEVELS:
                plain = StrengthProbe(image, spec, seed)
                bisection(plain, level, steps=20)
                plain_applications += plain.applications
            plain_seconds += time.perf_counter() - start

    print(
        f"corruptions: {len(specs)}, images each: {args.images} ({args.size}x{args.size}), levels: {LEVELS}"
    )
    print(f"bands: {PAPER_BANDS}")
    print(f"calibrations: {calibrations}, reachable: {reachable}")
    print(
        f"applications per calibrated (image, corruption, level): {applications / calibrations:.2f} "
        f"(goal <= 6; 20-step bisection: {plain_applications / calibrations:.2f})"
    )
    print(f"within band where reachable: {100.0 * in_band / max(reachable, 1):.1f}% (goal >= 95%)")
    print(
        f"time: ours {ours_seconds:.2f} s, 20-step bisection {plain_seconds:.2f} s, "
        f"speed ratio {plain_seconds / ours_seconds:.1f}x"
    )
    for miss in misses[:20]:
        print("  missed:", miss)


if __name__ == "__main__":
    main()
