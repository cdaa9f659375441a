"""`medfm-robust tasks`: list and inspect benchmark tasks (task cards)."""

from __future__ import annotations

from typing import Any

import click

from .common import console, echo_json, fail, outside_data_root_option, print_table


@click.group()
def tasks() -> None:
    """List and inspect benchmark tasks (task cards)."""


@tasks.command("list")
@click.option("--kind", help="Only this task kind (vqa, caption, report, grounding, segmentation).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def tasks_list(kind: str | None, as_json: bool) -> None:
    """List registered tasks."""
    from ..plugins import get_registry

    registry = get_registry()
    cards = [registry.items["tasks"][n] for n in registry.names("tasks")]
    cards = [c for c in cards if kind is None or c.kind == kind]
    if as_json:
        echo_json([_task_summary(c) for c in cards])
        return
    rows = [
        [
            c.name,
            c.kind,
            ", ".join(d.name for d in c.datasets),
            ",".join(map(str, c.severities)),
            c.severity_mode,
            "yes" if c.needs_data_root else "no (embedded)",
        ]
        for c in cards
    ]
    print_table(
        f"{len(cards)} tasks",
        ["task", "kind", "datasets", "severities", "mode", "needs data"],
        rows,
    )


def _task_summary(card: Any) -> dict[str, Any]:
    return {
        "task": card.name,
        "kind": card.kind,
        "datasets": [{"name": d.name, "options": d.options} for d in card.datasets],
        "modality": card.modality,
        "prompt": card.prompt,
        "metrics": list(card.metrics),
        "suites": card.suites,
        "corruptions": list(card.corruptions) if card.corruptions else None,
        "severities": list(card.severities),
        "severity_mode": card.severity_mode,
        "sampling": {
            "size": card.sampling.size,
            "per_group": card.sampling.per_group,
            "stratify": card.sampling.stratify,
            "seed": card.sampling.seed,
        },
        "needs_data_root": card.needs_data_root,
        "description": card.description,
        "citation": card.citation,
        "license": card.license,
        "access": card.access,
        "source": card.source,
    }


@tasks.command("show")
@click.argument("name")
@click.option("--data-root", type=click.Path(file_okay=False), help="Where the dataset lives.")
@outside_data_root_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def tasks_show(name: str, data_root: str | None, as_json: bool) -> None:
    """Show a task: data, size, modalities, suites, conditions and how to get the data."""
    from collections import Counter

    from ..errors import MedFMRobustError
    from ..tasks import get_task

    try:
        card = get_task(name)
    except MedFMRobustError as exc:
        fail(str(exc))
    summary = _task_summary(card)
    try:
        loaded = card.load(data_root)
    except MedFMRobustError as exc:
        summary["data"] = {"available": False, "why": str(exc)}
    else:
        modalities = Counter(s.modality for s in loaded.samples)
        summary["data"] = {
            "available": True,
            "samples": len(loaded.samples),
            "skipped": len(loaded.skipped),
            "modalities": dict(sorted(modalities.items())),
            "conditions_per_sample": {m: len(card.conditions_for(m)) for m in sorted(modalities)},
        }
    if as_json:
        echo_json(summary)
        return
    out = console()
    out.print(f"[bold]{card.name}[/bold]  ({card.kind})  {card.source}")
    out.print(card.description)
    for key in (
        "datasets",
        "metrics",
        "suites",
        "severities",
        "severity_mode",
        "sampling",
        "prompt",
    ):
        out.print(f"  {key}: {summary[key]}")
    data = summary["data"]
    if data["available"]:
        out.print(
            f"  data: {data['samples']} samples ({data['skipped']} skipped); modalities {data['modalities']}; "
            f"conditions per sample {data['conditions_per_sample']}"
        )
    else:
        out.print(f"  data: not available here - {data['why']}")
    out.print(f"  citation: {card.citation}")
    out.print(f"  licence: {card.license}")
    out.print(f"  access: {card.access}")
