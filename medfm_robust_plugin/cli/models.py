"""`medfm-robust models`: list and inspect model wrappers."""

from __future__ import annotations

from typing import Any

import click

from .common import console, echo_json, fail, print_table


@click.group()
def models() -> None:
    """List and inspect model wrappers."""


def _model_summary(spec: Any, aliases: list[str]) -> dict[str, Any]:
    return {
        "name": spec.name + (":<model id>" if spec.prefix else ""),
        "kind": spec.kind,
        "default_id": spec.default_id,
        "aliases": aliases,
        "extra": spec.extra,
        "options": spec.options,
        "description": spec.description,
    }


def _aliases_of(registry: Any, name: str) -> list[str]:
    return sorted(
        a
        for a, target in registry.aliases["models"].items()
        if target == name or target.startswith(f"{name}:")
    )


@models.command("list")
@click.option("--kind", type=click.Choice(["vlm", "segmenter"]), help="Only this kind.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def models_list(kind: str | None, as_json: bool) -> None:
    """List registered models and their aliases."""
    from ..plugins import get_registry

    registry = get_registry()
    specs = [registry.items["models"][n] for n in registry.names("models")]
    rows = [
        _model_summary(s, _aliases_of(registry, s.name)) for s in specs if kind in (None, s.kind)
    ]
    if as_json:
        echo_json(rows)
        return
    lines = [
        [
            r["name"],
            r["kind"],
            r["default_id"] or "",
            ", ".join(r["aliases"]),
            f"[{r['extra']}]" if r["extra"] else "",
        ]
        for r in rows
    ]
    print_table(f"{len(rows)} models", ["name", "kind", "default", "aliases", "needs"], lines)


@models.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def models_show(name: str, as_json: bool) -> None:
    """Show one model: what it wraps, its default weights, options and aliases."""
    from ..errors import MedFMRobustError
    from ..models.base import resolve
    from ..plugins import get_registry

    try:
        spec, model_id = resolve(name)
    except MedFMRobustError as exc:
        fail(str(exc))
    summary = _model_summary(spec, _aliases_of(get_registry(), spec.name))
    summary["resolved_id"] = model_id or spec.default_id
    if as_json:
        echo_json(summary)
        return
    out = console()
    out.print(f"[bold]{summary['name']}[/bold]  ({spec.kind})  weights: {summary['resolved_id']}")
    out.print(spec.description)
    if spec.options:
        for option, text in spec.options.items():
            out.print(f"  {option}: {text}")
    if summary["aliases"]:
        out.print(f"  aliases: {', '.join(summary['aliases'])}")
    if spec.extra:
        from rich.markup import escape

        out.print(escape(f"  needs: pip install 'medfm-robust-plugin[{spec.extra}]'"))
