"""Floor baselines: the scores a real model has to beat. No weights, numpy and OpenCV only, instant.

- ``baseline:box-otsu`` (segmenter): Otsu's threshold inside each box prompt.
- ``baseline:grounding`` (vlm): the box of the largest region that stands out from the rest.
- ``baseline:majority`` (vlm): the multiple-choice option whose text was most often correct.
- ``baseline:lesion-finder`` (vlm): multiple-choice answers from blobs found in the image, and
  ``baseline:findings-caption`` (vlm): captions stating those findings (``vqa_floor``).
- ``baseline:template-caption`` (vlm): a caption from the modality and coarse image statistics.

Each ignores what a real model would read (the question, the finding asked for); that is the point:
a model that does no better than these has not used the image, or the question, in a useful way.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..hookspecs import hookimpl
from ..image import LUMA
from ..modalities import first_named_modality, label
from .base import Capabilities, Generation, ModelError, ModelSpec, VLMItem
from .segmenters import image_array, rgb_values

# --------------------------------------------------------------------------- image helpers


def grey_image(image: Any) -> np.ndarray:
    """H x W float32 grey values in the image's own units (luma for RGB)."""
    return rgb_values(image_array(image)) @ LUMA


def unit_range(values: np.ndarray) -> np.ndarray:
    """Stretch to [0, 1] by the minimum and maximum (zeros when constant)."""
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(values.shape, np.float32)
    return ((values - low) / (high - low)).astype(np.float32)


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of a boolean mask (empty stays empty)."""
    import cv2

    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        mask.astype(np.uint8), connectivity=8
    )
    if count <= 1:
        return np.zeros(mask.shape, bool)
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == biggest


def otsu_threshold(values: np.ndarray) -> float:
    """Otsu's threshold of values in [0, 1] (through OpenCV's 8-bit implementation)."""
    import cv2

    eight_bit = np.rint(values * 255).astype(np.uint8)
    threshold, _ = cv2.threshold(eight_bit, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    return float(threshold) / 255.0


# --------------------------------------------------------------------------- box-otsu

MIN_LEVEL_GAP = 0.05  # box centre and border closer than this (of the box's range): no centre


def box_pixels(box: Sequence[float], height: int, width: int) -> tuple[int, int, int, int]:
    """Integer pixel edges (x1, y1, x2, y2) of a box, inside the image and at least 1 pixel wide."""
    x1 = int(np.clip(np.floor(box[0]), 0, width - 1))
    y1 = int(np.clip(np.floor(box[1]), 0, height - 1))
    x2 = int(np.clip(np.ceil(box[2]), x1 + 1, width))
    y2 = int(np.clip(np.ceil(box[3]), y1 + 1, height))
    return x1, y1, x2, y2


def otsu_in_box(grey: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """The object inside one box: Otsu's two classes, the one unlike the box border, largest
    component, holes filled. A box too small or too flat to split comes back filled."""
    import cv2
    from scipy import ndimage

    height, width = grey.shape
    x1, y1, x2, y2 = box_pixels(box, height, width)
    mask = np.zeros((height, width), bool)
    crop = grey[y1:y2, x1:x2]
    if min(crop.shape) < 3 or float(crop.max()) <= float(crop.min()):
        mask[y1:y2, x1:x2] = True
        return mask
    # A light blur keeps speckle and noise from fragmenting the object.
    values = unit_range(cv2.GaussianBlur(unit_range(crop), (0, 0), sigmaX=1.0))
    border = np.ones(values.shape, bool)
    border[1:-1, 1:-1] = False
    rows, cols = values.shape
    centre = values[rows // 4 : rows - rows // 4, cols // 4 : cols - cols // 4]
    border_level, centre_level = float(np.median(values[border])), float(np.median(centre))
    if abs(centre_level - border_level) > MIN_LEVEL_GAP:
        # A box drawn around an object has the object at its centre and mostly background on its
        # border. Clipping to the range between the two keeps a third tissue (bone beside a CT
        # lesion, a ventricle beside a tumour) from claiming one of Otsu's two classes.
        low, high = sorted((border_level, centre_level))
        values = unit_range(np.clip(values, low, high))
        is_bright = centre_level > border_level
    else:
        is_bright = None
    bright = values > otsu_threshold(values)
    if is_bright is None:  # no clear centre: the object is the class further from the border
        level = float(values[border].mean())
        bright_level = float(values[bright].mean()) if bright.any() else level
        dark_level = float(values[~bright].mean()) if (~bright).any() else level
        is_bright = abs(bright_level - level) >= abs(dark_level - level)
    region = largest_component(bright if is_bright else ~bright)
    mask[y1:y2, x1:x2] = ndimage.binary_fill_holes(region)
    return mask


class BoxOtsuSegmenter:
    """Promptable floor: Otsu's threshold inside each box, the class unlike the box border."""

    name = "baseline:box-otsu"

    def segment(
        self,
        image: np.ndarray,
        boxes: np.ndarray | None = None,
        points: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
    ) -> np.ndarray:
        """Boolean masks (N x H x W), one per box; points are not used (boxes are required)."""
        grey = grey_image(image)
        if boxes is None:
            raise ModelError(f"{self.name} needs box prompts (N x 4: x1, y1, x2, y2)")
        box_array = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if len(box_array) == 0:
            return np.zeros((0, *grey.shape), bool)
        return np.stack([otsu_in_box(grey, box) for box in box_array])


# --------------------------------------------------------------------------- VLM baselines


def first_image(images: Sequence[Any]) -> np.ndarray:
    if not images:
        raise ModelError("the baseline needs an image in each item")
    return image_array(images[0])


class _InstantVLM:
    """A vision-language baseline that answers each item by a rule, locally and at once."""

    name = "baseline"
    capabilities = Capabilities(multi_image=False, system_prompt=False, max_batch=256)

    def generate(
        self,
        items: Sequence[VLMItem],
        *,
        max_new_tokens: int = 512,
        temperature: float = 0.0,
        system: str | None = None,
    ) -> list[Generation]:
        """Answer each (images, prompt) item; ``max_new_tokens``, ``temperature`` and ``system``
        do not apply to a rule."""
        answers = []
        for images, prompt in items:
            start = time.perf_counter()
            text = self.answer(images, prompt)
            answers.append(Generation(text=text, seconds=time.perf_counter() - start))
        return answers

    def answer(self, images: Sequence[Any], prompt: str) -> str:
        raise NotImplementedError


# Grounding ------------------------------------------------------------------------------

GROUNDING_WORK_SIZE = 256  # the search runs on an image of at most this many pixels a side
SIDE_WORDS = {"left": re.compile(r"\bleft\b", re.I), "right": re.compile(r"\bright\b", re.I)}


def named_side(prompt: str) -> str | None:
    """'left' or 'right' when the prompt names exactly one side of the image."""
    sides = [side for side, pattern in SIDE_WORDS.items() if pattern.search(prompt)]
    return sides[0] if len(sides) == 1 else None


def salient_box(image: np.ndarray, side: str | None = None) -> tuple[int, int, int, int]:
    """The box (x1, y1, x2, y2 pixel edges) of the largest salient component of ``image``.

    Salient: the grey level differs from the image's median (its dominant background or tissue)
    by more than Otsu's threshold of that difference; specks are removed by a 3 x 3 opening. With
    ``side`` ("left" / "right") only that half of the image is searched. When nothing stands out,
    the answer is the whole image (or half).
    """
    import cv2

    grey = unit_range(grey_image(image))
    height, width = grey.shape
    scale = min(1.0, GROUNDING_WORK_SIZE / max(height, width))
    work_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(grey, work_size, interpolation=cv2.INTER_AREA)
    allowed = np.ones(small.shape, bool)
    half = small.shape[1] // 2
    if side == "left":
        allowed[:, half:] = False
    elif side == "right":
        allowed[:, :half] = False
    deviation = np.where(allowed, np.abs(small - np.median(small[allowed])), 0.0)
    deviation = unit_range(deviation)
    salient = (deviation > otsu_threshold(deviation)) & allowed
    salient = cv2.morphologyEx(salient.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    region = largest_component(salient.astype(bool))
    if not region.any():
        region = allowed
    ys, xs = np.nonzero(region)
    return (
        int(np.floor(xs.min() / scale)),
        int(np.floor(ys.min() / scale)),
        min(width, int(np.ceil((xs.max() + 1) / scale))),
        min(height, int(np.ceil((ys.max() + 1) / scale))),
    )


class GroundingBaseline(_InstantVLM):
    """Grounding floor: answers every question with the box of the most salient region."""

    name = "baseline:grounding"

    def answer(self, images: Sequence[Any], prompt: str) -> str:
        x1, y1, x2, y2 = salient_box(first_image(images), named_side(prompt))
        return f"[{x1}, {y1}, {x2}, {y2}]"


# Majority ---------------------------------------------------------------------------------

OPTION_LINE = re.compile(r"^\s*\(?([A-Z])[.):]\s+(\S.*?)\s*$", re.M)


def parse_options(prompt: str) -> dict[str, str]:
    """The "A. text" option lines of a prompt, as a consecutive run A, B, C... in order."""
    options: dict[str, str] = {}
    for letter, text in OPTION_LINE.findall(prompt):
        expected = chr(ord("A") + len(options))
        if letter == expected:
            options[letter] = text
        elif letter == "A":  # a new run of options starts: keep the later one
            options = {"A": text}
    return options


def answer_key(text: str) -> str:
    """Option texts compare case- and space-insensitively."""
    return " ".join(text.casefold().split())


class MajorityBaseline(_InstantVLM):
    """Multiple-choice floor: the option whose text was most often the correct answer in ``fit``.

    Ties, unseen texts and an unfitted baseline fall back to the first option ("A" when the prompt
    lists none).
    """

    name = "baseline:majority"

    def __init__(self) -> None:
        self.correct_counts: Counter[str] = Counter()

    def fit(self, samples: Iterable[Any]) -> MajorityBaseline:
        """Count the correct answer texts of multiple-choice samples (``.options``, ``.answer``)."""
        for sample in samples:
            options = getattr(sample, "options", None) or {}
            answer = getattr(sample, "answer", None)
            if answer in options:
                self.correct_counts[answer_key(options[answer])] += 1
        return self

    def answer(self, images: Sequence[Any], prompt: str) -> str:
        options = parse_options(prompt)
        if not options:
            return "A"
        # max() keeps the first of equal counts, i.e. the earliest option.
        return max(options, key=lambda letter: self.correct_counts[answer_key(options[letter])])


# Template caption -------------------------------------------------------------------------

DARK_BELOW, BRIGHT_ABOVE = 0.35, 0.65  # mean grey level on [0, 1]
LOW_CONTRAST_BELOW, HIGH_CONTRAST_ABOVE = 0.12, 0.25  # grey standard deviation on [0, 1]
STATISTICS_SIZE = 256  # pixels a side sampled for the statistics
COLOUR_SPREAD = 8 / 255  # mean channel difference above which an RGB image counts as colour


def named_modality(prompt: str) -> str | None:
    """The modality key that the prompt names first, or None."""
    return first_named_modality(prompt)


def describe_image(image: np.ndarray) -> tuple[str, str, str]:
    """(colour, tone, contrast) words from coarse statistics of the image."""
    step = max(1, max(image.shape[:2]) // STATISTICS_SIZE)  # coarse statistics need few pixels
    rgb = rgb_values(image[::step, ::step])
    rgb = rgb / 255.0 if image.dtype == np.uint8 else unit_range(rgb)
    spread = float(np.abs(rgb - rgb.mean(axis=2, keepdims=True)).mean())
    grey = rgb @ LUMA
    mean, std = float(grey.mean()), float(grey.std())
    colour = "colour" if spread > COLOUR_SPREAD else "greyscale"
    tone = (
        "mostly dark"
        if mean < DARK_BELOW
        else "mostly bright"
        if mean > BRIGHT_ABOVE
        else "mid-grey"
    )
    contrast = (
        "low" if std < LOW_CONTRAST_BELOW else "high" if std > HIGH_CONTRAST_ABOVE else "moderate"
    )
    return colour, tone, contrast


def template_caption(image: np.ndarray, modality: str | None) -> str:
    """E.g. "CT image in greyscale, mostly dark, with high contrast."."""
    colour, tone, contrast = describe_image(image)
    subject = label(modality) if modality else "medical"
    subject = subject[0].upper() + subject[1:]
    return f"{subject} image in {colour}, {tone}, with {contrast} contrast."


class TemplateCaptionBaseline(_InstantVLM):
    """Captioning floor: a fixed sentence from the modality named in the prompt and coarse image
    statistics; after ``fit``, the most frequent reference caption of that modality instead."""

    name = "baseline:template-caption"

    def __init__(self) -> None:
        self.frequent_captions: dict[str, str] = {}  # modality -> most frequent caption
        self.overall_caption: str | None = None

    def fit(self, samples: Iterable[Any]) -> TemplateCaptionBaseline:
        """Learn the most frequent caption (``.answer``) per modality (``.modality``) and overall."""
        per_modality: dict[str, Counter[str]] = {}
        overall: Counter[str] = Counter()
        for sample in samples:
            caption = getattr(sample, "answer", None)
            if not caption:
                continue
            per_modality.setdefault(getattr(sample, "modality", ""), Counter())[caption] += 1
            overall[caption] += 1
        self.frequent_captions = {m: c.most_common(1)[0][0] for m, c in per_modality.items()}
        self.overall_caption = overall.most_common(1)[0][0] if overall else None
        return self

    def answer(self, images: Sequence[Any], prompt: str) -> str:
        modality = named_modality(prompt)
        if modality in self.frequent_captions:
            return self.frequent_captions[modality]
        if modality is None and self.overall_caption:
            return self.overall_caption
        return template_caption(first_image(images), modality)


@hookimpl
def register_models(register):
    register(
        ModelSpec(
            name="baseline:box-otsu",
            kind="segmenter",
            factory=BoxOtsuSegmenter,
            description="Floor: Otsu's threshold inside each box, the class unlike the box "
            "border, largest component",
        )
    )
    register(
        ModelSpec(
            name="baseline:grounding",
            kind="vlm",
            factory=GroundingBaseline,
            description="Floor: the box of the largest region that stands out from the image's "
            "median grey level (kept to the side the prompt names)",
        )
    )
    register(
        ModelSpec(
            name="baseline:majority",
            kind="vlm",
            factory=MajorityBaseline,
            description="Floor: the option whose text was most often correct in fit(samples); "
            "else the first option",
        )
    )
    register(
        ModelSpec(
            name="baseline:template-caption",
            kind="vlm",
            factory=TemplateCaptionBaseline,
            description="Floor: a caption from the modality named in the prompt and image "
            "brightness, contrast and colour; after fit(samples), the most frequent caption",
        )
    )
