"""The paper's segmentation study: six fine-tuning strategies, their robustness to the corruption
suite and to FGSM / PGD attacks, in the paper's table shape.

For each strategy (full, decoder, encoder-partial, decoder-prompt, adapter, LoRA): trainable
parameters, clean Dice and IoU on held-out samples, the mean Dice drop over every corruption of
each modality's suite per severity, and the Dice drop under FGSM and PGD per epsilon. Every number
comes from the package's own commands in Python form: ``finetune`` (deterministic split; the
held-out samples are never trained on, and the run refuses them if they were), then ``run`` with
``attacks`` (records, resume and summaries as any run).

Default (CPU, a few minutes): a tiny SAM built here (2 encoder blocks, 64 px input, random
weights), first trained in full on the Mini segmentation suite's training split so that it
segments at all (the stand-in for a pre-trained SAM), then fine-tuned from there with each
strategy. Its numbers show the study's shape and that every piece runs; they say nothing about
MedSAM. On a GPU with real weights::

    python benchmarks/segmentation_study.py --model medsam:/weights/medsam-vit-base \\
        --task MedFMRobust-Seg --data-root /data/medfm --epochs 10 --device cuda \\
        --severities 1,2,3,4,5 --limit-eval 500

(``--model sam-med2d:/weights/sam-med2d_b.pth`` for SAM-Med2D; see docs/finetune.md.)
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

STRATEGIES = ("full", "decoder", "encoder-partial", "decoder-prompt", "adapter", "lora")
TASK = "MedFMRobust-Mini-Seg"


def tiny_sam(path: Path, seed: int = 0) -> str:
    """A random-weight SAM small enough for CPU minutes, saved where ``medsam:PATH`` loads it."""
    import torch
    import transformers

    torch.manual_seed(seed)
    config = transformers.SamConfig(
        vision_config=dict(
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=64,
            patch_size=8,
            output_channels=32,
            mlp_dim=128,
            window_size=4,
            global_attn_indexes=[1],
            num_pos_feats=16,
        ),
        prompt_encoder_config=dict(
            hidden_size=32, image_size=64, patch_size=8, mask_input_channels=4
        ),
        mask_decoder_config=dict(
            hidden_size=32, mlp_dim=64, num_hidden_layers=2, iou_head_hidden_dim=32
        ),
    )
    transformers.SamModel(config).save_pretrained(path)
    return f"medsam:{path}"


def fine_tune(
    args: argparse.Namespace,
    model: str,
    strategy: str,
    out: Path,
    epochs: int,
    lr: float,
    box_jitter: float | None = None,
):
    from medfm_robust_plugin.finetune.run import FinetuneConfig, finetune
    from medfm_robust_plugin.finetune.strategies import StrategyOptions

    config = FinetuneConfig(
        model=model,
        strategy=strategy,
        task=args.task,
        out=str(out),
        epochs=epochs,
        lr=lr,
        batch_size=args.batch_size,
        seed=args.seed,
        data_root=args.data_root,
        device=args.device,
        box_jitter=box_jitter,
        # the tiny SAM has 2 encoder blocks: encoder-partial trains the last one
        options=StrategyOptions(encoder_blocks=1) if args.model is None else StrategyOptions(),
    )
    done = (out / "finetune.json").exists()
    return finetune(config, resume=done)


def evaluate(args: argparse.Namespace, model_name: str, out: Path) -> dict[str, Any]:
    from medfm_robust_plugin.finetune.saved import finetuned_sample_ids
    from medfm_robust_plugin.models.base import load_model
    from medfm_robust_plugin.runner import Run, RunConfig

    model_id = model_name.split(":", 1)[1]
    config = RunConfig(
        task=args.task,
        model=model_name,
        out=str(out),
        corruptions=args.corruptions,
        severities=args.severities,
        limit=args.limit_eval,
        seed=args.seed,
        data_root=args.data_root,
        workers=args.workers,
        exclude_samples=tuple(sorted(finetuned_sample_ids(model_id))),
        attacks=["fgsm", "pgd"],
        epsilons=args.epsilons,
        attack_steps=args.attack_steps,
        attack_step_size=args.attack_step_size,
        model_options={"device": args.device} if args.device else {},
    )
    run = Run(config)
    model = load_model(model_name, **config.model_options)
    result = run.execute(model)
    if result.failed:
        print(
            f"  {result.failed} items failed; see {result.run_dir}/records.jsonl", file=sys.stderr
        )
    return result.summary


def row(strategy: str, parameters: dict[str, int], summary: dict[str, Any], args) -> dict:
    """The study's row of one strategy, from its run's summary."""
    clean = summary["clean"]["scores"]
    by_severity: dict[int, list[float]] = {}
    attacks: dict[str, float] = {}
    for condition in summary["conditions"]:
        drop = condition["absolute_drop"].get("dice")
        if drop is None:
            continue
        if condition["family"] == "adversarial":
            attacks[condition["condition"]] = drop
        else:
            by_severity.setdefault(condition["severity"], []).append(drop)
    return {
        "strategy": strategy,
        "trainable": parameters["trainable"],
        "total": parameters["total"],
        "clean_dice": clean["dice"],
        "clean_iou": clean["iou"],
        "corruption_drop": {s: sum(v) / len(v) for s, v in sorted(by_severity.items())},
        # the mean over every corruption condition (the summary's headline leaves attacks out)
        "corruption_drop_mean": summary["overall"]["absolute_drop"]["dice"],
        "attack_drop": attacks,
        "n_eval": summary["clean"]["n"],
    }


def table(rows: list[dict], args: argparse.Namespace) -> str:
    severities = sorted({s for r in rows for s in r["corruption_drop"]})
    head = ["Strategy", "Trainable", "Clean Dice", "Clean IoU", "Corr. drop"]
    head += [f"s{s}" for s in severities]
    head += [f"FGSM {e}" for e in args.epsilons] + [f"PGD {e}" for e in args.epsilons]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [
            r["strategy"],
            _count(r["trainable"]),
            f"{r['clean_dice']:.3f}",
            f"{r['clean_iou']:.3f}",
            _drop(r["corruption_drop_mean"]),
        ]
        cells += [_drop(r["corruption_drop"].get(s)) for s in severities]
        cells += [_drop(r["attack_drop"].get(f"fgsm_eps{e}")) for e in args.epsilons]
        cells += [_drop(r["attack_drop"].get(f"pgd_eps{e}")) for e in args.epsilons]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _count(n: int) -> str:
    return f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n / 1e3:.1f} k"


def _drop(value: Any) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:+.3f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="family:weights (default: a tiny SAM built here)")
    parser.add_argument("--task", default=TASK)
    parser.add_argument("--data-root")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs per strategy")
    parser.add_argument(
        "--pretrain-epochs", type=int, default=20, help="tiny SAM only: full training first"
    )
    parser.add_argument("--pretrain-lr", type=float, default=3e-3, help="tiny SAM only")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device")
    parser.add_argument("--severities", default="1,3,5")
    parser.add_argument("--corruptions", help="comma-separated (default: every suite's)")
    parser.add_argument("--epsilons", default="2,4,6,8,10")
    parser.add_argument("--attack-steps", type=int, default=10)
    parser.add_argument("--attack-step-size", type=float, default=1.0)
    parser.add_argument("--limit-eval", type=int, default=10, help="held-out samples scored")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--out", default="segmentation-study")
    args = parser.parse_args(argv)
    args.severities = [int(s) for s in args.severities.split(",")]
    args.epsilons = [int(e) for e in args.epsilons.split(",")]
    args.corruptions = args.corruptions.split(",") if args.corruptions else None
    strategies = [s for s in args.strategies.split(",") if s]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    base = args.model
    if base is None:
        base_dir = out / "tiny-sam"
        if not base_dir.exists():
            tiny_sam(base_dir, args.seed)
        pretrained = out / "pretrained"
        # loose boxes (up to 15 % of the image per side): a box alone no longer gives the mask,
        # so the tiny model has to read the image (as a pre-trained SAM does)
        record = fine_tune(
            args,
            f"medsam:{base_dir}",
            "full",
            pretrained,
            args.pretrain_epochs,
            args.pretrain_lr,
            box_jitter=0.15,
        )
        best = record["best"]
        print(
            f"tiny SAM trained in full for {args.pretrain_epochs} epochs: validation Dice "
            f"{best['validation_dice']:.3f} (epoch {best['epoch']})"
        )
        base = f"medsam:{pretrained}"
    family = base.split(":", 1)[0]
    rows = []
    for strategy in strategies:
        tuned = out / "tuned" / strategy
        record = fine_tune(args, base, strategy, tuned, args.epochs, args.lr)
        summary = evaluate(args, f"{family}:{tuned}", out / "runs")
        rows.append(row(strategy, record["parameters"], summary, args))
        print(
            f"{strategy}: clean Dice {rows[-1]['clean_dice']:.3f}, corruption drop "
            f"{_drop(rows[-1]['corruption_drop_mean'])} ({time.perf_counter() - started:.0f} s)"
        )
    text = table(rows, args)
    print()
    print(
        f"Dice drop (clean - attacked or corrupted; positive = worse) on {rows[0]['n_eval']} "
        f"held-out samples of {args.task}; corruptions at severities "
        f"{','.join(map(str, args.severities))}, attacks in pixel levels of 255"
    )
    print(text)
    (out / "study.json").write_text(json.dumps(rows, indent=2, default=str))
    (out / "study.md").write_text(text + "\n")
    print(f"\n{time.perf_counter() - started:.0f} s; {out / 'study.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
