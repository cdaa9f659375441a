"""The MedFM-Robust plugin contract: eight hooks handed a ``register`` callback, and one handed
the command line.

A plugin is a module (or an installed package exposing one through the ``medfm_robust`` entry-point
group) that implements any of these hooks with ``@medfm_robust_plugin.hookimpl``. The built-in
corruptions, suites, imaged regions, datasets, tasks, models, metrics, hosts and host commands are
registered through the very same hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

PROJECT_NAME = "medfm_robust"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

Register = Callable[..., Any]


@hookspec
def register_corruptions(register: Register) -> None:
    """Register corruptions: ``register(corruption)`` for each ``@corruption``-decorated function."""


@hookspec
def register_datasets(register: Register) -> None:
    """Register dataset loaders: ``register(loader, name=None)``."""


@hookspec
def register_tasks(register: Register) -> None:
    """Register benchmark tasks (task cards): ``register(task, name=None)``."""


@hookspec
def register_models(register: Register) -> None:
    """Register model wrappers: ``register(model_factory, name=None, aliases=())``."""


@hookspec
def register_metrics(register: Register) -> None:
    """Register task metrics: ``register(metric, name=None)``."""


@hookspec
def register_suites(register: Register) -> None:
    """Register corruption suites: ``register(suite)`` for a ``Suite`` (e.g. from ``load_suite_file``)."""


@hookspec
def register_imaged_regions(register: Register) -> None:
    """Say where SSIM is averaged on a modality's frames: ``register(finder)`` for an
    ``imaged_region.RegionFinder`` (its ``name`` is the modality key)."""


@hookspec
def register_hosts(register: Register) -> None:
    """Register harnesses that run the benchmark: ``register(host)`` for a ``hosts.base.Host``."""


@hookspec
def register_commands(cli: Any) -> None:
    """Add commands to ``medfm-robust``: ``cli`` is its click group (``@cli.command()``)."""
