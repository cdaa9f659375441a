"""The lmms-eval host as a plugin: the host and its commands (`lmms-eval`, `lmms-eval-tasks`,
`lmms-eval-records`).

The work is done in ``hosts.lmms_eval`` (task YAML built from the cards, the launcher),
``hosts.lmms_eval_conditions`` (what lmms-eval calls per document) and ``hosts.lmms_eval_results``
(lmms-eval's logged samples back as records).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from .base import Host, host_hooks, records_command

INSTALL_HINT = "pip install 'medfm-robust-plugin[lmms-eval]'"


class LmmsEvalHost(Host):
    name = "lmms-eval"
    description = (
        "lmms-eval (LMMs-Lab): every vision-language task card as task YAML for --include_path "
        "(images made on the fly by the shared view layer), our models as lmms-eval models"
    )
    harness = "lmms-eval"
    module = "lmms_eval"
    extra = "lmms-eval"

    def tasks(self, cards: Sequence[Any] | None = None) -> Path:
        """The folder of task YAML for lmms-eval's ``--include_path`` (built when needed)."""
        from .lmms_eval import tasks_dir

        return tasks_dir(cards)

    def models(self) -> dict[str, str]:
        """lmms-eval model name -> the class its registry loads (our ``lmms_eval.models`` manifests)."""
        from .lmms_eval import LMMS_EVAL_MODELS

        module = "medfm_robust_plugin.hosts.lmms_eval_models"
        return {name: f"{module}.{cls}" for name, cls in LMMS_EVAL_MODELS.items()}

    def reads(self, path: str | Path) -> bool:
        from .lmms_eval_results import is_lmms_eval_output

        return is_lmms_eval_output(path)

    def read_records(self, path: str | Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        from .lmms_eval_results import single_run

        return single_run(path)

    def commands(self) -> list[click.Command]:
        return [lmms_eval_tasks, lmms_eval_run, lmms_eval_records]


HOST = LmmsEvalHost()


register_hosts, register_commands = host_hooks(HOST)


@click.command("lmms-eval-tasks")
def lmms_eval_tasks() -> None:
    """Print the folder of our lmms-eval task YAML, for lmms-eval --include_path."""
    click.echo(str(HOST.tasks()))


@click.command(
    "lmms-eval",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.argument("lmms_eval_args", nargs=-1, type=click.UNPROCESSED)
def lmms_eval_run(lmms_eval_args: tuple[str, ...]) -> None:
    """lmms-eval's own command line with our tasks on --include_path (exits 1 if a run fails).

    Everything after `lmms-eval` goes to lmms-eval, e.g. `medfm-robust lmms-eval --model openai
    --model_args model=gpt-4o --tasks medfm_robust_mini_vqa --log_samples --output_path out`;
    `medfm-robust report out` then reads the result.
    """
    try:
        from .lmms_eval import main as lmms_eval_main
    except ImportError as exc:
        raise click.ClickException(f"lmms-eval is not installed ({exc}); {INSTALL_HINT}") from exc
    try:
        lmms_eval_main(list(lmms_eval_args) or ["--help"])
    except ImportError as exc:
        raise click.ClickException(f"lmms-eval is not installed ({exc}); {INSTALL_HINT}") from exc


def _write_lmms_eval_records(output_path: str, out: str) -> list[Path]:
    from .lmms_eval_results import write_run_dirs

    return write_run_dirs(output_path, out)


lmms_eval_records = records_command(
    "lmms-eval-records",
    "an lmms-eval --output_path (run with --log_samples)",
    _write_lmms_eval_records,
    "runs",
)
