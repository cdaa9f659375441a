"""The VLMEvalKit host as a plugin: the host and its `vlmeval` command.

The work is done in ``hosts.vlmeval`` (registration into a running VLMEvalKit, the launcher),
``hosts.vlmeval_datasets`` (our dataset classes) and ``hosts.vlmeval_models`` (our models).
VLMEvalKit's result files carry their robustness table and our records beside them
(``hosts.vlmeval_results`` reads the records back for ``medfm-robust report``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from .base import Host, host_hooks, records_command


class VLMEvalKitHost(Host):
    name = "vlmeval"
    description = (
        "OpenCompass VLMEvalKit: our VQA, caption and grounding cards and <dataset>-MedFMRobust as "
        "its datasets, our models as its models, run by its own run.py"
    )
    harness = "ms-vlmeval"
    module = "vlmeval"
    extra = "vlmeval"

    def tasks(self, cards: Sequence[Any] | None = None) -> list[type]:
        """VLMEvalKit's dataset classes for our datasets (they serve every registered card)."""
        from .vlmeval_datasets import dataset_classes

        return dataset_classes()

    def models(self) -> dict[str, type]:
        from .vlmeval_models import model_classes

        return {cls.__name__: cls for cls in model_classes()}

    def reads(self, path: str | Path) -> bool:
        from .vlmeval_results import record_files

        return bool(record_files(path))

    def read_records(self, path: str | Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        from .vlmeval_results import single_run

        return single_run(path)

    def commands(self) -> list[click.Command]:
        return [vlmeval_run, vlmeval_records]


HOST = VLMEvalKitHost()


register_hosts, register_commands = host_hooks(HOST)


@click.command(
    "vlmeval",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.argument("vlmeval_args", nargs=-1, type=click.UNPROCESSED)
def vlmeval_run(vlmeval_args: tuple[str, ...]) -> None:
    """VLMEvalKit's own run.py with MedFM-Robust's datasets and models registered (= `vlmeval`).

    Everything after `vlmeval` goes to VLMEvalKit, e.g. `medfm-robust vlmeval --data
    MedFMRobust-Mini-VQA-Lite --model gpt-4o`; see docs/vlmeval.md.
    """
    from .vlmeval import main as vlmeval_main

    code = vlmeval_main(list(vlmeval_args) or ["--help"])
    if code:
        raise SystemExit(code)


def _write_vlmeval_records(output_path: str, out: str) -> list[Path]:
    from .vlmeval_results import write_run_dirs

    return write_run_dirs(output_path, out)


vlmeval_records = records_command(
    "vlmeval-records",
    "VLMEvalKit's --work-dir (after a MedFMRobust-* dataset)",
    _write_vlmeval_records,
    None,
)
