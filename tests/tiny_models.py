"""Tiny random-weight vision-language models saved as real transformers checkpoints.

Each builder writes a model directory (config, safetensors weights, tokenizer, image processor and,
where the architecture has one, a chat template) that loads through ``AutoProcessor`` and
``from_pretrained`` exactly as a hub checkpoint does, without any download. The models are a few
thousand parameters: hidden size 32, two layers, 28 px images cut into 14 px patches.

The tokenizer is byte-level with no merges: every UTF-8 byte is one token, so any prompt encodes
without unknown tokens and decoding gives back the exact text. The special tokens each architecture
needs (image placeholder, begin/end of image for Gemma 3, BOS, EOS, padding) come first.

    from tests.tiny_models import build_tiny_gemma3, build_tiny_llava
    path = build_tiny_gemma3(tmp_path / "gemma3")
    model = load_model("medgemma", model_id=str(path), device="cpu")
"""

from __future__ import annotations

from pathlib import Path

IMAGE_SIZE = 28  # pixels; 2 x 2 patches of 14 px
PATCH_SIZE = 14
TEXT_HIDDEN = 32
VISION_HIDDEN = 16

# A Gemma-3-style conversation (system text folded into the first user turn, images as
# <start_of_image>, the model's turn opened for generation), written for these tests.
GEMMA3_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}"
    "{%- set turns = messages[1:] -%}"
    "{%- else -%}"
    "{%- set first_prefix = '' -%}"
    "{%- set turns = messages -%}"
    "{%- endif -%}"
    "{%- for message in turns -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_prefix if loop.first else '') }}"
    "{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'image' -%}{{ '<start_of_image>' }}"
    "{%- elif part['type'] == 'text' -%}{{ part['text'] | trim }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)

# LLaVA-1.5-style conversation ("USER: <image>\n... ASSISTANT:"), for an LLaVA with a template.
LLAVA_CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' -%}{{ message['content'][0]['text'] + ' ' }}"
    "{%- else -%}"
    "{{ message['role'].upper() + ': ' }}"
    "{%- for part in message['content'] if part['type'] == 'image' -%}{{ '<image>\n' }}"
    "{%- endfor -%}"
    "{%- for part in message['content'] if part['type'] == 'text' -%}{{ part['text'] }}"
    "{%- endfor -%}"
    "{{ ' ' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ 'ASSISTANT:' }}{%- endif -%}"
)


def byte_level_tokenizer(special_tokens: list[str], *, add_bos: str | None = None):
    """A byte-level BPE tokenizer without merges, its special tokens first (ids 0, 1, ...).

    ``add_bos`` is prepended to every encoding, as LLaMA/Mistral tokenizers do.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    vocab = {token: i for i, token in enumerate(special_tokens)}
    for symbol in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[symbol] = len(vocab)
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    if add_bos is not None:
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{add_bos} $A", special_tokens=[(add_bos, vocab[add_bos])]
        )
    return tokenizer


def tiny_mistral_config(tokenizer, **extra):
    """The tiny Mistral language model of the LLaVA twins."""
    from transformers import MistralConfig

    return MistralConfig(
        vocab_size=len(tokenizer),
        hidden_size=TEXT_HIDDEN,
        intermediate_size=2 * TEXT_HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=1024,
        sliding_window=None,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **extra,
    )


def build_tiny_gemma3(path: str | Path, *, seed: int = 0, chat_template: bool = True) -> Path:
    """A Gemma 3 (MedGemma architecture) image-text-to-text model with a SigLIP vision tower."""
    import torch
    from transformers import (
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        Gemma3Processor,
        Gemma3TextConfig,
        PreTrainedTokenizerFast,
        SiglipVisionConfig,
    )
    from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil

    path = Path(path)
    special = [
        "<pad>",
        "<eos>",
        "<bos>",
        "<start_of_turn>",
        "<end_of_turn>",
        "<start_of_image>",
        "<end_of_image>",
        "<image_soft_token>",
    ]
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=byte_level_tokenizer(special),
        pad_token="<pad>",
        eos_token="<eos>",
        bos_token="<bos>",
        extra_special_tokens={
            "boi_token": "<start_of_image>",
            "eoi_token": "<end_of_image>",
            "image_token": "<image_soft_token>",
        },
    )
    tokenizer.add_special_tokens(
        {"extra_special_tokens": ["<start_of_turn>", "<end_of_turn>"]},
        replace_extra_special_tokens=False,
    )
    text = Gemma3TextConfig(
        vocab_size=len(tokenizer),
        hidden_size=TEXT_HIDDEN,
        intermediate_size=2 * TEXT_HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        query_pre_attn_scalar=16,
        max_position_embeddings=1024,
        sliding_window=128,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    vision = SiglipVisionConfig(
        hidden_size=VISION_HIDDEN,
        intermediate_size=2 * VISION_HIDDEN,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
    )
    config = Gemma3Config(
        text_config=text,
        vision_config=vision,
        mm_tokens_per_image=4,  # 2 x 2 patches, no pooling
        boi_token_index=tokenizer.boi_token_id,
        eoi_token_index=tokenizer.eoi_token_id,
        image_token_index=tokenizer.image_token_id,
    )
    # MedGemma ends its turns with <end_of_turn> as well as EOS.
    config.text_config.eos_token_id = [
        tokenizer.eos_token_id,
        tokenizer.convert_tokens_to_ids("<end_of_turn>"),
    ]
    torch.manual_seed(seed)
    model = Gemma3ForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = config.text_config.eos_token_id
    image_processor = Gemma3ImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    processor = Gemma3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        chat_template=GEMMA3_CHAT_TEMPLATE if chat_template else None,
        image_seq_length=config.mm_tokens_per_image,
    )
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def build_tiny_llava(path: str | Path, *, seed: int = 0, chat_template: str | None = None) -> Path:
    """A LLaVA v1.5 model (CLIP vision tower, Mistral language model), as LLaVA-Med v1.5 is built.

    Like a conversion of LLaVA-Med, the processor has no chat template unless one is given, and
    the image processor pads to a square with the mean colour before resizing (LLaVA-Med's 'pad').
    """
    import torch
    from transformers import (
        CLIPVisionConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )
    from transformers.models.llava.image_processing_pil_llava import LlavaImageProcessorPil

    path = Path(path)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=byte_level_tokenizer(
            ["<unk>", "<s>", "</s>", "<pad>", "<image>"], add_bos="<s>"
        ),
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"},
    )
    text = tiny_mistral_config(tokenizer, pad_token_id=tokenizer.pad_token_id)
    vision = CLIPVisionConfig(
        hidden_size=VISION_HIDDEN,
        intermediate_size=2 * VISION_HIDDEN,
        projection_dim=VISION_HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
    )
    n_patches = (IMAGE_SIZE // PATCH_SIZE) ** 2
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.image_token_id,
        image_seq_length=n_patches,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",  # drops CLIP's class token
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config).eval()
    image_processor = LlavaImageProcessorPil(
        size={"shortest_edge": IMAGE_SIZE},
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        do_pad=True,
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # the class token, dropped again by "default"
        chat_template=chat_template,
    )
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def build_tiny_llava_med_original(
    path: str | Path, clip_path: str | Path, *, tuned_tower: bool = True, seed: int = 0
) -> Path:
    """A checkpoint laid out as LLaVA-Med v1.5 publishes it (``llava_mistral``), for the converter.

    Writes ``clip_path``: a CLIP vision tower standing in for openai/clip-vit-large-patch14-336, and
    ``path``: Mistral weights under ``model.*`` / ``lm_head``, the projector as
    ``model.mm_projector.0/2``, a tokenizer without ``<image>`` or padding token, and LLaVA's
    ``mm_*`` settings. With ``tuned_tower`` the checkpoint also holds its own (different) tower
    weights under ``model.vision_tower.vision_tower.vision_model.*``, as a tower tuned with the
    language model is stored.
    """
    import json

    import torch
    from safetensors.torch import save_file
    from transformers import (
        CLIPVisionConfig,
        CLIPVisionModel,
        MistralForCausalLM,
        PreTrainedTokenizerFast,
    )

    path, clip_path = Path(path), Path(clip_path)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=byte_level_tokenizer(["<unk>", "<s>", "</s>"], add_bos="<s>"),
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
    )
    torch.manual_seed(seed)
    clip = CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=VISION_HIDDEN,
            intermediate_size=2 * VISION_HIDDEN,
            projection_dim=VISION_HIDDEN,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=IMAGE_SIZE,
            patch_size=PATCH_SIZE,
        )
    )
    clip.save_pretrained(clip_path)
    text = tiny_mistral_config(tokenizer)
    language = MistralForCausalLM(text)
    weights = {key: value.contiguous() for key, value in language.state_dict().items()}
    projector = [
        torch.nn.Linear(VISION_HIDDEN, TEXT_HIDDEN),
        torch.nn.Linear(TEXT_HIDDEN, TEXT_HIDDEN),
    ]
    for index, layer in zip((0, 2), projector):
        weights[f"model.mm_projector.{index}.weight"] = layer.weight.detach().clone()
        weights[f"model.mm_projector.{index}.bias"] = layer.bias.detach().clone()
    if tuned_tower:
        for key, value in clip.state_dict().items():
            key = key if key.startswith("vision_model.") else f"vision_model.{key}"
            tuned = value + 0.01 * torch.randn_like(value) if value.is_floating_point() else value
            weights[f"model.vision_tower.vision_tower.{key}"] = tuned.contiguous()
    path.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(path / "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save_pretrained(path)
    settings = {
        **{key: value for key, value in text.to_dict().items() if not key.startswith("_")},
        "model_type": "llava_mistral",
        "architectures": ["LlavaMistralForCausalLM"],
        "mm_vision_tower": str(clip_path),
        "mm_hidden_size": VISION_HIDDEN,
        "mm_projector_type": "mlp2x_gelu",
        "mm_vision_select_layer": -2,
        "mm_vision_select_feature": "patch",
        "mm_use_im_start_end": False,
        "mm_use_im_patch_token": False,
        "image_aspect_ratio": "pad",
        "unfreeze_mm_vision_tower": tuned_tower,
    }
    (path / "config.json").write_text(json.dumps(settings, indent=2))
    return path
