"""Visual grounding: the box a model names, read from free text, and its IoU with the true box.

``extract_box`` reads the forms models emit, in this order (the first found wins):

1. Qwen2-VL tags ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>``: always 0-1000 of width and height.
2. ``<box>...</box>`` tags holding four numbers: ``(x1,y1),(x2,y2)``, ``x1 y1 x2 y2`` or
   ``[x1, y1, x2, y2]``.
3. JSON objects: ``{"bbox": [...]}`` (also ``bbox_2d``, ``box``, ``bounding_box``, ``coordinates``),
   ``{"x1":.., "y1":.., "x2":.., "y2":..}`` (also ``xmin``/``ymin``/``xmax``/``ymax`` and
   ``left``/``top``/``right``/``bottom``) or ``{"x":.., "y":.., "width":.., "height":..}``.
4. A bracketed list of four numbers, ``[x1, y1, x2, y2]`` or ``(x1, y1, x2, y2)``.
5. Two points, ``(x1, y1), (x2, y2)`` or ``(x1, y1) to (x2, y2)``.
6. Otherwise, an answer holding exactly four numbers ("x1=10, y1=20, x2=30, y2=40").

Outside the Qwen tags the scale is decided from the numbers and the image size (W, H): all four
within [0, 1] -> fractions of W and H; else, when an x exceeds W or a y exceeds H, all are at most
1000 and the image is smaller than 1000 on that side -> per-mille of W and H (the 0-1000 grid of
Qwen, InternVL and CogVLM); else pixels. A per-mille box that happens to fit inside a large image
is read as pixels: the task prompt asks for pixels, so that is the reading that honours it.
Corners are put in order (x1 < x2, y1 < y2) and clipped to the image. An answer with no box
scores IoU 0.

The image size is ``sample.meta["image_size"]`` (W, H) when the loader gives it, else the clean
image's shape (corruptions keep the size, so it is the size the model saw).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..hookspecs import hookimpl
from .base import Metric, MetricError
from .vqa import answer_text

Box = tuple[float, float, float, float]
Size = tuple[int, int]  # width, height

PER_MILLE = 1000.0
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_SEP = r"\s*[,;\s]\s*"
_FOUR = rf"({_NUMBER}){_SEP}({_NUMBER}){_SEP}({_NUMBER}){_SEP}({_NUMBER})"
_POINT = rf"\(\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\)"
_QWEN_BOX = re.compile(rf"<\|box_start\|>\s*{_POINT}\s*,?\s*{_POINT}\s*<\|box_end\|>")
_BOX_TAG = re.compile(r"<box>(.*?)</box>", re.S | re.I)
_LIST = re.compile(rf"[\[(]\s*{_FOUR}\s*[\])]")
_TWO_POINTS = re.compile(rf"{_POINT}\s*(?:,|-|to|and)?\s*{_POINT}", re.I)
_ANY_NUMBER = re.compile(rf"(?<![\w.]){_NUMBER}")  # not the 1 of "x1"
_JSON_OBJECT = re.compile(r"\{[^{}]*\}")
_LIST_KEYS = ("bbox", "bbox_2d", "box", "bounding_box", "boundingbox", "coordinates", "bbox_xyxy")
_CORNER_KEYS = (
    ("x1", "y1", "x2", "y2"),
    ("xmin", "ymin", "xmax", "ymax"),
    ("x_min", "y_min", "x_max", "y_max"),
    ("left", "top", "right", "bottom"),
)


def _numbers(values: Sequence[Any]) -> list[float]:
    return [float(v) for v in values]


def _from_json(text: str) -> list[float] | None:
    for found in _JSON_OBJECT.finditer(text):
        try:
            data = json.loads(found.group(0))
        except ValueError:
            try:
                data = json.loads(found.group(0).replace("'", '"'))
            except ValueError:
                continue
        numbers = _box_of_mapping(data) if isinstance(data, Mapping) else None
        if numbers:
            return numbers
    return None


def _box_of_mapping(data: Mapping[str, Any]) -> list[float] | None:
    lower = {str(k).lower(): v for k, v in data.items()}
    try:
        for key in _LIST_KEYS:
            value = lower.get(key)
            if isinstance(value, (list, tuple)):
                flat = _flatten(value)
                if len(flat) == 4:
                    return _numbers(flat)
        for keys in _CORNER_KEYS:
            if all(k in lower for k in keys):
                return _numbers(lower[k] for k in keys)
        if all(k in lower for k in ("x", "y")) and ("width" in lower or "w" in lower):
            x, y = float(lower["x"]), float(lower["y"])
            w = float(lower.get("width", lower.get("w")))
            h = float(lower.get("height", lower.get("h")))
            return [x, y, x + w, y + h]
    except (TypeError, ValueError):
        return None
    return None


def _flatten(value: Sequence[Any]) -> list[Any]:
    """[[x1, y1], [x2, y2]] or [[x1, y1, x2, y2]] -> [x1, y1, x2, y2]."""
    flat: list[Any] = []
    for item in value:
        flat.extend(_flatten(item) if isinstance(item, (list, tuple)) else [item])
    return flat


def _found_numbers(text: str) -> tuple[list[float], bool] | None:
    """Four numbers of the first box in ``text``, and whether they are known to be per-mille."""
    qwen = _QWEN_BOX.search(text)
    if qwen:
        return _numbers(qwen.groups()), True
    for tag in _BOX_TAG.finditer(text):
        numbers = _ANY_NUMBER.findall(tag.group(1))
        if len(numbers) >= 4:
            return _numbers(numbers[:4]), False
    from_json = _from_json(text)
    if from_json:
        return from_json, False
    candidates = [m for m in (_LIST.search(text), _TWO_POINTS.search(text)) if m]
    if candidates:
        first = min(candidates, key=lambda m: m.start())
        return _numbers(first.groups()), False
    numbers = _ANY_NUMBER.findall(text)
    if len(numbers) == 4:
        return _numbers(numbers), False
    return None


def _to_pixels(numbers: list[float], size: Size, per_mille: bool) -> list[float]:
    width, height = size
    xs, ys = numbers[0::2], numbers[1::2]
    if per_mille:
        scale = (width / PER_MILLE, height / PER_MILLE)
    elif all(0.0 <= v <= 1.0 for v in numbers):
        scale = (width, height)
    elif all(abs(v) <= PER_MILLE for v in numbers) and (
        (max(xs) > width and width < PER_MILLE) or (max(ys) > height and height < PER_MILLE)
    ):
        scale = (width / PER_MILLE, height / PER_MILLE)
    else:
        scale = (1.0, 1.0)
    return [v * scale[k % 2] for k, v in enumerate(numbers)]


def extract_box(text: Any, image_size: Sequence[int]) -> Box | None:
    """The first box in a model's answer, as pixel (x1, y1, x2, y2) of an image of ``image_size``
    (width, height), or None when the answer holds no box. See the module doc for the formats and
    how the scale (pixels, 0-1 or 0-1000) is decided."""
    width, height = (int(v) for v in image_size)
    found = _found_numbers(answer_text(text))
    if found is None:
        return None
    x1, y1, x2, y2 = _to_pixels(found[0], (width, height), found[1])
    x1, x2 = sorted((min(max(x1, 0.0), width), min(max(x2, 0.0), width)))
    y1, y2 = sorted((min(max(y1, 0.0), height), min(max(y2, 0.0), height)))
    return (x1, y1, x2, y2)


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes (areas in continuous coordinates)."""
    inter_w = min(a[2], b[2]) - max(a[0], b[0])
    inter_h = min(a[3], b[3]) - max(a[1], b[1])
    intersection = max(inter_w, 0.0) * max(inter_h, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - intersection
    return intersection / union if union > 0 else 0.0


_SIZES: dict[int, tuple[Any, Size]] = {}  # id(sample) -> (sample, size): the metrics share a load


def image_size(sample: Any) -> Size:
    """The (width, height) of a sample's image: ``meta["image_size"]``, else its loaded shape."""
    stated = (getattr(sample, "meta", None) or {}).get("image_size")
    if stated is not None:
        width, height = stated
        return int(width), int(height)
    cached = _SIZES.get(id(sample))
    if cached is not None and cached[0] is sample:
        return cached[1]
    shape = sample.load_image().shape
    size = (int(shape[1]), int(shape[0]))
    if len(_SIZES) >= 64:
        _SIZES.pop(next(iter(_SIZES)))
    _SIZES[id(sample)] = (sample, size)
    return size


def grounding_iou(prediction: Any, sample: Any) -> float:
    """IoU of the predicted box with the sample's box; 0.0 when the answer holds no box.

    A prediction may also be a box already (four numbers, read with the same scale rules).
    """
    if getattr(sample, "box", None) is None:
        raise MetricError(f"sample '{sample.dataset}/{sample.id}' has no box to score against")
    size = image_size(sample)
    if isinstance(prediction, (list, tuple)) and len(prediction) == 4:
        prediction = json.dumps([float(v) for v in prediction])
    box = extract_box(prediction, size)
    return 0.0 if box is None else box_iou(box, sample.box)


def _accuracy_at(threshold: float):
    def score(prediction: Any, sample: Any) -> float:
        return float(grounding_iou(prediction, sample) >= threshold)

    return score


ACC_IOU_50 = Metric(
    name="acc_iou_0.5",
    kinds=("grounding",),
    score=_accuracy_at(0.5),
    description="Share of answers whose box has IoU >= 0.5 with the true box",
)
ACC_IOU_75 = Metric(
    name="acc_iou_0.75",
    kinds=("grounding",),
    score=_accuracy_at(0.75),
    description="Share of answers whose box has IoU >= 0.75 with the true box",
)
MEAN_IOU = Metric(
    name="mean_iou",
    kinds=("grounding",),
    score=grounding_iou,
    description="Mean IoU of the answered box with the true box (no box: 0)",
)


@hookimpl
def register_metrics(register):
    for metric in (ACC_IOU_50, ACC_IOU_75, MEAN_IOU):
        register(metric)
