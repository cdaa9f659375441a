"""Materialize: throughput (images/s) and peak memory for 1,000 vs 5,000 samples, and 1 vs 2 workers.

Each configuration runs in its own process, so its peak RSS (its own and its workers') is its own.
The items are the Mini VQA phantoms, clean plus one corruption at one severity per sample.

    python benchmarks/materialize.py [--sizes 1000,5000] [--procs 1,2] [--corruption gaussian_noise]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time

CHILD = """
import json, resource, sys, time
from medfm_robust_plugin.materialize import Plan, materialize
from medfm_robust_plugin.tasks import DatasetRef, get_task

samples, procs, corruption, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
card = get_task("MedFMRobust-Mini-VQA").with_overrides(
    datasets=(DatasetRef("medfm_robust_mini", {"task": "vqa", "per_modality": samples // 5}),)
)
plan = Plan(card, corruptions=(corruption,), severities=(3,))
start = time.perf_counter()
result = materialize(plan, out, num_proc=procs)
seconds = time.perf_counter() - start
rss_kb = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(json.dumps({"items": result["written"], "seconds": seconds, "peak_rss_mb": rss_kb / 1024}))
"""


def run(samples: int, procs: int, corruption: str) -> dict:
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(samples), str(procs), corruption, out],
            capture_output=True,
            text=True,
            check=True,
        )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["images_per_s"] = result["items"] / result["seconds"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--procs", default="1,2")
    parser.add_argument("--corruption", default="gaussian_noise")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    procs = [int(p) for p in args.procs.split(",")]

    results = {}
    for size in sizes:
        for proc in procs:
            started = time.perf_counter()
            results[size, proc] = run(size, proc, args.corruption)
            r = results[size, proc]
            print(
                f"{size:>6} samples, {proc} proc: {r['items']:>6} images in {r['seconds']:7.1f} s, "
                f"{r['images_per_s']:7.1f} images/s, peak RSS {r['peak_rss_mb']:7.1f} MB "
                f"(wall incl. start {time.perf_counter() - started:.1f} s)"
            )
    small, large = sizes[0], sizes[-1]
    for proc in procs:
        ratio = results[large, proc]["peak_rss_mb"] / results[small, proc]["peak_rss_mb"]
        print(f"peak RSS ratio {large} / {small} samples, {proc} proc: {ratio:.2f} (goal <= 1.2)")
    for size in sizes:
        speedup = results[size, procs[-1]]["images_per_s"] / results[size, procs[0]]["images_per_s"]
        print(f"throughput {procs[-1]} vs {procs[0]} procs at {size} samples: {speedup:.2f}x")


if __name__ == "__main__":
    main()
