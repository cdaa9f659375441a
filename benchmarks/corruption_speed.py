"""Speed of our corruptions against imagecorruptions 1.1.2 (the ImageNet-C reference), one thread.

For every corruption that both the reference and our registry have (whatever is registered when
the script runs), time ours (``medfm_robust_plugin.corrupt``) and the reference's own entry point
(``imagecorruptions.corrupt``, called directly: no wrapper copies its result) on the same RGB uint8
images at severity 3, on two image sets: colour phantoms and real photographs (scikit-image's
astronaut and coffee). What is timed:

- the CPU time of this process (``time.process_time``), one thread for numpy, OpenCV and BLAS, so
  other load on the machine counts little; page faults count as CPU time, so allocator state moves
  small figures, which is why the A/B order alternates;
- warm: one untimed pass per corruption and side just before the timed passes; a timed pass loops
  over the images until it has ``--min-seconds`` of CPU time;
- A/B interleaved: per corruption the two sides run back to back, and which goes first alternates
  from one corruption and one repeat to the next;
- ``--repeats`` full runs (default 3): every figure is the median over them with its range.

Per size and image set it prints each corruption's times and ratio reference / ours, then the
distribution of those ratios (geometric mean, median, min with the corruption, max), the same
without glass_blur (the reference's per-pixel Python loop, which rules any sum), and the sum of
times only after them. Any corruption where we are not faster is named. The first line per size
is the engine's round trip (uint8 -> unit float -> uint8 around a corruption that does nothing),
the floor under our times.

The reference needs a compatibility shim on current numpy / scikit-image (``tests/reference.py``:
pkg_resources, ``multichannel=``, ``np.float_``); it is installed once for the whole run, so the
only cost it adds is one keyword translation per scikit-image ``gaussian`` call (glass_blur,
gaussian_blur).

    .venv/bin/python benchmarks/corruption_speed.py
    .venv/bin/python benchmarks/corruption_speed.py --sizes 224 --repeats 1 --names glass_blur,pixelate

``--medical`` times the MR corruptions against TorchIO's and MONAI's transforms of the same
artifact instead (MR phantoms, float32 in [0, 1], ``--sizes``; each library's random transform at
a strength of its usual range, ours at severity 3 through ``corrupt``), the same way, and flags
any of ours that is not faster:

    .venv/bin/python benchmarks/corruption_speed.py --medical --sizes 256

Needs the dev dependencies (imagecorruptions, scikit-image; torchio and monai for --medical).
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

from _stats import (  # noqa: E402
    a_first,
    load_average,
    not_faster_note,
    spread,
    summarize_ratios,
    summary_over_repeats,
)

from medfm_robust_plugin import corrupt, list_corruptions  # noqa: E402
from medfm_robust_plugin.corruptions.spec import Corruption  # noqa: E402
from medfm_robust_plugin.data.phantoms import phantom  # noqa: E402

SEVERITY = 3
DEFAULT_SIZES = (224, 512)
DEFAULT_MODALITIES = ("dermoscopy", "endoscopy")
PHOTOGRAPHS = ("astronaut", "coffee")  # bundled with scikit-image
IMAGE_SETS = ("phantoms", "photographs")
# The reference's glass_blur swaps pixels in a pure-Python loop: it alone rules any sum.
PYTHON_LOOP = "glass_blur"


def load_reference() -> tuple[list[str], Callable[..., np.ndarray], Callable]:
    """(shared names, ``imagecorruptions.corrupt``, the shim context to run it in)."""
    if importlib.util.find_spec("imagecorruptions") is None:
        sys.exit("imagecorruptions is not installed: pip install -e '.[dev]' imagecorruptions")
    from tests.reference import _shimmed, reference_names  # also provides pkg_resources

    # imported only now: it needs the pkg_resources that tests.reference provides
    reference_corrupt = importlib.import_module("imagecorruptions").corrupt
    return reference_names(), reference_corrupt, _shimmed


def rgb_phantoms(size: int, modalities: list[str]) -> list[np.ndarray]:
    images = [phantom(m, size, seed=k).image for k, m in enumerate(modalities)]
    for modality, image in zip(modalities, images):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            sys.exit(
                f"phantom '{modality}' is not RGB uint8; pick colour modalities with --modalities"
            )
    return images


def photographs(size: int) -> list[np.ndarray]:
    """scikit-image's bundled photographs, centre-cropped square and resized to ``size``."""
    import skimage.data

    images = []
    for name in PHOTOGRAPHS:
        image = getattr(skimage.data, name)()
        side = min(image.shape[:2])
        top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
        square = np.ascontiguousarray(image[top : top + side, left : left + side])
        interpolation = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
        images.append(cv2.resize(square, (size, size), interpolation=interpolation))
    return images


def cpu_seconds_per_image(
    run: Callable[[np.ndarray, int], object], images: list[np.ndarray], min_seconds: float
) -> float:
    """CPU time per image of whole passes over ``images``, as many as fill ``min_seconds``."""
    passes = 0
    start = time.process_time()
    while True:
        for k, image in enumerate(images):
            run(image, k)
        passes += 1
        elapsed = time.process_time() - start
        if elapsed >= min_seconds:
            return elapsed / (passes * len(images))


def _unchanged(image: np.ndarray, param: object, rng: np.random.Generator) -> np.ndarray:
    return image.copy()


UNCHANGED = Corruption("unchanged", _unchanged, family="benchmark", severity_params=(0,) * 5)


def run_ours(image: np.ndarray, seed: int, *, name: str | Corruption) -> np.ndarray:
    return corrupt(image, name, SEVERITY, seed=seed)


def run_reference(
    reference_corrupt: Callable, image: np.ndarray, seed: int, *, name: str
) -> np.ndarray:
    # seeded once per pass by the caller (np.random's global state), not per call
    return reference_corrupt(image, severity=SEVERITY, corruption_name=name)


def time_pair(
    sides: dict[str, Callable], images: list[np.ndarray], ours_first: bool, min_seconds: float
) -> dict[str, float]:
    """Warm both sides, then time both, in the given order: seconds per image per side."""
    order = ["ours", "reference"] if ours_first else ["reference", "ours"]
    for side in order:
        np.random.seed(0)
        sides[side](images[0], 0)
    seconds = {}
    for side in order:
        np.random.seed(0)
        seconds[side] = cpu_seconds_per_image(sides[side], images, min_seconds)
    return seconds


def measure(
    images: list[np.ndarray],
    names: list[str],
    repeat: int,
    min_seconds: float,
    reference_corrupt: Callable,
    results: dict,
) -> None:
    """One repeat over every corruption of one (size, image set); appends to ``results``."""
    results.setdefault("(engine round trip)", {"ours": []})["ours"].append(
        cpu_seconds_per_image(functools.partial(run_ours, name=UNCHANGED), images, min_seconds)
    )
    for index, name in enumerate(names):
        sides = {
            "ours": functools.partial(run_ours, name=name),
            "reference": functools.partial(run_reference, reference_corrupt, name=name),
        }
        try:
            seconds = time_pair(sides, images, a_first(repeat, index), min_seconds)
        except Exception as exc:  # a broken reference corruption should not end the run
            results.setdefault("failed", {})[name] = f"{type(exc).__name__}: {exc}"
            continue
        entry = results.setdefault(name, {"ours": [], "reference": []})
        for side, value in seconds.items():
            entry[side].append(value)


def report(title: str, results: dict, names: list[str]) -> dict[str, list[float]]:
    """Print one (size, image set); return its per-repeat headline figures for the summary."""
    print(f"\n{title}")
    print(f"{'corruption':<20}{'ours ms':>10}{'reference ms':>14}{'ref/ours':>10}  range")
    floor = statistics.median(results["(engine round trip)"]["ours"])
    print(f"{'(engine round trip)':<20}{floor * 1e3:>10.2f}")
    for name, error in results.get("failed", {}).items():
        print(f"{name:<20}   reference failed: {error}")
    timed = [n for n in names if n in results]
    repeats = len(results[timed[0]]["ours"]) if timed else 0
    ratios = {
        n: [r / o for o, r in zip(results[n]["ours"], results[n]["reference"])] for n in timed
    }
    for name in timed:
        ours = statistics.median(results[name]["ours"])
        reference = statistics.median(results[name]["reference"])
        middle = statistics.median(ratios[name])
        low, high = min(ratios[name]), max(ratios[name])
        print(
            f"{name:<20}{ours * 1e3:>10.2f}{reference * 1e3:>14.2f}{middle:>10.2f}"
            f"  {low:.2f}-{high:.2f}{not_faster_note(middle)}"
        )
    if not timed:
        return {}
    per_repeat = [summarize_ratios({n: ratios[n][r] for n in timed}) for r in range(repeats)]
    print(f"ratio reference / ours per corruption, median (range) over {repeats} repeats:")
    for line in summary_over_repeats(per_repeat):
        print("  " + line)
    rest = [n for n in timed if n != PYTHON_LOOP]
    if PYTHON_LOOP in timed and rest:
        without = [summarize_ratios({n: ratios[n][r] for n in rest}) for r in range(repeats)]
        sums = [
            sum(results[n]["reference"][r] for n in rest) / sum(results[n]["ours"][r] for n in rest)
            for r in range(repeats)
        ]
        print(
            f"without {PYTHON_LOOP} (the reference's per-pixel Python loop): geometric mean "
            f"{spread([s.geomean for s in without], unit='x')}, median "
            f"{spread([s.median for s in without], unit='x')}, sum {spread(sums, unit='x')}"
        )
    sum_ours = [sum(results[n]["ours"][r] for n in timed) for r in range(repeats)]
    sum_reference = [sum(results[n]["reference"][r] for n in timed) for r in range(repeats)]
    sum_ratios = [r / o for o, r in zip(sum_ours, sum_reference)]
    print(
        f"sum of times (secondary: ruled by the slowest reference corruption): ours "
        f"{spread([s * 1e3 for s in sum_ours], unit=' ms')}, reference "
        f"{spread([s * 1e3 for s in sum_reference], unit=' ms')}, ratio {spread(sum_ratios, unit='x')}"
    )
    behind = [
        f"{n} {statistics.median(ratios[n]):.2f}x"
        for n in timed
        if not_faster_note(statistics.median(ratios[n]))
    ]
    print(
        "not faster than the reference here: "
        + (", ".join(behind) if behind else "none")
        + " (ratio below 1.10)"
    )
    return {
        "geomean": [s.geomean for s in per_repeat],
        "median": [s.median for s in per_repeat],
        "min": [s.low for s in per_repeat],
        "sum": sum_ratios,
        "worst": sorted({s.low_item for s in per_repeat}),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default=",".join(map(str, DEFAULT_SIZES)),
        help="comma-separated square sizes (default: 224,512)",
    )
    parser.add_argument(
        "--images",
        default=",".join(IMAGE_SETS),
        help="comma-separated image sets: phantoms, photographs (default: both)",
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="full runs, for the spread (default: 3)"
    )
    parser.add_argument(
        "--min-seconds",
        type=float,
        default=0.1,
        help="CPU seconds each timed measurement lasts at least (default: 0.1)",
    )
    parser.add_argument(
        "--names", default="", help="comma-separated corruptions (default: all shared)"
    )
    parser.add_argument(
        "--modalities",
        default=",".join(DEFAULT_MODALITIES),
        help="colour phantoms to time on (default: dermoscopy,endoscopy)",
    )
    parser.add_argument(
        "--medical",
        action="store_true",
        help="time the MR corruptions against TorchIO's and MONAI's same artifact instead",
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.medical:
        return medical(args)
    image_sets = [s.strip() for s in args.images.split(",") if s.strip()]
    unknown_sets = [s for s in image_sets if s not in IMAGE_SETS]
    if unknown_sets:
        parser.error(f"unknown image sets {unknown_sets}; choose from {', '.join(IMAGE_SETS)}")

    reference_names, reference_corrupt, shimmed = load_reference()
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
        "timed: CPU time of this process, one thread (cv2 "
        f"{cv2.getNumThreads()}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}); warm (one "
        f"untimed pass per corruption and side first); each measurement >= {args.min_seconds} s "
        "of CPU; ours and the reference interleaved, the first alternating; "
        f"{args.repeats} repeats"
    )
    print(
        "reference: imagecorruptions.corrupt(image, severity, corruption_name) called directly "
        "(shim for current numpy / scikit-image installed once for the run)"
    )
    print(f"at start: {load_average()}")
    loaders = {
        "phantoms": lambda size: rgb_phantoms(size, modalities),
        "photographs": photographs,
    }
    images = {(size, s): loaders[s](size) for size in sizes for s in image_sets}
    results: dict = {key: {} for key in images}
    with shimmed():
        for repeat in range(args.repeats):
            for key, batch in images.items():
                measure(batch, shared, repeat, args.min_seconds, reference_corrupt, results[key])
            print(f"repeat {repeat + 1} of {args.repeats} done; {load_average()}", file=sys.stderr)

    headlines = {}
    for (size, image_set), batch in images.items():
        described = modalities if image_set == "phantoms" else list(PHOTOGRAPHS)
        title = (
            f"{size} x {size} RGB uint8 {image_set} ({', '.join(described)}), severity "
            f"{SEVERITY}, {len(batch)} images"
        )
        headlines[size, image_set] = report(title, results[size, image_set], shared)

    print("\nsummary, ratio reference / ours per corruption, median (range) over repeats:")
    for (size, image_set), figures in headlines.items():
        if not figures:
            continue
        print(
            f"  {size:>4} {image_set:<12} geometric mean {spread(figures['geomean'], unit='x')}, "
            f"median {spread(figures['median'], unit='x')}, min {spread(figures['min'], unit='x')} "
            f"[{', '.join(figures['worst'])}]; sum {spread(figures['sum'], unit='x')}"
        )
    print(f"at end: {load_average()}")
    return 0


# ---------------------------------------------------------------------- TorchIO and MONAI


def medical_references() -> list[tuple[str, str, Callable[[], Callable[[np.ndarray], object]]]]:
    """(our corruption, the reference's name, a builder of the reference's call on one image)."""
    import monai.transforms as monai_transforms
    import torch
    import torchio as tio

    torch.set_num_threads(1)

    def torchio(transform: object) -> Callable[[np.ndarray], object]:
        # TorchIO takes (channels, x, y, z): a slice is a volume one voxel deep
        return lambda image: transform(torch.from_numpy(image[None, :, :, None]))

    def monai(transform: object) -> Callable[[np.ndarray], object]:
        return lambda image: transform(image[None])  # channels first

    return [
        ("mri_bias_field", "TorchIO RandomBiasField", lambda: torchio(tio.RandomBiasField())),
        (
            "mri_bias_field",
            "MONAI RandBiasField",
            lambda: monai(monai_transforms.RandBiasField(prob=1.0, coeff_range=(0.2, 0.3))),
        ),
        (
            "mri_rician_noise",
            "MONAI RandRicianNoise",
            lambda: monai(monai_transforms.RandRicianNoise(prob=1.0, std=0.05)),
        ),
        (
            "mri_gibbs_ringing",
            "MONAI RandGibbsNoise",
            lambda: monai(monai_transforms.RandGibbsNoise(prob=1.0, alpha=(0.4, 0.6))),
        ),
        (
            "mri_ghosting",
            "TorchIO RandomGhosting",
            lambda: torchio(tio.RandomGhosting(axes=(0, 1))),
        ),
        ("mri_motion", "TorchIO RandomMotion", lambda: torchio(tio.RandomMotion())),
        ("mri_kspace_spike", "TorchIO RandomSpike", lambda: torchio(tio.RandomSpike())),
        (
            "mri_kspace_spike",
            "MONAI RandKSpaceSpikeNoise",
            lambda: monai(
                monai_transforms.RandKSpaceSpikeNoise(prob=1.0, intensity_range=(10, 13))
            ),
        ),
    ]


def medical(args: argparse.Namespace) -> int:
    """Ours against TorchIO's and MONAI's same artifact, per size; returns the exit status."""
    from medfm_robust_plugin.data.phantoms import mri_slice

    try:
        pairs = medical_references()
    except ImportError as exc:
        sys.exit(f"--medical needs torchio and monai: pip install -e '.[dev]' ({exc})")
    print(
        "timed: CPU time of this process, one thread (torch, cv2, OpenMP); warm; each "
        f"measurement >= {args.min_seconds} s of CPU; ours and the reference interleaved, the "
        f"first alternating; {args.repeats} repeats; at start: {load_average()}"
    )
    for size in [int(size) for size in args.sizes.split(",") if size.strip()]:
        images = [
            np.ascontiguousarray(mri_slice(size, seed=k).image / 1000.0, dtype=np.float32)
            for k in range(3)
        ]
        print(f"\n{size} x {size} MR phantoms (float32, 3 images), ours at severity {SEVERITY}")
        print(f"{'ours':<20}{'reference':<28}{'ours ms':>9}{'ref ms':>9}{'ref/ours':>10}  range")
        floor = functools.partial(run_medical, name=UNCHANGED)
        print(f"{'(engine round trip)':<48}{cpu_seconds_per_image(floor, images, 0.2) * 1e3:>9.2f}")
        for index, (name, label, build) in enumerate(pairs):
            reference = build()
            sides = {
                "ours": functools.partial(run_medical, name=name),
                "reference": lambda image, seed, reference=reference: reference(image),
            }
            ratios, ours_ms, reference_ms = [], [], []
            for repeat in range(args.repeats):
                seconds = time_pair(sides, images, a_first(repeat, index), args.min_seconds)
                ratios.append(seconds["reference"] / seconds["ours"])
                ours_ms.append(seconds["ours"] * 1e3)
                reference_ms.append(seconds["reference"] * 1e3)
            middle = statistics.median(ratios)
            print(
                f"{name:<20}{label:<28}{statistics.median(ours_ms):>9.2f}"
                f"{statistics.median(reference_ms):>9.2f}{middle:>10.2f}  "
                f"{min(ratios):.2f}-{max(ratios):.2f}{not_faster_note(middle)}"
            )
    print(f"at end: {load_average()}")
    return 0


def run_medical(image: np.ndarray, seed: int, *, name: str | Corruption) -> np.ndarray:
    return corrupt(image, name, SEVERITY, seed=seed, modality="mri")


if __name__ == "__main__":
    sys.exit(main())
