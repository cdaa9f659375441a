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


COPYCAT_PLUGIN = """
    from medfm_robust_plugin import corruption, hookimpl

    @corruption("gaussian_noise", family="lab", severity_params=[1, 2, 3, 4, 5])
    def gaussian_noise(image, param, rng):
        return image

    @corruption("copycat_dim", family="lab", severity_params=[0.1, 0.2, 0.3, 0.4, 0.5])
    def copycat_dim(image, param, rng):
        return image * (1 - param)

    @hookimpl
    def register_corruptions(register):
        register(gaussian_noise)
        register(copycat_dim)
"""


def test_duplicate_name_is_reported_once_naming_both_plugins_and_the_first_wins(plugin_root):
    add_entry_point_plugin(plugin_root, "copycat", "copycat_plugin", COPYCAT_PLUGIN)
    registry = get_registry()
    (failure,) = [f for f in registry.failures if f.plugin == "copycat"]
    assert "gaussian_noise" in failure.error and failure.stage == "register_corruptions"
    assert "medfm_robust_plugin.corruptions.natural" in failure.error and "copycat" in failure.error
    assert registry.owners["corruptions"]["gaussian_noise"] == (
        "medfm_robust_plugin.corruptions.natural"
    )
    assert registry.get("corruptions", "gaussian_noise").family == "natural"
    assert registry.registered_by("copycat")["corruptions"] == ["copycat_dim"]


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


# ---------------------------------------------------------------------- hostile plugins, via the CLI


EXITING_PLUGIN = "import sys\nsys.exit(3)\n"

EXITING_HOOK_PLUGIN = """
    import sys
    from medfm_robust_plugin import hookimpl

    @hookimpl
    def register_tasks(register):
        sys.exit("no tasks today")
"""


def _run_cli(args: list[str], pythonpath: str) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "PYTHONPATH": pythonpath}
    env.pop("MEDFM_ROBUST_PLUGINS", None)
    return subprocess.run(
        [sys.executable, "-m", "medfm_robust_plugin", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_a_plugin_calling_sys_exit_is_a_plugin_failure_and_every_command_works(tmp_path):
    root = tmp_path / "site"
    add_entry_point_plugin(root, "quitter", "quitter_plugin", EXITING_PLUGIN)
    add_entry_point_plugin(root, "hook_quitter", "hook_quitter_plugin", EXITING_HOOK_PLUGIN)
    add_entry_point_plugin(root, "banding", "lab_banding_plugin", SPECKLE_PLUGIN)

    listed = _run_cli(["plugins", "--json"], str(root))
    assert listed.returncode == 0, listed.stderr
    failures = {f["plugin"]: f for f in json.loads(listed.stdout)["failures"]}
    assert failures["quitter"]["stage"] == "import"
    assert failures["quitter"]["error"] == "SystemExit: 3"
    assert failures["hook_quitter"]["stage"] == "register_tasks"
    assert "no tasks today" in failures["hook_quitter"]["error"]

    table = _run_cli(["plugins"], str(root))
    assert table.returncode == 0 and "quitter" in table.stdout and "SystemExit" in table.stdout

    names = _run_cli(["corruptions", "list", "--json"], str(root))
    assert names.returncode == 0, names.stderr
    assert {"lab_banding", "gaussian_noise"} <= {c["name"] for c in json.loads(names.stdout)}
    assert "plugin 'quitter' failed during import: SystemExit: 3" in names.stderr

    tasks = _run_cli(["tasks", "list", "--json"], str(root))
    assert tasks.returncode == 0, tasks.stderr
    assert "MedFMRobust-Mini-VQA-Lite" in {t["task"] for t in json.loads(tasks.stdout)}


def test_a_duplicate_of_a_builtin_name_is_reported_once_and_other_names_work(tmp_path):
    root = tmp_path / "site"
    add_entry_point_plugin(root, "copycat", "copycat_plugin", COPYCAT_PLUGIN)

    listed = _run_cli(["plugins", "--json"], str(root))
    assert listed.returncode == 0, listed.stderr
    failures = json.loads(listed.stdout)["failures"]
    assert len(failures) == 1
    assert "'medfm_robust_plugin.corruptions.natural'" in failures[0]["error"]
    assert "'copycat'" in failures[0]["error"] and "gaussian_noise" in failures[0]["error"]

    shown = _run_cli(["corruptions", "show", "gaussian_noise", "--json"], str(root))
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["plugin"] == "medfm_robust_plugin.corruptions.natural"
    assert shown.stderr.count("gaussian_noise") == 1  # one warning, naming both plugins
    assert "copycat" in shown.stderr and "corruptions.natural" in shown.stderr

    src, dst = tmp_path / "in.png", tmp_path / "out.png"
    mfr.save_image(src, np.full((16, 16), 200, np.uint8))
    done = _run_cli(["corrupt", str(src), str(dst), "-c", "copycat_dim", "-s", "5"], str(root))
    assert done.returncode == 0, done.stderr
    assert int(mfr.load_image(dst).array.max()) == 100


def test_keyboard_interrupt_in_a_plugin_is_not_swallowed(plugin_root):
    add_entry_point_plugin(
        plugin_root, "interrupted", "interrupted_plugin", "raise KeyboardInterrupt\n"
    )
    with pytest.raises(KeyboardInterrupt):
        get_registry()


# ---------------------------------------------------------------------- commands and hosts, via the CLI

LAB_COMMANDS_PLUGIN = """
    import click
    from medfm_robust_plugin import hookimpl
    from medfm_robust_plugin.hosts.base import Host

    @click.command("lab-hello")
    @click.argument("who")
    def lab_hello(who):
        '''Greet from the lab's harness.'''
        click.echo(f"hello {who}, from the lab")

    class LabHarness(Host):
        name = "lab-harness"
        description = "The lab's own harness"
        harness = "lab-harness"
        module = "lab_harness"

        def commands(self):
            return [lab_hello]

    HOST = LabHarness()

    @hookimpl
    def register_hosts(register):
        register(HOST)

    @hookimpl
    def register_commands(cli):
        for command in HOST.commands():
            cli.add_command(command)
"""

RUDE_COMMANDS_PLUGIN = """
    import click
    from medfm_robust_plugin import hookimpl

    @hookimpl
    def register_commands(cli):
        @cli.command("run")
        def run():
            '''Not ours to replace.'''

        @cli.command("lab-fine")
        def lab_fine():
            '''Added before the hook broke.'''
            click.echo("fine")

        raise RuntimeError("no more commands today")
"""


def test_a_plugin_adds_a_command_and_a_host(tmp_path):
    root = tmp_path / "site"
    add_entry_point_plugin(root, "lab", "lab_commands_plugin", LAB_COMMANDS_PLUGIN)

    hello = _run_cli(["lab-hello", "world"], str(root))
    assert hello.returncode == 0, hello.stderr
    assert hello.stdout == "hello world, from the lab\n"
    assert "lab-hello" in _run_cli(["--help"], str(root)).stdout

    listed = _run_cli(["plugins", "--json"], str(root))
    assert listed.returncode == 0, listed.stderr
    rows = {row["plugin"]: row for row in json.loads(listed.stdout)["plugins"]}
    assert rows["lab"]["hosts"] == ["lab-harness"]
    assert rows["medfm_robust_plugin.hosts.lm_eval_host"]["hosts"] == ["lm-eval"]

    hosts = _run_cli(["hosts", "list", "--json"], str(root))
    assert hosts.returncode == 0, hosts.stderr
    lab = {h["name"]: h for h in json.loads(hosts.stdout)}["lab-harness"]
    assert (lab["plugin"], lab["commands"], lab["installed"]) == ("lab", ["lab-hello"], False)


def test_a_plugin_cannot_replace_a_command_and_its_failure_is_named(tmp_path):
    root = tmp_path / "site"
    add_entry_point_plugin(root, "rude", "rude_commands_plugin", RUDE_COMMANDS_PLUGIN)

    listed = _run_cli(["plugins", "--json"], str(root))
    assert listed.returncode == 0, listed.stderr
    errors = [f["error"] for f in json.loads(listed.stdout)["failures"] if f["plugin"] == "rude"]
    assert any("no more commands today" in e for e in errors)
    assert any("command 'run' belongs to 'medfm-robust' already" in e for e in errors)

    run_help = _run_cli(["run", "--help"], str(root))
    assert run_help.returncode == 0 and "--task" in run_help.stdout  # ours, still
    assert "plugin 'rude' failed during register_commands" in run_help.stderr
    fine = _run_cli(["lab-fine"], str(root))
    assert fine.returncode == 0 and fine.stdout == "fine\n"


RECIPE_VIGNETTE = """
    from medfm_robust_plugin import corruption, hookimpl

    @corruption("vignette", family="optics", severity_params=[0.1, 0.2, 0.3, 0.4, 0.5])
    def vignette(image, param, rng):
        return image * (1 - param)

    @hookimpl
    def register_corruptions(register):
        register(vignette)
"""


def test_two_plugins_with_one_entry_point_name_get_one_line_naming_both(tmp_path):
    """The example package and a copy of it under another distribution, both named 'vignette'."""
    root = tmp_path / "site"
    add_entry_point_plugin(root, "vignette", "medfm_robust_vignette")
    add_entry_point_plugin(root, "vignette", "my_vignette", RECIPE_VIGNETTE)
    path = f"{root}:{EXAMPLE}"
    listed = _run_cli(["plugins"], path)
    assert listed.returncode == 0, listed.stderr
    failed = [line for line in listed.stdout.splitlines() if line.startswith("failed:")]
    assert len(failed) == 1, listed.stdout
    (line,) = failed
    assert "'vignette'" in line and "medfm_robust_vignette" in line and "my_vignette" in line
    assert "(loaded)" in line and "(not loaded)" in line and len(line) < 400
    assert "already registered" not in listed.stdout + listed.stderr

    src, dst = tmp_path / "in.png", tmp_path / "out.png"
    mfr.save_image(src, np.full((16, 16, 3), 200, np.uint8))
    done = _run_cli(["corrupt", str(src), str(dst), "-c", "vignette", "-s", "5"], path)
    assert done.returncode == 0, done.stderr
    (warning,) = [w for w in done.stderr.splitlines() if "entry-point name" in w]
    assert "medfm_robust_vignette" in warning and "my_vignette" in warning


def test_a_registration_error_is_described_in_one_line():
    """pluggy's errors append a dump of every registered module: a failure keeps the first line."""
    from medfm_robust_plugin.plugins import _describe

    dump = ValueError("Plugin name already registered: x=<module>\n{" + "'m': 1, " * 500 + "}")
    assert _describe(dump) == "ValueError: Plugin name already registered: x=<module>"


def test_an_unknown_name_in_the_plugin_variable_is_named(plugin_root, monkeypatch):
    add_entry_point_plugin(plugin_root, "banding", "lab_banding_plugin", SPECKLE_PLUGIN)
    monkeypatch.setenv("MEDFM_ROBUST_PLUGINS", "bandin,nonexistent")
    registry = get_registry()
    failures = {f.plugin: f for f in registry.failures}
    assert set(failures) == {"bandin", "nonexistent"}
    assert failures["nonexistent"].stage == "selection"
    assert "MEDFM_ROBUST_PLUGINS names 'nonexistent'" in str(failures["nonexistent"])
    assert "did you mean 'banding'?" in failures["bandin"].error
    assert "gaussian_noise" in registry.names("corruptions")


def test_the_readme_recipe_and_the_example_use_different_entry_point_names():
    import re

    def declared(text: str) -> set[str]:
        block = re.search(
            r"\[project\.entry-points\.medfm_robust\]\n(.*?)(\n\n|\n```|$)", text, re.S
        )
        return {line.split("=")[0].strip() for line in block.group(1).splitlines() if "=" in line}

    shipped = declared((EXAMPLE / "pyproject.toml").read_text())
    recipe = declared((REPO / "README.md").read_text())
    assert shipped == {"vignette"} and recipe and not recipe & shipped
