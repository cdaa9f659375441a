"""Local vision-language models run through Hugging Face transformers.

``hf:<hub id or path>`` runs any image-text-to-text checkpoint with its processor's chat template;
``medgemma`` / ``medgemma-1.5`` (Gemma 3) and ``llava-med`` (LLaVA v1.5 with Mistral, in HF format,
see docs/llava_med.md) are the same wrapper with the paper's checkpoints as defaults.

Generation is batched with left padding (every prompt ends where generation starts, so only the new
tokens are decoded) and greedy at temperature 0. torch and transformers are imported when a model is
built, never when this module is imported.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..hookspecs import hookimpl
from .base import Capabilities, Generation, ImageInput, ModelError, ModelSpec, VLMItem

DEVICES_HELP = "'auto' (every visible GPU, else the CPU), 'cpu', 'cuda' or 'cuda:<index>'"
DTYPES = ("auto", "float32", "bfloat16", "float16")
DEFAULT_BATCH_SIZE = 8
PROMPT_FORMATS = ("auto", "chat_template", "native")
# Architectures whose published checkpoints were trained with one image per conversation.
SINGLE_IMAGE_MODEL_TYPES = frozenset({"llava"})

MEDGEMMA_ID = "google/medgemma-4b-it"
MEDGEMMA_15_ID = "google/medgemma-1.5-4b-it"
LLAVA_MED_ID = "chaoyinshe/llava-med-v1.5-mistral-7b-hf"
LLAVA_MED_IMAGE_TOKEN = "<image>"

PromptTemplate = Callable[[str, str | None, int], str]


def llava_med_prompt(question: str, system: str | None = None, n_images: int = 1) -> str:
    """LLaVA-Med v1.5's ``mistral_instruct`` conversation for one user turn, ready for generation.

    LLaVA-Med (microsoft/LLaVA-Med, ``llava/conversation.py``) renders this template in its LLaMA-2
    style with an empty system prompt and puts the image first: ``[INST] <image>\\n{question} [/INST]``.
    A system prompt, when given, is wrapped in ``<<SYS>>`` tags at the start of the turn as that style
    does. The beginning-of-sequence token is added by the tokenizer, as in LLaVA-Med's own evaluation.
    """
    message = f"{LLAVA_MED_IMAGE_TOKEN}\n" * n_images + question.strip()
    if system:
        message = f"<<SYS>>\n{system}\n<</SYS>>\n\n{message}"
    return f"[INST] {message} [/INST]"


class TransformersVLM:
    """An image-text-to-text model of transformers, answering (images, prompt) items in batches.

    Args:
        model_id: hub id or local directory holding the model and its processor.
        device: where the model runs: ``'auto'`` spreads it over the visible GPUs (or the CPU when
            there is none), or a torch device such as ``'cpu'``, ``'cuda'``, ``'cuda:1'``.
        dtype: ``'auto'`` (the checkpoint's own), ``'float32'``, ``'bfloat16'`` or ``'float16'``.
        batch_size: items generated together (left-padded).
        trust_remote_code: let transformers run code shipped with the checkpoint.
        multi_image: whether an item may carry several images; by default true except for
            architectures trained on one image (LLaVA v1.5).
        model_class: a transformers class name to load with instead of AutoModelForImageTextToText.
        native_prompt: renders ``(question, system, n_images)`` as the prompt the model was trained
            with; used when the processor has no chat template.
        prompt_format: ``'auto'`` (the chat template, else ``native_prompt``), ``'chat_template'``
            or ``'native'``.
    """

    name: str = ""

    def __init__(
        self,
        model_id: str | None = None,
        *,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = DEFAULT_BATCH_SIZE,
        trust_remote_code: bool | str = False,
        multi_image: bool | str | None = None,
        model_class: str | None = None,
        native_prompt: PromptTemplate | None = None,
        prompt_format: str = "auto",
        load_hint: str = "",
    ) -> None:
        if not model_id:
            raise ModelError(
                "no model given: name one as 'hf:<hub id or local directory>', "
                "e.g. hf:google/medgemma-4b-it"
            )
        if int(batch_size) < 1:
            raise ModelError(f"batch_size must be at least 1, got {batch_size}")
        if prompt_format not in PROMPT_FORMATS:
            raise ModelError(
                f"prompt_format must be one of {', '.join(PROMPT_FORMATS)}, got {prompt_format!r}"
            )
        self.model_id = str(model_id)
        self.batch_size = int(batch_size)
        self._native_prompt = native_prompt
        self._load_hint = load_hint
        trust_remote_code = _flag(trust_remote_code, "trust_remote_code")

        import torch  # noqa: F401  (fails early with the 'models' extra hint when missing)

        device_map = _device_map(device)
        torch_dtype = _torch_dtype(dtype)
        self.processor = self._load_processor(trust_remote_code)
        self._use_chat_template = self._choose_prompt_format(prompt_format)
        tokenizer = self.processor.tokenizer
        tokenizer.padding_side = "left"  # generation continues at the end of every row
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token

        self.model = self._load_model(model_class, device_map, torch_dtype, trust_remote_code)
        if multi_image is None:
            model_type = getattr(self.model.config, "model_type", "")
            multi_image = model_type not in SINGLE_IMAGE_MODEL_TYPES
        self.capabilities = Capabilities(
            multi_image=_flag(multi_image, "multi_image"),
            system_prompt=True,
            max_batch=self.batch_size,
        )

    def _choose_prompt_format(self, prompt_format: str) -> bool:
        """Whether prompts go through the chat template (else through the native prompt)."""
        has_template = bool(getattr(self.processor, "chat_template", None))
        has_native = self._native_prompt is not None
        use_template = prompt_format == "chat_template" or (
            prompt_format == "auto" and (has_template or not has_native)
        )
        if use_template and not has_template:
            raise ModelError(
                f"the processor of '{self.model_id}' has no chat template, so prompts cannot be "
                "formatted for it; use a checkpoint that ships one (chat_template.jinja), or the "
                "llava-med model for a LLaVA-Med conversion"
            )
        if not use_template and not has_native:
            raise ModelError(f"'{self.model_id}' has no native prompt; use prompt_format='auto'")
        return use_template

    # -- loading -----------------------------------------------------------------------------

    def _load_processor(self, trust_remote_code: bool) -> Any:
        from transformers import AutoProcessor

        try:
            return AutoProcessor.from_pretrained(self.model_id, trust_remote_code=trust_remote_code)
        except (OSError, ValueError, KeyError) as exc:
            raise self._load_error("its processor", exc) from exc

    def _load_model(
        self, model_class: str | None, device_map: Any, dtype: Any, trust_remote_code: bool
    ) -> Any:
        import transformers

        kwargs = {"dtype": dtype, "device_map": device_map, "trust_remote_code": trust_remote_code}
        try:
            if model_class is not None:
                model = getattr(transformers, model_class).from_pretrained(self.model_id, **kwargs)
            else:
                model = _load_image_text_to_text(self.model_id, kwargs)
        except (OSError, ValueError, KeyError) as exc:
            raise self._load_error("the model", exc) from exc
        return model.eval()

    def _load_error(self, what: str, exc: BaseException) -> ModelError:
        hint = self._load_hint or (
            "check that it is a hub id or a directory written by save_pretrained, that the hub is "
            "reachable (or the files are cached), and pass trust_remote_code=True if it needs its "
            "own code"
        )
        return ModelError(f"cannot load {what} of '{self.model_id}': {exc}; {hint}")

    # -- prompts -----------------------------------------------------------------------------

    def render_prompt(self, prompt: str, n_images: int, system: str | None = None) -> str:
        """The text given to the processor for one item: chat template, or the native prompt."""
        question = self._without_image_tokens(prompt)
        if not self._use_chat_template:
            return self._native_prompt(question, system, n_images)
        user = [{"type": "image"} for _ in range(n_images)] + [{"type": "text", "text": question}]
        messages = [{"role": "user", "content": user}]
        if system:
            messages.insert(0, {"role": "system", "content": [{"type": "text", "text": system}]})
        from jinja2.exceptions import TemplateError

        try:
            return self.processor.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False
            )
        except TemplateError:
            if not system:
                raise
            # Some templates (Mistral's among them) refuse a system role: the system text then
            # opens the user's message.
            user[-1]["text"] = f"{system}\n\n{question}"
            return self.processor.apply_chat_template(
                messages[1:], add_generation_prompt=True, tokenize=False
            )

    def _without_image_tokens(self, prompt: str) -> str:
        # Images are placed by the template; a literal placeholder in the question would add one
        # more image slot than images given (LLaVA-Med's evaluation strips it the same way).
        for token in {getattr(self.processor, "image_token", None), LLAVA_MED_IMAGE_TOKEN} - {None}:
            prompt = prompt.replace(token, "")
        return prompt.strip()

    def attack_objective(self, image: Any, sample: Any, prompt: str | None = None) -> Any:
        """What a white-box attack raises for ``sample``: the teacher-forced negative
        log-likelihood of its reference answer (see ``models.vlm_attack``)."""
        from .vlm_attack import vlm_objective

        return vlm_objective(self, np.asarray(image), sample, prompt)

    # -- generation --------------------------------------------------------------------------

    def generate(
        self,
        items: Sequence[VLMItem],
        *,
        max_new_tokens: int = 512,
        temperature: float = 0.0,
        system: str | None = None,
    ) -> list[Generation]:
        """Answer each (images, prompt) item; results in the order of ``items``."""
        prepared = [self._prepare(index, item) for index, item in enumerate(items)]
        results: list[Generation | None] = [None] * len(prepared)
        # A processor batch holds items that all have images or none.
        for has_images in (True, False):
            group = [i for i, (images, _) in enumerate(prepared) if bool(images) == has_images]
            for start in range(0, len(group), self.batch_size):
                batch = group[start : start + self.batch_size]
                answers = self._generate_batch(
                    [prepared[i] for i in batch], max_new_tokens, temperature, system
                )
                for index, answer in zip(batch, answers):
                    results[index] = answer
        return results  # type: ignore[return-value]

    def _prepare(self, index: int, item: VLMItem) -> tuple[list[Any], str]:
        images, prompt = item
        pil_images = [_to_pil_rgb(image, index) for image in images]
        if len(pil_images) > 1 and not self.capabilities.multi_image:
            raise ModelError(
                f"item {index} has {len(pil_images)} images, but '{self.name or self.model_id}' "
                "takes one image per prompt; give one image per item"
            )
        return pil_images, str(prompt)

    def _generate_batch(
        self,
        batch: list[tuple[list[Any], str]],
        max_new_tokens: int,
        temperature: float,
        system: str | None,
    ) -> list[Generation]:
        import torch

        started = time.perf_counter()
        texts = [self.render_prompt(prompt, len(images), system) for images, prompt in batch]
        images = [imgs for imgs, _ in batch]
        tokenizer = self.processor.tokenizer
        # A chat template that writes the BOS token itself must not get a second one.
        bos = tokenizer.bos_token
        inputs = self.processor(
            text=texts,
            images=images if any(images) else None,
            padding=True,
            return_tensors="pt",
            add_special_tokens=not (bos and texts[0].startswith(bos)),
        )
        inputs = inputs.to(self.model.device, self.model.dtype)
        with torch.inference_mode():
            output = self.model.generate(
                **inputs, **self._sampling(max_new_tokens, temperature, tokenizer.pad_token_id)
            )
        prompt_length = inputs["input_ids"].shape[1]
        new_tokens = output[:, prompt_length:].tolist()
        input_counts = inputs["attention_mask"].sum(dim=1).tolist()
        seconds = (time.perf_counter() - started) / len(batch)  # the batch's time, shared
        stops = self._stop_token_ids()
        answers = []
        for tokens, n_input in zip(new_tokens, input_counts):
            tokens = _until_stop(tokens, stops)
            text = tokenizer.decode(tokens, skip_special_tokens=True).strip()
            answers.append(
                Generation(
                    text=text,
                    input_tokens=int(n_input),
                    output_tokens=len(tokens),
                    seconds=seconds,
                )
            )
        return answers

    def _sampling(self, max_new_tokens: int, temperature: float, pad_id: int | None) -> dict:
        settings: dict[str, Any] = {"max_new_tokens": int(max_new_tokens), "pad_token_id": pad_id}
        if temperature > 0:
            settings.update(do_sample=True, temperature=float(temperature))
        else:
            # Greedy; the sampling settings a checkpoint ships (MedGemma: top_k, top_p) are unset.
            settings.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return settings

    def _stop_token_ids(self) -> set[int]:
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.processor.tokenizer.eos_token_id
        return set(eos if isinstance(eos, (list, tuple)) else [eos]) - {None}


def _until_stop(tokens: list[int], stops: set[int]) -> list[int]:
    """The generated tokens up to and including the first stop token (padding after it dropped)."""
    for position, token in enumerate(tokens):
        if token in stops:
            return tokens[: position + 1]
    return tokens


def _load_image_text_to_text(model_id: str, kwargs: dict) -> Any:
    """AutoModelForImageTextToText, or the class the checkpoint's config names when Auto has no entry."""
    import transformers

    try:
        return transformers.AutoModelForImageTextToText.from_pretrained(model_id, **kwargs)
    except ValueError as auto_error:
        config = transformers.AutoConfig.from_pretrained(
            model_id, trust_remote_code=kwargs["trust_remote_code"]
        )
        for architecture in getattr(config, "architectures", None) or []:
            model_class = getattr(transformers, architecture, None)
            if model_class is not None:
                return model_class.from_pretrained(model_id, **kwargs)
        raise auto_error


def _flag(value: Any, option: str) -> bool:
    """A boolean option given as a bool or as text (true/false, yes/no, 1/0)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0"):
        return False
    raise ModelError(f"{option} must be true or false, got {value!r}")


def _device_map(device: str) -> Any:
    import torch

    if device == "auto":
        return "auto" if torch.cuda.is_available() else None
    try:
        target = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ModelError(f"unknown device {device!r}; use {DEVICES_HELP}") from exc
    if target.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(
            f"device {device!r} asked for, but CUDA is not available; use device='cpu'"
        )
    return None if target.type == "cpu" else str(target)


def _torch_dtype(dtype: str) -> Any:
    import torch

    if dtype not in DTYPES:
        raise ModelError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}")
    return "auto" if dtype == "auto" else getattr(torch, dtype)


def _to_pil_rgb(image: ImageInput, index: int) -> Any:
    """An RGB PIL image from a PIL image or a uint8 array (H x W, H x W x 1, 3 or 4)."""
    from PIL import Image

    if isinstance(image, Image.Image):
        return image.convert("RGB")
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ModelError(
            f"item {index}: images must be uint8 arrays or PIL images, got dtype {array.dtype}; "
            "convert to 8-bit RGB first"
        )
    if array.ndim == 3 and array.shape[2] in (1, 3, 4):
        array = array[..., :3] if array.shape[2] != 1 else array[..., 0]
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ModelError(f"item {index}: expected an H x W x 3 RGB image, got shape {array.shape}")
    return Image.fromarray(np.ascontiguousarray(array), mode="RGB")


# -- registered models --------------------------------------------------------------------------

COMMON_OPTIONS = {
    "device": f"where the model runs: {DEVICES_HELP}",
    "dtype": "weights dtype: auto (the checkpoint's), float32, bfloat16 or float16",
    "batch_size": f"items generated together with left padding (default {DEFAULT_BATCH_SIZE})",
    "trust_remote_code": "run code shipped with the checkpoint (default false)",
}


def hf_model(model_id: str | None = None, **options: Any) -> TransformersVLM:
    """Any image-text-to-text checkpoint of the hub or a local directory, with its chat template."""
    return TransformersVLM(model_id, **options)


def medgemma(model_id: str = MEDGEMMA_ID, **options: Any) -> TransformersVLM:
    """MedGemma 4B instruction-tuned (Gemma 3): several images per prompt."""
    options.setdefault("multi_image", True)
    return TransformersVLM(model_id, model_class="Gemma3ForConditionalGeneration", **options)


def llava_med(model_id: str = LLAVA_MED_ID, **options: Any) -> TransformersVLM:
    """LLaVA-Med v1.5 (Mistral 7B) in transformers' LLaVA format: one image per prompt."""
    options.setdefault("multi_image", False)
    return TransformersVLM(
        model_id,
        model_class="LlavaForConditionalGeneration",
        native_prompt=llava_med_prompt,
        load_hint=(
            "LLaVA-Med's original checkpoints (model_type llava_mistral) must be converted to "
            "transformers' LLaVA format first; docs/llava_med.md shows how, or use "
            f"model_id={LLAVA_MED_ID!r}"
        ),
        **options,
    )


@hookimpl
def register_models(register):
    register(
        ModelSpec(
            name="hf",
            kind="vlm",
            factory=hf_model,
            description="any transformers image-text-to-text model: hf:<hub id or local path>",
            prefix=True,
            extra="models",
            options=dict(COMMON_OPTIONS),
        )
    )
    register(
        ModelSpec(
            name="medgemma",
            kind="vlm",
            prefix=True,
            factory=medgemma,
            description="MedGemma 4B-it (Gemma 3) through transformers; medgemma:<id or path> for another",
            default_id=MEDGEMMA_ID,
            extra="models",
            options=dict(COMMON_OPTIONS),
        ),
        aliases=["medgemma-4b-it"],
    )
    register(
        ModelSpec(
            name="medgemma-1.5",
            kind="vlm",
            factory=medgemma,
            description="MedGemma 1.5 4B-it (Gemma 3), through transformers",
            default_id=MEDGEMMA_15_ID,
            extra="models",
            options=dict(COMMON_OPTIONS),
        ),
        aliases=["medgemma-1.5-4b-it"],
    )
    register(
        ModelSpec(
            name="llava-med",
            kind="vlm",
            prefix=True,
            factory=llava_med,
            description="LLaVA-Med v1.5 Mistral-7B in transformers' LLaVA format; llava-med:<converted dir>",
            default_id=LLAVA_MED_ID,
            extra="models",
            options={
                **COMMON_OPTIONS,
                "prompt_format": "auto (the processor's chat template, else LLaVA-Med's "
                "mistral_instruct prompt), chat_template, or native (always LLaVA-Med's prompt)",
            },
        ),
        aliases=["llava-med-v1.5"],
    )
