"""`medfm-robust finetune`: fine-tune SAM, MedSAM or SAM-Med2D with one of the paper's strategies."""

from __future__ import annotations

from typing import Any

import click

from ..finetune import STRATEGIES
from .common import check_seed, console, fail, parse_list


@click.command()
@click.option(
    "--model",
    required=True,
    help="sam, medsam or sam-med2d, with :<hub id, directory or .pth> (sam-med2d needs its path).",
)
@click.option("--strategy", required=True, type=click.Choice(STRATEGIES), help="What learns.")
@click.option("--task", "task_name", required=True, help="A segmentation task card.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option("--epochs", default=10, show_default=True, type=int)
@click.option("--lr", default=1e-4, show_default=True, type=float, help="AdamW learning rate.")
@click.option("--weight-decay", default=0.01, show_default=True, type=float)
@click.option("--batch-size", default=2, show_default=True, type=int, help="Images per step.")
@click.option("--seed", default=0, show_default=True, type=int, help="Split, order, jitter, init.")
@click.option("--limit", type=int, help="Train and validate on N samples at most.")
@click.option(
    "--val-fraction",
    default=0.2,
    show_default=True,
    type=float,
    help="Part of the training samples kept for validation (best epoch by Dice).",
)
@click.option(
    "--eval-fraction",
    default=0.3,
    show_default=True,
    type=float,
    help="Part of the task's samples held out for evaluation, never trained or validated on.",
)
@click.option(
    "--encoder-blocks",
    default=2,
    show_default=True,
    type=int,
    help="encoder-partial: how many of the last image-encoder blocks learn.",
)
@click.option("--lora-rank", default=8, show_default=True, type=int)
@click.option("--lora-alpha", default=16.0, show_default=True, type=float)
@click.option(
    "--lora-targets",
    default="qkv,proj",
    show_default=True,
    help="Attention projections of the image encoder that get LoRA.",
)
@click.option("--device", help="torch device (default: cuda when available, else cpu).")
@click.option("--bf16", is_flag=True, help="bfloat16 autocast (CUDA only).")
@click.option(
    "--box-jitter",
    type=click.FloatRange(0, 0.5),
    help="How far each side of a training box may move outward, as a fraction of the image's "
    "longest side (default: MedSAM's 20 px at 1024, 0.0195).",
)
@click.option("--data-root", type=click.Path(file_okay=False), help="Where the dataset lives.")
@click.option("--resume", is_flag=True, help="Go on with the run in --out after its last epoch.")
def finetune(
    model: str,
    strategy: str,
    task_name: str,
    out: str,
    epochs: int,
    lr: float,
    weight_decay: float,
    batch_size: int,
    seed: int,
    limit: int | None,
    val_fraction: float,
    eval_fraction: float,
    encoder_blocks: int,
    lora_rank: int,
    lora_alpha: float,
    lora_targets: str,
    device: str | None,
    bf16: bool,
    box_jitter: float | None,
    data_root: str | None,
    resume: bool,
) -> None:
    """Fine-tune a SAM-family segmenter on a segmentation task (docs/finetune.md).

    The output directory loads as a model of the same family: --model medsam:<out>.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from ..errors import MedFMRobustError
    from ..finetune.run import RUN_FILE, TUNED_FILE, FinetuneConfig
    from ..finetune.run import finetune as run_finetune
    from ..finetune.strategies import StrategyOptions

    check_seed(seed)
    config = FinetuneConfig(
        model=model,
        strategy=strategy,
        task=task_name,
        out=out,
        epochs=epochs,
        lr=lr,
        weight_decay=weight_decay,
        batch_size=batch_size,
        seed=seed,
        limit=limit,
        val_fraction=val_fraction,
        eval_fraction=eval_fraction,
        options=StrategyOptions(
            encoder_blocks=encoder_blocks,
            lora_rank=lora_rank,
            lora_alpha=lora_alpha,
            lora_targets=tuple(parse_list(lora_targets) or ()),
        ),
        data_root=data_root,
        device=device,
        bf16=bf16,
        box_jitter=box_jitter,
    )
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console()) as bar:
        state: dict[str, Any] = {}

        def on_start(record: dict[str, Any]) -> None:
            counts, samples = record["parameters"], record["samples"]
            share = counts["trainable"] / counts["total"]
            bar.console.print(
                f"{strategy}: {counts['trainable']:,} trainable of {counts['total']:,} parameters "
                f"({share:.2%}); {len(samples['train'])} train, {len(samples['validation'])} "
                f"validation, {len(samples['held_out'])} held-out samples"
            )
            steps = -(-len(samples["train"]) // batch_size)
            done = len(record["history"])
            state["job"] = bar.add_task(
                f"epoch {done + 1}/{epochs}", total=steps * (epochs - done), loss=float("nan")
            )
            state["epoch"] = done + 1

        def on_step(loss: float) -> None:
            bar.update(state["job"], advance=1, loss=loss)

        def on_epoch(entry: dict[str, Any]) -> None:
            dice = entry["validation_dice"]
            shown = "-" if dice is None else f"{dice:.4f}"
            bar.console.print(
                f"epoch {entry['epoch']}: loss {entry['loss']:.4f}, validation Dice {shown}"
            )
            state["epoch"] = entry["epoch"] + 1
            bar.update(state["job"], description=f"epoch {min(state['epoch'], epochs)}/{epochs}")

        try:
            record = run_finetune(
                config, resume=resume, on_start=on_start, on_step=on_step, on_epoch=on_epoch
            )
        except MedFMRobustError as exc:
            fail(str(exc))
    best = record["best"]
    dice = best["validation_dice"]
    shown = "no validation samples" if dice is None else f"validation Dice {dice:.4f}"
    click.echo(
        f"best epoch {best['epoch']} ({shown}); weights: {out}/{TUNED_FILE}, "
        f"record: {out}/{RUN_FILE}\n"
        f"load it as --model {record['family']}:{out}; score it only on samples it was not "
        f"trained on ({RUN_FILE}: samples.held_out), a run refuses the others"
    )
