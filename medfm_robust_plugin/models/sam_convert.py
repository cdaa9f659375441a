"""Converting Segment-Anything checkpoints between the original key format and transformers' SamModel.

MedSAM (``medsam_vit_b.pth``) and SAM-Med2D (``sam-med2d_b.pth``) are released as state dicts of the
original ``segment_anything`` modules (``image_encoder.*``, ``prompt_encoder.*``, ``mask_decoder.*``).
``original_to_hf`` renames their keys to those of ``transformers.SamModel``; ``hf_to_original`` is
its exact inverse (used to export, and by the tests to prove the round trip).
``sam_config_from_original`` reads the architecture off the tensor shapes, so one loader serves
ViT-B at 1024 (MedSAM), ViT-B at 256 with adapters (SAM-Med2D) and any other size.

Only the mask decoder's number of attention heads leaves no trace in the weights: it is 8 in every
released SAM variant, and can be overridden.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from .base import ModelError

# (original prefix, transformers prefix); "*" stands for a block/layer number. The first rule whose
# prefix matches a key renames it; the rest of the key is kept.
RENAMES: tuple[tuple[str, str], ...] = (
    ("image_encoder.pos_embed", "vision_encoder.pos_embed"),
    ("image_encoder.patch_embed.proj.", "vision_encoder.patch_embed.projection."),
    ("image_encoder.blocks.*.norm1.", "vision_encoder.layers.*.layer_norm1."),
    ("image_encoder.blocks.*.norm2.", "vision_encoder.layers.*.layer_norm2."),
    ("image_encoder.blocks.*.attn.", "vision_encoder.layers.*.attn."),
    ("image_encoder.blocks.*.mlp.", "vision_encoder.layers.*.mlp."),
    # SAM-Med2D's adapter (Adapter_Layer: norm, channel = Linear/ReLU/Linear/Sigmoid,
    # spatial = Conv/ReLU/ConvTranspose/ReLU); see sam_med2d.EncoderAdapter.
    ("image_encoder.blocks.*.Adapter.norm.", "vision_encoder.layers.*.adapter.layer_norm."),
    (
        "image_encoder.blocks.*.Adapter.channel.0.",
        "vision_encoder.layers.*.adapter.channel_squeeze.",
    ),
    (
        "image_encoder.blocks.*.Adapter.channel.2.",
        "vision_encoder.layers.*.adapter.channel_excite.",
    ),
    ("image_encoder.blocks.*.Adapter.spatial.0.", "vision_encoder.layers.*.adapter.spatial_down."),
    ("image_encoder.blocks.*.Adapter.spatial.2.", "vision_encoder.layers.*.adapter.spatial_up."),
    ("image_encoder.neck.0.", "vision_encoder.neck.conv1."),
    ("image_encoder.neck.1.", "vision_encoder.neck.layer_norm1."),
    ("image_encoder.neck.2.", "vision_encoder.neck.conv2."),
    ("image_encoder.neck.3.", "vision_encoder.neck.layer_norm2."),
    (
        "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix",
        "shared_image_embedding.positional_embedding",
    ),
    ("prompt_encoder.point_embeddings.*.", "prompt_encoder.point_embed.*."),
    ("prompt_encoder.not_a_point_embed.", "prompt_encoder.not_a_point_embed."),
    ("prompt_encoder.no_mask_embed.", "prompt_encoder.no_mask_embed."),
    ("prompt_encoder.mask_downscaling.0.", "prompt_encoder.mask_embed.conv1."),
    ("prompt_encoder.mask_downscaling.1.", "prompt_encoder.mask_embed.layer_norm1."),
    ("prompt_encoder.mask_downscaling.3.", "prompt_encoder.mask_embed.conv2."),
    ("prompt_encoder.mask_downscaling.4.", "prompt_encoder.mask_embed.layer_norm2."),
    ("prompt_encoder.mask_downscaling.6.", "prompt_encoder.mask_embed.conv3."),
    ("mask_decoder.iou_token.", "mask_decoder.iou_token."),
    ("mask_decoder.mask_tokens.", "mask_decoder.mask_tokens."),
    ("mask_decoder.transformer.layers.*.norm*.", "mask_decoder.transformer.layers.*.layer_norm*."),
    (
        "mask_decoder.transformer.layers.*.self_attn.",
        "mask_decoder.transformer.layers.*.self_attn.",
    ),
    (
        "mask_decoder.transformer.layers.*.cross_attn_token_to_image.",
        "mask_decoder.transformer.layers.*.cross_attn_token_to_image.",
    ),
    (
        "mask_decoder.transformer.layers.*.cross_attn_image_to_token.",
        "mask_decoder.transformer.layers.*.cross_attn_image_to_token.",
    ),
    ("mask_decoder.transformer.layers.*.mlp.", "mask_decoder.transformer.layers.*.mlp."),
    (
        "mask_decoder.transformer.final_attn_token_to_image.",
        "mask_decoder.transformer.final_attn_token_to_image.",
    ),
    (
        "mask_decoder.transformer.norm_final_attn.",
        "mask_decoder.transformer.layer_norm_final_attn.",
    ),
    ("mask_decoder.output_upscaling.0.", "mask_decoder.upscale_conv1."),
    ("mask_decoder.output_upscaling.1.", "mask_decoder.upscale_layer_norm."),
    ("mask_decoder.output_upscaling.3.", "mask_decoder.upscale_conv2."),
)

# The original MLP keeps its linear layers in one list (layers.0 ... layers.depth-1); transformers
# names the first and last (proj_in, proj_out) and numbers only the hidden ones.
ORIGINAL_MLPS = (
    r"mask_decoder\.output_hypernetworks_mlps\.\d+\.",
    r"mask_decoder\.iou_prediction_head\.",
)
HYPERNETWORK_DEPTH = 3  # fixed in both implementations

# transformers keeps the random Fourier matrix twice (tied); the original once.
TIED_HF_KEY = "prompt_encoder.shared_embedding.positional_embedding"
SHARED_HF_KEY = "shared_image_embedding.positional_embedding"

# Non-persistent in segment_anything, but present in some re-saved checkpoints: not weights.
IGNORED_ORIGINAL_KEYS = ("pixel_mean", "pixel_std")

DEFAULT_DECODER_HEADS = 8
ORIGINAL_DECODER_LAYER_NORM_EPS = 1e-5


def _compile(prefix: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(prefix).replace(r"\*", r"(\d+)") + "(.*)$")


def _fill(prefix: str, numbers: tuple[str, ...]) -> str:
    parts = prefix.split("*")
    return "".join(p + n for p, n in zip(parts, (*numbers, ""))) if numbers else prefix


_FORWARD = tuple((_compile(src), dst) for src, dst in RENAMES)
_BACKWARD = tuple((_compile(dst), src) for src, dst in RENAMES)


def _rename(key: str, rules: tuple[tuple[re.Pattern[str], str], ...]) -> str | None:
    for pattern, target in rules:
        match = pattern.match(key)
        if match:
            *numbers, rest = match.groups()
            return _fill(target, tuple(numbers)) + rest
    return None


def _mlp_depths(keys: list[str], head: str) -> dict[str, int]:
    """The number of linear layers of each original MLP (by its key prefix)."""
    depths: dict[str, int] = {}
    for key in keys:
        match = re.match(f"^({head})layers\\.(\\d+)\\.", key)
        if match:
            depths[match.group(1)] = max(depths.get(match.group(1), 0), int(match.group(2)) + 1)
    return depths


def _original_mlp_key(key: str, depths: dict[str, int]) -> str | None:
    for head in ORIGINAL_MLPS:
        match = re.match(f"^({head})layers\\.(\\d+)\\.(.*)$", key)
        if match:
            prefix, index, rest = match.group(1), int(match.group(2)), match.group(3)
            depth = depths[prefix]
            if index == 0:
                return f"{prefix}proj_in.{rest}"
            if index == depth - 1:
                return f"{prefix}proj_out.{rest}"
            return f"{prefix}layers.{index - 1}.{rest}"
    return None


def original_to_hf(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Rename an original segment_anything state dict to ``SamModel`` keys.

    Raises ModelError naming the keys that no rule knows (another architecture, or a training
    checkpoint that wraps the weights).
    """
    keys = [k for k in state_dict if k not in IGNORED_ORIGINAL_KEYS]
    depths: dict[str, int] = {}
    for head in ORIGINAL_MLPS:
        depths.update(_mlp_depths(keys, head))
    converted: dict[str, Any] = {}
    unknown = []
    for key in keys:
        new_key = _original_mlp_key(key, depths) or _rename(key, _FORWARD)
        if new_key is None:
            unknown.append(key)
            continue
        converted[new_key] = state_dict[key]
    if unknown:
        raise ModelError(
            f"{len(unknown)} checkpoint keys are not Segment-Anything weights (first: "
            f"{', '.join(sorted(unknown)[:3])}); expected the image_encoder.*, prompt_encoder.* "
            "and mask_decoder.* keys of segment_anything"
        )
    if SHARED_HF_KEY in converted:
        converted[TIED_HF_KEY] = converted[SHARED_HF_KEY]
    return converted


def hf_to_original(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Rename a ``SamModel`` state dict to the original segment_anything keys (the inverse)."""
    keys = [k for k in state_dict if k != TIED_HF_KEY]
    converted: dict[str, Any] = {}
    for key in keys:
        new_key = _hf_mlp_key(key, keys) or _rename(key, _BACKWARD)
        if new_key is None:
            raise ModelError(f"SamModel key '{key}' has no counterpart in segment_anything")
        converted[new_key] = state_dict[key]
    return converted


def _hf_mlp_key(key: str, keys: list[str]) -> str | None:
    for head in ORIGINAL_MLPS:
        match = re.match(f"^({head})(proj_in|proj_out|layers\\.(\\d+))\\.(.*)$", key)
        if not match:
            continue
        prefix, part, hidden, rest = match.groups()
        if part == "proj_in":
            return f"{prefix}layers.0.{rest}"
        if hidden is not None:
            return f"{prefix}layers.{int(hidden) + 1}.{rest}"
        hidden_count = len(
            {k for k in keys if re.match(f"^{re.escape(prefix)}layers\\.\\d+\\.weight$", k)}
        )
        return f"{prefix}layers.{hidden_count + 1}.{rest}"
    return None


def _count(state_dict: Mapping[str, Any], pattern: str) -> int:
    found = {int(m.group(1)) for k in state_dict if (m := re.match(pattern, k))}
    return max(found) + 1 if found else 0


def sam_config_from_original(
    state_dict: Mapping[str, Any], *, decoder_heads: int = DEFAULT_DECODER_HEADS
) -> Any:
    """The ``SamConfig`` of an original-format checkpoint, read off its tensor shapes.

    Global-attention blocks are those whose relative position table spans the whole token grid
    (2 * grid - 1 rows); the others are windowed, with window = (rows + 1) / 2.
    """
    from transformers import SamConfig

    sd = state_dict
    try:
        hidden, channels, patch, _ = sd["image_encoder.patch_embed.proj.weight"].shape
        grid = sd["image_encoder.pos_embed"].shape[1]
        depth = _count(sd, r"^image_encoder\.blocks\.(\d+)\.")
        rows = [sd[f"image_encoder.blocks.{i}.attn.rel_pos_h"].shape for i in range(depth)]
        global_layers = [i for i, shape in enumerate(rows) if shape[0] == 2 * grid - 1]
        windows = {(shape[0] + 1) // 2 for i, shape in enumerate(rows) if i not in global_layers}
        if len(windows) > 1:
            raise ModelError(f"checkpoint mixes attention windows {sorted(windows)}")
        vision = {
            "hidden_size": int(hidden),
            "num_channels": int(channels),
            "patch_size": int(patch),
            "image_size": int(grid * patch),
            "num_hidden_layers": depth,
            "num_attention_heads": int(hidden // rows[0][1]),
            "mlp_dim": int(sd["image_encoder.blocks.0.mlp.lin1.weight"].shape[0]),
            "output_channels": int(sd["image_encoder.neck.0.weight"].shape[0]),
            "window_size": int(windows.pop()) if windows else 14,
            "global_attn_indexes": global_layers,
            "num_pos_feats": int(
                sd["prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"].shape[1]
            ),
        }
        prompt = {
            "hidden_size": int(sd["prompt_encoder.no_mask_embed.weight"].shape[1]),
            "image_size": int(grid * patch),
            "patch_size": int(patch),
            "mask_input_channels": int(sd["prompt_encoder.mask_downscaling.3.weight"].shape[0]),
        }
        decoder_hidden = int(sd["mask_decoder.iou_token.weight"].shape[1])
        cross_dim = sd["mask_decoder.transformer.layers.0.cross_attn_token_to_image.q_proj.weight"]
        decoder = {
            "hidden_size": decoder_hidden,
            "num_hidden_layers": _count(sd, r"^mask_decoder\.transformer\.layers\.(\d+)\."),
            "mlp_dim": int(sd["mask_decoder.transformer.layers.0.mlp.lin1.weight"].shape[0]),
            "num_attention_heads": decoder_heads,
            "attention_downsample_rate": decoder_hidden // int(cross_dim.shape[0]),
            "num_multimask_outputs": int(sd["mask_decoder.mask_tokens.weight"].shape[0]) - 1,
            "iou_head_depth": _count(sd, r"^mask_decoder\.iou_prediction_head\.layers\.(\d+)\."),
            "iou_head_hidden_dim": int(
                sd["mask_decoder.iou_prediction_head.layers.0.weight"].shape[0]
            ),
            # segment_anything's two-way blocks use torch's default LayerNorm eps; transformers'
            # default (1e-6) would shift the decoder's outputs slightly.
            "layer_norm_eps": ORIGINAL_DECODER_LAYER_NORM_EPS,
        }
    except KeyError as exc:
        raise ModelError(
            f"checkpoint lacks {exc.args[0]}: not a segment_anything (SAM / MedSAM / SAM-Med2D) "
            "state dict"
        ) from None
    return SamConfig(
        vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder
    )


def has_adapters(state_dict: Mapping[str, Any]) -> bool:
    """Whether an original-format checkpoint carries SAM-Med2D's encoder adapters."""
    return any(".Adapter." in key for key in state_dict)


def load_original_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The state dict of an original checkpoint (bare, or wrapped as {"model": ...}).

    Read with ``weights_only=True``: a checkpoint that pickles code objects is refused.
    """
    import torch

    if not os.path.isfile(path):
        raise ModelError(f"checkpoint '{path}' does not exist or is not a file")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(
            f"checkpoint '{path}' could not be read as weights only ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); re-save its state dict with "
            "torch.save(model.state_dict(), path)"
        ) from exc
    if isinstance(loaded, Mapping):
        for wrapper in ("model", "state_dict"):
            if isinstance(loaded.get(wrapper), Mapping):
                loaded = loaded[wrapper]
                break
    if not isinstance(loaded, Mapping) or not loaded:
        raise ModelError(f"checkpoint '{path}' holds no state dict")
    return dict(loaded)
