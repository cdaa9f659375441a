"""`medfm-robust hosts`: the harnesses registered to run the benchmark (VLMEvalKit, lm-eval, ...)."""

from __future__ import annotations

import click

from .common import echo_json, fail, print_table


@click.group()
def hosts() -> None:
    """List and inspect hosts: the harnesses that run the benchmark with their own runners."""


@hosts.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def hosts_list(as_json: bool) -> None:
    """List registered hosts, whether their harness is installed, and their commands."""
    from ..lookup import list_hosts

    rows = [host.summary() for host in list_hosts()]
    if as_json:
        echo_json(rows)
        return
    table = [
        [
            r["name"],
            r["harness"],
            "yes" if r["installed"] else f"no ({r['install']})",
            ", ".join(r["commands"]),
            "yes" if r["reads_output"] else "no",
            r["plugin"] or "",
        ]
        for r in rows
    ]
    columns = ["host", "harness", "installed", "commands", "reads its output", "plugin"]
    print_table(f"{len(rows)} hosts", columns, table)


@hosts.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def hosts_show(name: str, as_json: bool) -> None:
    """Show one host: its harness, how to install it, its commands."""
    from ..errors import MedFMRobustError
    from ..lookup import get_host

    try:
        summary = get_host(name).summary()
    except MedFMRobustError as exc:
        fail(str(exc))
    if as_json:
        echo_json(summary)
        return
    click.echo(f"{summary['name']}  (harness: {summary['harness']}, plugin: {summary['plugin']})")
    click.echo(summary["description"])
    click.echo(f"  installed: {'yes' if summary['installed'] else 'no - ' + summary['install']}")
    click.echo(f"  commands: {', '.join(summary['commands']) or '-'}")
    click.echo(f"  reads its output back: {'yes' if summary['reads_output'] else 'no'}")
