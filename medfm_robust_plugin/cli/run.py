"""`medfm-robust run`, `materialize`, `demo` and `report`: evaluations, written views and reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..shards import DEFAULT_SHARD_SIZE
from ..time_limit import DEFAULT_ITEM_TIMEOUT
from .common import console, fail, outside_data_root_option, parse_list, parse_severities

_item_timeout_option = click.option(
    "--item-timeout",
    type=click.FloatRange(min=0),
    default=DEFAULT_ITEM_TIMEOUT,
    show_default=True,
    metavar="SECONDS",
    help="Time one item may take: a corrupted view (in its worker process) or a model call "
    "(per item of the batch). Past it the item is recorded as failed and the run goes on. 0: no limit.",
)
_executor_option = click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="local: this machine's processes; ray: the tasks of a Ray cluster "
    "(pip install 'medfm-robust-plugin[ray]'; see docs/scaling.md).",
)
_ray_address_option = click.option(
    "--ray-address",
    metavar="auto|HOST:PORT",
    help="The Ray cluster to join with --executor ray (auto: the one `ray start` runs on this "
    "node); default: start one on this machine.",
)
_wait_option = click.option(
    "--wait",
    is_flag=True,
    help="When another process is writing into the output directory, wait for it to finish "
    "instead of stopping.",
)


@click.command()
@click.option(
    "--task", "task_name", required=True, help="Task card name (see `medfm-robust tasks list`)."
)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["folder", "tsv", "hf", "parquet"]),
    default="folder",
    show_default=True,
    help="folder: image files and manifest.jsonl; tsv / hf: exported from them too; parquet: "
    "shards of --shard-size items (images and manifest columns), each with a completion marker.",
)
@click.option(
    "--num-proc",
    default=1,
    show_default=True,
    type=click.IntRange(min=0),
    help="Worker processes making the items (0: this process, without the item time limit).",
)
@_executor_option
@_ray_address_option
@click.option(
    "--shard-size",
    default=DEFAULT_SHARD_SIZE,
    show_default=True,
    type=click.IntRange(min=1),
    help="Items per Parquet shard, and per Ray task.",
)
@_item_timeout_option
@_wait_option
@click.option("--limit", type=int, help="Only the first N samples.")
@click.option(
    "--corruptions", "names", help="Comma-separated corruptions (default: each modality's suite)."
)
@click.option("--severities", help="Levels to write, e.g. 1,3,5 (default: the task's).")
@click.option("--data-root", type=click.Path(file_okay=False), help="Where the dataset lives.")
@outside_data_root_option
@click.option(
    "--seed", default=0, show_default=True, type=int, help="Global seed of the per-sample seeds."
)
def materialize(
    task_name: str,
    out: str,
    fmt: str,
    num_proc: int,
    executor: str,
    ray_address: str | None,
    shard_size: int,
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

    from ..errors import MedFMRobustError
    from ..materialize import Plan, count_items
    from ..materialize import materialize as run_materialize
    from ..tasks import get_task

    try:
        plan = Plan(
            get_task(task_name),
            data_root=data_root,
            limit=limit,
            corruptions=tuple(parse_list(names)) if names else None,
            severities=tuple(parse_severities(severities)) if severities else None,
            seed=seed,
        )
        total = count_items(plan)
        columns = (*Progress.get_default_columns()[:2], BarColumn(), TimeRemainingColumn())
        with Progress(*columns, console=console()) as bar:
            job = bar.add_task(f"materialize {plan.card.name}", total=total)
            result = run_materialize(
                plan,
                out,
                fmt,
                num_proc,
                progress=lambda n: bar.advance(job, n),
                wait=wait,
                item_timeout=item_timeout or None,
                executor=executor,
                ray_address=ray_address,
                shard_size=shard_size,
            )
    except MedFMRobustError as exc:
        fail(str(exc))
    failed = f" (see {out}/errors.jsonl)" if result["failed"] else ""
    click.echo(
        f"{result['written']} written, {result['skipped_done']} already done, "
        f"{result['failed']} failed{failed}; manifest: {out}/manifest.jsonl"
    )
    if "shards" in result:
        click.echo(f"parquet: {out}/shards/*.parquet ({result['shards']} shards)")
    for key in ("tsv", "hf"):
        if key in result:
            click.echo(f"{key}: {result[key]}")


def _model_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            fail(f"--model-option {pair!r}: use KEY=VALUE")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


@click.command()
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
@outside_data_root_option
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
    "--skip-finetuned-samples",
    is_flag=True,
    help="A model from `medfm-robust finetune`: leave out the samples it was trained and "
    "validated on.",
)
@click.option(
    "--attacks",
    help="White-box attacks after the corruptions, e.g. fgsm,pgd (local models; conditions "
    "fgsm_eps8, pgd_eps8 in the family 'adversarial').",
)
@click.option(
    "--epsilons",
    help="Attack strengths in pixel levels of 255, e.g. 2,4,6,8,10 (default: those).",
)
@click.option("--attack-steps", default=10, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--attack-step-size",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="PGD's step in pixel levels of 255.",
)
@click.option("--attack-seed", default=0, show_default=True, type=int, help="PGD's random starts.")
@_executor_option
@_ray_address_option
@click.option(
    "--ray-workers",
    type=click.IntRange(min=1),
    help="Model actors with --executor ray (default: one per GPU of the cluster, else one per "
    "CPU slot); each loads the model once.",
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
    skip_finetuned_samples: bool,
    attacks: str | None,
    epsilons: str | None,
    attack_steps: int,
    attack_step_size: float,
    attack_seed: int,
    executor: str,
    ray_address: str | None,
    ray_workers: int | None,
    dry_run: bool,
) -> None:
    """Evaluate a model on a task, clean and under every corruption and severity."""
    from ..errors import MedFMRobustError
    from ..models.base import load_model, resolve
    from ..runner import Run, RunConfig

    options = _model_options(model_option)
    try:
        spec, model_id = resolve(model_name)
        excluded: tuple[str, ...] = ()
        if skip_finetuned_samples:
            from ..finetune.saved import finetuned_sample_ids

            excluded = tuple(sorted(finetuned_sample_ids(model_id)))
        if concurrency is not None:
            options["concurrency"] = concurrency
        config = RunConfig(
            task=task_name,
            model=model_name,
            out=out,
            corruptions=parse_list(names),
            severities=parse_severities(severities) if severities else None,
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
            exclude_samples=excluded,
            attacks=parse_list(attacks),
            epsilons=_epsilons(epsilons),
            attack_steps=attack_steps,
            attack_step_size=attack_step_size,
            attack_seed=attack_seed,
        )
        job = Run(config, allow_config_change=allow_config_change)
        if dry_run:
            _print_dry_run(job, spec, model_name, options, max_new_tokens)
            return
        if executor == "ray":
            from ..on_ray.run import execute_on_ray

            result = _execute_with_progress(
                job,
                None,
                lambda advance: execute_on_ray(
                    job,
                    model_name,
                    options,
                    address=ray_address,
                    workers=ray_workers,
                    progress=advance,
                ),
            )
        else:
            model = load_model(model_name, **options)
            _print_endpoint(model)
            result = _execute_with_progress(job, model)
    except MedFMRobustError as exc:
        fail(str(exc))
    click.echo(
        f"{result.written} records written, {result.skipped_done} already done, {result.failed} failed; "
        f"{result.run_dir}/records.jsonl"
    )
    if result.failed and not result.written:
        fail(_every_item_failed(result))
    if result.summary:
        _print_summary_headline(result.summary)


def _epsilons(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        fail(f"--epsilons {text!r}: give whole pixel levels of 255, e.g. 2,4,6,8,10")


def _print_dry_run(
    job: Any, spec: Any, model_name: str, options: dict[str, Any], max_new_tokens: int
) -> None:
    from ..models.base import load_model

    plan = job.plan()
    click.echo(
        f"{plan['task']} x {plan['model']}: {plan['samples']} samples, {plan['conditions']} conditions, "
        f"{plan['items']} model calls to make ({plan['already_done']} already done) -> {plan['run_dir']}"
    )
    if spec.kind != "vlm" or spec.extra != "api":
        return
    model = load_model(model_name, **options, estimate_only=True)  # no key needed: calls nothing
    _print_endpoint(model, "would call")
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


def _print_endpoint(model: Any, verb: str = "calls") -> None:
    """An API model's endpoint and where it was set, on stderr (never its key)."""
    describe = getattr(model, "describe_endpoint", None)
    if describe is not None:
        click.echo(f"{model.name} {verb} {describe()}", err=True)


def _every_item_failed(result: Any) -> str:
    from ..runner import latest_records

    errors = [r["error"] for r in latest_records(result.run_dir) if r.get("error")]
    first = f"; the first: {errors[0]}" if errors else ""
    return (
        f"every item of this run failed ({result.failed}){first}. They are recorded as failed; "
        "rerun the same command to retry them"
    )


def _execute_with_progress(job: Any, model: Any, execute: Any = None) -> Any:
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
    with Progress(*columns, console=console(), transient=False) as bar:
        handle = bar.add_task(f"{job.card.name} x {job.config.model}", total=total, cost="")

        def advance(n: int, usage: dict[str, Any]) -> None:
            cost = usage.get("cost_usd")
            bar.update(handle, advance=n, cost=f"${cost:.4f}" if cost else "")

        if execute is not None:  # another executor (on_ray.run)
            return execute(advance)
        return job.execute(model, progress=advance)


def _print_summary_headline(summary: dict[str, Any]) -> None:
    headline = summary.get("headline") or {}
    for metric, values in headline.items():
        click.echo(f"{metric}: {values}")


DEMO_RUNS = (
    ("MedFMRobust-Mini-VQA-Lite", "baseline:lesion-finder"),
    ("MedFMRobust-Mini-Caption-Lite", "baseline:findings-caption"),
    ("MedFMRobust-Mini-Grounding-Lite", "baseline:grounding"),
    ("MedFMRobust-Mini-Seg-Lite", "baseline:box-otsu"),
)


@click.command()
@click.option(
    "-o", "--out", default="medfm-robust-demo", show_default=True, type=click.Path(file_okay=False)
)
@click.option("--seed", default=0, show_default=True, type=int)
def demo(out: str, seed: int) -> None:
    """The whole benchmark on the embedded Mini suite with the built-in baselines, offline.

    Runs VQA, captioning, grounding and segmentation (the -Lite cards: 8 phantoms per modality,
    severities 1, 3, 5, every corruption of each modality's suite), then writes the report.
    """
    from ..errors import MedFMRobustError
    from ..models.base import load_model
    from ..report import build_report
    from ..runner import Run, RunConfig

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
        fail(str(exc))
    click.echo(
        f"report: {paths.files['index']} (to explore; also report.html, report.md, headline.csv, "
        "tables.tex, plots/)"
    )


@click.command()
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
    from ..errors import MedFMRobustError
    from ..report import build_report

    try:
        paths = build_report(run_dirs, out, reference=reference, thumbnails=not no_thumbnails)
    except MedFMRobustError as exc:
        fail(str(exc))
    for name, path in paths.files.items():
        if ":" not in name:
            click.echo(f"{name}: {path}")
