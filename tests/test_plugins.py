"""The plugin system: built-ins through the public hooks, entry points, errors that name plugins."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import medfm_robust_plugin as mfr
from medfm_robust_plugin.plugins import BUILTIN_PLUGINS, get_registry, reset_registry

from .plugin_helpers import add_entry_point_plugin

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "medfm-robust-vignette"

SPECKLE_PLUGIN = """
    import numpy as np
    from medfm_robust_plugin import corruption, hookimpl

    @corruption("lab_banding", family="lab", severity_params=[0.05, 0.1, 0.2, 0.3, 0.4],
                param_range=(0.0, 0.6))
    def lab_banding(image, param, rng):
        '''Horizontal banding from an unstable detector row gain.'''
        rows = rng.standard_normal(image.shape[0]).astype(np.float32)
        return image * (1 + param * rows[:, None, None])

    @hookimpl
    def register_corruptions(register):
        register(lab_banding)
"""


@pytest.fixture
def plugin_root(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_builtins_register_through_the_same_hooks():
    registry = get_registry()
    assert set(BUILTIN_PLUGINS) <= set(registry.plugins)
    assert (
        registry.owners["corruptions"]["gaussian_noise"]
        == "medfm_robust_plugin.corruptions.natural"
    )
    assert registry.failures == []


def test_entry_point_plugin_is_listed_and_applied(plugin_root):
    add_entry_point_plugin(plugin_root, "banding", "lab_banding_plugin", SPECKLE_PLUGIN)
    registry = get_registry()
    assert "banding" in registry.plugins
    assert registry.registered_by("banding")["corruptions"] == ["lab_banding"]
    image = np.full((32, 32), 128, np.uint8)
    out = mfr.corrupt(image, "lab_banding", severity=5, seed=1)
    assert out.dtype == np.uint8 and not np.array_equal(out, image)


def test_duplicate_name_names_both_plugins(plugin_root):
    add_entry_point_plugin(
        plugin_root,
        "copycat",
        "copycat_plugin",
        """
        from medfm_robust_plugin import corruption, hookimpl

        @corruption("gaussian_noise", family="lab", severity_params=[1, 2, 3, 4, 5])
        def gaussian_noise(image, param, rng):
            return image

        @hookimpl
        def register_corruptions(register):
            register(gaussian_noise)
        """,
    )
    with pytest.raises(mfr.DuplicateRegistrationError) as info:
        get_registry()
    message = str(info.value)
    assert "gaussian_noise" in message
    assert "medfm_robust_plugin.corruptions.natural" in message and "copycat" in message


def test_plugin_that_fails_to_import_is_reported_and_others_work(plugin_root):
    add_entry_point_plugin(plugin_root, "broken", "broken_plugin", "import not_a_real_module_xyz\n")
    add_entry_point_plugin(plugin_root, "banding", "lab_banding_plugin", SPECKLE_PLUGIN)
    registry = get_registry()
    failure = next(f for f in registry.failures if f.plugin == "broken")
    assert failure.stage == "import" and "not_a_real_module_xyz" in failure.error
    assert "lab_banding" in registry.names("corruptions")
    assert "gaussian_noise" in registry.names("corruptions")


def test_plugin_whose_hook_raises_is_reported_by_name(plugin_root):
    add_entry_point_plugin(
        plugin_root,
        "raiser",
        "raiser_plugin",
        """
        from medfm_robust_plugin import hookimpl

        @hookimpl
        def register_corruptions(register):
            raise RuntimeError("table file missing")
        """,
    )
    registry = get_registry()
    (failure,) = [f for f in registry.failures if f.plugin == "raiser"]
    assert failure.stage == "register_corruptions" and "table file missing" in failure.error
    assert "gaussian_noise" in registry.names("corruptions")


def test_registering_a_plain_function_is_refused_with_advice(plugin_root):
    add_entry_point_plugin(
        plugin_root,
        "plain",
        "plain_plugin",
        """
        from medfm_robust_plugin import hookimpl

        def darken(image, param, rng):
            return image * 0.5

        @hookimpl
        def register_corruptions(register):
            register(darken)
        """,
    )
    (failure,) = [f for f in get_registry().failures if f.plugin == "plain"]
    assert "@medfm_robust_plugin.corruption" in failure.error


def test_environment_variable_limits_external_plugins(plugin_root, monkeypatch):
    add_entry_point_plugin(plugin_root, "banding", "lab_banding_plugin", SPECKLE_PLUGIN)
    add_entry_point_plugin(plugin_root, "broken", "broken_plugin", "raise ImportError('boom')\n")
    monkeypatch.setenv("MEDFM_ROBUST_PLUGINS", "banding")
    registry = get_registry()
    assert "banding" in registry.plugins and "broken" not in registry.plugins
    assert registry.failures == []
    monkeypatch.setenv("MEDFM_ROBUST_PLUGINS", "")
    reset_registry()
    assert "banding" not in get_registry().plugins
    assert "gaussian_noise" in get_registry().names("corruptions")  # built-ins always load


def test_example_package_installs_lists_and_applies(tmp_path):
    """Register the example's entry point and use it from a fresh process through the CLI."""
    root = tmp_path / "site"
    add_entry_point_plugin(root, "vignette", "medfm_robust_vignette")
    env_path = f"{root}:{EXAMPLE}"
    listed = _cli(["plugins", "--json"], env_path)
    vignette = next(p for p in listed["plugins"] if p["plugin"] == "vignette")
    assert vignette["corruptions"] == ["vignette"] and vignette["suites"] == ["scope_optics"]
    shown = _cli(["corruptions", "show", "vignette", "--json"], env_path)
    assert shown["family"] == "optics" and shown["severity_params"] == [0.1, 0.2, 0.3, 0.45, 0.6]
    src, dst = tmp_path / "in.png", tmp_path / "out.png"
    mfr.save_image(src, np.full((48, 64, 3), 200, np.uint8))
    _run(["corrupt", str(src), str(dst), "--corruption", "vignette", "--severity", "5"], env_path)
    out = mfr.load_image(dst).array
    assert out.shape == (48, 64, 3)
    assert out[0, 0].mean() < out[24, 32].mean() - 20  # corners darker than the centre


def _run(args: list[str], pythonpath: str) -> str:
    import os

    env = {**os.environ, "PYTHONPATH": pythonpath}
    done = subprocess.run(
        [sys.executable, "-m", "medfm_robust_plugin", *args],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _cli(args: list[str], pythonpath: str) -> dict:
    return json.loads(_run(args, pythonpath))
