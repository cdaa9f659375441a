"""Joining a Ray cluster (or starting one on this machine) the way every executor here does."""

from __future__ import annotations

import logging
import os
from typing import Any

from ..errors import MedFMRobustError


def import_ray() -> Any:
    """The ``ray`` module, or one clear error naming the extra to install."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise MedFMRobustError(
            "--executor ray needs Ray: pip install 'medfm-robust-plugin[ray]'"
        ) from None
    return ray


def connect(address: str | None) -> Any:
    """Connect this process to the cluster at ``address`` (``auto``: the one ``ray start``
    started on this node; None: start a private one here, without a dashboard); the ``ray``
    module."""
    ray = import_ray()
    if not ray.is_initialized():
        options: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": True}
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(include_dashboard=False, **options)
    from ray.data import DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = False  # the command line draws its own
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "bars disabled"
    return ray
