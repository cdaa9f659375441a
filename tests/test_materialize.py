"""Materialize: files and manifest, resume after interruption, the three formats, failures recorded."""

from __future__ import annotations

import base64
import csv
import hashlib
import json

import numpy as np
import pytest

from medfm_robust_plugin import MedFMRobustError, load_image
from medfm_robust_plugin import materialize as mat
from medfm_robust_plugin.data.sample import Sample
from medfm_robust_plugin.tasks import Condition, get_task
from medfm_robust_plugin.views import CorruptedViews


def plan(task="MedFMRobust-Mini-VQA-Lite", **kw):
    defaults = {"limit": 6, "corruptions": ("gaussian_noise", "contrast"), "severities": (1, 5)}
    return mat.Plan(get_task(task), **{**defaults, **kw})


def manifest(out):
    return list(mat.read_manifest(out))


def test_folder_items_match_the_views_and_their_hashes(tmp_path):
    result = mat.materialize(plan(), tmp_path)
    records = manifest(tmp_path)
    expected = mat.count_items(plan())
    assert result["written"] == len(records) == expected and result["failed"] == 0
    assert len({r["sample_id"] for r in records}) == 6 and expected > 6 * 2
    assert len({r["modality"] for r in records}) >= 4  # --limit keeps every modality
    views = CorruptedViews()
    samples = {s.id: s for s in get_task("MedFMRobust-Mini-VQA-Lite").load().samples}
    for record in records:
        path = tmp_path / record["image"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == record["sha256"]
        condition = Condition(record["corruption"], record["severity"])
        expected = views.get(samples[record["sample_id"]], condition).image
        np.testing.assert_array_equal(load_image(path).array, expected)
        assert (record["ssim"] is None) == (record["corruption"] is None)
        assert record["label"]["answer"] in record["label"]["options"]
        if record["corruption"]:
            assert 0 < record["ssim"] < 1 and record["params"]["seed"] == record["seed"]


def test_interrupted_run_resumes_without_redoing_items(tmp_path):
    calls = {"n": 0}

    def stop_after_seven(_):
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        mat.materialize(plan(), tmp_path, progress=stop_after_seven)
    assert len(manifest(tmp_path)) == 7
    result = mat.materialize(plan(), tmp_path)
    total = mat.count_items(plan())
    assert result["skipped_done"] == 7 and result["written"] == total - 7
    keys = [r["key"] for r in manifest(tmp_path)]
    assert len(keys) == len(set(keys)) == total


def test_changed_settings_are_refused(tmp_path):
    mat.materialize(plan(), tmp_path)
    with pytest.raises(MedFMRobustError, match="other settings"):
        mat.materialize(plan(severities=(3,)), tmp_path)


def test_two_processes_write_the_same_bytes(tmp_path):
    """In this process, in one worker, in two workers without a time limit: the same files."""
    mat.materialize(plan(), tmp_path / "here", num_proc=0)
    mat.materialize(plan(), tmp_path / "one")
    mat.materialize(plan(), tmp_path / "two", num_proc=2, item_timeout=None)
    folders = ("here", "one", "two")
    hashes = [{r["key"]: r["sha256"] for r in manifest(tmp_path / d)} for d in folders]
    assert len(hashes[0]) == mat.count_items(plan())
    assert hashes[0] == hashes[1] == hashes[2]
    # rows of an export follow the plan, not the order two workers finished in
    tsv = [mat.export_tsv(tmp_path / d, plan()).read_text() for d in ("here", "two")]
    assert tsv[0] == tsv[1]


def test_tsv_is_vlmeval_style(tmp_path):
    result = mat.materialize(plan(), tmp_path, fmt="tsv")
    with open(result["tsv"], newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert len(rows) == mat.count_items(plan())
    row = next(r for r in rows if r["condition"] == "contrast_s5")
    assert row["question"] and row["answer"] in "ABCD" and row["A"]
    png = base64.b64decode(row["image"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_hf_format_loads_with_datasets(tmp_path):
    import datasets

    result = mat.materialize(plan("MedFMRobust-Mini-Seg-Lite"), tmp_path, fmt="hf")
    ds = datasets.load_from_disk(result["hf"])
    assert len(ds) == len(manifest(tmp_path))
    row = ds[0]
    assert {"image", "condition", "seed", "ssim", "sha256", "params"} <= set(row)
    assert row["image"].size == (128, 128)
    assert not (tmp_path / ".hf-cache").exists()
    # every item, clean or corrupted, carries its sample's mask (a 0/255 image of its size)
    records = {(r["sample_id"], r["condition"]): r for r in manifest(tmp_path)}
    corrupted = [k for k, row in enumerate(ds) if row["condition"] != "clean"]
    assert corrupted and all(ds[k]["mask"] is not None for k in range(len(ds)))
    some = ds[corrupted[0]]
    clean = records[(some["sample_id"], "clean")]
    mask = np.asarray(some["mask"])
    assert mask.shape == (128, 128) and set(np.unique(mask)) <= {0, 255} and mask.any()
    assert np.array_equal(mask, load_image(tmp_path / clean["mask"]).array)


def test_a_failing_sample_is_recorded_and_the_run_goes_on(tmp_path, monkeypatch):
    good = [
        s
        for s in get_task("MedFMRobust-Mini-VQA-Lite").load().samples
        if s.modality == "dermoscopy"
    ][:2]

    def broken():
        raise OSError("disk read error")

    bad = Sample(
        "broken-1", "medfm_robust_mini", "ct", broken, question="q", options={"A": "a"}, answer="A"
    )
    bad.modality = good[0].modality
    # the one definition the driver and its in-process worker both read
    monkeypatch.setattr(mat.worker, "_samples", lambda p: [good[0], bad, good[1]])
    result = mat.materialize(plan(limit=None), tmp_path, num_proc=0)  # the patch is in-process
    errors = [json.loads(line) for line in (tmp_path / "errors.jsonl").read_text().splitlines()]
    per_sample = len(mat._conditions(plan(), bad))
    assert result["failed"] == len(errors) == per_sample > 1
    assert result["written"] == sum(len(mat._conditions(plan(), s)) for s in good)
    assert all(e["sample_id"] == "broken-1" and "disk read error" in e["error"] for e in errors)


def test_cli_materialize(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "m"
    args = [
        sys.executable,
        "-m",
        "medfm_robust_plugin",
        "materialize",
        "--task",
        "MedFMRobust-Mini-Caption",
        "--out",
        str(out),
        "--limit",
        "3",
        "--corruptions",
        "gaussian_noise",
        "--severities",
        "2",
    ]
    done = subprocess.run(args, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    written = int(done.stdout.split(" written")[0].split()[-1])
    assert written > 3
    again = subprocess.run(args, capture_output=True, text=True)
    assert f"0 written, {written} already done" in again.stdout


def test_tsv_images_are_what_the_hosts_show(tmp_path):
    """A TSV row's image is the view layer's display image (CT in its soft-tissue window)."""
    import cv2

    result = mat.materialize(plan(), tmp_path, fmt="tsv")
    with open(result["tsv"], newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    samples = {s.id: s for s in get_task("MedFMRobust-Mini-VQA-Lite").load().samples}
    views = CorruptedViews()
    checked = 0
    for row in rows:
        if row["modality"] not in ("ct", "mri") or row["condition"] == "clean":
            continue
        severity = int(row["severity"])
        view = views.get(samples[row["sample_id"]], Condition(row["corruption"], severity))
        png = np.frombuffer(base64.b64decode(row["image"]), np.uint8)
        decoded = cv2.cvtColor(cv2.imdecode(png, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        np.testing.assert_array_equal(decoded, views.display(view))
        checked += 1
    assert checked >= 2


def test_parquet_shards_resume_shard_by_shard_and_load_with_datasets(tmp_path):
    """Local parquet: the folder's bytes in shards; an interrupted run redoes the missing shards."""
    import datasets

    mat.materialize(plan(), tmp_path / "folder", num_proc=0)
    out = tmp_path / "pq"
    calls = {"n": 0}

    def stop_after_two_shards(_):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        mat.materialize(plan(), out, "parquet", 0, stop_after_two_shards, shard_size=8)
    assert len(list((out / "shards").glob("*.done.json"))) == 2 and len(manifest(out)) == 16
    result = mat.materialize(plan(), out, "parquet", num_proc=2, shard_size=8)
    total = mat.count_items(plan())
    assert result["shards"] == -(-total // 8) and result["skipped_done"] == 16
    assert result["written"] == total - 16
    records = manifest(out)
    assert len({r["key"] for r in records}) == len(records) == total
    folder = {r["key"]: r["sha256"] for r in manifest(tmp_path / "folder")}
    assert {r["key"]: r["sha256"] for r in records} == folder

    files = str(out / "shards" / "*.parquet")
    ds = datasets.load_dataset(
        "parquet", data_files=files, split="train", cache_dir=str(tmp_path / "hf")
    )
    assert len(ds) == total
    row = ds[0]  # plan order: the first sample's clean item
    assert row["key"] == records[0]["key"] and row["condition"] == "clean"
    local = load_image(tmp_path / "folder" / records[0]["image"]).array
    np.testing.assert_array_equal(np.asarray(row["image"]), local)
    assert json.loads(row["label"]) == records[0]["label"]

    with pytest.raises(MedFMRobustError, match="shards of 8 items"):
        mat.materialize(plan(), out, "parquet", shard_size=4)


def test_a_parquet_shard_with_a_failed_item_is_redone_on_the_next_run(tmp_path, monkeypatch):
    real = mat.worker._made_item
    broken = {
        "key": next(item.key for item in plan().items() if item.condition.key == "contrast_s5")
    }

    def failing(item, views, every_mask=False):
        if item.key == broken["key"]:
            raise OSError("disk read error")
        return real(item, views, every_mask)

    monkeypatch.setattr(mat.worker, "_made_item", failing)
    total = mat.count_items(plan())
    first = mat.materialize(plan(), tmp_path, "parquet", num_proc=0, shard_size=8)
    assert first["failed"] == 1 and first["written"] == total - 1
    markers = [json.loads(p.read_text()) for p in sorted((tmp_path / "shards").glob("*.done.json"))]
    assert [m["failed"] for m in markers] == [[broken["key"]], [], [], []]
    broken["key"] = None
    again = mat.materialize(plan(), tmp_path, "parquet", num_proc=0, shard_size=8)
    assert again["failed"] == 0 and again["written"] == 8 and again["skipped_done"] == total - 8
    records = manifest(tmp_path)  # items of the redone shard that were listed stay listed once
    assert len({r["key"] for r in records}) == len(records) == total


def test_unknown_executor_is_refused(tmp_path):
    with pytest.raises(MedFMRobustError, match="executor 'dask' is unknown; use one of local, ray"):
        mat.materialize(plan(), tmp_path, executor="dask")


def test_cli_materialize_parquet(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "pq"
    args = [sys.executable, "-m", "medfm_robust_plugin", "materialize", "--out", str(out)]
    args += ["--task", "MedFMRobust-Mini-Caption", "--limit", "3", "--corruptions", "contrast"]
    args += ["--severities", "2", "--format", "parquet", "--shard-size", "4"]
    done = subprocess.run(args, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "6 written" in done.stdout and "(2 shards)" in done.stdout
    assert sorted(p.name for p in (out / "shards").iterdir()) == [
        "part-00000.done.json",
        "part-00000.parquet",
        "part-00001.done.json",
        "part-00001.parquet",
    ]
