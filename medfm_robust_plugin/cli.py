"""The ``medfm-robust`` command. Imports stay inside commands so that ``--help`` is instant."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from .time_limit import DEFAULT_ITEM_TIMEOUT

SEVERITY_HELP = "1 (mildest) to 5 (strongest); a fraction such as 2.5 interpolates the table"


def _console():
    from rich.console import Console

    return Console()


def _print_table(title: str, columns: list[str], rows: list[list[str]]) -> None:
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
    _console().print(table)


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _fail(message: str) -> None:
    raise click.ClickException(message)


def _allow_outside_data_root(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    # through the environment, so that worker processes and every loader see it
    if value:
        import os

        from .data.loaders.base import ALLOW_OUTSIDE_ENV

        os.environ[ALLOW_OUTSIDE_ENV] = "1"


def _outside_data_root_option(command: Any) -> Any:
    """``--allow-outside-data-root`` for the commands that load datasets."""
    return click.option(
        "--allow-outside-data-root",
        is_flag=True,
        expose_value=False,
        callback=_allow_outside_data_root,
        help="Read files a dataset names outside its data root (absolute paths, ../, symlinks); "
        "only for dataset files you trust.",
    )(command)


def _parse_list(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _parse_severities(value: str) -> list[int]:
    try:
        if "-" in value and "," not in value:
            a, b = value.split("-")
            levels = list(range(int(a), int(b) + 1))
        else:
            levels = [int(v) for v in value.split(",")]
    except ValueError:
        _fail(f"--severities {value!r}: use a range like 1-5 or a list like 1,3,5")
    bad = [s for s in levels if not 1 <= s <= 5]
    if bad or not levels:
        _fail(f"--severities {value!r}: severities are 1 to 5")
    return levels


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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


# --------------------------------------------------------------------------- corruptions


@main.group()
def corruptions() -> None:
    """List and inspect corruptions and suites."""


@corruptions.command("list")
@click.option("--modality", help="Only this modality's suite (ct, mri, xray, ...).")
@click.option("--family", help="Only this family (natural, mri, ct, ...).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def corruptions_list(modality: str | None, family: str | None, as_json: bool) -> None:
    """List registered corruptions."""
    from .engine import list_corruptions

    items = list_corruptions(modality=modality, family=family)
    if as_json:
        _echo_json([_corruption_summary(c) for c in items])
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
    _print_table(
        f"{len(items)} corruptions" + (f" for {modality}" if modality else ""),
        ["name", "family", "modalities", "severity 1 .. 5", "plugin"],
        rows,
    )


def _table_text(params: tuple[Any, ...]) -> str:
    return " | ".join(str(p) for p in params)


def _corruption_summary(c: Any) -> dict[str, Any]:
    from .engine import _jsonable

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
    from .engine import get_corruption
    from .errors import MedFMRobustError

    try:
        c = get_corruption(name)
    except MedFMRobustError as exc:
        _fail(str(exc))
    summary = _corruption_summary(c)
    if as_json:
        _echo_json(summary)
        return
    console = _console()
    console.print(f"[bold]{c.name}[/bold]  family={c.family}  plugin={c.plugin}")
    for key in ("modalities", "severity_params", "param_range", "domain", "channels", "reference"):
        console.print(f"  {key}: {summary[key]}")
    if c.description:
        console.print()
        console.print(c.description)


@corruptions.command("suites")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def corruptions_suites(as_json: bool) -> None:
    """List corruption suites (one per modality, plus any of your own)."""
    from .plugins import get_registry

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
        _echo_json(data)
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
    _print_table(
        f"{len(data)} suites", ["suite", "modality", "base", "modality-specific", "plugin"], rows
    )


# --------------------------------------------------------------------------- tasks


@main.group()
def tasks() -> None:
    """List and inspect benchmark tasks (task cards)."""


@tasks.command("list")
@click.option("--kind", help="Only this task kind (vqa, caption, report, grounding, segmentation).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def tasks_list(kind: str | None, as_json: bool) -> None:
    """List registered tasks."""
    from .plugins import get_registry

    registry = get_registry()
    cards = [registry.items["tasks"][n] for n in registry.names("tasks")]
    cards = [c for c in cards if kind is None or c.kind == kind]
    if as_json:
        _echo_json([_task_summary(c) for c in cards])
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
    _print_table(
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
@_outside_data_root_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def tasks_show(name: str, data_root: str | None, as_json: bool) -> None:
    """Show a task: data, size, modalities, suites, conditions and how to get the data."""
    from collections import Counter

    from .errors import MedFMRobustError
    from .tasks import get_task

    try:
        card = get_task(name)
    except MedFMRobustError as exc:
        _fail(str(exc))
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
        _echo_json(summary)
        return
    console = _console()
    console.print(f"[bold]{card.name}[/bold]  ({card.kind})  {card.source}")
    console.print(card.description)
    for key in (
        "datasets",
        "metrics",
        "suites",
        "severities",
        "severity_mode",
        "sampling",
        "prompt",
    ):
        console.print(f"  {key}: {summary[key]}")
    data = summary["data"]
    if data["available"]:
        console.print(
            f"  data: {data['samples']} samples ({data['skipped']} skipped); modalities {data['modalities']}; "
            f"conditions per sample {data['conditions_per_sample']}"
        )
    else:
        console.print(f"  data: not available here - {data['why']}")
    console.print(f"  citation: {card.citation}")
    console.print(f"  licence: {card.license}")
    console.print(f"  access: {card.access}")


# --------------------------------------------------------------------------- models


@main.group()
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
    from .plugins import get_registry

    registry = get_registry()
    specs = [registry.items["models"][n] for n in registry.names("models")]
    rows = [
        _model_summary(s, _aliases_of(registry, s.name)) for s in specs if kind in (None, s.kind)
    ]
    if as_json:
        _echo_json(rows)
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
    _print_table(f"{len(rows)} models", ["name", "kind", "default", "aliases", "needs"], lines)


@models.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def models_show(name: str, as_json: bool) -> None:
    """Show one model: what it wraps, its default weights, options and aliases."""
    from .errors import MedFMRobustError
    from .models.base import resolve
    from .plugins import get_registry

    try:
        spec, model_id = resolve(name)
    except MedFMRobustError as exc:
        _fail(str(exc))
    summary = _model_summary(spec, _aliases_of(get_registry(), spec.name))
    summary["resolved_id"] = model_id or spec.default_id
    if as_json:
        _echo_json(summary)
        return
    console = _console()
    console.print(
        f"[bold]{summary['name']}[/bold]  ({spec.kind})  weights: {summary['resolved_id']}"
    )
    console.print(spec.description)
    if spec.options:
        for option, text in spec.options.items():
            console.print(f"  {option}: {text}")
    if summary["aliases"]:
        console.print(f"  aliases: {', '.join(summary['aliases'])}")
    if spec.extra:
        from rich.markup import escape

        console.print(escape(f"  needs: pip install 'medfm-robust-plugin[{spec.extra}]'"))


# --------------------------------------------------------------------------- corrupt / preview


@main.command()
@click.argument("input_path", metavar="IN", type=click.Path(dir_okay=False))
@click.argument("output_path", metavar="OUT", type=click.Path(dir_okay=False))
@click.option("--corruption", "-c", "name", required=True, help="Corruption name.")
@click.option("--severity", "-s", default=3.0, show_default=True, type=float, help=SEVERITY_HELP)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--mode",
    type=click.Choice(["table", "ssim"]),
    default="table",
    show_default=True,
    help="table: fixed parameters; ssim: calibrate the level on this image by SSIM.",
)
@click.option(
    "--slice", "slice_index", type=int, help="Slice of a 3-D NIfTI volume (default: middle)."
)
@click.option(
    "--frame",
    "frame_index",
    type=int,
    help="Frame of a multi-frame DICOM (cine, enhanced CT/MR; default: middle).",
)
@click.option(
    "--params",
    "params_path",
    type=click.Path(dir_okay=False),
    help="Also write the applied parameters as JSON here.",
)
@click.option("--modality", help="What the image is (ct, mri, ...), when the file does not say.")
@click.option(
    "--window",
    help="Window the model sees: bottom,top (e.g. -160,240) or a CT preset "
    "(soft_tissue, brain, lung, bone, liver). Default: the file's, else by modality.",
)
@click.option("--pixel-spacing", help="Row,column pixel spacing in mm, when the file does not say.")
@click.option("--force", is_flag=True, help="Overwrite IN when OUT names the same file.")
def corrupt(
    input_path: str,
    output_path: str,
    name: str,
    severity: float,
    seed: int,
    mode: str,
    slice_index: int | None,
    frame_index: int | None,
    params_path: str | None,
    modality: str | None,
    window: str | None,
    pixel_spacing: str | None,
    force: bool,
) -> None:
    """Corrupt one image file (PNG, JPEG, TIFF, DICOM, NIfTI) into OUT, keeping its dtype."""
    from .engine import corrupt as apply
    from .errors import MedFMRobustError
    from .image import load_image, save_image

    level: float = int(severity) if float(severity).is_integer() else severity
    _check_seed(seed)
    if _same_file(input_path, output_path) and not force:
        _fail(
            f"OUT '{output_path}' is the input file itself; name another OUT, or pass --force "
            "to overwrite the input"
        )
    if params_path:
        _check_new_file(params_path, "--params")
    try:
        image = load_image(input_path, slice_index=slice_index, frame=frame_index)
        if mode == "ssim":
            _check_ssim_size(image.array, input_path)
        out, params = apply(
            image,
            name,
            level,
            seed,
            True,
            mode=mode,
            sample_id=input_path,
            modality=modality,
            window=_parse_window(window),
            pixel_spacing=_parse_pair(pixel_spacing, "--pixel-spacing"),
        )
        save_image(output_path, out, like=image)
    except MedFMRobustError as exc:
        _fail(str(exc))
    if params_path:
        try:
            Path(params_path).write_text(json.dumps(params, indent=2))
        except OSError as exc:
            _fail(f"--params {params_path}: could not be written ({exc.strerror or exc})")
    click.echo(f"wrote {output_path} ({name}, severity {level}, seed {seed})")


def _check_seed(seed: int) -> None:
    if seed < 0:
        _fail(f"--seed {seed}: a seed is a whole number from 0 up")


def _same_file(a: str, b: str) -> bool:
    """Whether two paths name one file (after resolving links; hard links too)."""
    import os

    if Path(a).resolve() == Path(b).resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet
        return False


def _check_new_file(path: str, option: str) -> None:
    """Refuse a file that cannot be written, before any work (its folder must exist)."""
    target = Path(path)
    folder = target.parent
    if target.is_dir():
        _fail(f"{option} {path}: that is a folder; give a file name")
    if not folder.is_dir():
        _fail(f"{option} {path}: the folder '{folder}' does not exist; create it first")


def _check_ssim_size(array: Any, source: str) -> None:
    from .ssim import WIN

    if min(array.shape[:2]) < WIN:
        _fail(
            f"'{source}': --mode ssim measures SSIM, which needs at least {WIN} x {WIN} pixels; "
            f"this image is {array.shape[0]} x {array.shape[1]}; use --mode table"
        )


def _parse_pair(text: str | None, option: str) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        a, b = (float(v) for v in text.split(","))
    except ValueError:
        _fail(f"{option} {text!r}: give two numbers separated by a comma, e.g. 0.7,0.7")
    return a, b


def _parse_window(text: str | None) -> str | tuple[float, float] | None:
    if text is None or "," not in text:
        return text
    return _parse_pair(text, "--window")


@main.command()
@click.argument("image_path", metavar="[IMAGE]", required=False, type=click.Path(dir_okay=False))
@click.option(
    "-o", "--output", default="preview.png", show_default=True, type=click.Path(dir_okay=False)
)
@click.option(
    "--corruptions",
    "names",
    help="Comma-separated corruption names (default: all of the modality).",
)
@click.option(
    "--modality", help="Use this modality's suite (and its phantom when no IMAGE is given)."
)
@click.option(
    "--severities", default="1-5", show_default=True, help="Range or list, e.g. 1-5 or 1,3,5."
)
@click.option("--mode", type=click.Choice(["table", "ssim"]), default="table", show_default=True)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--tile", default=128, show_default=True, type=int, help="Thumbnail size in pixels.")
def preview(
    image_path: str | None,
    output: str,
    names: str | None,
    modality: str | None,
    severities: str,
    mode: str,
    seed: int,
    tile: int,
) -> None:
    """A labelled grid of corruptions at severities 1-5 (IMAGE, or an embedded phantom)."""
    from .errors import MedFMRobustError

    _check_seed(seed)
    if image_path and _same_file(image_path, output):
        _fail(f"-o '{output}' is IMAGE itself; name another output file")
    try:
        path = _write_preview(
            image_path,
            output,
            _parse_list(names),
            modality,
            _parse_severities(severities),
            mode,
            seed,
            tile,
        )
    except MedFMRobustError as exc:
        _fail(str(exc))
    click.echo(f"wrote {path}")


def _write_preview(
    image_path, output, names, modality, severities, mode, seed, tile, items=None
) -> Path:
    from .data.phantoms import GENERATORS, phantom
    from .engine import get_corruption, list_corruptions
    from .image import load_image
    from .preview import check_modality, check_output, check_tile, save_preview

    check_output(output)
    check_tile(tile)
    check_modality(modality)
    if image_path:
        from .engine import image_context

        image = load_image(image_path)  # its DICOM modality, window and spacing come along
        if mode == "ssim":
            _check_ssim_size(image.array, image_path)
        modality = modality or image_context(image, image_path)[2].modality
        label = Path(image_path).name
    else:
        which = modality if modality in GENERATORS else "dermoscopy"
        image = phantom(which, 256, seed=seed).image
        label = f"{which} phantom"
    if items is None:
        items = [get_corruption(n) for n in names] if names else list_corruptions(modality=modality)
    if not items:
        _fail(f"no corruptions for modality '{modality}'; see `medfm-robust corruptions suites`")
    title = f"MedFM-Robust  {label}  {modality or 'all'} corruptions  ({mode} severities)"
    return save_preview(
        output,
        image,
        items,
        severities,
        seed=seed,
        tile=tile,
        title=title,
        mode=mode,
        modality=modality,
    )


_item_timeout_option = click.option(
    "--item-timeout",
    type=click.FloatRange(min=0),
    default=DEFAULT_ITEM_TIMEOUT,
    show_default=True,
    metavar="SECONDS",
    help="Time one item may take: a corrupted view (in its worker process) or a model call "
    "(per item of the batch). Past it the item is recorded as failed and the run goes on. 0: no limit.",
)
_wait_option = click.option(
    "--wait",
    is_flag=True,
    help="When another process is writing into the output directory, wait for it to finish "
    "instead of stopping.",
)


@main.command()
@click.option(
    "--task", "task_name", required=True, help="Task card name (see `medfm-robust tasks list`)."
)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["folder", "tsv", "hf"]),
    default="folder",
    show_default=True,
)
@click.option(
    "--num-proc",
    default=1,
    show_default=True,
    type=click.IntRange(min=0),
    help="Worker processes making the items (0: this process, without the item time limit).",
)
@_item_timeout_option
@_wait_option
@click.option("--limit", type=int, help="Only the first N samples.")
@click.option(
    "--corruptions", "names", help="Comma-separated corruptions (default: each modality's suite)."
)
@click.option("--severities", help="Levels to write, e.g. 1,3,5 (default: the task's).")
@click.option("--data-root", type=click.Path(file_okay=False), help="Where the dataset lives.")
@_outside_data_root_option
@click.option(
    "--seed", default=0, show_default=True, type=int, help="Global seed of the per-sample seeds."
)
def materialize(
    task_name: str,
    out: str,
    fmt: str,
    num_proc: int,
    item_timeout: float,
    wait: bool,
    limit: int | None,
    names: str | None,
    severities: str | None,
    data_root: str | None,
    seed: int,
) -> None:
    """Write clean and corrupted samples with a manifest; resumes after an interruption."""
    from rich.progress import BarColumn, Progress, TimeRemainingColumn

    from .errors import MedFMRobustError
    from .materialize import Plan, count_items
    from .materialize import materialize as run_materialize
    from .tasks import get_task

    try:
        plan = Plan(
            get_task(task_name),
            data_root=data_root,
            limit=limit,
            corruptions=tuple(_parse_list(names)) if names else None,
            severities=tuple(_parse_severities(severities)) if severities else None,
            seed=seed,
        )
        total = count_items(plan)
        columns = (*Progress.get_default_columns()[:2], BarColumn(), TimeRemainingColumn())
        with Progress(*columns, console=_console()) as bar:
            job = bar.add_task(f"materialize {plan.card.name}", total=total)
            result = run_materialize(
                plan,
                out,
                fmt,
                num_proc,
                progress=lambda n: bar.advance(job, n),
                wait=wait,
                item_timeout=item_timeout or None,
            )
    except MedFMRobustError as exc:
        _fail(str(exc))
    click.echo(
        f"{result['written']} written, {result['skipped_done']} already done, {result['failed']} failed "
        f"(see {out}/errors.jsonl); manifest: {out}/manifest.jsonl"
    )
    for key in ("tsv", "hf"):
        if key in result:
            click.echo(f"{key}: {result[key]}")


def _model_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            _fail(f"--model-option {pair!r}: use KEY=VALUE")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


@main.command()
@click.option(
    "--task", "task_name", required=True, help="Task card name (see `medfm-robust tasks list`)."
)
@click.option(
    "--model", "model_name", required=True, help="Model name (see `medfm-robust models list`)."
)
@click.option(
    "--corruptions", "names", help="Comma-separated corruptions (default: each modality's suite)."
)
@click.option("--severities", help="Levels, e.g. 1,3,5 (default: the task's).")
@click.option(
    "--limit", type=int, help="Number of samples (each runs clean and under every condition)."
)
@click.option("--concurrency", type=int, help="Parallel requests for API models.")
@click.option("--out", default="runs", show_default=True, type=click.Path(file_okay=False))
@click.option("--data-root", type=click.Path(file_okay=False), help="Where the dataset lives.")
@_outside_data_root_option
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--severity-mode", type=click.Choice(["table", "ssim"]), help="Override the task's mode."
)
@click.option("--batch-size", type=int, help="Items per model call (default: the model's).")
@click.option(
    "--workers",
    default=2,
    show_default=True,
    type=click.IntRange(min=0),
    help="Worker processes preparing corrupted views (0: this process, without their time limit).",
)
@_item_timeout_option
@_wait_option
@click.option("--max-new-tokens", default=256, show_default=True, type=int)
@click.option(
    "--judge", help="VQA: a model that reads answers the rules cannot (e.g. gpt-4o-mini)."
)
@click.option(
    "--model-option",
    "model_option",
    multiple=True,
    help="KEY=VALUE passed to the model (repeatable).",
)
@click.option(
    "--allow-config-change", is_flag=True, help="Continue a run whose configuration changed."
)
@click.option(
    "--dry-run", is_flag=True, help="Print the number of calls and estimated cost; call nothing."
)
def run(
    task_name: str,
    model_name: str,
    names: str | None,
    severities: str | None,
    limit: int | None,
    concurrency: int | None,
    out: str,
    data_root: str | None,
    seed: int,
    severity_mode: str | None,
    batch_size: int | None,
    workers: int,
    item_timeout: float,
    wait: bool,
    max_new_tokens: int,
    judge: str | None,
    model_option: tuple[str, ...],
    allow_config_change: bool,
    dry_run: bool,
) -> None:
    """Evaluate a model on a task, clean and under every corruption and severity."""
    from .errors import MedFMRobustError
    from .models.base import load_model, resolve
    from .runner import Run, RunConfig

    options = _model_options(model_option)
    try:
        spec, _ = resolve(model_name)
        if concurrency is not None:
            options["concurrency"] = concurrency
        config = RunConfig(
            task=task_name,
            model=model_name,
            out=out,
            corruptions=_parse_list(names),
            severities=_parse_severities(severities) if severities else None,
            limit=limit,
            seed=seed,
            severity_mode=severity_mode,
            data_root=data_root,
            model_options=options,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            workers=workers,
            judge=judge,
            item_timeout=item_timeout or None,
            wait=wait,
        )
        job = Run(config, allow_config_change=allow_config_change)
        if dry_run:
            _print_dry_run(job, spec, model_name, options, max_new_tokens)
            return
        model = load_model(model_name, **options)
        result = _execute_with_progress(job, model)
    except MedFMRobustError as exc:
        _fail(str(exc))
    click.echo(
        f"{result.written} records written, {result.skipped_done} already done, {result.failed} failed; "
        f"{result.run_dir}/records.jsonl"
    )
    if result.summary:
        _print_summary_headline(result.summary)


def _print_dry_run(
    job: Any, spec: Any, model_name: str, options: dict[str, Any], max_new_tokens: int
) -> None:
    from .models.base import load_model

    plan = job.plan()
    click.echo(
        f"{plan['task']} x {plan['model']}: {plan['samples']} samples, {plan['conditions']} conditions, "
        f"{plan['items']} model calls to make ({plan['already_done']} already done) -> {plan['run_dir']}"
    )
    if spec.kind != "vlm" or spec.extra != "api":
        return
    model = load_model(model_name, **options)
    estimate = getattr(model, "estimate", None)
    if estimate is None:
        return
    sample = job.prompts(limit=min(plan["items"], 50))
    if not sample:
        return
    guess = estimate(sample, max_new_tokens=max_new_tokens)
    scale = plan["items"] / len(sample)
    tokens_in = guess.get("input_tokens", 0) * scale
    tokens_out = guess.get("output_tokens", 0) * scale
    cost = guess.get("cost_usd")
    text = f"estimated tokens: {tokens_in:,.0f} in, {tokens_out:,.0f} out (at most)"
    if cost is not None:
        text += f"; estimated cost: ${cost * scale:,.2f} (before cache hits)"
    click.echo(text)


def _execute_with_progress(job: Any, model: Any) -> Any:
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    total = job.plan()["items"]
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[cost]}"),
    )
    with Progress(*columns, console=_console(), transient=False) as bar:
        handle = bar.add_task(f"{job.card.name} x {job.config.model}", total=total, cost="")

        def advance(n: int, usage: dict[str, Any]) -> None:
            cost = usage.get("cost_usd")
            bar.update(handle, advance=n, cost=f"${cost:.4f}" if cost else "")

        return job.execute(model, progress=advance)


def _print_summary_headline(summary: dict[str, Any]) -> None:
    headline = summary.get("headline") or {}
    for metric, values in headline.items():
        click.echo(f"{metric}: {values}")


# --------------------------------------------------------------------------- plugins / demo


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins(as_json: bool) -> None:
    """List loaded plugins, what each registered, and any that failed."""
    from .plugins import KINDS, get_registry

    registry = get_registry()
    rows = [{"plugin": p, **registry.registered_by(p)} for p in registry.plugins]
    failures = [{"plugin": f.plugin, "stage": f.stage, "error": f.error} for f in registry.failures]
    if as_json:
        _echo_json({"plugins": rows, "failures": failures})
        return
    table = []
    for row in rows:
        parts = [f"{kind} ({len(row[kind])}): {_short(row[kind])}" for kind in KINDS if row[kind]]
        table.append([row["plugin"], "; ".join(parts) or "-"])
    _print_table(f"{len(rows)} plugins", ["plugin", "registered"], table)
    for f in registry.failures:
        click.echo(f"failed: {f}")


def _short(names: list[str], limit: int = 4) -> str:
    if len(names) <= limit:
        return ", ".join(names)
    return f"{len(names)}: {', '.join(names[:limit])}, ..."


DEMO_RUNS = (
    ("MedFMRobust-Mini-VQA-Lite", "baseline:majority"),
    ("MedFMRobust-Mini-Caption-Lite", "baseline:template-caption"),
    ("MedFMRobust-Mini-Grounding-Lite", "baseline:grounding"),
    ("MedFMRobust-Mini-Seg-Lite", "baseline:box-otsu"),
)


@main.command()
@click.option(
    "-o", "--out", default="medfm-robust-demo", show_default=True, type=click.Path(file_okay=False)
)
@click.option("--seed", default=0, show_default=True, type=int)
def demo(out: str, seed: int) -> None:
    """The whole benchmark on the embedded Mini suite with the built-in baselines, offline.

    Runs VQA, captioning, grounding and segmentation (the -Lite cards: 8 phantoms per modality,
    severities 1, 3, 5, every corruption of each modality's suite), then writes the report.
    """
    from .errors import MedFMRobustError
    from .models.base import load_model
    from .report import build_report
    from .runner import Run, RunConfig

    folder = Path(out)
    run_dirs = []
    try:
        for task, model_name in DEMO_RUNS:
            job = Run(RunConfig(task=task, model=model_name, out=str(folder / "runs"), seed=seed))
            result = _execute_with_progress(job, load_model(model_name))
            click.echo(f"{task} x {model_name}: {result.written} records ({result.failed} failed)")
            run_dirs.append(result.run_dir)
        paths = build_report(run_dirs, folder / "report")
    except MedFMRobustError as exc:
        _fail(str(exc))
    click.echo(f"report: {paths.files['html']} (also report.md, headline.csv, tables.tex, plots/)")


@main.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option(
    "-o",
    "--out",
    default="medfm-robust-report",
    show_default=True,
    type=click.Path(file_okay=False),
)
@click.option(
    "--reference", help="Model whose errors normalise mCE (default: the first run of each task)."
)
@click.option("--no-thumbnails", is_flag=True, help="Leave out the corruption thumbnails.")
def report(run_dirs: tuple[str, ...], out: str, reference: str | None, no_thumbnails: bool) -> None:
    """Tables (Markdown, CSV, JSON, LaTeX), plots and one offline HTML page from run directories."""
    from .errors import MedFMRobustError
    from .report import build_report

    try:
        paths = build_report(run_dirs, out, reference=reference, thumbnails=not no_thumbnails)
    except MedFMRobustError as exc:
        _fail(str(exc))
    for name, path in paths.files.items():
        if ":" not in name:
            click.echo(f"{name}: {path}")


# ---------------------------------------------------------------------- lm-eval host


@main.command("lm-eval-tasks")
def lm_eval_tasks() -> None:
    """Print the folder of our lm-eval task YAML, for lm_eval --include_path."""
    from .hosts.lm_eval import tasks_dir

    click.echo(str(tasks_dir()))


@main.command(
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
        from .hosts.lm_eval import main as lm_eval_main
    except ImportError as exc:
        _fail(f"lm-eval is not installed ({exc}); pip install 'medfm-robust-plugin[lm-eval]'")
    try:
        lm_eval_main(list(lm_eval_args) or ["--help"])
    except ImportError as exc:
        _fail(f"lm-eval is not installed ({exc}); pip install 'medfm-robust-plugin[lm-eval]'")


@main.command("lm-eval-records")
@click.argument("output_path", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--out", default="runs", show_default=True, type=click.Path(file_okay=False))
def lm_eval_records(output_path: str, out: str) -> None:
    """Turn an lm-eval --output_path (run with --log_samples) into our run folders."""
    from .errors import MedFMRobustError
    from .hosts.lm_eval_results import write_run_dirs

    try:
        for run_dir in write_run_dirs(output_path, out):
            click.echo(str(run_dir))
    except MedFMRobustError as exc:
        _fail(str(exc))


# --------------------------------------------------------------------------- VLMEvalKit


@main.command(
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
    from .hosts.vlmeval import main as vlmeval_main

    code = vlmeval_main(list(vlmeval_args) or ["--help"])
    if code:
        raise SystemExit(code)
