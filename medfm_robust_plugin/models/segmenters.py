"""Promptable segmenters: SAM, MedSAM and SAM-Med2D, each fed exactly as its authors feed it.

All three are transformers ``SamModel`` networks; they differ in what the image encoder sees and how
the mask comes back:

=========== ============================ ================================= ==========================
model        image into the encoder       prompts                           mask out
=========== ============================ ================================= ==========================
sam          SamProcessor: longest side   scaled by the processor           post_process_masks
             to 1024, ImageNet mean/std,                                     (unpad, bilinear, > 0)
             zero padding
medsam       bicubic resize to 1024 x     x * 1024 / W, y * 1024 / H        sigmoid, bilinear to
             1024 (aspect not kept),                                         H x W, > 0.5
             min-max to [0, 1], no
             mean/std
sam-med2d    SAM mean/std on 0-255, then  x * 256 / W, y * 256 / H          bilinear to 256, bilinear
             nearest resize to 256 x 256                                     to H x W, sigmoid > 0.5
=========== ============================ ================================= ==========================

Every segmenter computes the image embedding once per image and keeps the last one (keyed by a
hash of the pixels), so all the boxes of an image, and later calls on the same image, reuse it.

Inputs may be of any dtype and channel count: SAM and SAM-Med2D expect 8-bit photographs, so other
dtypes (12-bit X-ray in uint16, CT in HU, float MR) are stretched to 0-255 by their own minimum and
maximum; MedSAM min-max normalises after resizing anyway, so it reads the raw values. Gray images
are repeated to three channels and an alpha channel is dropped.

torch and transformers are imported when a segmenter is built, never when this module is imported.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..hookspecs import hookimpl
from .base import ModelError, ModelSpec

SAM_DEFAULT_ID = "facebook/sam-vit-base"
# The transformers port of MedSAM's ViT-B weights (Ma et al. 2024, "Segment anything in medical
# images", Nature Communications); the original medsam_vit_b.pth loads as well.
MEDSAM_DEFAULT_ID = "flaviagiammarino/medsam-vit-base"
SAM_MED2D_CHECKPOINT = "sam-med2d_b.pth"

# SAM's pixel statistics (ImageNet) on the 0-255 scale, used by SAM-Med2D's own predictor.
SAM_PIXEL_MEAN = np.array([123.675, 116.28, 103.53], np.float32)
SAM_PIXEL_STD = np.array([58.395, 57.12, 57.375], np.float32)
MEDSAM_MIN_RANGE = 1e-8  # MedSAM's guard against a constant image in its min-max step
DICE_SMOOTH = 1e-5  # MONAI's DiceLoss smoothing, as MedSAM uses it


# --------------------------------------------------------------------------- images


def image_array(image: Any) -> np.ndarray:
    """The image as a checked numpy array (H x W or H x W x C, C in 1, 3, 4)."""
    from ..image import as_array, check_array

    array, _ = as_array(image, "segmenter input")
    check_array(array, "segmenter input")
    return array


def rgb_values(image: np.ndarray) -> np.ndarray:
    """H x W x 3 float32 in the image's own values: gray repeated, alpha dropped."""
    array = image if image.ndim == 3 else image[..., None]
    array = array[..., :3].astype(np.float32)
    return np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array


def rgb_uint8(image: np.ndarray) -> np.ndarray:
    """H x W x 3 uint8: uint8 images as they are, any other dtype stretched by its min and max."""
    rgb = rgb_values(image)
    if image.dtype == np.uint8:
        return rgb.astype(np.uint8)
    low, high = float(rgb.min()), float(rgb.max())
    if high <= low:
        return np.zeros(rgb.shape, np.uint8)
    return np.rint((rgb - low) * (255.0 / (high - low))).astype(np.uint8)


def image_key(image: np.ndarray) -> str:
    """A hash of the pixels, shape and dtype: the key of the cached image embedding."""
    digest = hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=16)
    digest.update(f"{image.dtype}|{image.shape}".encode())
    return digest.hexdigest()


def resize_to_square(rgb: np.ndarray, size: int, interpolation: str = "cubic") -> np.ndarray:
    """Resize to size x size without keeping the aspect ratio.

    ``cubic``: bicubic when enlarging, pixel-area averaging when shrinking (MedSAM resizes with an
    anti-aliased cubic filter, which smooths before it subsamples). ``nearest``: nearest neighbour.
    """
    import cv2

    height, width = rgb.shape[:2]
    if interpolation == "nearest":
        flag = cv2.INTER_NEAREST
    elif size >= max(height, width):
        flag = cv2.INTER_CUBIC
    else:
        flag = cv2.INTER_AREA if size <= min(height, width) else cv2.INTER_CUBIC
    return cv2.resize(rgb, (size, size), interpolation=flag)


def medsam_pixels(image: np.ndarray, size: int) -> np.ndarray:
    """MedSAM's encoder input (size x size x 3 float32): resized, then min-max to [0, 1]."""
    resized = resize_to_square(rgb_values(image), size)
    low, high = float(resized.min()), float(resized.max())
    return (resized - low) / np.float32(max(high - low, MEDSAM_MIN_RANGE))


def sam_med2d_pixels(image: np.ndarray, size: int) -> np.ndarray:
    """SAM-Med2D's encoder input (size x size x 3 float32): SAM mean/std on 0-255, nearest resize."""
    normalised = (rgb_uint8(image).astype(np.float32) - SAM_PIXEL_MEAN) / SAM_PIXEL_STD
    return resize_to_square(normalised, size, interpolation="nearest")


# --------------------------------------------------------------------------- prompts


@dataclass(frozen=True)
class Prompts:
    """Checked prompts for one image: N boxes and/or N point sets."""

    boxes: np.ndarray | None  # N x 4 (x1, y1, x2, y2) pixels
    points: np.ndarray | None  # N x P x 2 (x, y) pixels
    labels: np.ndarray | None  # N x P, 1 foreground / 0 background

    @property
    def count(self) -> int:
        return len(self.boxes) if self.boxes is not None else len(self.points)


def read_prompts(boxes: Any = None, points: Any = None, point_labels: Any = None) -> Prompts:
    """Check and shape the prompts of ``segment``; raise ModelError saying what is wrong."""
    if boxes is None and points is None:
        raise ModelError("segment needs boxes (N x 4: x1, y1, x2, y2) or points (N x P x 2)")
    box_array = point_array = label_array = None
    if boxes is not None:
        box_array = np.asarray(boxes, dtype=np.float64)
        if box_array.ndim == 1 and box_array.size == 4:
            box_array = box_array[None]
        if box_array.ndim != 2 or box_array.shape[1] != 4:
            raise ModelError(f"boxes must be N x 4 (x1, y1, x2, y2), got shape {box_array.shape}")
        if not np.isfinite(box_array).all():
            raise ModelError("boxes contain NaN or infinite coordinates")
        if (box_array[:, 2] < box_array[:, 0]).any() or (box_array[:, 3] < box_array[:, 1]).any():
            raise ModelError("boxes must have x2 >= x1 and y2 >= y1 (corner order x1, y1, x2, y2)")
    if points is not None:
        point_array = np.asarray(points, dtype=np.float64)
        if point_array.ndim == 2:
            point_array = point_array[None]
        if point_array.ndim != 3 or point_array.shape[2] != 2 or point_array.shape[1] == 0:
            raise ModelError(f"points must be N x P x 2 (x, y), got shape {point_array.shape}")
        if point_labels is None:
            label_array = np.ones(point_array.shape[:2], np.int64)
        else:
            label_array = np.asarray(point_labels, dtype=np.int64).reshape(-1, point_array.shape[1])
            if label_array.shape != point_array.shape[:2]:
                raise ModelError(
                    f"point_labels must be N x P like the points {point_array.shape[:2]}, "
                    f"got {np.shape(point_labels)}"
                )
    elif point_labels is not None:
        raise ModelError("point_labels were given without points")
    if box_array is not None and point_array is not None and len(box_array) != len(point_array):
        raise ModelError(
            f"{len(box_array)} boxes and {len(point_array)} point sets: give one point set per box"
        )
    return Prompts(box_array, point_array, label_array)


# --------------------------------------------------------------------------- segmenters


@dataclass
class ModelFrame:
    """One image's prompts in the model's input frame, and how to bring masks back."""

    pixel_values: Callable[[], Any]  # encoder input (1 x 3 x S x S), built only on a cache miss
    boxes: Any  # 1 x N x 4 tensor or None
    points: Any  # 1 x N x P x 2 tensor or None
    labels: Any  # 1 x N x P tensor or None
    to_masks: Callable[[Any], Any]  # N x h x w low-res logits -> N x H x W bool tensor


class SamFamilySegmenter:
    """What SAM, MedSAM and SAM-Med2D share: a cached image embedding, prompts decoded together."""

    default_multimask = False

    def __init__(
        self,
        model: Any,
        *,
        name: str,
        device: str | None = None,
        multimask_output: bool | None = None,
    ):
        import torch

        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).float().eval()
        self.name = name
        self.multimask_output = multimask_output
        self.image_size = int(model.config.vision_config.image_size)
        # a fine-tuned model's training and validation samples: never to be evaluated on
        self.finetuned_sample_ids = getattr(model, "finetuned_sample_ids", frozenset())
        self._cached_key: str | None = None
        self._cached_embedding: Any = None

    def segment(
        self,
        image: np.ndarray,
        boxes: np.ndarray | None = None,
        points: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
    ) -> np.ndarray:
        """Boolean masks (N x H x W) at the input's size, one per box (or per point set)."""
        import torch

        array = image_array(image)
        prompts = read_prompts(boxes, points, point_labels)
        height, width = array.shape[:2]
        if prompts.count == 0:
            return np.zeros((0, height, width), bool)
        with torch.inference_mode():
            frame = self.model_frame(array, prompts)
            outputs = self.model(
                image_embeddings=self.image_embedding(array, frame.pixel_values),
                input_boxes=frame.boxes,
                input_points=frame.points,
                input_labels=frame.labels,
                multimask_output=self.multimask(prompts),
            )
            logits = best_mask_logits(outputs.pred_masks[0], outputs.iou_scores[0])
            masks = frame.to_masks(logits)
        return masks.cpu().numpy().astype(bool)

    def image_embedding(self, image: np.ndarray, pixel_values: Callable[[], Any]) -> Any:
        """The encoder's embedding of ``image``: computed once, then reused while it stays current."""
        import torch

        key = image_key(image)
        if key != self._cached_key:
            self._cached_embedding = self.model.get_image_embeddings(
                pixel_values().to(self.device, torch.float32)
            )
            self._cached_key = key
        return self._cached_embedding

    def multimask(self, prompts: Prompts) -> bool:
        return self.default_multimask if self.multimask_output is None else self.multimask_output

    def model_frame(self, image: np.ndarray, prompts: Prompts) -> ModelFrame:
        raise NotImplementedError

    def pixels_from_rgb(self, rgb: Any) -> Any:
        """The encoder input (1 x 3 x S x S) of an H x W x 3 float tensor of 0-255 values, built
        with differentiable torch operations that follow ``model_frame``'s preprocessing (resizes
        by torch's interpolation, which approximates the family's own resize)."""
        raise NotImplementedError

    def logits_at(self, logits: Any, height: int, width: int) -> Any:
        """Low-resolution logits (h x w) -> H x W logits, as this family brings its masks back
        (differentiable: the training loss and the attacks read them)."""
        raise NotImplementedError

    def attack_objective(self, image: np.ndarray, sample: Any, prompt: str | None = None) -> Any:
        """What a white-box attack raises for ``sample`` (``attacks.Objective``): the training
        loss (Dice + BCE against the ground-truth mask) of the mask predicted from the sample's
        box, which stays fixed, as a function of the 8-bit RGB pixels this segmenter reads; the
        encoder input is built by the differentiable ``pixels_from_rgb``."""
        import torch

        from ..attacks import AttackError, Objective

        rgb = rgb_uint8(image_array(image))
        mask = sample.load_mask()
        name = f"{sample.dataset}/{sample.id}"
        if mask is None or sample.box is None:
            raise AttackError(
                f"{name}: attacking a segmenter needs the sample's ground-truth mask and box prompt"
            )
        if mask.shape[:2] != rgb.shape[:2]:
            raise AttackError(f"{name}: mask {mask.shape[:2]} and image {rgb.shape[:2]} differ")
        height, width = rgb.shape[:2]
        prompts = read_prompts(boxes=np.asarray([sample.box], dtype=np.float64))
        boxes, _, _ = self.scaled_prompts(prompts, height, width)
        multimask = self.multimask(prompts)
        target = torch.as_tensor(np.asarray(mask) > 0, dtype=torch.float32, device=self.device)

        def loss(pixels: Any) -> Any:
            pixel_values = self.pixels_from_rgb(pixels.to(self.device, torch.float32))
            outputs = self.model(
                pixel_values=pixel_values, input_boxes=boxes, multimask_output=multimask
            )
            logits = best_mask_logits(outputs.pred_masks[:, 0], outputs.iou_scores[:, 0]).float()
            return dice_bce_loss(self.logits_at(logits[0], height, width), target)

        return Objective(torch.as_tensor(rgb, dtype=torch.float32, device=self.device), loss)

    def scaled_prompts(self, prompts: Prompts, height: int, width: int) -> tuple[Any, Any, Any]:
        """Prompts stretched from H x W pixels to the S x S model input (x * S / W, y * S / H)."""
        import torch

        scale = np.array([self.image_size / width, self.image_size / height])

        def tensor(values: np.ndarray | None, dtype: Any) -> Any:
            return (
                None
                if values is None
                else torch.as_tensor(values[None], dtype=dtype, device=self.device)
            )

        boxes = None if prompts.boxes is None else prompts.boxes * np.tile(scale, 2)
        points = None if prompts.points is None else prompts.points * scale
        return (
            tensor(boxes, torch.float32),
            tensor(points, torch.float32),
            tensor(prompts.labels, torch.int64),
        )


def dice_bce_loss(logits: Any, target: Any) -> Any:
    """MedSAM's loss: squared Dice on sigmoid probabilities + binary cross-entropy on logits."""
    import torch
    import torch.nn.functional as F

    probability = torch.sigmoid(logits)
    overlap = (probability * target).sum()
    denominator = (probability**2).sum() + (target**2).sum()
    dice = 1 - (2 * overlap + DICE_SMOOTH) / (denominator + DICE_SMOOTH)
    return dice + F.binary_cross_entropy_with_logits(logits, target)


def _upsampled(grid: Any, size: tuple[int, int]) -> Any:
    import torch.nn.functional as F

    return F.interpolate(grid, size, mode="bilinear", align_corners=False)


def best_mask_logits(pred_masks: Any, iou_scores: Any) -> Any:
    """N x k x h x w logits -> N x h x w: the mask with the highest predicted IoU per prompt."""
    import torch

    best = iou_scores.argmax(dim=1)
    return pred_masks[torch.arange(pred_masks.shape[0], device=pred_masks.device), best]


class SamSegmenter(SamFamilySegmenter):
    """Segment Anything through transformers' SamModel and SamProcessor (the processor's own
    resize, normalisation, prompt scaling and mask post-processing)."""

    def __init__(self, model: Any, processor: Any, **kwargs: Any):
        super().__init__(model, **kwargs)
        self.processor = processor

    def multimask(self, prompts: Prompts) -> bool:
        # SAM's advice: one mask for a box; three candidates (best predicted IoU kept) for points,
        # which are ambiguous.
        if self.multimask_output is not None:
            return self.multimask_output
        return prompts.boxes is None

    def model_frame(self, image: np.ndarray, prompts: Prompts) -> ModelFrame:
        import torch

        prompt_args: dict[str, Any] = {}
        if prompts.boxes is not None:
            prompt_args["input_boxes"] = [prompts.boxes.tolist()]
        if prompts.points is not None:
            prompt_args["input_points"] = [prompts.points.tolist()]
            prompt_args["input_labels"] = [prompts.labels.tolist()]
        inputs = self.processor(images=rgb_uint8(image), return_tensors="pt", **prompt_args)

        def on_device(key: str, dtype: Any) -> Any:
            return inputs[key].to(self.device, dtype) if key in inputs else None

        def to_masks(logits: Any) -> Any:
            return self.processor.post_process_masks(
                [logits[:, None]], inputs["original_sizes"], inputs["reshaped_input_sizes"]
            )[0][:, 0]

        return ModelFrame(
            pixel_values=lambda: inputs["pixel_values"],
            boxes=on_device("input_boxes", torch.float32),
            points=on_device("input_points", torch.float32),
            labels=on_device("input_labels", torch.int64),
            to_masks=to_masks,
        )

    def logits_at(self, logits: Any, height: int, width: int) -> Any:
        # SamProcessor: longest side to S, zero padding; post_process_masks undoes both
        size = self.image_size
        scale = size / max(height, width)
        inner = (int(height * scale + 0.5), int(width * scale + 0.5))
        square = _upsampled(logits[None, None], (size, size))
        return _upsampled(square[..., : inner[0], : inner[1]], (height, width))[0, 0]

    def pixels_from_rgb(self, rgb: Any) -> Any:
        import torch
        import torch.nn.functional as F

        processor = self.processor.image_processor
        height, width = rgb.shape[:2]
        scale = self.image_size / max(height, width)
        inner = (int(height * scale + 0.5), int(width * scale + 0.5))
        grid = rgb.permute(2, 0, 1)[None]
        # PIL's bilinear resize filters over the source pixels it shrinks, as antialias does
        resized = F.interpolate(grid, inner, mode="bilinear", align_corners=False, antialias=True)
        mean = torch.as_tensor(processor.image_mean, dtype=rgb.dtype, device=rgb.device)
        std = torch.as_tensor(processor.image_std, dtype=rgb.dtype, device=rgb.device)
        factor = float(getattr(processor, "rescale_factor", 1 / 255))
        normalised = (resized * factor - mean[:, None, None]) / std[:, None, None]
        return F.pad(normalised, (0, self.image_size - inner[1], 0, self.image_size - inner[0]))


class MedSamSegmenter(SamFamilySegmenter):
    """MedSAM: SAM ViT-B fine-tuned on 1.5 M medical image-mask pairs, with MedSAM's preprocessing
    (MedSAM_Inference.py): no aspect-preserving resize and no mean/std normalisation."""

    default_multimask = False  # MedSAM was trained and is run with a single mask per box

    def model_frame(self, image: np.ndarray, prompts: Prompts) -> ModelFrame:
        import torch
        import torch.nn.functional as F

        height, width = image.shape[:2]
        boxes, points, labels = self.scaled_prompts(prompts, height, width)

        def pixel_values() -> Any:
            pixels = medsam_pixels(image, self.image_size)
            return torch.from_numpy(pixels).permute(2, 0, 1)[None]

        def to_masks(logits: Any) -> Any:
            probability = torch.sigmoid(logits[:, None])
            upsampled = F.interpolate(
                probability, (height, width), mode="bilinear", align_corners=False
            )
            return upsampled[:, 0] > 0.5

        return ModelFrame(pixel_values, boxes, points, labels, to_masks)

    def logits_at(self, logits: Any, height: int, width: int) -> Any:
        return _upsampled(logits[None, None], (height, width))[0, 0]

    def pixels_from_rgb(self, rgb: Any) -> Any:
        import torch.nn.functional as F

        height, width = rgb.shape[:2]
        size = self.image_size
        shrink = size < max(height, width)
        grid = rgb.permute(2, 0, 1)[None]
        resized = F.interpolate(
            grid, (size, size), mode="bicubic", align_corners=False, antialias=shrink
        )
        low, high = resized.min(), resized.max()
        return (resized - low) / (high - low).clamp_min(MEDSAM_MIN_RANGE)


class SamMed2DSegmenter(SamFamilySegmenter):
    """SAM-Med2D: SAM ViT-B with encoder adapters at 256 x 256, fed as its SammedPredictor does."""

    default_multimask = True  # SAM-Med2D's predictor and test script keep the best of three

    def model_frame(self, image: np.ndarray, prompts: Prompts) -> ModelFrame:
        import torch
        import torch.nn.functional as F

        height, width = image.shape[:2]
        size = self.image_size
        boxes, points, labels = self.scaled_prompts(prompts, height, width)

        def pixel_values() -> Any:
            return torch.from_numpy(sam_med2d_pixels(image, size)).permute(2, 0, 1)[None]

        def to_masks(logits: Any) -> Any:
            square = F.interpolate(
                logits[:, None], (size, size), mode="bilinear", align_corners=False
            )
            full = F.interpolate(square, (height, width), mode="bilinear", align_corners=False)
            return torch.sigmoid(full[:, 0]) > 0.5

        return ModelFrame(pixel_values, boxes, points, labels, to_masks)

    def logits_at(self, logits: Any, height: int, width: int) -> Any:
        square = _upsampled(logits[None, None], (self.image_size, self.image_size))
        return _upsampled(square, (height, width))[0, 0]

    def pixels_from_rgb(self, rgb: Any) -> Any:
        import torch
        import torch.nn.functional as F

        mean = torch.as_tensor(SAM_PIXEL_MEAN, device=rgb.device)
        std = torch.as_tensor(SAM_PIXEL_STD, device=rgb.device)
        normalised = ((rgb - mean) / std).permute(2, 0, 1)[None]
        return F.interpolate(normalised, (self.image_size, self.image_size), mode="nearest")


# --------------------------------------------------------------------------- loading


def _display_name(spec_name: str, model_id: str, default_id: str | None) -> str:
    return spec_name if model_id == default_id else f"{spec_name}:{model_id}"


def load_sam_model(model_id: str) -> Any:
    """A SamModel from a hub id or save_pretrained directory, or from an original-format .pth file
    (segment_anything keys; SAM-Med2D's adapters are recognised and built), or from the output
    directory of ``medfm-robust finetune`` (its base model with the tuned weights)."""
    if os.path.isfile(model_id):
        return _sam_model_from_checkpoint(model_id)
    from ..finetune.saved import is_finetuned_dir, load_finetuned

    if is_finetuned_dir(model_id):
        return load_finetuned(model_id, load_sam_model)
    from transformers import SamModel

    try:
        return SamModel.from_pretrained(model_id)
    except OSError as exc:
        raise ModelError(
            f"could not load SAM weights '{model_id}': {str(exc).splitlines()[0]}; pass a hub id "
            "(downloaded once, needs network), a directory written by save_pretrained, or an "
            "original .pth checkpoint"
        ) from exc


def _sam_model_from_checkpoint(path: str) -> Any:
    from transformers import SamModel

    from .sam_convert import (
        has_adapters,
        load_original_checkpoint,
        original_to_hf,
        sam_config_from_original,
    )

    state_dict = load_original_checkpoint(path)
    config = sam_config_from_original(state_dict)
    if has_adapters(state_dict):
        from .sam_med2d import build_sam_med2d

        model = build_sam_med2d(config)
    else:
        model = SamModel(config)
    try:
        model.load_state_dict(original_to_hf(state_dict), strict=True)
    except RuntimeError as exc:
        raise ModelError(f"checkpoint '{path}' does not fit the SAM architecture: {exc}") from exc
    return model


def _sam_processor(model_id: str, image_size: int) -> Any:
    """The processor saved with the model, or SAM's default one sized to the model's input."""
    import importlib.util

    import transformers

    try:
        return transformers.SamProcessor.from_pretrained(model_id)
    except (OSError, ValueError):  # weights without a preprocessor_config.json
        mask_size = image_size // 4
        # The default image processor needs torchvision; the PIL one computes the same.
        has_torchvision = importlib.util.find_spec("torchvision") is not None
        processor_class = (
            transformers.SamImageProcessor if has_torchvision else transformers.SamImageProcessorPil
        )
        image_processor = processor_class(
            size={"longest_edge": image_size},
            pad_size={"height": image_size, "width": image_size},
            mask_size={"longest_edge": mask_size},
            mask_pad_size={"height": mask_size, "width": mask_size},
        )
        return transformers.SamProcessor(image_processor=image_processor)


def build_sam(
    model_id: str = SAM_DEFAULT_ID,
    *,
    device: str | None = None,
    multimask_output: bool | None = None,
) -> SamSegmenter:
    """SAM (Kirillov et al. 2023) from a hub id or a local directory."""
    model = load_sam_model(model_id)
    processor = _sam_processor(model_id, int(model.config.vision_config.image_size))
    return SamSegmenter(
        model,
        processor,
        name=_display_name("sam", model_id, SAM_DEFAULT_ID),
        device=device,
        multimask_output=multimask_output,
    )


def build_medsam(
    model_id: str = MEDSAM_DEFAULT_ID,
    *,
    device: str | None = None,
    multimask_output: bool | None = None,
) -> MedSamSegmenter:
    """MedSAM from the transformers port, a local directory, or the original medsam_vit_b.pth."""
    return MedSamSegmenter(
        load_sam_model(model_id),
        name=_display_name("medsam", model_id, MEDSAM_DEFAULT_ID),
        device=device,
        multimask_output=multimask_output,
    )


def build_sam_med2d(
    model_id: str | None = None,
    *,
    device: str | None = None,
    multimask_output: bool | None = None,
) -> SamMed2DSegmenter:
    """SAM-Med2D from its released checkpoint (sam-med2d_b.pth, {"model": state_dict})."""
    if model_id is None:
        raise ModelError(
            f"sam-med2d needs its checkpoint: load 'sam-med2d:/path/to/{SAM_MED2D_CHECKPOINT}' "
            "(the file is linked from github.com/OpenGVLab/SAM-Med2D)"
        )
    from ..finetune.saved import is_finetuned_dir

    if not (os.path.isfile(model_id) or is_finetuned_dir(model_id)):
        raise ModelError(
            f"sam-med2d: '{model_id}' is not a file; give the path of {SAM_MED2D_CHECKPOINT} "
            "(or the output directory of `medfm-robust finetune --model sam-med2d:...`)"
        )
    return SamMed2DSegmenter(
        load_sam_model(model_id),
        name=f"sam-med2d:{model_id}",
        device=device,
        multimask_output=multimask_output,
    )


OPTIONS = {
    "device": "torch device (default: cuda when available, else cpu)",
    "multimask_output": "predict three masks per prompt and keep the best predicted IoU "
    "(default: per model, see docs/segmenters.md)",
}


@hookimpl
def register_models(register):
    register(
        ModelSpec(
            name="sam",
            kind="segmenter",
            factory=build_sam,
            description="Segment Anything (ViT-B by default; any SAM hub id or local directory), "
            "through transformers' SamModel and SamProcessor",
            prefix=True,
            default_id=SAM_DEFAULT_ID,
            extra="models",
            options=dict(OPTIONS),
        )
    )
    register(
        ModelSpec(
            name="medsam",
            kind="segmenter",
            factory=build_medsam,
            description="MedSAM (SAM ViT-B fine-tuned on medical images) with its own "
            "preprocessing; hub id, local directory or the original medsam_vit_b.pth",
            prefix=True,
            default_id=MEDSAM_DEFAULT_ID,
            extra="models",
            options=dict(OPTIONS),
        )
    )
    register(
        ModelSpec(
            name="sam-med2d",
            kind="segmenter",
            factory=build_sam_med2d,
            description="SAM-Med2D (SAM ViT-B with encoder adapters, 256 x 256 input); "
            f"model id: the path of {SAM_MED2D_CHECKPOINT}",
            prefix=True,
            extra="models",
            options=dict(OPTIONS),
        )
    )
