"""The ``medfm-robust`` command: the main group, its built-in command groups, then the commands
plugins add through ``register_commands`` (the hosts' ``vlmeval``, ``lm-eval``, ... among them).

Each command group lives in its own module; imports stay inside commands, and plugins' commands
load when the command line is first used, so that ``--help`` is instant.
"""

from __future__ import annotations

from typing import Any

import click

from .corrupt import corrupt, preview
from .corruptions import corruptions
from .finetune import finetune
from .hosts import hosts
from .models import models
from .plugins import plugins
from .run import demo, materialize, report, run
from .tasks import tasks

BUILTIN_COMMANDS = (
    corruptions,
    tasks,
    models,
    corrupt,
    preview,
    materialize,
    run,
    report,
    demo,
    finetune,
    plugins,
    hosts,
)


class MainGroup(click.Group):
    """The main group: its own commands, then those of every plugin, added once on first use."""

    plugin_failures: list[Any] | None = None

    def load_plugin_commands(self) -> list[Any]:
        """Call every plugin's ``register_commands(cli)`` once; their failures, named."""
        if self.plugin_failures is None:
            from ..plugins import add_commands

            self.plugin_failures = [f for f in add_commands(self) if f.stage == "register_commands"]
            for failure in self.plugin_failures:  # import failures are the registry's to report
                click.echo(f"warning: {failure} (see `medfm-robust plugins`)", err=True)
        return self.plugin_failures

    def list_commands(self, ctx: click.Context) -> list[str]:
        self.load_plugin_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self.load_plugin_commands()
        return super().get_command(ctx, cmd_name)


@click.group(cls=MainGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="medfm-robust-plugin")
@click.pass_context
def main(ctx: click.Context) -> None:
    """MedFM-Robust: how medical foundation models hold up under clinical image corruptions."""
    ctx.call_on_close(lambda: _warn_plugin_failures(ctx.invoked_subcommand))


def _warn_plugin_failures(command: str | None) -> None:
    """Name the plugins that failed to load, once, on stderr, after a command that loaded them."""
    import sys

    plugins = sys.modules.get("medfm_robust_plugin.plugins")
    registry = plugins.loaded_registry() if plugins is not None else None
    if registry is None or command == "plugins":  # `plugins` lists them itself
        return
    for failure in registry.failures:
        click.echo(f"warning: {failure} (see `medfm-robust plugins`)", err=True)


for _command in BUILTIN_COMMANDS:
    main.add_command(_command)
