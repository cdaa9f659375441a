"""What a host is: a harness that runs the benchmark with its own runner (VLMEvalKit, lm-eval, ...).

A host module subclasses ``Host``, registers one instance through ``register_hosts`` and adds its
``commands()`` to ``medfm-robust`` through ``register_commands``. The harness itself is imported
only inside the methods, so that loading the plugin (and ``medfm-robust --help``) stays fast.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import HostError


class Host:
    """A harness adapter: what it needs, the harness tasks and models it gets, its results read back.

    Subclasses set the class attributes and override what their harness offers; the defaults say
    "nothing of that kind" (no models, no reader, no commands).
    """

    name: str = ""
    description: str = ""
    harness: str = ""  # the pip package that installs the harness, e.g. "lm-eval"
    module: str = ""  # its import name, e.g. "lm_eval"
    extra: str | None = None  # pip install 'medfm-robust-plugin[<extra>]' brings it
    plugin: str | None = None  # the plugin that registered the host (filled at registration)

    def tasks(self, cards: Sequence[Any] | None = None) -> Any:
        """The harness's tasks for these task cards (default: every card the host can run)."""
        raise HostError(f"host '{self.name}' does not turn task cards into tasks")

    def models(self) -> dict[str, Any]:
        """The model adapters the host gives the harness, by the name the harness knows them by."""
        return {}

    def reads(self, path: str | Path) -> bool:
        """Whether ``path`` is an output folder of this harness that ``read_records`` reads."""
        return False

    def read_records(self, path: str | Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The harness's output at ``path`` as our records (``records.Record`` dicts) and a run config."""
        raise HostError(f"host '{self.name}' does not read its harness's output back into records")

    def commands(self) -> list[Any]:
        """The click commands the host adds to ``medfm-robust``."""
        return []

    @property
    def installed(self) -> bool:
        """Whether the harness can be imported here (looked up, not imported)."""
        try:
            return importlib.util.find_spec(self.module) is not None
        except (ImportError, ValueError):
            return False

    @property
    def reads_output(self) -> bool:
        """Whether the host reads its harness's output back (it overrides ``read_records``)."""
        return type(self).read_records is not Host.read_records

    def install_hint(self) -> str:
        if self.extra:
            return f"pip install 'medfm-robust-plugin[{self.extra}]'"
        return f"pip install {self.harness}"

    def summary(self) -> dict[str, Any]:
        """What ``medfm-robust hosts list --json`` prints about the host."""
        return {
            "name": self.name,
            "description": self.description,
            "harness": self.harness,
            "installed": self.installed,
            "install": self.install_hint(),
            "commands": sorted(command.name for command in self.commands()),
            "reads_output": self.reads_output,
            "plugin": self.plugin,
        }

    def __repr__(self) -> str:
        return f"<host {self.name!r} ({self.harness})>"


def host_hooks(host: Host) -> tuple[Callable[..., None], Callable[..., None]]:
    """The ``register_hosts`` and ``register_commands`` hooks of a module that offers ``host``:

    HOST = MyHost()
    register_hosts, register_commands = host_hooks(HOST)
    """
    from ..hookspecs import hookimpl

    @hookimpl
    def register_hosts(register: Any) -> None:
        register(host)

    @hookimpl
    def register_commands(cli: Any) -> None:
        for command in host.commands():
            cli.add_command(command)

    return register_hosts, register_commands


# ---------------------------------------------------------------- a harness's output as runs

Runs = dict[tuple[str, str], list[dict[str, Any]]]  # (task card, model) -> records


def read_harness_output(
    path: str | Path,
    folders: Sequence[Path],
    read_folder: Callable[[Path], Runs],
    harness: str,
    pattern: str,
    error: type[Exception],
) -> Runs:
    """Every (card, model) run of an lm-eval-style ``--output_path`` (one folder per model, read
    by ``read_folder``); ``error`` says what is missing when there is nothing to read."""
    if not folders:
        raise error(
            f"'{path}' holds no {harness} results ({pattern}); pass the --output_path of a "
            f"{harness} run made with --log_samples"
        )
    runs: Runs = {}
    for folder in folders:
        runs.update(read_folder(folder))
    if not runs:
        raise error(
            f"'{path}' has {harness} results but no logged samples of medfm_robust_* tasks; "
            f"rerun {harness} with --log_samples"
        )
    return runs


def one_run(
    runs: Runs, path: str | Path, host: str, error: type[Exception], how_to_split: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The records and run configuration of an output holding exactly one (card, model); with
    several, ``error`` lists them and says ``how_to_split``."""
    runs = canonical_models(runs)
    if len(runs) > 1:
        listed = ", ".join(f"{task} x {model}" for task, model in sorted(runs))
        raise error(f"'{path}' holds several runs ({listed}); {how_to_split}")
    (task, model), records = next(iter(runs.items()))
    return records, {"task": task, "model": model, "host": host, "source": str(path)}


def canonical_models(runs: Runs) -> Runs:
    """The runs with each model under its one name (``gpt-4o`` -> ``openai:gpt-4o``, as our runner
    names it), in the keys and in the records, so that one model is one report row and one run
    folder whichever harness or spelling ran it."""
    from ..lookup import canonical_model_name

    named: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for (task, model), records in runs.items():
        name = canonical_model_name(model)
        by_key = named.setdefault((task, name), {})
        for record in records:  # two spellings of one model in one output: one record per item
            by_key[record.get("key") or str(len(by_key))] = {**record, "model": name}
    return {run: list(by_key.values()) for run, by_key in named.items()}


def write_run_folders(runs: Runs, out: str | Path, host: str, source: str | Path) -> list[Path]:
    """Each (card, model) as a run folder ``out/<task>/<model>``, named as the runner names its own,
    that ``medfm-robust report`` reads."""
    from ..jsonl import write_json, write_jsonl
    from ..runner import CONFIG, RECORDS
    from ..runner import _slug as path_part

    written = []
    for (task, model), records in sorted(canonical_models(runs).items()):
        run_dir = Path(out) / path_part(task) / path_part(model)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_jsonl(run_dir / RECORDS, records)
        config = {"task": task, "model": model, "host": host, "source": str(source)}
        write_json(run_dir / CONFIG, {"fingerprint": None, "config": config})
        written.append(run_dir)
    return written


def records_command(
    name: str, what: str, write: Callable[[str, str], list[Path]], default_out: str | None = "runs"
) -> Any:
    """The ``<host>-records OUTPUT -o runs`` command: ``write(output, out)`` makes the run folders."""
    import click

    @click.command(name, help=f"Turn {what} into our run folders (one per task card and model).")
    @click.argument("output_path", type=click.Path(exists=True, file_okay=False))
    @click.option(
        "-o",
        "--out",
        default=default_out,
        required=default_out is None,
        show_default=default_out is not None,
        type=click.Path(file_okay=False),
        help="Run folders go here.",
    )
    def command(output_path: str, out: str) -> None:
        from ..errors import MedFMRobustError

        try:
            for run_dir in write(output_path, out):
                click.echo(str(run_dir))
        except MedFMRobustError as exc:
            raise click.ClickException(str(exc)) from exc

    return command
