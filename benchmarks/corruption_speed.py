"""Speed of our corruptions against imagecorruptions 1.1.2 (the ImageNet-C reference), one thread.

For every corruption that both the reference and our registry have (whatever is registered when
the script runs), time ours (``medfm_robust_plugin.corrupt``) and the reference on the same RGB
uint8 phantoms at severity 3: one warm-up call, then the median of ``--repeat`` runs. Times are
the CPU time of this (single-threaded) process, so other load on the machine does not count. Prints
the time per image, the ratio reference / ours per corruption and for the sums, at every size, and
flags any corruption where we are slower. The first line per size is the engine's round trip
(uint8 -> unit float -> uint8 around a corruption that does nothing), the floor under our times.

    .venv/bin/python benchmarks/corruption_speed.py
    .venv/bin/python benchmarks/corruption_speed.py --sizes 224 --repeat 5 --names glass_blur,zoom_blur

Needs the dev dependencies (imagecorruptions, scikit-image).
"""

from __future__ import annotations

import os

# One thread everywhere, set before numpy, scipy or OpenCV load their thread pools.
for _variable in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import functools  # noqa: E402
import importlib.util  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

cv2.setNumThreads(1)

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from medfm_robust_plugin import corrupt, list_corruptions  # noqa: E402
from medfm_robust_plugin.corruptions.spec import Corruption  # noqa: E402
from medfm_robust_plugin.data.phantoms import phantom  # noqa: E402

SEVERITY = 3
DEFAULT_SIZES = (224, 512)
DEFAULT_MODALITIES = ("dermoscopy", "endoscopy")


def load_reference() -> tuple[list[str], Callable[..., np.ndarray]]:
    if importlib.util.find_spec("imagecorruptions") is None:
        sys.exit("imagecorruptions is not installed: pip install -e '.[dev]' imagecorruptions")
    from tests.reference import reference_corrupt, reference_names

    return reference_names(), reference_corrupt


def rgb_phantoms(size: int, modalities: list[str]) -> list[np.ndarray]:
    images = [phantom(m, size, seed=k).image for k, m in enumerate(modalities)]
    for modality, image in zip(modalities, images):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            sys.exit(
                f"phantom '{modality}' is not RGB uint8; pick colour modalities with --modalities"
            )
    return images


def seconds_per_image(
    run: Callable[[np.ndarray, int], object], images: list[np.ndarray], repeat: int
) -> float:
    """Median over ``repeat`` runs (after one warm-up) of the mean time per image."""
    for k, image in enumerate(images):
        run(image, k)
    samples = []
    for _ in range(repeat):
        start = time.process_time()
        for k, image in enumerate(images):
            run(image, k)
        samples.append((time.process_time() - start) / len(images))
    return statistics.median(samples)


def _unchanged(image: np.ndarray, param: object, rng: np.random.Generator) -> np.ndarray:
    return image.copy()


UNCHANGED = Corruption("unchanged", _unchanged, family="benchmark", severity_params=(0,) * 5)


def run_ours(image: np.ndarray, seed: int, *, name: str | Corruption) -> np.ndarray:
    return corrupt(image, name, SEVERITY, seed=seed)


def run_reference(
    reference_corrupt: Callable, image: np.ndarray, seed: int, *, name: str
) -> np.ndarray:
    return reference_corrupt(image, name, SEVERITY, seed=seed)


def benchmark_size(
    size: int, names: list[str], modalities: list[str], repeat: int, reference_corrupt: Callable
) -> tuple[float, float]:
    images = rgb_phantoms(size, modalities)
    print(
        f"\n{size} x {size} RGB uint8, severity {SEVERITY}, {len(images)} images, median of {repeat}"
    )
    print(f"{'corruption':<20}{'ours ms':>10}{'reference ms':>14}{'ref/ours':>10}")
    round_trip = seconds_per_image(functools.partial(run_ours, name=UNCHANGED), images, repeat)
    print(f"{'(engine round trip)':<20}{round_trip * 1e3:>10.2f}")
    total_ours = total_reference = 0.0
    for name in names:
        ours = seconds_per_image(functools.partial(run_ours, name=name), images, repeat)
        try:
            reference = seconds_per_image(
                functools.partial(run_reference, reference_corrupt, name=name), images, repeat
            )
        except Exception as exc:  # a broken reference corruption should not end the run
            print(f"{name:<20}{ours * 1e3:>10.2f}   reference failed: {type(exc).__name__}: {exc}")
            continue
        total_ours += ours
        total_reference += reference
        ratio = reference / ours
        flag = "  << slower than the reference" if ratio < 1.0 else ""
        print(f"{name:<20}{ours * 1e3:>10.2f}{reference * 1e3:>14.2f}{ratio:>10.1f}{flag}")
    if total_ours > 0:
        ratio = total_reference / total_ours
        flag = "  << slower than the reference" if ratio < 1.0 else ""
        print(
            f"{'sum':<20}{total_ours * 1e3:>10.2f}{total_reference * 1e3:>14.2f}{ratio:>10.1f}{flag}"
        )
    return total_ours, total_reference


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default=",".join(map(str, DEFAULT_SIZES)),
        help="comma-separated square sizes (default: 224,512)",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="timed runs per corruption (default: 3)"
    )
    parser.add_argument(
        "--names", default="", help="comma-separated corruptions (default: all shared)"
    )
    parser.add_argument(
        "--modalities",
        default=",".join(DEFAULT_MODALITIES),
        help="colour phantoms to time on (default: dermoscopy,endoscopy)",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    reference_names, reference_corrupt = load_reference()
    ours = {c.name for c in list_corruptions()}
    shared = [n for n in reference_names if n in ours]
    if args.names:
        wanted = [n.strip() for n in args.names.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in shared]
        if unknown:
            parser.error(
                f"not in both the reference and our registry: {', '.join(unknown)}; "
                f"shared: {', '.join(shared)}"
            )
        shared = wanted
    missing = [n for n in reference_names if n not in ours]
    if missing:
        print(f"reference corruptions not registered here (skipped): {', '.join(missing)}")
    if not shared:
        print("no corruption is shared with the reference; nothing to time")
        return 0

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    modalities = [m.strip() for m in args.modalities.split(",") if m.strip()]
    print(
        f"one thread (cv2 {cv2.getNumThreads()}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']})"
    )
    for size in sizes:
        benchmark_size(size, shared, modalities, args.repeat, reference_corrupt)
    return 0


if __name__ == "__main__":
    sys.exit(main())
