"""`medfm-robust corruptions`: list and inspect corruptions and suites."""

from __future__ import annotations

from typing import Any

import click

from .common import console, echo_json, fail, print_table


@click.group()
def corruptions() -> None:
    """List and inspect corruptions and suites."""


@corruptions.command("list")
@click.option("--modality", help="Only this modality's suite (ct, mri, xray, ...).")
@click.option("--family", help="Only this family (natural, mri, ct, ...).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def corruptions_list(modality: str | None, family: str | None, as_json: bool) -> None:
    """List registered corruptions."""
    from ..engine import list_corruptions

    items = list_corruptions(modality=modality, family=family)
    if as_json:
        echo_json([_corruption_summary(c) for c in items])
        return
    rows = [
        [
            c.name,
            c.family,
            ", ".join(c.modalities) or "any",
            _table_text(c.severity_params),
            c.plugin or "",
        ]
        for c in items
    ]
    print_table(
        f"{len(items)} corruptions" + (f" for {modality}" if modality else ""),
        ["name", "family", "modalities", "severity 1 .. 5", "plugin"],
        rows,
    )


def _table_text(params: tuple[Any, ...]) -> str:
    return " | ".join(str(p) for p in params)


def _corruption_summary(c: Any) -> dict[str, Any]:
    from ..engine import _jsonable

    return {
        "name": c.name,
        "family": c.family,
        "modalities": list(c.modalities),
        "severity_params": _jsonable(c.severity_params),
        "param_range": _jsonable(c.param_range),
        "domain": c.domain,
        "channels": c.channels,
        "plugin": c.plugin,
        "reference": c.reference,
        "description": c.description,
    }


@corruptions.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def corruptions_show(name: str, as_json: bool) -> None:
    """Show one corruption: what it models, its table and where it comes from."""
    from ..engine import get_corruption
    from ..errors import MedFMRobustError

    try:
        c = get_corruption(name)
    except MedFMRobustError as exc:
        fail(str(exc))
    summary = _corruption_summary(c)
    if as_json:
        echo_json(summary)
        return
    out = console()
    out.print(f"[bold]{c.name}[/bold]  family={c.family}  plugin={c.plugin}")
    for key in ("modalities", "severity_params", "param_range", "domain", "channels", "reference"):
        out.print(f"  {key}: {summary[key]}")
    if c.description:
        out.print()
        out.print(c.description)


@corruptions.command("suites")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def corruptions_suites(as_json: bool) -> None:
    """List corruption suites (one per modality, plus any of your own)."""
    from ..plugins import get_registry

    registry = get_registry()
    suites = [registry.items["suites"][n] for n in registry.names("suites")]
    data = [
        {
            "suite": s.name,
            "modality": s.modality,
            "base": s.corruption_names("base"),
            "modality_specific": s.corruption_names("modality_specific"),
            "missing": s.check(),
            "source": s.source,
            "plugin": registry.owners["suites"][s.name],
        }
        for s in suites
    ]
    if as_json:
        echo_json(data)
        return
    rows = [
        [
            d["suite"],
            d["modality"],
            str(len(d["base"])),
            ", ".join(d["modality_specific"]),
            d["plugin"],
        ]
        for d in data
    ]
    print_table(
        f"{len(data)} suites", ["suite", "modality", "base", "modality-specific", "plugin"], rows
    )
