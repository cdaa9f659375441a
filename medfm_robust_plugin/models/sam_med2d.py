"""SAM-Med2D's architecture on top of transformers' SamModel: SAM ViT-B with an adapter in every block.

SAM-Med2D (Cheng et al., "SAM-Med2D", arXiv:2308.16184) fine-tunes SAM at 256 x 256 input on
SA-Med2D-20M. Its image encoder keeps SAM's frozen ViT blocks and adds a learnable adapter to each:
after the attention residual, the block's normalised tokens ``n = LayerNorm2(x)`` feed both the MLP
and the adapter, and both outputs are added:  ``x <- x + MLP(n) + Adapter(n)``.

The adapter works on the token grid (B x H x W x C):
  channel branch  g = sigmoid(W2 relu(W1 mean_hw(n)))         (squeeze-excitation, C -> C/4 -> C)
  spatial branch  s = relu(ConvT_4x4/2(relu(Conv_3x3/2(g * n))))   (down to H/2, back up to H)
  output          LayerNorm(n + s)
All its linear and convolution layers are bias-free. The prompt encoder and mask decoder are SAM's.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import SamConfig, SamModel
from transformers.models.sam.modeling_sam import SamVisionLayer

ADAPTER_REDUCTION = 4  # hidden width of the channel branch: C / 4


class EncoderAdapter(nn.Module):
    """SAM-Med2D's adapter: a channel gate and a down-up convolution, with a skip and a LayerNorm."""

    def __init__(self, hidden_size: int):
        super().__init__()
        squeezed = hidden_size // ADAPTER_REDUCTION
        self.channel_squeeze = nn.Linear(hidden_size, squeezed, bias=False)
        self.channel_excite = nn.Linear(squeezed, hidden_size, bias=False)
        self.spatial_down = nn.Conv2d(
            hidden_size, hidden_size, kernel_size=3, stride=2, padding=1, bias=False
        )
        self.spatial_up = nn.ConvTranspose2d(
            hidden_size, hidden_size, kernel_size=4, stride=2, padding=1, bias=False
        )
        self.layer_norm = nn.LayerNorm(hidden_size)  # default eps, as in SAM-Med2D

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        grid = tokens.permute(0, 3, 1, 2)  # B x C x H x W
        pooled = grid.mean(dim=(2, 3))
        gate = torch.sigmoid(self.channel_excite(torch.relu(self.channel_squeeze(pooled))))
        gated = grid * gate[:, :, None, None]
        spatial = torch.relu(self.spatial_up(torch.relu(self.spatial_down(gated))))
        return self.layer_norm((grid + spatial).permute(0, 2, 3, 1))


class AdaptedSamVisionLayer(SamVisionLayer):
    """A SAM vision block with an adapter beside its MLP (SAM-Med2D's unless another is given)."""

    def __init__(self, config, window_size: int, adapter: nn.Module | None = None):
        super().__init__(config, window_size)
        self.adapter = adapter if adapter is not None else EncoderAdapter(config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        residual = hidden_states
        hidden_states = self.layer_norm1(hidden_states)
        if self.window_size > 0:
            height, width = hidden_states.shape[1], hidden_states.shape[2]
            hidden_states, padded = self.window_partition(hidden_states, self.window_size)
        hidden_states, _ = self.attn(hidden_states=hidden_states)
        if self.window_size > 0:
            hidden_states = self.window_unpartition(
                hidden_states, self.window_size, padded, (height, width)
            )
        hidden_states = residual + hidden_states
        normed = self.layer_norm2(hidden_states)
        return hidden_states + self.mlp(normed) + self.adapter(normed)


def build_sam_med2d(config: SamConfig) -> SamModel:
    """A SamModel whose vision blocks carry SAM-Med2D's adapters (random weights; load them after)."""
    return add_adapters(SamModel(config), EncoderAdapter)


def add_adapters(model: SamModel, make_adapter) -> SamModel:
    """Give every vision block of ``model`` an adapter ``make_adapter(hidden_size)`` beside its MLP,
    keeping the blocks' weights (in place; the model is returned)."""
    vision_config = model.vision_encoder.config
    layers = model.vision_encoder.layers
    for index, layer in enumerate(layers):
        adapted = AdaptedSamVisionLayer(
            vision_config,
            window_size=layer.window_size,
            adapter=make_adapter(vision_config.hidden_size),
        )
        adapted.load_state_dict(layer.state_dict(), strict=False)  # keep SAM's block weights
        layers[index] = adapted.to(next(layer.parameters()).device)
    return model
