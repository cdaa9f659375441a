"""`medfm-robust plugins`: what each loaded plugin registered, and which failed."""

from __future__ import annotations

from typing import Any

import click

from .common import echo_json, print_table, short_list


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins(as_json: bool) -> None:
    """List loaded plugins, what each registered, and any that failed."""
    from ..plugins import KINDS, get_registry

    registry = get_registry()
    rows = [{"plugin": p, **registry.registered_by(p)} for p in registry.plugins]
    found = [*registry.failures, *_command_failures()]
    failures = [{"plugin": f.plugin, "stage": f.stage, "error": f.error} for f in found]
    if as_json:
        echo_json({"plugins": rows, "failures": failures})
        return
    table = []
    for row in rows:
        parts = [
            f"{kind} ({len(row[kind])}): {short_list(row[kind])}" for kind in KINDS if row[kind]
        ]
        table.append([row["plugin"], "; ".join(parts) or "-"])
    print_table(f"{len(rows)} plugins", ["plugin", "registered"], table)
    for f in found:
        click.echo(f"failed: {f}")


def _command_failures() -> list[Any]:
    """The plugins whose ``register_commands`` failed on this command line."""
    root = click.get_current_context().find_root().command
    return list(getattr(root, "plugin_failures", None) or [])
