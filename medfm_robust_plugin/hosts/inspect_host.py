"""The Inspect AI host as a plugin: the host and its command (`inspect-tasks`).

The tasks are in ``hosts.inspect_tasks`` (found by Inspect through the ``inspect_ai`` entry point
``medfm_robust``: ``inspect eval medfm_robust/vqa -T task=<card> ...``); its logs are read back
by ``hosts.inspect_results``, so that ``medfm-robust report <log dir or .eval file>`` summarizes
them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from .base import Host, host_hooks

KINDS = ("vqa", "caption", "report", "grounding")  # one Inspect task per kind of card


class InspectHost(Host):
    name = "inspect"
    description = (
        "Inspect AI: medfm_robust/vqa, /caption, /report, /grounding tasks over any task card "
        "(-T task=<card>), our metrics as its scorer, its logs read back"
    )
    harness = "inspect-ai"
    module = "inspect_ai"
    extra = "inspect"

    def tasks(self, cards: Sequence[Any] | None = None) -> dict[str, list[str]]:
        """Inspect task name -> the task cards it runs (``-T task=<card>``)."""
        from ..plugins import get_registry

        registry = get_registry()
        if cards is None:
            cards = [registry.get("tasks", name) for name in registry.names("tasks")]
        return {
            f"medfm_robust/{kind}": sorted(c.name for c in cards if c.kind == kind)
            for kind in KINDS
        }

    def models(self) -> dict[str, str]:
        """Inspect's model provider for our models: ``--model medfm/<model>``."""
        return {"medfm": "medfm_robust_plugin.hosts.inspect_models:MedFMModelAPI"}

    def reads(self, path: str | Path) -> bool:
        from .inspect_results import is_inspect_log

        return is_inspect_log(path)

    def read_records(self, path: str | Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        from .inspect_results import single_run

        return single_run(path)

    def commands(self) -> list[click.Command]:
        return [inspect_tasks]


HOST = InspectHost()
register_hosts, register_commands = host_hooks(HOST)


@click.command("inspect-tasks")
def inspect_tasks() -> None:
    """Print our Inspect AI tasks and the task cards each runs (-T task=<card>)."""
    for name, cards in HOST.tasks().items():
        click.echo(f"{name}: {', '.join(cards) if cards else '(no card)'}")
