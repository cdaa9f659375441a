"""Materialize: throughput (images/s) and memory for 1,000 vs 5,000 samples, and 1 vs 2 workers,
with memory counted over every process of the run as well as the largest single one.

    python benchmarks/materialize.py [--sizes 1000,5000] [--procs 1,2] [--repeats 3]
                                     [--corruption gaussian_noise]

Each configuration runs in a fresh Python process (cold: imports, render cache and allocator
start empty), which with ``num_proc`` N starts N worker processes of its own. The items are the
Mini VQA phantoms, clean plus one corruption at one severity per sample.

What is timed: wall time of the ``materialize`` call (worker start-up included), numpy / OpenCV
threads as the environment sets them. What is measured for memory (Linux ``/proc``), over the
configuration's process and all its descendants:

- peak of the summed RSS, sampled every ``--sample-seconds`` (0.1 s): what the run takes from
  the machine (shared library pages count once per process, so this over-counts them);
- peak of the summed PSS (shared pages split between the processes that map them), sampled alike;
- the largest single process's peak RSS (``ru_maxrss``, exact), the figure earlier versions
  printed alone, which makes 2 workers look lighter than 1.

The configurations run one at a time, in an order that reverses from one repeat to the next.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _stats import load_average, spread

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
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"items": result["written"], "seconds": seconds,
                  "largest_rss_mb": max(own, workers) / 1024, "main_rss_mb": own / 1024}))
"""


def descendants(root: int) -> list[int]:
    """``root`` and every process below it, from /proc's parent links."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in kB; (0, 0) once it is gone."""
    try:
        rss = pss = 0
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
        return rss, pss
    except (OSError, ValueError):
        return 0, 0


def run(samples: int, procs: int, corruption: str, sample_seconds: float) -> dict:
    peak_rss = peak_pss = 0
    most_processes = 0
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(samples), str(procs), corruption, out],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        while child.poll() is None:
            pids = descendants(child.pid)
            usage = [memory_kb(pid) for pid in pids]
            peak_rss = max(peak_rss, sum(u[0] for u in usage))
            peak_pss = max(peak_pss, sum(u[1] for u in usage))
            most_processes = max(most_processes, sum(1 for u in usage if u[0]))
            time.sleep(sample_seconds)
        stdout, stderr = child.communicate()
        wall = time.perf_counter() - started
    if child.returncode != 0:
        sys.exit(f"materialize of {samples} samples with {procs} procs failed:\n{stderr}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result.update(
        images_per_s=result["items"] / result["seconds"],
        sum_rss_mb=peak_rss / 1024,
        sum_pss_mb=peak_pss / 1024,
        processes=most_processes,
        wall=wall,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--procs", default="1,2")
    parser.add_argument("--corruption", default="gaussian_noise")
    parser.add_argument("--repeats", type=int, default=3, help="full runs, for the spread")
    parser.add_argument("--sample-seconds", type=float, default=0.1, help="memory sampling period")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    sizes = [int(s) for s in args.sizes.split(",")]
    procs = [int(p) for p in args.procs.split(",")]
    configs = [(size, proc) for size in sizes for proc in procs]
    print(
        f"timed: wall time of materialize in a fresh process per configuration (cold), worker "
        f"start-up included; {os.cpu_count()} CPUs; OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS', 'unset')}; {args.repeats} repeats, the order of "
        f"configurations reversed every other repeat; memory sampled every {args.sample_seconds} s"
    )
    print(f"at start: {load_average()}")

    results: dict[tuple[int, int], list[dict]] = {c: [] for c in configs}
    for repeat in range(args.repeats):
        for size, proc in configs if repeat % 2 == 0 else configs[::-1]:
            r = run(size, proc, args.corruption, args.sample_seconds)
            results[size, proc].append(r)
            print(
                f"  {size:>6} samples, {proc} worker(s): {r['images_per_s']:.1f} images/s, RSS sum "
                f"{r['sum_rss_mb']:.0f} MB, PSS sum {r['sum_pss_mb']:.0f} MB, largest process "
                f"{r['largest_rss_mb']:.0f} MB; {load_average()}",
                flush=True,
            )
        print(f"  repeat {repeat + 1} of {args.repeats} done; {load_average()}")

    print("\nper configuration, median (range) over repeats:")
    for size, proc in configs:
        rs = results[size, proc]
        print(
            f"{size:>6} samples, {proc} worker(s), {rs[0]['items']} images, up to "
            f"{max(r['processes'] for r in rs)} processes:\n"
            f"    {spread([r['images_per_s'] for r in rs], '{:.1f}')} images/s "
            f"({spread([r['seconds'] for r in rs], '{:.1f}', ' s')})\n"
            f"    memory, all processes: peak RSS sum {spread([r['sum_rss_mb'] for r in rs], '{:.0f}', ' MB')}, "
            f"peak PSS sum {spread([r['sum_pss_mb'] for r in rs], '{:.0f}', ' MB')}\n"
            f"    largest single process: {spread([r['largest_rss_mb'] for r in rs], '{:.0f}', ' MB')} "
            f"(main process {spread([r['main_rss_mb'] for r in rs], '{:.0f}', ' MB')})"
        )

    def ratio(key: str, a: tuple[int, int], b: tuple[int, int]) -> list[float]:
        return [x[key] / y[key] for x, y in zip(results[a], results[b])]

    small, large = sizes[0], sizes[-1]
    if large != small:
        print(
            f"\nmemory ratio {large} / {small} samples (goal <= 1.2), median (range) over repeats:"
        )
        for proc in procs:
            pair = (large, proc), (small, proc)
            print(
                f"  {proc} worker(s): RSS sum {spread(ratio('sum_rss_mb', *pair))}, PSS sum "
                f"{spread(ratio('sum_pss_mb', *pair))}, largest process "
                f"{spread(ratio('largest_rss_mb', *pair))}"
            )
    if len(procs) > 1:
        few, many = procs[0], procs[-1]
        print(f"\n{many} vs {few} workers, median (range) over repeats:")
        for size in sizes:
            pair = (size, many), (size, few)
            speed = ratio("images_per_s", *pair)
            extra = [
                (x["sum_rss_mb"] - y["sum_rss_mb"]) / (many - few)
                for x, y in zip(results[pair[0]], results[pair[1]])
            ]
            extra_pss = [
                (x["sum_pss_mb"] - y["sum_pss_mb"]) / (many - few)
                for x, y in zip(results[pair[0]], results[pair[1]])
            ]
            verdict = "" if statistics.median(speed) >= 1.1 else "  << more workers not faster here"
            print(
                f"  {size} samples: throughput {spread(speed, unit='x')}; memory per added worker "
                f"{spread(extra, '{:.0f}', ' MB')} RSS, {spread(extra_pss, '{:.0f}', ' MB')} PSS; "
                f"largest process {spread(ratio('largest_rss_mb', *pair), unit='x')}{verdict}"
            )
    print(f"at end: {load_average()}")


if __name__ == "__main__":
    main()
