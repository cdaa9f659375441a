"""Fine-tuning the SAM-family segmenters with the paper's six strategies (docs/finetune.md).

torch, transformers and peft are imported by the submodules that use them; importing this package
costs nothing.
"""

from __future__ import annotations

STRATEGIES = ("full", "decoder", "encoder-partial", "decoder-prompt", "adapter", "lora")
