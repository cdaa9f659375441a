"""The wheel carries the YAML suites and task cards, and finds them the same way as a checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(REPO),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (path,) = out.glob("medfm_robust_plugin-*.whl")
    return path


def test_wheel_contains_every_bundled_yaml(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for kind in ("corruptions", "tasks"):
        for source in (REPO / kind).glob("*.yaml"):
            assert f"medfm_robust_plugin/_bundled/{kind}/{source.name}" in names
    assert any(n.startswith("medfm_robust_plugin/_bundled/corruptions/") for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert (
        "medfm-robust = medfm_robust_plugin.cli:main"
        in zipfile.ZipFile(wheel).read(entry_points).decode()
    )


def test_installed_wheel_finds_its_bundled_suites(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    code = (
        "import medfm_robust_plugin.resources as r, medfm_robust_plugin.suites as s; "
        "print(r.bundled_dir('corruptions')); print(len(r.bundled_files('corruptions')))"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    folder, count = done.stdout.split()
    assert folder.startswith(str(target)) and "_bundled" in folder
    assert int(count) == len(list((REPO / "corruptions").glob("*.yaml")))


def test_checkout_finds_the_top_level_folders():
    from medfm_robust_plugin.resources import bundled_dir

    assert bundled_dir("corruptions") == REPO / "corruptions"
    assert bundled_dir("tasks") == REPO / "tasks"
