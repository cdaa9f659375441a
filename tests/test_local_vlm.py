"""Local vision-language models through transformers, on tiny random-weight checkpoints.

The checkpoints are built by tests/tiny_models.py and saved to a temporary directory, then loaded
through the registered models exactly as hub checkpoints would be: ``hf:<path>``, ``medgemma`` and
``llava-med`` with a model id. Nothing is downloaded and no GPU is needed.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch  # noqa: F401
import transformers  # noqa: F401

from medfm_robust_plugin.models import (  # noqa: E402
    Generation,
    ModelError,
    VisionLanguageModel,
    load_model,
    resolve,
)
from medfm_robust_plugin.models.local_vlm import llava_med_prompt  # noqa: E402

from .tiny_models import build_tiny_gemma3, build_tiny_llava  # noqa: E402

CPU = {"device": "cpu", "dtype": "float32"}
LLAVA_IMAGE_TOKENS = 4  # 28 px / 14 px patches = 2 x 2


@pytest.fixture(scope="module")
def gemma3_dir(tmp_path_factory):
    return build_tiny_gemma3(tmp_path_factory.mktemp("tiny") / "gemma3")


@pytest.fixture(scope="module")
def llava_dir(tmp_path_factory):
    return build_tiny_llava(tmp_path_factory.mktemp("tiny") / "llava")


@pytest.fixture(scope="module")
def gemma3(gemma3_dir):
    """MedGemma's architecture (Gemma 3) through hf:<path>, three items per batch."""
    return load_model(f"hf:{gemma3_dir}", batch_size=3, **CPU)


@pytest.fixture(scope="module")
def llava_med(llava_dir):
    """LLaVA-Med's architecture, without a chat template, three items per batch."""
    return load_model(f"llava-med:{llava_dir}", batch_size=3, **CPU)


def scan(seed: int, height: int = 40, width: int = 52) -> np.ndarray:
    """A uint8 RGB image of random texture, a stand-in for a corrupted scan."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


# Prompts of clearly different lengths, so that a batch of them is left-padded.
QUESTIONS = [
    "What is shown?",
    "Is there a lesion in the upper left quadrant of this image, and how large is it?",
    "Modality?",
]


def items_with_one_image() -> list:
    return [([scan(i, 40 + 9 * i)], question) for i, question in enumerate(QUESTIONS)]


def spy_on_generate(monkeypatch, vlm) -> list:
    """Record (processor inputs, generate output) of every model.generate call during a test."""
    calls = []
    inner = vlm.model.generate

    def generate(**inputs):
        output = inner(**inputs)
        calls.append((inputs, output))
        return output

    monkeypatch.setattr(vlm.model, "generate", generate)
    return calls


# -- loading through the registry ------------------------------------------------------------


def test_registered_specs_describe_their_checkpoints():
    for name, default_id in [
        ("medgemma", "google/medgemma-4b-it"),
        ("medgemma-1.5", "google/medgemma-1.5-4b-it"),
        ("llava-med", "chaoyinshe/llava-med-v1.5-mistral-7b-hf"),
    ]:
        spec, model_id = resolve(name)
        assert (spec.kind, spec.extra, spec.default_id, model_id) == (
            "vlm",
            "models",
            default_id,
            None,
        )
        assert {"device", "dtype", "batch_size", "trust_remote_code"} <= set(spec.options)
    assert resolve("hf:some/model")[0].name == "hf"
    assert resolve("medgemma-1.5-4b-it")[0].name == "medgemma-1.5"
    assert resolve("llava-med-v1.5")[0].name == "llava-med"
    assert resolve("medgemma:/data/medgemma-27b")[1] == "/data/medgemma-27b"


def test_importing_the_module_leaves_torch_unloaded():
    code = (
        "import sys, medfm_robust_plugin.models.local_vlm\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_hf_prefix_loads_a_local_checkpoint_and_answers_each_item_in_order(gemma3, gemma3_dir):
    assert isinstance(gemma3, VisionLanguageModel)
    assert gemma3.name == f"hf:{gemma3_dir}"
    assert gemma3.capabilities.max_batch == 3
    answers = gemma3.generate(items_with_one_image(), max_new_tokens=4)
    assert len(answers) == 3
    assert all(isinstance(a, Generation) and isinstance(a.text, str) for a in answers)
    # Input counts follow the items: the long question is the long prompt.
    assert answers[1].input_tokens > answers[0].input_tokens > answers[2].input_tokens
    assert all(a.seconds > 0 for a in answers)
    assert gemma3.generate([]) == []


def test_medgemma_and_llava_med_take_a_local_directory_as_model_id(gemma3_dir, llava_med):
    medgemma = resolve("medgemma")[0].build(model_id=str(gemma3_dir), **CPU)
    assert load_model(f"medgemma:{gemma3_dir}", **CPU).model_id == str(gemma3_dir)
    assert type(medgemma.model).__name__ == "Gemma3ForConditionalGeneration"
    assert type(llava_med.model).__name__ == "LlavaForConditionalGeneration"
    assert medgemma.capabilities.multi_image and not llava_med.capabilities.multi_image
    assert medgemma.capabilities.system_prompt and llava_med.capabilities.system_prompt


def test_load_model_accepts_model_id_as_an_option(gemma3_dir):
    vlm = load_model("medgemma", model_id=str(gemma3_dir), **CPU)
    assert vlm.model_id == str(gemma3_dir)


# -- generation ------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["gemma3", "llava_med"])
def test_a_left_padded_batch_answers_as_each_item_alone(which, request, monkeypatch):
    vlm = request.getfixturevalue(which)
    spy = spy_on_generate(monkeypatch, vlm)
    items = items_with_one_image()
    batched = vlm.generate(items, max_new_tokens=6)
    alone = [vlm.generate([item], max_new_tokens=6)[0] for item in items]

    first_batch = spy[0][0]
    assert first_batch["input_ids"].shape[0] == 3
    mask = first_batch["attention_mask"]
    assert (mask[:, -1] == 1).all() and (mask[:, 0] == 0).any()  # padding on the left
    assert [a.text for a in batched] == [a.text for a in alone]
    assert [(a.input_tokens, a.output_tokens) for a in batched] == [
        (a.input_tokens, a.output_tokens) for a in alone
    ]
    assert len({a.text for a in batched}) > 1  # the answers depend on the item


def test_only_the_generated_tokens_are_decoded(gemma3, monkeypatch):
    spy = spy_on_generate(monkeypatch, gemma3)
    answers = gemma3.generate(items_with_one_image(), max_new_tokens=5)
    inputs, output = spy[0]
    prompt_length = inputs["input_ids"].shape[1]
    tokenizer = gemma3.processor.tokenizer
    assert (output[:, :prompt_length] == inputs["input_ids"]).all()
    for row, answer in enumerate(answers):
        new_tokens = output[row, prompt_length : prompt_length + answer.output_tokens].tolist()
        assert answer.text == tokenizer.decode(new_tokens, skip_special_tokens=True).strip()
        assert answer.input_tokens == int(inputs["attention_mask"][row].sum())
        assert QUESTIONS[row] not in answer.text
        assert "<start_of_turn>" not in answer.text and "model\n" not in answer.text


@pytest.mark.parametrize("max_new_tokens", [1, 7])
def test_max_new_tokens_bounds_every_answer(gemma3, monkeypatch, max_new_tokens):
    spy = spy_on_generate(monkeypatch, gemma3)
    answers = gemma3.generate(items_with_one_image(), max_new_tokens=max_new_tokens)
    inputs, output = spy[0]
    assert output.shape[1] - inputs["input_ids"].shape[1] <= max_new_tokens
    assert all(1 <= a.output_tokens <= max_new_tokens for a in answers)


def test_a_stop_token_ends_the_count_and_is_not_decoded(gemma3, monkeypatch):

    tokenizer = gemma3.processor.tokenizer
    end_of_turn = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    letter_a = tokenizer.convert_tokens_to_ids("a")
    pad = tokenizer.pad_token_id

    def finished_early(**inputs):
        rows = inputs["input_ids"].shape[0]
        tail = torch.tensor([[letter_a, letter_a, end_of_turn, pad, pad]] * rows)
        return torch.cat([inputs["input_ids"], tail], dim=1)

    monkeypatch.setattr(gemma3.model, "generate", finished_early)
    [answer] = gemma3.generate([([scan(0)], "Describe.")], max_new_tokens=5)
    assert (answer.text, answer.output_tokens) == ("aa", 3)


def test_temperature_zero_is_deterministic_across_calls_and_batch_sizes(llava_med, llava_dir):
    pairs = load_model(f"llava-med:{llava_dir}", batch_size=2, **CPU)
    items = items_with_one_image()
    runs = [
        llava_med.generate(items, max_new_tokens=5, temperature=0.0),
        llava_med.generate(items, max_new_tokens=5, temperature=0.0),
        pairs.generate(items, max_new_tokens=5, temperature=0.0),
    ]
    assert [a.text for a in runs[0]] == [a.text for a in runs[1]] == [a.text for a in runs[2]]


def test_greedy_overrides_the_sampling_a_checkpoint_ships(gemma3, monkeypatch):
    items = items_with_one_image()
    greedy = [a.text for a in gemma3.generate(items, max_new_tokens=5)]
    # MedGemma's generation_config.json samples by default (do_sample, top_k 64, top_p 0.95).
    config = gemma3.model.generation_config
    for setting, value in {"do_sample": True, "top_k": 64, "top_p": 0.95}.items():
        monkeypatch.setattr(config, setting, value)
    assert [a.text for a in gemma3.generate(items, max_new_tokens=5)] == greedy


def test_sampling_at_a_positive_temperature_still_answers_every_item(gemma3):
    answers = gemma3.generate(items_with_one_image(), max_new_tokens=3, temperature=0.7)
    assert len(answers) == 3 and all(1 <= a.output_tokens <= 3 for a in answers)


def test_items_without_images_and_with_several_images_keep_their_order(gemma3):
    items = [
        ([], "What is shown?"),
        ([scan(1), scan(2)], "What is shown?"),
        ([scan(3)], "What is shown?"),
        ([], "Another question without an image."),
    ]
    together = gemma3.generate(items, max_new_tokens=4)
    alone = [gemma3.generate([item], max_new_tokens=4)[0] for item in items]
    assert [a.text for a in together] == [a.text for a in alone]
    # Every image adds the same tokens: its soft tokens, begin/end markers and line breaks.
    per_image = together[2].input_tokens - together[0].input_tokens
    assert per_image > 4
    assert together[1].input_tokens - together[2].input_tokens == per_image


def test_images_arrive_as_uint8_arrays_of_any_channel_count_or_pil(gemma3):
    from PIL import Image

    rgb = scan(5)
    variants = [
        rgb,
        rgb[..., 0],
        rgb[..., :1],
        np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]),
        Image.fromarray(rgb),
    ]
    answers = gemma3.generate([([image], "What is shown?") for image in variants], max_new_tokens=3)
    assert answers[0].text == answers[3].text == answers[4].text  # RGBA and PIL read as RGB
    assert answers[1].text == answers[2].text  # gray, with or without a channel axis
    with pytest.raises(ModelError, match="uint8"):
        gemma3.generate([([rgb.astype(np.float32) / 255], "What is shown?")])


def test_llava_med_takes_one_image_per_prompt(llava_med):
    with pytest.raises(ModelError, match="one image per prompt"):
        llava_med.generate([([scan(1), scan(2)], "Compare.")])


# -- prompts ---------------------------------------------------------------------------------


def test_llava_med_prompt_is_the_mistral_instruct_conversation():
    assert llava_med_prompt("What is this?") == "[INST] <image>\nWhat is this? [/INST]"
    assert llava_med_prompt("Text only?", n_images=0) == "[INST] Text only? [/INST]"
    assert (
        llava_med_prompt("What is this?", system="Answer briefly.")
        == "[INST] <<SYS>>\nAnswer briefly.\n<</SYS>>\n\n<image>\nWhat is this? [/INST]"
    )


def test_llava_med_without_chat_template_feeds_its_own_prompt_with_expanded_image_tokens(
    llava_med, monkeypatch
):
    vlm = llava_med
    spy = spy_on_generate(monkeypatch, vlm)
    assert vlm.render_prompt("<image>\nWhat is this?", 1) == "[INST] <image>\nWhat is this? [/INST]"
    vlm.generate([([scan(0)], "What is this?")], max_new_tokens=2)
    inputs, _ = spy[0]
    fed = vlm.processor.tokenizer.decode(inputs["input_ids"][0])
    # One BOS, then the image token repeated once per vision patch, as the projector fills them.
    assert fed == "<s>[INST] " + "<image>" * LLAVA_IMAGE_TOKENS + "\nWhat is this? [/INST]"


def test_llava_med_prefers_a_chat_template_when_the_processor_has_one(tmp_path):
    from .tiny_models import LLAVA_CHAT_TEMPLATE

    path = build_tiny_llava(tmp_path / "llava-template", chat_template=LLAVA_CHAT_TEMPLATE)
    auto = load_model(f"llava-med:{path}", **CPU)
    native = load_model(f"llava-med:{path}", prompt_format="native", **CPU)
    assert auto.render_prompt("What is this?", 1) == "USER: <image>\nWhat is this? ASSISTANT:"
    assert native.render_prompt("What is this?", 1) == "[INST] <image>\nWhat is this? [/INST]"
    with pytest.raises(ModelError, match="prompt_format"):
        load_model(f"llava-med:{path}", prompt_format="vicuna", **CPU)


def test_gemma3_chat_template_takes_the_system_prompt_and_one_bos(gemma3, monkeypatch):
    vlm = gemma3
    spy = spy_on_generate(monkeypatch, vlm)
    rendered = vlm.render_prompt("What is shown?", 1, system="You are a radiologist.")
    assert rendered == (
        "<bos><start_of_turn>user\nYou are a radiologist.\n\n"
        "<start_of_image>What is shown?<end_of_turn>\n<start_of_turn>model\n"
    )
    vlm.generate([([scan(0)], "What is shown?")], max_new_tokens=1, system="Be brief.")
    input_ids = spy[0][0]["input_ids"][0].tolist()
    assert input_ids.count(vlm.processor.tokenizer.bos_token_id) == 1


def test_a_template_without_system_role_gets_the_system_text_in_the_user_turn(tmp_path):
    template = (
        "{%- if messages[0]['role'] == 'system' -%}"
        "{{ raise_exception('System role not supported') }}{%- endif -%}"
        "{%- for m in messages -%}{{ '[INST] ' }}"
        "{%- for p in m['content'] if p['type'] == 'image' -%}{{ '<image>\n' }}{%- endfor -%}"
        "{%- for p in m['content'] if p['type'] == 'text' -%}{{ p['text'] }}{%- endfor -%}"
        "{{ ' [/INST]' }}{%- endfor -%}"
    )
    path = build_tiny_llava(tmp_path / "no-system", chat_template=template)
    vlm = load_model(f"hf:{path}", **CPU)
    assert (
        vlm.render_prompt("What?", 1, system="Be brief.")
        == "[INST] <image>\nBe brief.\n\nWhat? [/INST]"
    )
    [answer] = vlm.generate([([scan(0)], "What?")], max_new_tokens=2, system="Be brief.")
    assert answer.output_tokens >= 1


# -- options and errors ----------------------------------------------------------------------


def test_dtype_options_on_cpu(gemma3_dir):

    assert (
        load_model(f"hf:{gemma3_dir}", device="cpu", dtype="float32").model.dtype == torch.float32
    )
    half = load_model(f"hf:{gemma3_dir}", device="cpu", dtype="bfloat16")
    assert half.model.dtype == torch.bfloat16 and half.model.device.type == "cpu"
    [answer] = half.generate([([scan(0)], "What is shown?")], max_new_tokens=2)
    assert 1 <= answer.output_tokens <= 2
    assert load_model(f"hf:{gemma3_dir}", device="auto", dtype="auto").model.dtype == torch.float32


@pytest.mark.parametrize(
    "options, message",
    [
        ({"dtype": "float8"}, "unknown dtype"),
        ({"device": "toaster"}, "unknown device"),
        ({"batch_size": 0}, "batch_size"),
        ({"trust_remote_code": "maybe"}, "trust_remote_code must be true or false"),
        ({"prompt_format": "vicuna"}, "prompt_format"),
    ],
)
def test_bad_options_are_named(gemma3_dir, options, message):
    with pytest.raises(ModelError, match=message):
        load_model(f"hf:{gemma3_dir}", **options)


def test_a_gpu_asked_for_where_there_is_none_is_an_error(gemma3_dir):

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ModelError, match="CUDA is not available"):
        load_model(f"hf:{gemma3_dir}", device="cuda:1")


def test_hf_needs_a_chat_template(llava_dir):
    with pytest.raises(ModelError, match="no chat template.*llava-med"):
        load_model(f"hf:{llava_dir}", **CPU)


def test_a_missing_model_says_what_to_check(tmp_path):
    with pytest.raises(ModelError, match="cannot load .*save_pretrained"):
        load_model(f"hf:{tmp_path / 'nowhere'}", **CPU)
    with pytest.raises(ModelError, match="no model given"):
        resolve("hf")[0].build()


def test_original_llava_med_weights_point_to_the_conversion_guide(tmp_path, llava_dir):
    original = tmp_path / "llava-med-v1.5-mistral-7b"
    original.mkdir()
    for source in llava_dir.iterdir():
        if source.suffix == ".json" and source.name != "config.json":
            (original / source.name).write_bytes(source.read_bytes())
    config = {"model_type": "llava_mistral", "architectures": ["LlavaMistralForCausalLM"]}
    (original / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="docs/llava_med.md"):
        load_model(f"llava-med:{original}", **CPU)


# -- LLaVA-Med conversion --------------------------------------------------------------------


def llava_med_reference_logits(original, tower_weights, input_before, input_after, pixel_values):
    """Next-token logits computed the way LLaVA-Med does: CLIP's second-to-last layer without the
    class token, through the two-layer GELU projector, spliced between the text embeddings."""
    from safetensors.torch import load_file
    from transformers import CLIPVisionConfig, CLIPVisionModel, MistralConfig, MistralForCausalLM

    settings = json.loads((original / "config.json").read_text())
    weights = load_file(str(original / "model.safetensors"))
    language = MistralForCausalLM(
        MistralConfig(**{k: v for k, v in settings.items() if not k.startswith("mm_")})
    )
    language.load_state_dict(
        {
            k: v
            for k, v in weights.items()
            if k.startswith(("model.layers", "model.embed", "model.norm", "lm_head"))
        }
    )
    tower = CLIPVisionModel(CLIPVisionConfig.from_pretrained(settings["mm_vision_tower"]))
    tower.load_state_dict(tower_weights)
    with torch.no_grad():
        features = tower(pixel_values, output_hidden_states=True).hidden_states[-2][:, 1:]
        hidden = torch.nn.functional.gelu(
            features @ weights["model.mm_projector.0.weight"].T
            + weights["model.mm_projector.0.bias"]
        )
        image = (
            hidden @ weights["model.mm_projector.2.weight"].T + weights["model.mm_projector.2.bias"]
        )
        embed = language.get_input_embeddings()
        sequence = torch.cat([embed(input_before), image[0], embed(input_after)])[None]
        return language(inputs_embeds=sequence).logits[0, -1]


@pytest.mark.parametrize("tuned_tower", [True, False])
def test_converted_llava_med_computes_what_the_original_does(tmp_path, tuned_tower):
    from safetensors.torch import load_file
    from transformers import CLIPVisionModel

    from medfm_robust_plugin.models.llava_med_convert import convert_llava_med

    from .tiny_models import build_tiny_llava_med_original

    original = build_tiny_llava_med_original(
        tmp_path / "original", tmp_path / "clip", tuned_tower=tuned_tower
    )
    converted = convert_llava_med(original, tmp_path / "converted", dtype="float32")
    vlm = load_model(f"llava-med:{converted}", **CPU)
    tokenizer = vlm.processor.tokenizer
    assert vlm.processor.image_processor.do_pad  # image_aspect_ratio: pad
    assert vlm.render_prompt("What is this?", 1) == "[INST] <image>\nWhat is this? [/INST]"

    if tuned_tower:
        prefix = "model.vision_tower.vision_tower.vision_model."
        tower_weights = {
            k[len(prefix) :]: v
            for k, v in load_file(str(original / "model.safetensors")).items()
            if k.startswith(prefix)
        }
    else:
        tower_weights = CLIPVisionModel.from_pretrained(tmp_path / "clip").state_dict()
    pixel_values = vlm.processor.image_processor(scan(4), return_tensors="pt")["pixel_values"]
    before = torch.tensor(tokenizer("[INST] ").input_ids)
    after = torch.tensor(tokenizer("\nWhat is this? [/INST]", add_special_tokens=False).input_ids)
    expected = llava_med_reference_logits(original, tower_weights, before, after, pixel_values)

    image_ids = torch.full((LLAVA_IMAGE_TOKENS,), tokenizer.convert_tokens_to_ids("<image>"))
    input_ids = torch.cat([before, image_ids, after])[None]
    with torch.no_grad():
        logits = vlm.model(input_ids=input_ids, pixel_values=pixel_values).logits[0, -1]
    # The added <image> and <pad> rows are never predicted by the original; compare its vocabulary.
    assert torch.allclose(logits[: expected.shape[0]], expected, atol=1e-5)
    [answer] = vlm.generate([([scan(4)], "What is this?")], max_new_tokens=3)
    assert 1 <= answer.output_tokens <= 3


def test_converting_anything_but_llava_med_is_refused(tmp_path, llava_dir):
    from medfm_robust_plugin.models.llava_med_convert import convert_llava_med

    with pytest.raises(ModelError, match="llava_mistral"):
        convert_llava_med(llava_dir, tmp_path / "out")
