"""Hosts as plugins: the built-in VLMEvalKit and lm-eval hosts register like any plugin's host, and
reports ask the registered hosts which one reads a folder."""

from __future__ import annotations

import json

import pytest

from medfm_robust_plugin.errors import HostError
from medfm_robust_plugin.hosts.base import Host
from medfm_robust_plugin.lookup import get_host, host_reading, list_hosts
from medfm_robust_plugin.models.base import load_model
from medfm_robust_plugin.plugins import get_registry, reset_registry
from medfm_robust_plugin.report.runs import load_run
from medfm_robust_plugin.runner import Run, RunConfig, latest_records

from .plugin_helpers import add_entry_point_plugin

# A lab's own harness writes one JSON file with our records in it; its host reads it back.
LAB_HOST_PLUGIN = """
    import json
    from pathlib import Path

    from medfm_robust_plugin import hookimpl
    from medfm_robust_plugin.hosts.base import Host

    class LabHarness(Host):
        name = "lab-harness"
        description = "The lab's harness: one lab_output.json per run"
        harness = "lab-harness"
        module = "lab_harness"

        def reads(self, path):
            return (Path(path) / "lab_output.json").is_file()

        def read_records(self, path):
            data = json.loads((Path(path) / "lab_output.json").read_text())
            return data["records"], {"task": data["task"], "model": data["model"]}

    @hookimpl
    def register_hosts(register):
        register(LabHarness())
"""

NOT_A_HOST_PLUGIN = """
    from medfm_robust_plugin import hookimpl

    @hookimpl
    def register_hosts(register):
        register(object(), name="plain-object")
"""


@pytest.fixture
def plugin_root(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path / "site"


def test_builtin_hosts_register_through_the_hook():
    registry = get_registry()
    assert registry.owners["hosts"] == {
        "inspect": "medfm_robust_plugin.hosts.inspect_host",
        "lm-eval": "medfm_robust_plugin.hosts.lm_eval_host",
        "lmms-eval": "medfm_robust_plugin.hosts.lmms_eval_host",
        "vlmeval": "medfm_robust_plugin.hosts.vlmeval_host",
    }
    lm_eval = get_host("lm-eval")
    assert isinstance(lm_eval, Host) and lm_eval.reads_output
    assert {c.name for c in lm_eval.commands()} == {"lm-eval", "lm-eval-tasks", "lm-eval-records"}
    assert set(lm_eval.models()) == {"medfm-robust", "medfm-medgemma", "medfm-llava-med"}
    vlmeval = get_host("vlmeval")
    assert [c.name for c in vlmeval.commands()] == ["vlmeval", "vlmeval-records"]
    assert vlmeval.reads_output
    assert [h.name for h in list_hosts()] == ["inspect", "lm-eval", "lmms-eval", "vlmeval"]


def test_an_unknown_host_names_the_close_ones():
    with pytest.raises(HostError, match="unknown host 'vlm-eval'; did you mean vlmeval"):
        get_host("vlm-eval")


def test_lm_eval_tasks_come_from_the_host(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDFM_ROBUST_CACHE", str(tmp_path))
    folder = get_host("lm-eval").tasks()
    assert folder.parent == tmp_path / "lm_eval_tasks" and any(folder.rglob("*.yaml"))


def test_a_plugin_host_reads_its_output_back_for_reports(plugin_root, tmp_path):
    config = RunConfig(
        task="MedFMRobust-Mini-VQA-Lite",
        model="baseline:majority",
        out=str(tmp_path / "runs"),
        corruptions=["gaussian_noise"],
        limit=4,
        workers=0,
    )
    run_dir = Run(config).execute(load_model("baseline:majority")).run_dir
    records = latest_records(run_dir)
    lab_out = tmp_path / "lab-out"
    lab_out.mkdir()
    payload = {"task": "MedFMRobust-Mini-VQA-Lite", "model": "lab-model", "records": records}
    (lab_out / "lab_output.json").write_text(json.dumps(payload))

    add_entry_point_plugin(plugin_root, "lab", "lab_host_plugin", LAB_HOST_PLUGIN)
    reset_registry()  # the run loaded the plugins before the lab's was installed
    assert get_registry().registered_by("lab")["hosts"] == ["lab-harness"]
    assert host_reading(lab_out).name == "lab-harness"
    assert host_reading(run_dir) is None  # our own run folder: read as a run, by no host

    run = load_run(lab_out)
    assert (run.task, run.model) == ("MedFMRobust-Mini-VQA-Lite", "lab-model")
    assert len(run.records) == len(records) > 0
    assert run.summary == load_run(run_dir).summary


def test_a_host_that_is_not_a_host_is_its_plugins_failure(plugin_root):
    add_entry_point_plugin(plugin_root, "plain", "plain_host_plugin", NOT_A_HOST_PLUGIN)
    registry = get_registry()
    [failure] = registry.failures
    assert (failure.plugin, failure.stage) == ("plain", "register_hosts")
    assert "as a host, but it has no" in failure.error and "read_records" in failure.error
    assert registry.names("hosts") == ["inspect", "lm-eval", "lmms-eval", "vlmeval"]


def test_the_command_line_loads_every_builtin_plugin_that_has_commands():
    import importlib

    from medfm_robust_plugin.plugins import BUILTIN_COMMAND_PLUGINS, BUILTIN_PLUGINS

    with_commands = [
        name
        for name in BUILTIN_PLUGINS
        if hasattr(importlib.import_module(name), "register_commands")
    ]
    assert with_commands == list(BUILTIN_COMMAND_PLUGINS)
