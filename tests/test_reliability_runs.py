"""Runs that survive careless plugins and careless users: colliding sample ids, two writers in one
folder, corruptions that return NaN or never return, models that hang, records torn by a kill.

The fixture plugin below is installed through the ``medfm_robust`` entry-point group, so that the
worker processes of ``run`` and ``materialize`` load it exactly as a user's plugin would be loaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from medfm_robust_plugin import corrupt, corruption, load_image
from medfm_robust_plugin import materialize as mat
from medfm_robust_plugin.errors import CorruptionOutputError, ItemTimeoutError, OutputDirBusyError
from medfm_robust_plugin.file_names import path_part
from medfm_robust_plugin.jsonl import JsonlAppender, read_jsonl, record_line
from medfm_robust_plugin.outdir import LOCK_NAME, OutputDirLock, read_holder
from medfm_robust_plugin.runner import Run, RunConfig, RunError, latest_records, read_records
from medfm_robust_plugin.tasks import get_task
from medfm_robust_plugin.time_limit import ItemPool, call_with_time_limit

from .plugin_helpers import add_entry_point_plugin

PLUGIN_NAME = "reliability_fixture"

PLUGIN = '''
import threading
import time

import numpy as np

from medfm_robust_plugin import corruption, hookimpl
from medfm_robust_plugin.data.sample import LoadResult, Sample
from medfm_robust_plugin.models.base import Capabilities, Generation, ModelSpec
from medfm_robust_plugin.suites import parse_suite
from medfm_robust_plugin.tasks import parse_card

RELEASE = threading.Event()  # set by the tests to end a hanging model call


@corruption("lab_dim", family="lab", severity_params=[0.9, 0.8, 0.7, 0.6, 0.5])
def lab_dim(image, param, rng):
    return image * param


@corruption("lab_nan", family="lab", severity_params=[1, 2, 3, 4, 5])
def lab_nan(image, param, rng):
    out = image.astype(np.float32)
    out[: int(param)] = np.nan
    return out


@corruption("lab_inf", family="lab", severity_params=[1, 2, 3, 4, 5], domain="physical")
def lab_inf(image, param, rng):
    return np.full_like(image, np.inf, dtype=np.float32)


@corruption("lab_hang", family="lab", severity_params=[1, 2, 3, 4, 5])
def lab_hang(image, param, rng):
    while True:  # a solver that never converges
        time.sleep(1)


@corruption("lab_nan_draws", family="lab", severity_params=[0.9, 0.8, 0.7, 0.6, 0.5])
def lab_nan_draws(image, param, rng):
    return image * param, {"gain": float("nan"), "offsets": [1.0, float("inf")]}


class Answers:
    """Answers 'A'; with ``stuck_first``, its first call hangs until the test releases it."""

    capabilities = Capabilities(max_batch=1)

    def __init__(self, stuck_first=False):
        self.name = "reliab:answer"
        self.stuck_first = stuck_first
        self.calls = 0

    def generate(self, items, max_new_tokens=256, temperature=0.0, system=None):
        self.calls += 1
        if self.stuck_first and self.calls == 1:
            RELEASE.wait(60)
        return [Generation("A") for _ in items]


def dup_image(k):
    return lambda: np.full((24, 24), 40 * (k + 1), np.uint8)


class Dups:
    """Sample ids that one escaping rule maps to one name: dup/x, dup_x, Dup_x, dup:x."""

    name = "reliab_dups"
    kinds = ("vqa",)
    modality = None
    description = "ids that collide under naive escaping"
    access = "generated"
    IDS = ("dup/x", "dup_x", "Dup_x", "dup:x", "x" * 300)

    def load(self, root=None, **options):
        return LoadResult([
            Sample(sid, "reliab_dups", "dermoscopy", dup_image(k), question=f"question {k}",
                   options={"A": "yes", "B": "no"}, answer="A", meta={"content_key": f"dup{k}"})
            for k, sid in enumerate(self.IDS)
        ])


@hookimpl
def register_corruptions(register):
    for spec in (lab_dim, lab_nan, lab_inf, lab_hang, lab_nan_draws):
        register(spec)


@hookimpl
def register_suites(register):
    register(parse_suite({"suite": "reliab", "modality": "lab",
                          "base": ["lab_dim", "lab_nan", "lab_inf", "lab_hang", "lab_nan_draws"]}))


@hookimpl
def register_datasets(register):
    register(Dups())


@hookimpl
def register_models(register):
    register(ModelSpec("reliab:answer", "vlm", lambda **kw: Answers(**kw)))


@hookimpl
def register_tasks(register):
    base = {"kind": "vqa", "metrics": ["accuracy"], "needs_data_root": False, "suites": "reliab",
            "prompt": "{question}\\n{options}", "severities": [1]}
    mini = {"name": "medfm_robust_mini", "options": {"task": "vqa", "per_modality": 1}}
    for card in parse_card({**base, "task": "Reliab-VQA", "dataset": mini}):
        register(card)
    for card in parse_card({**base, "task": "Reliab-Dups", "dataset": {"name": "reliab_dups"}}):
        register(card)
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    root = tmp_path / "plugin"
    add_entry_point_plugin(root, PLUGIN_NAME, "reliability_fixture_plugin", PLUGIN)
    monkeypatch.setenv("PYTHONPATH", f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    sys.modules.pop("reliability_fixture_plugin", None)
    yield root
    module = sys.modules.get("reliability_fixture_plugin")
    if module is not None:
        module.RELEASE.set()


def lab_plan(corruptions, **kw):
    return mat.Plan(get_task("Reliab-VQA"), corruptions=tuple(corruptions), **kw)


def run_config(tmp_path, corruptions, **kw):
    base = {
        "task": "Reliab-VQA",
        "model": "reliab:answer",
        "out": str(tmp_path / "runs"),
        "corruptions": list(corruptions),
    }
    return RunConfig(**{**base, **kw})


def answering_model(**options):
    from medfm_robust_plugin.models.base import load_model

    return load_model("reliab:answer", **options)


def strict_lines(path: Path) -> list[dict]:
    """Every line of a JSONL file, parsed as strict JSON (NaN and Infinity are refused)."""

    def refuse(token):
        raise ValueError(f"{path}: non-JSON number {token}")

    return [json.loads(line, parse_constant=refuse) for line in path.read_text().splitlines()]


# ---------------------------------------------------------------------- 1: names that never collide


def test_path_parts_are_distinct_portable_names():
    names = ["dup/x", "dup_x", "Dup_x", "dup:x", "dup_x~0", "..", ".", "", "a" * 300, "ct-002"]
    parts = [path_part(name) for name in names]
    assert len(set(parts)) == len(names)
    assert len({p.lower() for p in parts}) == len(names)  # case-insensitive file systems too
    assert all(p and "/" not in p and p not in (".", "..") and len(p) <= 100 for p in parts)
    assert path_part("ct-002") == "ct-002"  # plain names stay readable
    assert path_part("dup/x").startswith("dup_x~")


def test_ids_that_collided_get_their_own_files_and_hashes(tmp_path, plugin):
    plan = mat.Plan(get_task("Reliab-Dups"), corruptions=("lab_dim",), severities=(1,))
    result = mat.materialize(plan, tmp_path, num_proc=1)
    records = list(mat.read_manifest(tmp_path))
    assert result["failed"] == 0 and result["written"] == len(records) == 10
    assert len({r["image"] for r in records}) == 10

    for record in records:
        path = tmp_path / record["image"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == record["sha256"]
        k = int(record["label"]["question"].split()[-1])
        clean = np.full((24, 24), 40 * (k + 1), np.uint8)
        expected = clean if record["corruption"] is None else np.round(clean * 0.9)
        np.testing.assert_allclose(load_image(path).array, expected, atol=1)


def test_two_names_for_one_run_folder_never_share_it(tmp_path, plugin):
    first = Run(run_config(tmp_path, ["lab_dim"], limit=1, model="reliab:answer"))
    first.execute(answering_model())
    config = run_config(tmp_path, ["lab_dim"], limit=1, model="reliab/answer")
    twin = Run(config, allow_config_change=True)
    assert twin.run_dir == first.run_dir  # ':' and '/' both become '_'
    with pytest.raises(RunError, match="holds the run of model 'reliab:answer'"):
        twin.execute(answering_model())


# ---------------------------------------------------------------------- 2: one writer per folder

HOLDER = """
import os, sys, time
from medfm_robust_plugin.outdir import OutputDirLock
mode, seconds, *folders = sys.argv[1:]
locks = [OutputDirLock(folder, "holder test") for folder in folders]
for lock in locks:
    lock.acquire()
print("held", flush=True)
if mode == "die":
    os._exit(9)  # killed: no release runs
time.sleep(float(seconds))
for lock in locks:
    lock.release()
"""


def hold(mode, seconds, *folders):
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, mode, str(seconds), *map(str, folders)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_second_writer_is_refused_naming_the_holder(tmp_path, plugin):
    job = Run(run_config(tmp_path, ["lab_dim"], limit=1))
    out = tmp_path / "materialized"
    holder = hold("sleep", 60, out, job.run_dir)
    try:
        with pytest.raises(OutputDirBusyError) as refused:
            mat.materialize(lab_plan(["lab_dim"], limit=1), out, num_proc=0)
        message = str(refused.value)
        assert f"pid {holder.pid} on host {socket.gethostname()}" in message
        assert "started 20" in message and "--wait" in message
        assert not (out / mat.MANIFEST).exists()  # nothing was done twice
        with pytest.raises(OutputDirBusyError, match=f"pid {holder.pid} "):
            job.execute(answering_model())
        assert not (job.run_dir / "records.jsonl").exists()
    finally:
        holder.kill()
        holder.wait()


def test_wait_waits_for_the_holder_to_finish(tmp_path, plugin, caplog):
    out = tmp_path / "materialized"
    holder = hold("sleep", 2, out)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="medfm_robust_plugin.outdir"):
        result = mat.materialize(lab_plan(["lab_dim"], limit=1), out, num_proc=0, wait=True)
    assert time.monotonic() - started > 1.5
    assert holder.wait(5) == 0
    assert f"pid {holder.pid}" in caplog.text and "waiting" in caplog.text
    assert result["written"] == 2 and not (out / LOCK_NAME).exists()


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path, plugin):
    out = tmp_path / "materialized"
    dead = hold("die", 0, out)
    assert dead.wait(5) == 9
    assert read_holder(out).pid == dead.pid  # its lock file is still there
    result = mat.materialize(lab_plan(["lab_dim"], limit=1), out, num_proc=0)
    assert result["written"] == 2 and not (out / LOCK_NAME).exists()


def test_without_flock_a_dead_holders_lock_file_is_taken_over(tmp_path, monkeypatch):
    from medfm_robust_plugin import outdir

    monkeypatch.setattr(outdir, "fcntl", None)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], text=True, capture_output=True
    )
    host = socket.gethostname()
    for pid, takes_over in ((int(gone.stdout), True), (os.getppid(), False)):
        (tmp_path / LOCK_NAME).write_text(
            json.dumps({"pid": pid, "host": host, "started": "2026-01-01T00:00:00", "command": "x"})
        )
        if takes_over:
            with OutputDirLock(tmp_path, "test"):
                assert read_holder(tmp_path).pid == os.getpid()
            assert not (tmp_path / LOCK_NAME).exists()
        else:
            with pytest.raises(OutputDirBusyError, match=f"pid {pid} on host {host}"):
                OutputDirLock(tmp_path, "test").acquire()


def test_the_lock_is_released_when_a_run_fails(tmp_path, plugin):
    Run(run_config(tmp_path, ["lab_dim"], limit=1)).execute(answering_model())
    changed = Run(run_config(tmp_path, ["lab_dim"], limit=1, seed=5))
    with pytest.raises(RunError, match="changed: seed"):
        changed.execute(answering_model())
    assert not (changed.run_dir / LOCK_NAME).exists()
    Run(run_config(tmp_path, ["lab_dim"], limit=1)).execute(answering_model())


def test_cli_refuses_in_one_line_and_offers_wait(tmp_path, plugin):
    out = tmp_path / "materialized"
    holder = hold("sleep", 60, out)
    try:
        args = [sys.executable, "-m", "medfm_robust_plugin", "materialize", "--task", "Reliab-VQA"]
        args += ["--out", str(out), "--limit", "1", "--corruptions", "lab_dim", "--num-proc", "0"]
        done = subprocess.run(args, capture_output=True, text=True)
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and f"pid {holder.pid}" in errors[0] and "Traceback" not in done.stderr
    for command in ("run", "materialize"):
        shown = subprocess.run(
            [sys.executable, "-m", "medfm_robust_plugin", command, "--help"],
            capture_output=True,
            text=True,
        ).stdout
        assert "--wait" in shown and "--item-timeout" in shown


# ---------------------------------------------------------------------- 3: outputs checked


@pytest.mark.parametrize(
    "image",
    [
        np.full((16, 16), 100, np.uint8),
        np.full((16, 16, 3), 100, np.uint8),
        np.full((16, 16), 3000, np.uint16),
        np.linspace(-1000, 1000, 256, dtype=np.float32).reshape(16, 16),
    ],
    ids=["uint8", "rgb", "uint16", "float-hu"],
)
@pytest.mark.parametrize("name", ["lab_nan", "lab_inf"])
def test_non_finite_output_is_refused_naming_corruption_plugin_and_sample(plugin, name, image):
    with pytest.raises(CorruptionOutputError) as refused:
        corrupt(image, name, severity=2, sample_id="case-7")
    message = str(refused.value)
    assert f"'case-7': corruption '{name}' (plugin '{PLUGIN_NAME}')" in message
    assert "non-finite values" in message


def test_wrong_shape_units_and_types_are_refused():
    @corruption("lab_255", family="lab", severity_params=[1, 2, 3, 4, 5])
    def lab_255(image, param, rng):
        return image * 255.0  # forgot that unit-domain images are in [0, 1]

    @corruption("lab_complex", family="lab", severity_params=[1, 2, 3, 4, 5], domain="physical")
    def lab_complex(image, param, rng):
        return np.fft.fft2(image, axes=(0, 1))

    @corruption("lab_crop", family="lab", severity_params=[1, 2, 3, 4, 5])
    def lab_crop(image, param, rng):
        return image[1:]

    image = np.full((16, 16), 200, np.uint8)
    cases = {
        lab_255: "far outside its unit domain's range 0 to 1",
        lab_complex: "values of type complex",
        lab_crop: "must keep the shape",
    }
    for spec, problem in cases.items():
        with pytest.raises(CorruptionOutputError, match=problem) as refused:
            corrupt(image, spec, sample_id="s1")
        assert "registered by no plugin" in str(refused.value)


def test_materialize_records_bad_outputs_as_failed_and_writes_no_image(tmp_path, plugin):
    plan = lab_plan(["lab_dim", "lab_nan", "lab_inf"], limit=2)
    result = mat.materialize(plan, tmp_path, num_proc=1)
    errors = strict_lines(tmp_path / mat.ERRORS)
    assert result["failed"] == len(errors) == 4 and result["written"] == 4
    assert {e["condition"] for e in errors} == {"lab_nan_s1", "lab_inf_s1"}
    assert all("CorruptionOutputError" in e["error"] and PLUGIN_NAME in e["error"] for e in errors)
    written = {p.stem for p in (tmp_path / "items").rglob("*.*") if p.suffix in (".png", ".tif")}
    assert written == {"clean", "lab_dim_s1"}


def test_run_records_bad_outputs_and_writes_strict_json(tmp_path, plugin):
    job = Run(run_config(tmp_path, ["lab_dim", "lab_nan", "lab_nan_draws"], limit=2))
    result = job.execute(answering_model())
    records = strict_lines(job.run_dir / "records.jsonl")
    failed = [r for r in records if r["error"]]
    assert result.failed == len(failed) == 2
    assert all(r["condition"] == "lab_nan_s1" and "non-finite" in r["error"] for r in failed)
    drawn = [r for r in records if r["condition"] == "lab_nan_draws_s1"]
    assert len(drawn) == 2 and all(r["error"] is None for r in drawn)
    for record in drawn:
        assert record["params"]["draws"] == {"gain": None, "offsets": [1.0, None]}
        assert record["non_finite"] == ["params.draws.gain", "params.draws.offsets[1]"]
    summary = json.loads((job.run_dir / "summary.json").read_text(), parse_constant=lambda t: 1 / 0)
    by_condition = {c["condition"]: c for c in summary["conditions"]}
    assert summary["clean"]["n"] == 2 and by_condition["lab_nan_s1"]["failed"] == 2


def test_a_record_line_is_strict_json():
    line = record_line({"key": "k", "ssim": float("nan"), "x": np.float32("inf"), "ok": 1.5})
    assert json.loads(line) == {
        "key": "k",
        "ssim": None,
        "x": None,
        "ok": 1.5,
        "non_finite": ["ssim", "x"],
    }


# ---------------------------------------------------------------------- 4: time limits


def test_materialize_stops_a_hanging_corruption_and_writes_the_rest_first(tmp_path, plugin):
    plan = lab_plan(["lab_dim", "lab_hang"], limit=2)

    def lines(name):
        path = tmp_path / name
        return len(path.read_text().splitlines()) if path.exists() else 0

    on_disk: list[tuple[int, int]] = []  # (manifest, errors) lines as each item is reported
    started = time.monotonic()
    result = mat.materialize(
        plan,
        tmp_path,
        num_proc=3,
        item_timeout=2.5,  # the finished items beat it even while workers start
        progress=lambda n: on_disk.append((lines(mat.MANIFEST), lines(mat.ERRORS))),
    )
    assert time.monotonic() - started < 60
    assert result["timed_out"] == result["failed"] == 2 and result["written"] == 4
    manifest = list(mat.read_manifest(tmp_path))
    assert sorted(r["condition"] for r in manifest) == ["clean"] * 2 + ["lab_dim_s1"] * 2
    errors = strict_lines(tmp_path / mat.ERRORS)
    assert [e["condition"] for e in errors] == ["lab_hang_s1"] * 2
    assert all("time limit of 2.5 s" in e["error"] for e in errors)
    # every finished item was on disk before the hanging ones were given up
    assert on_disk == [(1, 0), (2, 0), (3, 0), (4, 0), (4, 1), (4, 2)]
    hanging = {p.stem for p in (tmp_path / "items").rglob("*.png")} & {"lab_hang_s1"}
    assert not hanging


def test_run_stops_a_hanging_corruption_and_scores_the_rest(tmp_path, plugin):
    job = Run(run_config(tmp_path, ["lab_dim", "lab_hang"], limit=2, item_timeout=1.0))
    result = job.execute(answering_model())
    records = list(read_records(job.run_dir))
    assert len(records) == len(job.work()) == 6 and result.failed == 2
    hung = [r for r in records if r["condition"] == "lab_hang_s1"]
    assert all("time limit of 1 s" in r["error"] for r in hung)
    assert all(r["error"] is None for r in records if r["condition"] != "lab_hang_s1")
    order = [r["condition"] for r in records]
    assert max(i for i, c in enumerate(order) if c == "clean") < min(
        i for i, c in enumerate(order) if c == "lab_hang_s1"
    )
    summary = json.loads((job.run_dir / "summary.json").read_text())
    by_condition = {c["condition"]: c for c in summary["conditions"]}
    assert summary["clean"]["n"] == 2 and by_condition["lab_hang_s1"]["failed"] == 2


def test_a_hanging_model_call_fails_its_batch_and_the_run_goes_on(tmp_path, plugin):
    job = Run(run_config(tmp_path, ["lab_dim"], limit=2, item_timeout=0.5, workers=0))
    started = time.monotonic()
    result = job.execute(answering_model(stuck_first=True))
    assert time.monotonic() - started < 20
    records = list(read_records(job.run_dir))
    stuck = [r for r in records if r["error"]]
    assert result.failed == len(stuck) == 1 and result.written == 3
    assert "the model call for 1 item(s)" in stuck[0]["error"]
    assert "time limit of 0.5 s" in stuck[0]["error"]


def _pool_job(job):
    kind, value = job
    if kind == "hang":
        if value:
            Path(value).write_text(str(os.getpid()))
        time.sleep(3600)
    if kind == "exit":
        os._exit(3)
    if kind == "raise":
        raise ValueError(f"bad value {value}")
    return value * 2


def test_item_pool_stops_hangs_survives_crashes_and_keeps_order_of_finishing():
    jobs = [("hang", 0), ("ok", 1), ("exit", 0), ("ok", 2), ("raise", 7), ("ok", 3)]
    with ItemPool(2, _pool_job, timeout=2.0) as pool:
        outcomes = {o.job: o for o in pool.map_unordered(jobs)}
    assert set(outcomes) == set(jobs)
    assert [outcomes[("ok", k)].value for k in (1, 2, 3)] == [2, 4, 6]
    assert outcomes[("hang", 0)].timed_out and "time limit of 2 s" in outcomes[("hang", 0)].error
    assert "exited (exit code 3)" in outcomes[("exit", 0)].error
    assert outcomes[("raise", 7)].error == "ValueError: bad value 7"
    assert pool.restarts == 2


ORPHANING_PARENT = """
import sys
from medfm_robust_plugin.time_limit import ItemPool
from tests.test_reliability_runs import _pool_job

with ItemPool(1, _pool_job, timeout=None) as pool:
    list(pool.map_unordered([("hang", sys.argv[1])]))
"""


def test_a_worker_ends_with_its_killed_parent(tmp_path):
    pid_file = tmp_path / "worker.pid"
    parent = subprocess.Popen(
        [sys.executable, "-c", ORPHANING_PARENT, str(pid_file)],
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        deadline = time.monotonic() + 60
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline and parent.poll() is None
            time.sleep(0.1)
        worker = int(pid_file.read_text())
    finally:
        parent.kill()  # SIGKILL: no clean-up of its own runs
        parent.wait()
    deadline = time.monotonic() + 10
    while _alive(worker):
        assert time.monotonic() < deadline, f"worker {worker} outlived its killed parent"
        time.sleep(0.1)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by init) counts as gone
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[1].startswith("Z"))


def test_call_with_time_limit():
    assert call_with_time_limit(lambda: 5, 1.0, "a call") == 5
    with pytest.raises(ZeroDivisionError):
        call_with_time_limit(lambda: 1 / 0, 1.0, "a call")
    started = time.monotonic()
    with pytest.raises(ItemTimeoutError, match="a slow call ran past the per-item time limit"):
        call_with_time_limit(lambda: time.sleep(30), 0.2, "a slow call")
    assert time.monotonic() - started < 5


# ---------------------------------------------------------------------- 5: torn lines


def test_a_torn_last_line_is_skipped_reported_and_the_next_record_is_intact(tmp_path, caplog):
    path = tmp_path / "records.jsonl"
    with JsonlAppender(path) as out:
        out.write({"key": "a"})
        out.write({"key": "b"})
    with path.open("a") as handle:
        handle.write('{"key": "c", "predic')  # killed mid-write
    with JsonlAppender(path) as out:
        out.write({"key": "d"})
    with caplog.at_level(logging.WARNING, logger="medfm_robust_plugin.jsonl"):
        keys = [r["key"] for r in read_jsonl(path)]
    assert keys == ["a", "b", "d"]
    assert f"{path}:3: skipped a line that is not a whole JSON record" in caplog.text


def test_a_record_glued_onto_a_fragment_by_an_older_writer_is_recovered(tmp_path):
    path = tmp_path / "manifest.jsonl"
    path.write_text('{"key": "a"}\n{"key": "b", "params": {"x": 1{"key": "c", "params": {}}\n')
    assert [r["key"] for r in read_jsonl(path)] == ["a", "c"]


def test_run_resumes_after_a_torn_record(tmp_path, plugin):
    config = run_config(tmp_path, ["lab_dim"], limit=3)
    job = Run(config)
    job.execute(answering_model())
    path = job.run_dir / "records.jsonl"
    text = path.read_text()
    path.write_text(text[: len(text) - 30])  # the last record loses its end
    result = Run(config).execute(answering_model())
    assert result.written == 1
    records = latest_records(job.run_dir)
    assert sorted(r["key"] for r in records) == sorted(item.key for item in job.work())
    summary = json.loads((job.run_dir / "summary.json").read_text())
    assert summary["clean"]["n"] == 3


def test_materialize_resumes_after_a_torn_manifest_line(tmp_path, plugin):
    plan = lab_plan(["lab_dim"], limit=3)
    mat.materialize(plan, tmp_path, num_proc=0)
    manifest = tmp_path / mat.MANIFEST
    text = manifest.read_text()
    manifest.write_text(text[: len(text) - 20])
    result = mat.materialize(plan, tmp_path, num_proc=0, fmt="tsv")
    assert result["written"] == 1 and result["skipped_done"] == 5
    keys = [r["key"] for r in mat.read_manifest(tmp_path)]
    assert len(keys) == len(set(keys)) == mat.count_items(plan) == 6
    assert len(Path(result["tsv"]).read_text().splitlines()) == 1 + 6


def test_every_jsonl_writer_goes_through_the_appender():
    """No module opens a JSONL file by hand: the torn-line rules live in one place."""
    package = Path(__file__).resolve().parents[1] / "medfm_robust_plugin"
    for path in package.rglob("*.py"):
        if path.name == "jsonl.py" or "loaders" in path.parts:  # loaders read the user's files
            continue
        text = path.read_text()
        assert ".write(json.dumps(" not in text, path
        assert "json.loads(line" not in text, path
