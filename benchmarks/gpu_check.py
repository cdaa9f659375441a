"""GPU paths of the model wrappers, on random weights (nothing is downloaded).

Builds a full-size SAM ViT-B (the architecture of facebook/sam-vit-base and MedSAM) and a tiny
Gemma-3 vision-language model with random weights, saves them, loads them through the production
loaders on the GPU in float32 and bfloat16, and times segmentation and generation against the same
calls on the CPU in this run. Then, on the GPU: one fine-tuning step of ViT-B MedSAM per strategy
(float32 and bfloat16 autocast; trainable parameters and the step's loss), and FGSM and a 3-step
PGD at epsilon 8 (the epsilon bound and the loss rise checked).

    python benchmarks/gpu_check.py [--device cuda] [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/tiny_models.py


def timed(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def build_sam_vit_b(path: Path) -> None:
    from transformers import SamConfig, SamModel, SamProcessor

    model = SamModel(SamConfig())  # the defaults are SAM ViT-B at 1024 x 1024
    model.save_pretrained(path)
    try:
        from transformers import SamImageProcessor

        SamProcessor(image_processor=SamImageProcessor()).save_pretrained(path)
    except Exception:  # the wrapper builds a processor itself when none was saved
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("no CUDA device here: run this on a GPU machine (it checks GPU code paths)")
    from medfm_robust_plugin.data.phantoms import dermoscopy
    from medfm_robust_plugin.data.sample import mask_box
    from medfm_robust_plugin.models.base import load_model
    from tests.tiny_models import build_tiny_gemma3

    phantom = dermoscopy(512, seed=0)
    boxes = np.asarray([mask_box(phantom.mask)], dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        sam_dir, vlm_dir = Path(tmp) / "sam", Path(tmp) / "gemma3"
        build_sam_vit_b(sam_dir)
        build_tiny_gemma3(vlm_dir)
        print(
            f"torch {torch.__version__}, device {args.device}: "
            f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu'}"
        )
        for name in ("sam", "medsam"):
            results = {}
            for device, dtype in (("cpu", "float32"), (args.device, "float32")):
                try:
                    model = load_model(name, model_id=str(sam_dir), device=device)
                except Exception as exc:  # an option the wrapper does not take is a finding too
                    print(f"{name} {device} {dtype}: could not load ({type(exc).__name__}: {exc})")
                    continue

                def segment(model=model):
                    image = phantom.image.copy()
                    image[0, 0] = np.random.randint(255)  # a new image: the embedding is recomputed
                    return model.segment(image, boxes=boxes)

                masks = segment()
                results[(device, dtype)] = timed(segment, args.repeat)
                print(
                    f"{name} {device} {dtype}: {results[(device, dtype)] * 1e3:8.1f} ms per image "
                    f"(masks {masks.shape}, {masks.dtype})"
                )
            cpu = results.get(("cpu", "float32"))
            for key, seconds in results.items():
                if cpu and key[0] != "cpu":
                    print(
                        f"  {name} speed-up over CPU float32, {key[0]} {key[1]}: {cpu / seconds:.1f}x"
                    )
        finetune_and_attack(sam_dir, phantom, boxes, args.device)
        items = [([phantom.image], "Describe the lesion.")] * 4
        for device, dtype in (
            ("cpu", "float32"),
            (args.device, "float32"),
            (args.device, "bfloat16"),
        ):
            model = load_model("hf", model_id=str(vlm_dir), device=device, dtype=dtype)
            seconds = timed(
                lambda model=model: model.generate(items, max_new_tokens=16), args.repeat
            )
            text = model.generate(items[:1], max_new_tokens=16)[0].text
            print(
                f"tiny Gemma-3 {device} {dtype}: {seconds * 1e3:8.1f} ms per batch of 4 ({text[:30]!r})"
            )


def finetune_and_attack(sam_dir: Path, phantom, boxes, device: str) -> None:
    """One training step per strategy, and FGSM / PGD, on the full-size model on ``device``."""
    from contextlib import nullcontext

    import torch

    from medfm_robust_plugin.attacks import Attack, perturb
    from medfm_robust_plugin.finetune.strategies import (
        STRATEGIES,
        StrategyOptions,
        apply_strategy,
        parameter_counts,
    )
    from medfm_robust_plugin.finetune.training import batch_loss
    from medfm_robust_plugin.models.segmenters import MedSamSegmenter, load_sam_model

    items = [(phantom.image, phantom.mask)] * 2
    step_boxes = [boxes[0].astype(np.float64)] * 2
    for strategy in STRATEGIES:
        for dtype, autocast in (
            ("float32", nullcontext),
            ("bfloat16", lambda: torch.autocast("cuda", dtype=torch.bfloat16)),
        ):
            model = apply_strategy(load_sam_model(str(sam_dir)), strategy, StrategyOptions())
            segmenter = MedSamSegmenter(model, name="medsam", device=device)
            segmenter.model.train()
            trainable = [p for p in segmenter.model.parameters() if p.requires_grad]
            optimizer = torch.optim.AdamW(trainable, lr=1e-4)
            started = time.perf_counter()
            loss = batch_loss(segmenter, items, step_boxes, autocast)
            loss.backward()
            optimizer.step()
            torch.cuda.synchronize() if device.startswith("cuda") else None
            counts = parameter_counts(segmenter.model)
            print(
                f"finetune {strategy:15s} {dtype}: loss {float(loss):.4f}, one step of 2 images "
                f"{(time.perf_counter() - started) * 1e3:7.0f} ms, trainable "
                f"{counts['trainable'] / 1e6:.2f} M of {counts['total'] / 1e6:.1f} M"
            )
            del segmenter, model, optimizer

    class Sample:
        dataset, id = "phantom", "0"
        box = tuple(float(v) for v in boxes[0])

        def load_mask(self):
            return phantom.mask

    segmenter = MedSamSegmenter(load_sam_model(str(sam_dir)), name="medsam", device=device)
    objective = segmenter.attack_objective(phantom.image, Sample())
    for attack in (Attack("fgsm"), Attack("pgd", steps=3)):
        started = time.perf_counter()
        image, params = perturb(attack, 8, objective, f"phantom/0/{attack.name}_eps8")
        print(
            f"{attack.name} eps 8 on {device}: {(time.perf_counter() - started) * 1e3:7.0f} ms, "
            f"max |delta| {params['max_abs_delta']} (<= 8: {params['max_abs_delta'] <= 8}), "
            f"loss {params['loss_clean']:.4f} -> {params['loss_attacked']:.4f}"
        )


if __name__ == "__main__":
    main()
