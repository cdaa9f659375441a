"""Materialize throughput: local executor (1 and 2 processes) against Ray (1 and 2 nodes), same run.

Every configuration writes the same plan (Mini VQA phantoms at ``--size`` px, ``--per-modality``
cases per modality, every corruption of each modality's suite at severities 1-5, table levels) as
Parquet shards into a fresh folder, in a process of its own; the time is that process's wall time
around ``materialize`` (for Ray, after it has joined the cluster and run a first job of two items
that starts Ray Data and the worker processes: both are reported apart). Ray
runs on a real cluster of 1 CPU per node in a network namespace with only loopback (see
``tests/ray_cluster.py``; needs root, ``unshare`` and ``nsenter``). Also prints the mean CPU time
per item per modality (one process, one thread), the figure that ``docs/scaling.md`` multiplies;
the modalities the Mini suite lacks are timed on its phantoms of the same kind (ultrasound and OCT
on the X-ray ones, pathology on dermoscopy, fundus on endoscopy) under their own suites.

    python benchmarks/scale.py [--size 256] [--per-modality 4] [--shard-size 64] [--no-ray]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, time
from medfm_robust_plugin.materialize import Plan, materialize
from medfm_robust_plugin.tasks import DatasetRef, get_task

size, per_modality, shard_size, procs, executor, address, out = sys.argv[1:8]
card = get_task("MedFMRobust-Mini-VQA").with_overrides(
    datasets=(DatasetRef("medfm_robust_mini", {"task": "vqa", "per_modality": int(per_modality),
                                               "image_size": int(size)}),)
)
plan = Plan(card, severities=(1, 2, 3, 4, 5))
joined = first = 0.0
if executor == "ray":
    from medfm_robust_plugin.on_ray.cluster import connect
    start = time.perf_counter()
    connect(address)
    joined = time.perf_counter() - start
    # what a job costs before its first item: Ray Data's start, worker processes, the task's load
    start = time.perf_counter()
    materialize(Plan(card, limit=1, corruptions=("contrast",), severities=(1,)), out + "-first",
                "parquet", executor="ray", ray_address=address)
    first = time.perf_counter() - start
start = time.perf_counter()
result = materialize(plan, out, "parquet", int(procs), executor=executor,
                     ray_address=address if executor == "ray" else None, shard_size=int(shard_size))
seconds = time.perf_counter() - start
print(json.dumps({"items": result["written"], "failed": result["failed"], "seconds": seconds,
                  "join_seconds": joined, "first_job_seconds": first}))
"""

PER_ITEM = """
import collections, dataclasses, json, os, sys, time
for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[v] = "1"
from medfm_robust_plugin.materialize import Plan
from medfm_robust_plugin.tasks import DatasetRef, get_task

size, per_modality = int(sys.argv[1]), int(sys.argv[2])
card = get_task("MedFMRobust-Mini-VQA").with_overrides(
    datasets=(DatasetRef("medfm_robust_mini", {"task": "vqa", "per_modality": per_modality,
                                               "image_size": size}),)
)
plan = Plan(card, severities=(1, 2, 3, 4, 5))
samples = plan.samples()
# modalities the Mini suite lacks: its phantoms of the same kind, under that modality's suite
stand_in = {"ultrasound": "xray", "oct": "xray", "pathology": "dermoscopy", "fundus": "endoscopy"}
for modality, like in stand_in.items():
    samples += [dataclasses.replace(s, id=f"{modality}-{s.id}", modality=modality)
                for s in plan.samples() if s.modality == like]
views = plan.views(memory_items=1)
cost = collections.defaultdict(list)
for item in plan.items(samples):
    start = time.process_time()
    views.get(item.sample, item.condition, corruption=item.spec)
    cost[item.sample.modality].append(time.process_time() - start)
print(json.dumps({m: {"items": len(v), "ms_per_item": 1000 * sum(v) / len(v)}
                  for m, v in sorted(cost.items())}))
"""


def child(args: list[str], runner=None) -> dict:
    command = [sys.executable, "-c", CHILD, *args]
    done = runner(command) if runner else subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--per-modality", type=int, default=4)
    parser.add_argument("--shard-size", type=int, default=64)
    parser.add_argument("--no-ray", action="store_true", help="Only the local executor.")
    args = parser.parse_args()
    common = [str(args.size), str(args.per_modality), str(args.shard_size)]

    per_item = subprocess.run(
        [sys.executable, "-c", PER_ITEM, str(args.size), str(args.per_modality)],
        capture_output=True,
        text=True,
        check=True,
    )
    costs = json.loads(per_item.stdout.strip().splitlines()[-1])
    print(f"CPU time per item at {args.size} px (one thread, table levels, severities 1-5):")
    for modality, figures in costs.items():
        print(f"  {modality:12s} {figures['ms_per_item']:7.1f} ms  ({figures['items']} items)")

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="medfm-scale-") as folder:
        for procs in (1, 2):
            out = str(Path(folder) / f"local-{procs}")
            results[f"local, {procs} process(es)"] = child([*common, str(procs), "local", "", out])
        if not args.no_ray:
            sys.path.insert(0, str(ROOT))
            from tests.ray_cluster import LoopbackRayCluster, missing_tools

            reason = missing_tools()
            if reason:
                print(f"Ray left out: {reason}")
            for nodes in (1, 2) if not reason else ():
                with LoopbackRayCluster(workers=nodes - 1, cpus=1) as cluster:
                    out = str(Path(folder) / f"ray-{nodes}")
                    extra = [*common, "1", "ray", cluster.address, out]
                    results[f"ray, {nodes} node(s) x 1 CPU"] = child(extra, cluster.run)

    base = results["local, 1 process(es)"]
    print(f"\nmaterialize --format parquet, {base['items']} items, shards of {args.shard_size}:")
    for name, r in results.items():
        rate = r["items"] / r["seconds"]
        line = f"  {name:28s} {rate:8.1f} items/s  ({r['seconds']:.1f} s"
        if r["join_seconds"]:
            overhead = (r["seconds"] - base["seconds"]) / r["items"] * 1000
            line += (
                f"; joining {r['join_seconds']:.1f} s, a first 2-item job "
                f"{r['first_job_seconds']:.1f} s; vs local 1 process {overhead:+.2f} ms/item"
            )
        print(line + ")")
    print(json.dumps({"per_item": costs, "runs": results, "when": time.strftime("%Y-%m-%d %H:%M")}))


if __name__ == "__main__":
    main()
