"""The six fine-tuning strategies of the paper: which parameters of a SAM-family model learn.

A strategy works on a transformers ``SamModel`` (SAM, MedSAM, SAM-Med2D with its adapters):

============== ===================================================================================
full           every parameter
decoder        the mask decoder only
encoder-partial the last ``k`` image-encoder blocks, the encoder's neck, and the mask decoder
decoder-prompt the mask decoder and the prompt encoder
adapter        bottleneck adapters in the image-encoder blocks, all else frozen (SAM-Med2D's own
               adapters when the model has them; otherwise a new one per block, beside the MLP)
lora           LoRA on the image encoder's attention projections (``qkv``, ``proj``) through peft,
               all else frozen
============== ===================================================================================

``apply_strategy`` builds the strategy's extra modules (adapters, LoRA) from a seeded generator and
freezes everything it does not train, so that a saved run can rebuild the same structure and load
its trained weights on top of the base model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import MedFMRobustError
from . import STRATEGIES

__all__ = ["STRATEGIES", "apply_strategy", "parameter_counts", "trainable_state"]
ADAPTER_BOTTLENECK = 4  # a new adapter's hidden width: C / 4 (as SAM-Med2D's channel branch)
LORA_TARGETS = ("qkv", "proj")


class FinetuneError(MedFMRobustError):
    """A fine-tuning run that cannot start or go on: the message says why and what to do."""


@dataclass(frozen=True)
class StrategyOptions:
    """The knobs of the strategies (each strategy reads its own)."""

    encoder_blocks: int = 2  # encoder-partial: how many of the last image-encoder blocks learn
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_targets: tuple[str, ...] = field(default=LORA_TARGETS)


class BottleneckAdapter(nn.Module):
    """A bottleneck adapter on the token grid: ``up(gelu(down(n)))``, C -> C/4 -> C.

    The up projection starts at zero, so the adapted model starts out equal to its base.
    """

    def __init__(self, hidden_size: int):
        super().__init__()
        self.down = nn.Linear(hidden_size, hidden_size // ADAPTER_BOTTLENECK)
        self.up = nn.Linear(hidden_size // ADAPTER_BOTTLENECK, hidden_size)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.up(nn.functional.gelu(self.down(tokens)))


def has_encoder_adapters(model: Any) -> bool:
    return any(hasattr(layer, "adapter") for layer in model.vision_encoder.layers)


def apply_strategy(model: Any, strategy: str, options: StrategyOptions, seed: int = 0) -> Any:
    """Prepare ``model`` for ``strategy``: add its modules, freeze the rest. Returns the model."""
    if strategy not in STRATEGIES:
        raise FinetuneError(f"unknown strategy '{strategy}'; choose one of {', '.join(STRATEGIES)}")
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)  # new adapter / LoRA weights are the same in every run of this seed
    try:
        if strategy == "adapter" and not has_encoder_adapters(model):
            from ..models.sam_med2d import add_adapters

            add_adapters(model, BottleneckAdapter)
        if strategy == "lora":
            _inject_lora(model, options)
    finally:
        torch.random.set_rng_state(generator_state)
    trainable = trainable_prefixes(model, strategy, options)
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(_selected(name, strategy, trainable))
    return model


def trainable_prefixes(model: Any, strategy: str, options: StrategyOptions) -> tuple[str, ...]:
    """Name prefixes of the parameters that ``strategy`` trains (adapter and LoRA: by name part)."""
    if strategy == "full":
        return ("",)
    if strategy == "decoder":
        return ("mask_decoder.",)
    if strategy == "decoder-prompt":
        return ("mask_decoder.", "prompt_encoder.")
    if strategy == "encoder-partial":
        depth = len(model.vision_encoder.layers)
        k = options.encoder_blocks
        if not 1 <= k <= depth:
            raise FinetuneError(
                f"--encoder-blocks {k}: the image encoder has {depth} blocks; give 1 to {depth}"
            )
        blocks = tuple(f"vision_encoder.layers.{i}." for i in range(depth - k, depth))
        return (*blocks, "vision_encoder.neck.", "mask_decoder.")
    return ()


def _selected(name: str, strategy: str, prefixes: tuple[str, ...]) -> bool:
    if strategy == "adapter":
        return ".adapter." in name
    if strategy == "lora":
        return ".lora_" in name
    return name.startswith(prefixes)


def _inject_lora(model: Any, options: StrategyOptions) -> None:
    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ImportError:
        raise FinetuneError(
            "the lora strategy needs peft: pip install 'medfm-robust-plugin[models]'"
        ) from None
    if options.lora_rank < 1:
        raise FinetuneError(f"--lora-rank {options.lora_rank} must be 1 or more")
    targets = "|".join(options.lora_targets)
    config = LoraConfig(
        r=options.lora_rank,
        lora_alpha=options.lora_alpha,
        lora_dropout=0.0,
        bias="none",
        # only the image encoder's attention (the decoder has q/k/v/out projections of its own)
        target_modules=rf"vision_encoder\.layers\.\d+\.attn\.({targets})",
    )
    unknown = FinetuneError(
        f"--lora-targets {','.join(options.lora_targets)}: no attention projection of the image "
        f"encoder has that name; SAM's are {', '.join(LORA_TARGETS)}"
    )
    before = sum(p.numel() for p in model.parameters())
    try:
        inject_adapter_in_model(config, model)
    except ValueError as exc:  # peft: no module matches the targets
        raise unknown from exc
    if sum(p.numel() for p in model.parameters()) == before:
        raise unknown


def parameter_counts(model: Any) -> dict[str, int]:
    """Trainable and total parameters (adapters and LoRA included in the total)."""
    parameters = list(model.parameters())
    return {
        "trainable": sum(p.numel() for p in parameters if p.requires_grad),
        "total": sum(p.numel() for p in parameters),
    }


def trainable_state(model: Any) -> dict[str, torch.Tensor]:
    """The trained parameters by name (what a run saves on top of its base model)."""
    return {
        name: parameter.detach().to("cpu", copy=True).contiguous()
        for name, parameter in model.named_parameters()
        if parameter.requires_grad
    }
