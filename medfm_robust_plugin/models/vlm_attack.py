"""The attack objective of a transformers VLM: the teacher-forced log-likelihood of the reference.

A VLM is attacked in its encoder's input frame: the presented image resized by the model's own
processor (``S x S``, 0-255), which is then what the model is given (its processor's resize is the
identity at that size, checked once per model). The processor's remaining steps, rescaling and
normalisation, are affine and run here in torch, so the gradient reaches the pixels exactly. The
loss is the negative log-likelihood of the sample's reference answer (the option letter, caption,
report, or the box as ``[x1, y1, x2, y2]``) after the prompt, teacher-forced: raising it makes the
right answer less likely.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..attacks import AttackError, Objective


def reference_answer(sample: Any) -> str:
    """What the model should answer for ``sample``; the attack lowers its likelihood."""
    if sample.answer:
        return str(sample.answer)
    if sample.box is not None:
        return "[" + ", ".join(str(int(round(v))) for v in sample.box) + "]"
    raise AttackError(
        f"{sample.dataset}/{sample.id}: no reference answer to attack (the sample has neither an "
        "answer nor a box)"
    )


def _affine(image_processor: Any) -> tuple[float, np.ndarray, np.ndarray]:
    """(rescale factor, mean, std) of the processor's pixel steps after its resize."""
    factor = float(getattr(image_processor, "rescale_factor", 1 / 255))
    if getattr(image_processor, "do_rescale", True) is False:
        factor = 1.0
    mean = np.zeros(3, np.float32)
    std = np.ones(3, np.float32)
    if getattr(image_processor, "do_normalize", True):
        mean = np.asarray(getattr(image_processor, "image_mean", mean), np.float32).reshape(-1)
        std = np.asarray(getattr(image_processor, "image_std", std), np.float32).reshape(-1)
    return factor, np.broadcast_to(mean, (3,)).copy(), np.broadcast_to(std, (3,)).copy()


def vlm_objective(vlm: Any, image: np.ndarray, sample: Any, prompt: str | None) -> Objective:
    """The attack objective of ``sample`` for a ``TransformersVLM`` (see the module doc)."""
    import torch

    if prompt is None:
        raise AttackError(f"{sample.dataset}/{sample.id}: attacking a VLM needs its prompt")
    processor = vlm.processor
    image_processor = getattr(processor, "image_processor", None)
    if image_processor is None:
        raise AttackError(f"model '{vlm.name}': its processor has no image processor to attack")
    text = vlm.render_prompt(prompt, 1)
    answer = reference_answer(sample)
    tokenizer = processor.tokenizer
    bos = tokenizer.bos_token
    special = not (bos and text.startswith(bos))

    def encode(content: str, picture: Any) -> Any:
        return processor(
            text=[content], images=[[picture]], return_tensors="pt", add_special_tokens=special
        )

    ((pil,), _) = vlm._prepare(0, ([image], prompt))  # the RGB image the model's processor reads
    full = encode(text + answer, pil)
    prompt_length = encode(text, pil)["input_ids"].shape[1]
    pixel_values = full["pixel_values"].float()
    if pixel_values.ndim != 4 or pixel_values.shape[0] != 1 or pixel_values.shape[1] != 3:
        raise AttackError(
            f"model '{vlm.name}': its processor gives pixel values of shape "
            f"{tuple(pixel_values.shape)} (tiles or crops); attacks need one 3 x S x S image"
        )
    factor, mean, std = _affine(image_processor)
    mean_t = torch.as_tensor(mean)[:, None, None]
    std_t = torch.as_tensor(std)[:, None, None]
    # the processor's own resized image, back in 0-255: the frame the attack perturbs
    resized = ((pixel_values[0] * std_t + mean_t) / factor).permute(1, 2, 0)
    start = torch.clamp(torch.round(resized), 0, 255)
    _check_identity_at_size(vlm, encode, text, start, factor, mean_t, std_t)
    device = vlm.model.device
    dtype = vlm.model.dtype
    inputs = {k: v.to(device) for k, v in full.items() if k != "pixel_values"}
    ids = inputs["input_ids"]
    targets = ids[:, 1:].clone()
    targets[:, : max(prompt_length - 1, 0)] = -100  # the answer's tokens only
    if not (targets != -100).any():
        raise AttackError(f"{sample.dataset}/{sample.id}: the reference answer has no tokens")
    scale = (1.0 / (std_t * 1.0)).to(device)
    shift = (mean_t / std_t).to(device)

    def loss(pixels: Any) -> Any:
        values = pixels.to(device, torch.float32).permute(2, 0, 1)[None] * factor
        model_pixels = (values * scale - shift).to(dtype)
        logits = vlm.model(**inputs, pixel_values=model_pixels).logits[:, :-1].float()
        return torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100
        )

    return Objective(start.to(device), loss)


def _check_identity_at_size(
    vlm: Any, encode: Any, text: str, start: Any, factor: float, mean: Any, std: Any
) -> None:
    """The model must read an image of its own input size as it is (else what is attacked is
    not what it sees); checked once per model."""
    import torch
    from PIL import Image

    if getattr(vlm, "_attack_frame_checked", False):
        return
    array = start.to(torch.uint8).numpy()
    again = encode(text, Image.fromarray(array, mode="RGB"))["pixel_values"].float()[0]
    expected = (torch.as_tensor(array, dtype=torch.float32).permute(2, 0, 1) * factor - mean) / std
    if again.shape != expected.shape or float((again - expected).abs().max()) > 0.02 * float(
        (1.0 / std).max()
    ):
        raise AttackError(
            f"model '{vlm.name}': its processor changes an image of its own input size "
            f"{tuple(expected.shape[1:])}, so an attack could not know what the model sees"
        )
    vlm._attack_frame_checked = True
