"""The registry: our own modules import plainly, and task cards are checked against it at load."""

from __future__ import annotations

import subprocess
import sys

import pytest

from medfm_robust_plugin.plugins import get_registry
from medfm_robust_plugin.tasks import TaskError, get_task

from .plugin_helpers import add_entry_point_plugin


def test_a_builtin_module_that_cannot_import_is_an_error_not_a_missing_name():
    code = (
        "import sys\n"
        "sys.modules['medfm_robust_plugin.metrics.caption'] = None\n"
        "import numpy as np\n"
        "from medfm_robust_plugin import corrupt\n"
        "corrupt(np.zeros((32, 32), np.uint8), 'gaussian_noise', 1)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "BuiltinImportError" in done.stderr
    assert "medfm_robust_plugin.metrics.caption" in done.stderr
    assert "unknown corruption" not in done.stderr


CARDS_PLUGIN = """
import dataclasses

from medfm_robust_plugin import hookimpl
from medfm_robust_plugin.resources import bundled_files
from medfm_robust_plugin.tasks import load_card_file


@hookimpl
def register_tasks(register):
    (path,) = [p for p in bundled_files("tasks") if p.name == "MedFMRobust-Mini-VQA.yaml"]
    base = load_card_file(path)[0]
    register(dataclasses.replace(base, name="Lab-Typo-Suite", suites="ctt"))
    register(dataclasses.replace(base, name="Lab-Typo-Metric", metrics=("acuracy",)))
    register(dataclasses.replace(base, name="Lab-Typo-Corruption", corruptions=("gausian_noise",)))
    register(dataclasses.replace(base, name="Lab-Fine", corruptions=("gaussian_noise",)))
"""


def test_a_card_naming_what_nothing_registered_is_refused_when_asked_for(tmp_path):
    add_entry_point_plugin(tmp_path / "site", "labcards", "lab_cards_plugin", CARDS_PLUGIN)
    with pytest.raises(
        TaskError, match=r"task 'Lab-Typo-Suite' names unknown suite 'ctt' \(did you mean 'ct'"
    ):
        get_task("Lab-Typo-Suite")
    with pytest.raises(TaskError, match=r"unknown metric 'acuracy'"):
        get_task("lab-typo-metric")
    with pytest.raises(TaskError, match=r"unknown corruption 'gausian_noise'"):
        get_task("Lab-Typo-Corruption")
    fine = get_task("Lab-Fine")
    assert [s.name for s in fine.corruptions_for("ct")] == ["gaussian_noise"]
    failures = [f for f in get_registry().failures if f.plugin == "labcards"]
    assert len(failures) == 3 and all(f.stage == "register_tasks" for f in failures)


def test_every_builtin_card_is_whole():
    registry = get_registry()
    assert not registry.invalid["tasks"]
    assert "MedFMRobust-Mini-VQA" in registry.names("tasks")


HALF_BUILT_PLUGIN = """
from medfm_robust_plugin import hookimpl


class NotAMetric:
    name = "lab_metric"  # no kinds, no score: a half-built object


@hookimpl
def register_metrics(register):
    register(NotAMetric())


@hookimpl
def register_models(register):
    register(object(), name="lab_model")
"""


def test_an_item_without_the_members_of_its_kind_is_its_plugins_failure(tmp_path):
    add_entry_point_plugin(tmp_path / "site", "halfbuilt", "half_built_plugin", HALF_BUILT_PLUGIN)
    registry = get_registry()
    assert "lab_metric" not in registry.names("metrics")
    assert "lab_model" not in registry.names("models")
    failures = {f.stage: f.error for f in registry.failures if f.plugin == "halfbuilt"}
    assert "as a metric, but it has no kinds, score, summarize" in failures["register_metrics"]
    assert "as a model, but it has no name, kind, build" in failures["register_models"]
    assert "accuracy" in registry.names("metrics")  # the others load as before
