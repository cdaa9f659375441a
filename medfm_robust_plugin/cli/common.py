"""What the command modules share: printing tables and JSON, failing with a message, parsing
comma lists and severities, and the options several commands take.

Only click is imported here; everything heavier is imported inside the commands.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

import click

SEVERITY_HELP = "1 (mildest) to 5 (strongest); a fraction such as 2.5 interpolates the table"


def console():
    """A rich console (imported on use)."""
    from rich.console import Console

    return Console()


def print_table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    """A table: drawn by rich on a terminal; piped, one tab-separated line per row, names whole.

    A terminal table wraps long names to fit its width; piped output (``| grep``, ``> file``) is
    read by programs, so every row stays on one line with a header line of column names.
    """
    if not click.get_text_stream("stdout").isatty():
        click.echo("\t".join(columns))
        for row in rows:
            click.echo("\t".join(" ".join(str(cell).split()) for cell in row))
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(Text(str(cell)) for cell in row))  # names are text, never markup
    console().print(table)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def fail(message: str) -> NoReturn:
    """Stop the command with ``message`` on stderr and exit status 1."""
    raise click.ClickException(message)


def short_list(names: list[str], limit: int = 4) -> str:
    """``a, b, c`` or, past ``limit`` names, ``N: a, b, c, d, ...``."""
    if len(names) <= limit:
        return ", ".join(names)
    return f"{len(names)}: {', '.join(names[:limit])}, ..."


def _allow_outside_data_root(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    # through the environment, so that worker processes and every loader see it
    if value:
        import os

        from ..data.loaders.base import ALLOW_OUTSIDE_ENV

        os.environ[ALLOW_OUTSIDE_ENV] = "1"


def outside_data_root_option(command: Any) -> Any:
    """``--allow-outside-data-root`` for the commands that load datasets."""
    return click.option(
        "--allow-outside-data-root",
        is_flag=True,
        expose_value=False,
        callback=_allow_outside_data_root,
        help="Read files a dataset names outside its data root (absolute paths, ../, symlinks); "
        "only for dataset files you trust.",
    )(command)


def parse_list(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def parse_severities(value: str) -> list[int]:
    try:
        if "-" in value and "," not in value:
            a, b = value.split("-")
            levels = list(range(int(a), int(b) + 1))
        else:
            levels = [int(v) for v in value.split(",")]
    except ValueError:
        fail(f"--severities {value!r}: use a range like 1-5 or a list like 1,3,5")
    bad = [s for s in levels if not 1 <= s <= 5]
    if bad or not levels:
        fail(f"--severities {value!r}: severities are 1 to 5")
    return levels


def check_seed(seed: int) -> None:
    if seed < 0:
        fail(f"--seed {seed}: a seed is a whole number from 0 up")
