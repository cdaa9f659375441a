"""Runner overhead with an instant model: time per (sample, condition) spent outside the corruption
and the model (records, metrics, SSIM, JSON, resume bookkeeping), with views made in the runner's
process (``workers=0``), and throughput with 2 view worker processes against it, measured in one
run on the same items.

    python benchmarks/runner_overhead.py [--limit 40] [--corruptions gaussian_noise,contrast]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from medfm_robust_plugin.models.base import Capabilities, Generation
from medfm_robust_plugin.runner import Run, RunConfig, read_records


class InstantModel:
    """Answers at once, so that everything measured is the runner's own work."""

    name = "instant"
    capabilities = Capabilities(max_batch=8)

    def generate(self, items, max_new_tokens=256, temperature=0.0, system=None):
        return [Generation("A") for _ in items]


def run_once(limit: int, corruptions: list[str], workers: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as out:
        config = RunConfig(
            task="MedFMRobust-Mini-VQA",
            model="instant",
            out=out,
            corruptions=corruptions,
            severities=[1, 3, 5],
            limit=limit,
            workers=workers,
        )
        job = Run(config)
        started = time.perf_counter()
        result = job.execute(InstantModel())
        total = time.perf_counter() - started
        records = list(read_records(result.run_dir))
    views = sum(r["seconds"]["view"] for r in records)
    model = sum(r["seconds"]["model"] for r in records)
    return {"items": len(records), "total": total, "views": views, "model": model}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--corruptions", default="gaussian_noise,contrast,motion_blur")
    args = parser.parse_args()
    corruptions = args.corruptions.split(",")

    run_once(5, corruptions, 0)  # warm-up: imports, registry, first phantoms
    one = run_once(args.limit, corruptions, 0)
    overhead_ms = (one["total"] - one["views"] - one["model"]) / one["items"] * 1e3
    print(
        f"items: {one['items']} (samples {args.limit}, corruptions {corruptions}, severities 1,3,5)"
    )
    print(
        f"in process: {one['total']:.2f} s total, {one['views']:.2f} s in views (corruption), "
        f"{one['model']:.3f} s in the model"
    )
    print(
        f"runner overhead per item, corruption and model excluded: {overhead_ms:.2f} ms (goal <= 2 ms)"
    )
    two = run_once(args.limit, corruptions, 2)
    print(f"2 worker processes: {two['total']:.2f} s total (their start-up included)")
    print(
        f"throughput: in process {one['items'] / one['total']:.1f} items/s, 2 workers "
        f"{two['items'] / two['total']:.1f} items/s, ratio {one['total'] / two['total']:.2f}x"
    )


if __name__ == "__main__":
    main()
