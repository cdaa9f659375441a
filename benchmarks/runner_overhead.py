"""Runner overhead with an instant model, and 2 view worker processes against views made in the
runner's process (``workers=0``), each compared at equal cache state.

    python benchmarks/runner_overhead.py [--limit 40] [--corruptions gaussian_noise,contrast]
                                         [--repeats 3]

The Mini VQA phantoms are rendered once per process and kept (a render cache), so a run that
follows another on the same samples starts with its clean images made. Every comparison is
therefore made in two cache states, both sides alike:

- cold: the runner process's render cache is emptied before the run, so views pay for rendering;
- warm: every phantom of the run is rendered in the runner process first (not timed), so in
  process the view time is the corruption alone. View workers are spawned processes with caches
  of their own, cold in both states: warm only helps what the runner process renders itself
  (the clean views).

What is timed: wall time (``time.perf_counter``), since the view workers are other processes,
their start-up included; numpy / OpenCV threads as the environment sets them. The overhead per
item is the run's wall time less the view and model time the records give, over the items, in
process (``workers=0``); in the cold state the view time includes rendering, in the warm state
it does not. Per cache state the two runs go back to back, which goes first alternating from one
repeat to the next, after one untimed warm-up run (imports, registry).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from _stats import a_first, load_average, spread, summarize_ratios

from medfm_robust_plugin.data import mini
from medfm_robust_plugin.models.base import Capabilities, Generation
from medfm_robust_plugin.runner import Run, RunConfig, read_records

STATES = ("cold", "warm")


class InstantModel:
    """Answers at once, so that everything measured is the runner's own work."""

    name = "instant"
    capabilities = Capabilities(max_batch=8)

    def generate(self, items, max_new_tokens=256, temperature=0.0, system=None):
        return [Generation("A") for _ in items]


def config_for(out: str, limit: int, corruptions: list[str], workers: int) -> RunConfig:
    return RunConfig(
        task="MedFMRobust-Mini-VQA",
        model="instant",
        out=out,
        corruptions=corruptions,
        severities=[1, 3, 5],
        limit=limit,
        workers=workers,
    )


def prepare_cache(state: str, limit: int, corruptions: list[str]) -> float:
    """Empty the render cache; in the warm state render every phantom of the run again.
    Returns the seconds the rendering took (0 when cold)."""
    mini._render.cache_clear()
    if state == "cold":
        return 0.0
    with tempfile.TemporaryDirectory() as out:
        samples = {
            item.sample.id: item.sample
            for item in Run(config_for(out, limit, corruptions, 0)).work()
        }
    started = time.perf_counter()
    for sample in samples.values():
        sample.load_image()
    return time.perf_counter() - started


def run_once(limit: int, corruptions: list[str], workers: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as out:
        job = Run(config_for(out, limit, corruptions, workers))
        started = time.perf_counter()
        result = job.execute(InstantModel())
        total = time.perf_counter() - started
        records = list(read_records(result.run_dir))
    views = sum(r["seconds"]["view"] for r in records)
    model = sum(r["seconds"]["model"] for r in records)
    info = mini._render.cache_info()
    return {
        "items": len(records),
        "total": total,
        "views": views,
        "model": model,
        "overhead_ms": (total - views - model) / len(records) * 1e3,
        "render_hits": info.hits,
        "render_misses": info.misses,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--corruptions", default="gaussian_noise,contrast,motion_blur")
    parser.add_argument(
        "--workers", type=int, default=2, help="view workers to compare (default 2)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="full runs, for the spread")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    corruptions = args.corruptions.split(",")
    if args.limit > mini._render.cache_info().maxsize:
        parser.error(
            f"--limit above the render cache's {mini._render.cache_info().maxsize} phantoms: the warm state would not hold"
        )

    print(
        f"timed: wall time, {os.cpu_count()} CPUs, OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS', 'unset')}; {args.repeats} repeats; per cache state "
        f"workers=0 and workers={args.workers} back to back, the first alternating; "
        "one untimed warm-up run first"
    )
    print(f"at start: {load_average()}")
    run_once(5, corruptions, 0)  # warm-up: imports, registry, first phantoms

    runs: dict[tuple[str, int], list[dict]] = {}
    renders: list[float] = []
    for repeat in range(args.repeats):
        for state in STATES:
            order = (0, args.workers) if a_first(repeat) else (args.workers, 0)
            for workers in order:
                render = prepare_cache(state, args.limit, corruptions)
                if state == "warm" and workers == 0:
                    renders.append(render)
                runs.setdefault((state, workers), []).append(
                    run_once(args.limit, corruptions, workers)
                )
        print(f"  repeat {repeat + 1} of {args.repeats} done; {load_average()}")

    one = runs["cold", 0][0]
    print(
        f"items: {one['items']} (samples {args.limit}, corruptions {corruptions}, severities 1,3,5)"
    )
    for state in STATES:
        inproc = runs[state, 0]
        pooled = runs[state, args.workers]
        print(
            f"\n{state}: render cache of the runner process {'emptied' if state == 'cold' else 'filled'} before each run"
        )
        print(
            f"  in process: total {spread([r['total'] for r in inproc], unit=' s')}, views "
            f"{spread([r['views'] for r in inproc], unit=' s')}"
            + (" (rendering + corruption)" if state == "cold" else " (corruption only)")
            + f", render cache hits/misses {inproc[0]['render_hits']}/{inproc[0]['render_misses']}"
        )
        print(
            "  runner overhead per item, views and model excluded: "
            f"{spread([r['overhead_ms'] for r in inproc], unit=' ms')} (goal <= 2 ms)"
        )
        print(
            f"  {args.workers} worker processes: total {spread([r['total'] for r in pooled], unit=' s')} "
            "(their start-up included)"
        )
        ratios = {
            f"repeat {k + 1}": a["total"] / b["total"]
            for k, (a, b) in enumerate(zip(inproc, pooled))
        }
        s = summarize_ratios(ratios)
        verdict = "" if s.median >= 1.1 else "  << workers not faster here"
        print(
            f"  throughput {args.workers} workers / in process, per repeat: geometric mean "
            f"{s.geomean:.2f}x, median {s.median:.2f}x, min {s.low:.2f}x, max {s.high:.2f}x"
            f" (items/s in process {spread([r['items'] / r['total'] for r in inproc], '{:.1f}')}, "
            f"{args.workers} workers {spread([r['items'] / r['total'] for r in pooled], '{:.1f}')}){verdict}"
        )
    if renders:
        print(
            f"\nrendering the {args.limit} phantoms in process (the warm state's setup): "
            f"{spread([r * 1e3 / args.limit for r in renders], '{:.1f}', ' ms')} per sample"
        )
    print(f"at end: {load_average()}")


if __name__ == "__main__":
    main()
