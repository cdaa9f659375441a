"""--executor ray on a real Ray cluster (a head and one more worker node, 1 CPU each) that runs in
a network namespace with only loopback (see ``ray_cluster``): the items are the local executor's
bytes, a killed worker or driver costs only unfinished work, and nothing is listed twice.

Ray itself never starts in the test process: every Ray command runs in the namespace.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medfm_robust_plugin import materialize as mat
from medfm_robust_plugin.tasks import get_task

from .ray_cluster import LoopbackRayCluster, missing_tools

pytest.importorskip("ray")
pytest.importorskip("pyarrow")
_unavailable = missing_tools()
pytestmark = pytest.mark.skipif(_unavailable is not None, reason=_unavailable or "")

SMALL = {"limit": 6, "corruptions": ("gaussian_noise", "contrast"), "severities": (1, 5)}
# about 430 items of a few ms each: long enough to kill something in the middle of it
LARGE = {"limit": 10, "severities": (1, 3, 5)}


@pytest.fixture(scope="module")
def cluster():
    with LoopbackRayCluster(workers=1, cpus=1) as running:
        yield running


def plan(task="MedFMRobust-Mini-VQA-Lite", **options):
    return mat.Plan(get_task(task), **options)


def cli(out: Path, task: str, options: dict, *extra: str) -> list[str]:
    args = [sys.executable, "-m", "medfm_robust_plugin", "materialize", "--task", task]
    args += ["--out", str(out), "--limit", str(options["limit"])]
    if options.get("corruptions"):
        args += ["--corruptions", ",".join(options["corruptions"])]
    args += ["--severities", ",".join(map(str, options["severities"]))]
    return [*args, *extra]


def on_ray(cluster, *extra: str) -> list[str]:
    return ["--executor", "ray", "--ray-address", cluster.address, *extra]


def hashes(out: Path) -> dict[str, str]:
    records = list(mat.read_manifest(out))
    keys = [r["key"] for r in records]
    assert len(keys) == len(set(keys)), "a key is listed twice"
    return {r["key"]: r["sha256"] for r in records}


def shard_rows(out: Path) -> dict[str, str]:
    """key -> sha256 of the image bytes, read from the Parquet shards themselves."""
    import pyarrow.parquet as pq

    rows: dict[str, str] = {}
    for path in sorted((out / "shards").glob("*.parquet")):
        table = pq.read_table(path, columns=["key", "image"]).to_pylist()
        for row in table:
            assert row["key"] not in rows, f"{row['key']} is in two shards"
            rows[row["key"]] = hashlib.sha256(row["image"]["bytes"]).hexdigest()
    return rows


def test_ray_writes_the_bytes_of_the_local_executor_and_both_readers_load_them(tmp_path, cluster):
    task = "MedFMRobust-Mini-Seg-Lite"
    mat.materialize(plan(task, **SMALL), tmp_path / "local", num_proc=0)
    mat.materialize(plan(task, **SMALL), tmp_path / "local-pq", "parquet", 0, shard_size=8)
    for name, fmt in (("ray", "folder"), ("ray-pq", "parquet")):
        args = cli(tmp_path / name, task, SMALL, "--format", fmt, "--shard-size", "8")
        done = cluster.run(args + on_ray(cluster))
        assert done.returncode == 0, done.stderr[-3000:]

    expected = hashes(tmp_path / "local")
    assert len(expected) == mat.count_items(plan(task, **SMALL)) > 20
    assert hashes(tmp_path / "ray") == hashes(tmp_path / "ray-pq") == expected
    for path in (tmp_path / "ray" / "items").rglob("*.png"):  # the files, not only the records
        assert (
            path.read_bytes()
            == (tmp_path / "local" / path.relative_to(tmp_path / "ray")).read_bytes()
        )
    assert shard_rows(tmp_path / "ray-pq") == expected
    local_shards = sorted((tmp_path / "local-pq" / "shards").iterdir())
    assert [p.name for p in local_shards] == sorted(
        p.name for p in (tmp_path / "ray-pq" / "shards").iterdir()
    )
    for path in local_shards:  # one writer function: the same shard files, marker and all
        assert path.read_bytes() == (tmp_path / "ray-pq" / "shards" / path.name).read_bytes()

    import datasets

    files = str(tmp_path / "ray-pq" / "shards" / "*.parquet")
    loaded = datasets.load_dataset(
        "parquet", data_files=files, split="train", cache_dir=str(tmp_path / "hf")
    )
    assert sorted(loaded["key"]) == sorted(expected)
    row = loaded[0]
    assert row["image"].size == (128, 128) and row["mask"].size == (128, 128)

    read = (
        "import hashlib, json, sys, ray\n"
        f"ray.init(address={cluster.address!r})\n"
        f"rows = ray.data.read_parquet({str(tmp_path / 'ray-pq' / 'shards')!r}).take_all()\n"
        "print(json.dumps({r['key']: hashlib.sha256(r['image']['bytes']).hexdigest() for r in rows}))\n"
    )
    done = cluster.run([sys.executable, "-c", read])
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == expected


@pytest.fixture(scope="module")
def large_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    mat.materialize(plan("MedFMRobust-Mini-VQA", **LARGE), out, num_proc=0)
    return hashes(out)


def test_a_worker_killed_mid_job_costs_only_its_items(tmp_path, cluster, large_reference):
    out = tmp_path / "killed-worker"
    args = cli(out, "MedFMRobust-Mini-VQA", LARGE, "--format", "parquet", "--shard-size", "10")
    job = cluster.popen(
        args + on_ray(cluster), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    killed = None
    while job.poll() is None and killed is None:
        busy = [pid for pid, line in cluster.processes().items() if line.startswith("ray::Map(")]
        done = len(list((out / "shards").glob("*.done.json"))) if (out / "shards").exists() else 0
        if busy and done >= 2:  # in the middle of the job, and of a task
            killed = busy[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.02)
    stdout, stderr = job.communicate(timeout=300)
    assert killed is not None, "the job ended before a worker could be killed"
    assert job.returncode == 0, stderr[-3000:]
    assert killed not in cluster.processes()
    assert "will be retried" in stdout + stderr  # Ray's word that the task was in flight
    assert "0 failed" in stdout
    assert hashes(out) == shard_rows(out) == large_reference


def test_a_group_whose_worker_always_dies_is_recorded_failed_and_redone_by_a_rerun(
    tmp_path, cluster
):
    """Ray Data would run a task whose worker dies again without end: here every try of the one
    group is killed, the job ends after WORKER_DEATH_RETRIES + 1 tries with its items recorded as
    failed (none listed as made), and a rerun makes them all, with the local executor's bytes."""
    from medfm_robust_plugin.on_ray.materialize import WORKER_DEATH_RETRIES

    task = "MedFMRobust-Mini-Seg-Lite"
    mat.materialize(plan(task, **SMALL), tmp_path / "local", num_proc=0)
    expected = hashes(tmp_path / "local")
    out = tmp_path / "poisoned"
    args = cli(out, task, SMALL, "--shard-size", "1000") + on_ray(cluster)  # one group
    job = cluster.popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed: set[int] = set()
    deadline = time.monotonic() + 240
    while job.poll() is None and time.monotonic() < deadline:
        for pid, line in cluster.processes().items():
            if line.startswith("ray::Map(") and pid not in killed:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                killed.add(pid)
        time.sleep(0.02)
    stdout, stderr = job.communicate(timeout=60)
    assert job.returncode == 0, stderr[-3000:]
    assert len(killed) == WORKER_DEATH_RETRIES + 1, (killed, stdout, stderr[-3000:])
    assert f"0 written, 0 already done, {len(expected)} failed" in stdout
    failures = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert sorted(f["key"] for f in failures) == sorted(expected)
    assert all("WorkerDied" in f["error"] and f["sample_id"] for f in failures)
    assert not list(mat.read_manifest(out))

    again = cluster.run(args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{len(expected)} written, 0 already done, 0 failed" in again.stdout
    assert hashes(out) == expected


def test_a_killed_driver_is_resumed_with_the_missing_shards_only(
    tmp_path, cluster, large_reference
):
    out = tmp_path / "killed-driver"
    args = cli(out, "MedFMRobust-Mini-VQA", LARGE, "--format", "parquet", "--shard-size", "10")
    job = cluster.popen(args + on_ray(cluster), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    markers = out / "shards"
    deadline = time.monotonic() + 240
    while job.poll() is None and time.monotonic() < deadline:
        if markers.exists() and len(list(markers.glob("*.done.json"))) >= 3:
            job.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    job.wait(timeout=60)
    assert job.returncode == -signal.SIGKILL, "the job ended before its driver could be killed"
    finished = len(list(markers.glob("*.done.json")))
    total = len(large_reference)
    assert 3 <= finished < -(-total // 10)

    again = cluster.run(args + on_ray(cluster))
    assert again.returncode == 0, again.stderr[-3000:]
    already = int(again.stdout.split(" already done")[0].split()[-1])
    assert already >= finished * 10 - 10 and f"{total - already} written" in again.stdout
    assert hashes(out) == shard_rows(out) == large_reference


def test_run_on_ray_gives_the_records_of_a_local_run_and_resumes(tmp_path, cluster):
    """A tiny random-weight VLM (a real transformers checkpoint) in model actors on both nodes."""
    from .tiny_models import build_tiny_gemma3

    model = build_tiny_gemma3(tmp_path / "gemma3")
    args = [
        sys.executable,
        "-m",
        "medfm_robust_plugin",
        "run",
        "--task",
        "MedFMRobust-Mini-VQA-Lite",
    ]
    args += ["--model", f"hf:{model}", "--model-option", "device=cpu"]
    args += ["--model-option", "dtype=float32", "--batch-size", "4", "--max-new-tokens", "4"]
    args += ["--limit", "5", "--corruptions", "gaussian_noise,contrast", "--severities", "1,5"]
    local = subprocess.run(
        [*args, "--out", str(tmp_path / "local")], capture_output=True, text=True, timeout=300
    )
    assert local.returncode == 0, local.stderr[-3000:]
    run_dir = next((tmp_path / "local").glob("*/*"))
    local_records = (run_dir / "records.jsonl").read_text().splitlines()
    # a run that stopped after 6 records, resumed on the cluster
    resumed = tmp_path / "ray" / run_dir.relative_to(tmp_path / "local")
    resumed.mkdir(parents=True)
    (resumed / "config.json").write_bytes((run_dir / "config.json").read_bytes())
    (resumed / "records.jsonl").write_text("\n".join(local_records[:6]) + "\n")
    done = cluster.run(
        [*args, "--out", str(tmp_path / "ray"), *on_ray(cluster, "--ray-workers", "2")]
    )
    assert done.returncode == 0, done.stderr[-3000:]
    total = len(local_records)
    assert f"{total - 6} records written, 6 already done, 0 failed" in done.stdout

    def by_key(lines):
        records = [json.loads(line) for line in lines]
        for record in records:
            record.pop("seconds")  # timings are the only difference
        return {r["key"]: r for r in records}

    ray_lines = (resumed / "records.jsonl").read_text().splitlines()
    assert len(ray_lines) == total == len(by_key(ray_lines))
    assert by_key(ray_lines) == by_key(local_records)
    assert any(r["prediction"] for r in by_key(ray_lines).values())
    summary = json.loads((resumed / "summary.json").read_text())
    assert summary == json.loads((run_dir / "summary.json").read_text())


SERVE_AND_RUN = """
import json, subprocess, sys, time
sys.path.insert(0, {repo!r})
from tests.fake_api_servers import FakeOpenAIServer

class Counting(FakeOpenAIServer):
    spans = []

    def handle(self, request):
        self.spans.append((request.received_at, time.monotonic()))
        return super().handle(request)

with Counting(reply="A", delay=0.3) as server:
    args = json.loads(sys.argv[1]) + ["--model-option", "base_url=" + server.base_url]
    done = subprocess.run(args, capture_output=True, text=True)
edges = sorted([(s, 1) for s, _ in Counting.spans] + [(e, -1) for _, e in Counting.spans])
level = peak = 0
for _, step in edges:
    level += step
    peak = max(peak, level)
print(json.dumps({{"rc": done.returncode, "err": done.stderr[-2000:], "out": done.stdout,
                  "requests": len(Counting.spans), "peak": peak}}))
"""


def test_an_api_model_keeps_one_concurrency_limit_across_the_cluster(tmp_path, cluster):
    """Two actors, each sending its batch two at a time, to a server on the cluster's loopback:
    never more than the model's concurrency (2) in flight together."""
    args = [
        sys.executable,
        "-m",
        "medfm_robust_plugin",
        "run",
        "--task",
        "MedFMRobust-Mini-VQA-Lite",
    ]
    args += ["--model", "gpt-4o", "--concurrency", "2", "--limit", "4", "--corruptions", "contrast"]
    args += ["--severities", "5", "--out", str(tmp_path / "runs")]
    args += on_ray(cluster, "--ray-workers", "2")
    script = SERVE_AND_RUN.format(repo=str(Path(__file__).resolve().parents[1]))
    env = cluster.env(OPENAI_API_KEY="sk-test-0000", MEDFM_ROBUST_CACHE=str(tmp_path / "cache"))
    done = cluster.run([sys.executable, "-c", script, json.dumps(args)], env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["rc"] == 0, result["err"]
    assert "8 records written" in result["out"] and result["requests"] == 8
    assert result["peak"] == 2  # in parallel, and never beyond the one limit
