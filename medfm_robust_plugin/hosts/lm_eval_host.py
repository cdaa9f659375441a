"""The lm-evaluation-harness host as a plugin: the host and its commands (`lm-eval`,
`lm-eval-tasks`, `lm-eval-records`).

The work is done in ``hosts.lm_eval`` (task YAML built from the cards, our models as lm-eval
models, the launcher) and ``hosts.lm_eval_results`` (lm-eval's logged samples back as records).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from .base import Host, host_hooks, records_command

INSTALL_HINT = "pip install 'medfm-robust-plugin[lm-eval]'"


class LmEvalHost(Host):
    name = "lm-eval"
    description = (
        "EleutherAI's lm-evaluation-harness: every vision-language task card as task YAML for "
        "--include_path, our models as lm-eval models"
    )
    harness = "lm-eval"
    module = "lm_eval"
    extra = "lm-eval"

    def tasks(self, cards: Sequence[Any] | None = None) -> Path:
        """The folder of task YAML for lm-eval's ``--include_path`` (built when needed)."""
        from .lm_eval import tasks_dir

        return tasks_dir(cards)

    def models(self) -> dict[str, str]:
        """lm-eval model name -> the class lm-eval's registry loads (``module:Class``)."""
        from .lm_eval import LM_EVAL_MODELS

        return {
            name: f"medfm_robust_plugin.hosts.lm_eval:{cls}" for name, cls in LM_EVAL_MODELS.items()
        }

    def reads(self, path: str | Path) -> bool:
        from .lm_eval_results import is_lm_eval_output

        return is_lm_eval_output(path)

    def read_records(self, path: str | Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        from .lm_eval_results import single_run

        return single_run(path)

    def commands(self) -> list[click.Command]:
        return [lm_eval_tasks, lm_eval_run, lm_eval_records]


HOST = LmEvalHost()


register_hosts, register_commands = host_hooks(HOST)


@click.command("lm-eval-tasks")
def lm_eval_tasks() -> None:
    """Print the folder of our lm-eval task YAML, for lm_eval --include_path."""
    click.echo(str(HOST.tasks()))


@click.command(
    "lm-eval",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.argument("lm_eval_args", nargs=-1, type=click.UNPROCESSED)
def lm_eval_run(lm_eval_args: tuple[str, ...]) -> None:
    """lm-eval's own command line with our models registered and our tasks on --include_path.

    Everything after `lm-eval` goes to lm_eval, e.g. `medfm-robust lm-eval --model medfm-robust
    --model_args model=baseline:majority --tasks medfm_robust_mini_vqa_lite --log_samples
    --output_path out`; `medfm-robust report out` then reads the result.
    """
    try:
        from .lm_eval import main as lm_eval_main
    except ImportError as exc:
        raise click.ClickException(f"lm-eval is not installed ({exc}); {INSTALL_HINT}") from exc
    try:
        lm_eval_main(list(lm_eval_args) or ["--help"])
    except ImportError as exc:
        raise click.ClickException(f"lm-eval is not installed ({exc}); {INSTALL_HINT}") from exc


def _write_lm_eval_records(output_path: str, out: str) -> list[Path]:
    from .lm_eval_results import write_run_dirs

    return write_run_dirs(output_path, out)


lm_eval_records = records_command(
    "lm-eval-records",
    "an lm-eval --output_path (run with --log_samples)",
    _write_lm_eval_records,
    "runs",
)
