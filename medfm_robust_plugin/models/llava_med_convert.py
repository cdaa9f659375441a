"""Converting LLaVA-Med v1.5 (Mistral) from its original LLaVA repository format to transformers'
``LlavaForConditionalGeneration`` (docs/llava_med.md), as ``sam_convert`` does for SAM checkpoints.

The original checkpoint holds the Mistral language model, the projector and a fine-tuned CLIP
tower under LLaVA's key names; the converted folder loads with ``llava-med`` / ``hf:<folder>``.
torch and transformers are imported when a conversion runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .base import ModelError
from .local_vlm import LLAVA_MED_IMAGE_TOKEN, _torch_dtype

LLAVA_MED_CLIP = "openai/clip-vit-large-patch14-336"
MISTRAL_FIELDS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "hidden_act",
    "max_position_embeddings",
    "rms_norm_eps",
    "rope_theta",
    "sliding_window",
    "bos_token_id",
    "eos_token_id",
    "tie_word_embeddings",
)


def convert_llava_med(
    original_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    vision_tower: str | None = None,
    dtype: str = "float16",
) -> Path:
    """Write LLaVA-Med v1.5 (original ``llava_mistral`` checkpoint) as a transformers LLaVA model.

    ``original_dir`` is a local copy of ``microsoft/llava-med-v1.5-mistral-7b``. Its Mistral
    weights become the language model, ``mm_projector.0/2`` the two-layer GELU projector, and the
    CLIP tower comes from ``vision_tower`` (default: the config's ``mm_vision_tower``,
    openai/clip-vit-large-patch14-336), replaced by the checkpoint's own tower weights when it has
    them (a tower tuned with LLaVA-Med). The tokenizer gains ``<image>`` and ``<pad>``; the image
    processor pads to a square with the mean colour when the config says
    ``image_aspect_ratio: pad``, as LLaVA-Med does. No chat template is written: the ``llava-med``
    model then prompts in LLaVA-Med's own ``mistral_instruct`` format.
    """
    import json

    import torch
    import transformers

    original, output = Path(original_dir), Path(output_dir)
    settings = json.loads((original / "config.json").read_text())
    _check_llava_med_config(settings, original)
    torch_dtype = _torch_dtype(dtype)
    weights = _read_weights(original)

    tokenizer = transformers.AutoTokenizer.from_pretrained(original)
    tokenizer.add_tokens(
        [transformers.AddedToken(LLAVA_MED_IMAGE_TOKEN, special=True, normalized=False)],
        special_tokens=True,
    )
    if tokenizer.pad_token is None:
        tokenizer.add_special_tokens({"pad_token": "<pad>"})
    clip = transformers.CLIPVisionModel.from_pretrained(
        vision_tower or settings.get("mm_vision_tower", LLAVA_MED_CLIP), dtype=torch_dtype
    )
    text_config = transformers.MistralConfig(
        **{key: settings[key] for key in MISTRAL_FIELDS if key in settings}
    )
    text_config.vocab_size = len(tokenizer)
    text_config.pad_token_id = tokenizer.pad_token_id
    patches = (clip.config.image_size // clip.config.patch_size) ** 2
    config = transformers.LlavaConfig(
        vision_config=clip.config,
        text_config=text_config,
        image_token_index=tokenizer.convert_tokens_to_ids(LLAVA_MED_IMAGE_TOKEN),
        image_seq_length=patches,
        vision_feature_layer=settings.get("mm_vision_select_layer", -2),
        vision_feature_select_strategy=(
            "default" if settings.get("mm_vision_select_feature", "patch") == "patch" else "full"
        ),
        projector_hidden_act="gelu",
    )
    with torch.device("meta"):
        model = transformers.LlavaForConditionalGeneration(config)
    vision_weights = clip.state_dict()
    tuned_tower = _strip(weights, "model.vision_tower.vision_tower.")
    if not any(key.startswith("vision_model.") for key in vision_weights):
        tuned_tower = _strip(tuned_tower, "vision_model.")  # transformers 5 flattened the tower
    vision_weights.update(tuned_tower)
    language_weights = {
        key: value
        for key, value in _strip(weights, "model.").items()
        if not key.startswith(("mm_projector.", "vision_tower."))
    }
    new_rows = len(tokenizer) - language_weights["embed_tokens.weight"].shape[0]
    language_weights["embed_tokens.weight"] = _grow_rows(
        language_weights["embed_tokens.weight"], new_rows
    )
    projector = _strip(weights, "model.mm_projector.")
    parts = [
        (model.model.vision_tower, vision_weights),
        (model.model.language_model, language_weights),
        (model.lm_head, {"weight": _grow_rows(weights["lm_head.weight"], new_rows)}),
        (
            model.model.multi_modal_projector,
            {
                "linear_1.weight": projector["0.weight"],
                "linear_1.bias": projector["0.bias"],
                "linear_2.weight": projector["2.weight"],
                "linear_2.bias": projector["2.bias"],
            },
        ),
    ]
    for module, state in parts:
        state = {key: value.to(torch_dtype) for key, value in state.items()}
        module.load_state_dict(state, strict=True, assign=True)

    image_processor_class = getattr(transformers, "LlavaImageProcessorPil", None)
    image_processor = (image_processor_class or transformers.LlavaImageProcessor)(
        size={"shortest_edge": clip.config.image_size},
        crop_size={"height": clip.config.image_size, "width": clip.config.image_size},
        do_pad=settings.get("image_aspect_ratio") == "pad",
        image_mean=transformers.image_utils.OPENAI_CLIP_MEAN,
        image_std=transformers.image_utils.OPENAI_CLIP_STD,
    )
    processor = transformers.LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=clip.config.patch_size,
        vision_feature_select_strategy=config.vision_feature_select_strategy,
        num_additional_image_tokens=1,  # CLIP's class token
    )
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(output)
    processor.save_pretrained(output)
    return output


def _check_llava_med_config(settings: dict, original: Path) -> None:
    if settings.get("model_type") != "llava_mistral":
        raise ModelError(
            f"{original} is not an original LLaVA-Med v1.5 checkpoint (model_type "
            f"{settings.get('model_type')!r}, expected 'llava_mistral')"
        )
    if settings.get("mm_projector_type", "linear") != "mlp2x_gelu":
        raise ModelError(
            f"{original}: projector {settings.get('mm_projector_type')!r} is not LLaVA-1.5's "
            "mlp2x_gelu, which transformers' LLaVA implements"
        )
    if settings.get("mm_use_im_start_end"):
        raise ModelError(
            f"{original} wraps images in <im_start>/<im_end> tokens, which transformers' LLaVA "
            "does not; this converter covers LLaVA-Med v1.5"
        )


def _read_weights(original: Path) -> dict:
    import torch
    from safetensors.torch import load_file

    weights: dict = {}
    for shard in sorted(original.glob("*.safetensors")):
        weights.update(load_file(shard))
    if not weights:
        for shard in sorted(original.glob("pytorch_model*.bin")):
            weights.update(torch.load(shard, map_location="cpu", weights_only=True))
    if not weights:
        raise ModelError(f"no *.safetensors or pytorch_model*.bin weights in {original}")
    return weights


def _strip(weights: dict, prefix: str) -> dict:
    return {key[len(prefix) :]: value for key, value in weights.items() if key.startswith(prefix)}


def _grow_rows(matrix: Any, new_rows: int) -> Any:
    """Append rows for added tokens, set to the mean row (the image token's row is never read)."""
    import torch

    if new_rows <= 0:
        return matrix
    mean = matrix.float().mean(dim=0, keepdim=True).to(matrix.dtype)
    return torch.cat([matrix, mean.expand(new_rows, -1)], dim=0)
