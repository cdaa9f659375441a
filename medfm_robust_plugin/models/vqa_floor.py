"""Floors that read the image with classical tools: ``baseline:lesion-finder`` (multiple choice)
and ``baseline:findings-caption`` (captions whose findings come from the pixels).

It answers the geometric questions of the Mini suite (is there a finding, how many, on which side,
small or large, which modality) from the picture it is shown, so corruptions move its answers as
they move a model's: noise adds spurious blobs, blur and low contrast hide lesions, colour shifts
confuse the modality. It is a floor, not a model: nothing is learnt beyond a handful of numbers.

How it reads an image (grey, resized to 128 px a side): the local background is a 31 px median;
a finding is a connected region that differs from it by more than a threshold, in the direction
(darker or brighter) the finding takes, and covers at least 12 px. ``fit(samples)`` sets, per
finding named in the questions (e.g. "hypodense lesion"), the direction and threshold that best
reproduce the answers of the clean samples; the area that separates "small" from "large"; and one
centroid of simple image statistics per modality (mean colour, spread, dark and bright fractions)
for the modality question. Unfitted, it looks for regions either way at a middle threshold.
Questions it cannot parse, and options it cannot map, get the first option.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..hookspecs import hookimpl
from ..modalities import label
from .base import ModelSpec
from .baselines import _InstantVLM, answer_key, first_image, parse_options, unit_range

WORK_SIZE = 128
BACKGROUND_KERNEL = 31  # px at WORK_SIZE: wider than the largest lesion
MIN_AREA = 12  # px at WORK_SIZE
BORDER = 4  # px at WORK_SIZE left out (scanner frames, vignettes)
THRESHOLDS = (0.03, 0.05, 0.08, 0.11, 0.15, 0.2, 0.26)
DEFAULT_THRESHOLD = 0.11
MAX_COUNT = 3

QUESTIONS = (
    ("presence", re.compile(r"\bis there an? (.+?) in\b", re.I)),
    ("count", re.compile(r"\bhow many (.+?) are\b", re.I)),
    ("side", re.compile(r"\bwhich side of the image is the (.+?)\?", re.I)),
    ("size", re.compile(r"\bis the (.+?) small or large\b", re.I)),
    ("modality", re.compile(r"\bwhat imaging modality\b", re.I)),
)


def question_of(prompt: str) -> tuple[str | None, str | None]:
    """(kind, finding key) of a prompt: e.g. ("count", "hypodense"); (None, None) when unknown."""
    for kind, pattern in QUESTIONS:
        match = pattern.search(prompt)
        if match:
            finding = match.group(1) if match.groups() else None
            return kind, finding_key(finding) if finding else None
    return None, None


def finding_key(noun: str) -> str:
    """One key for a finding's singular and plural ("polyps" and "polyp": "polyp")."""
    first = noun.strip().lower().split()[0]
    return re.sub(r"(es|s)$", "", first) if first.endswith("s") and len(first) > 4 else first


def grey_work(image: np.ndarray) -> np.ndarray:
    """The image as grey values in [0, 1] at WORK_SIZE x WORK_SIZE."""
    import cv2

    array = np.asarray(image, dtype=np.float32)
    grey = array if array.ndim == 2 else array[..., :3].mean(axis=2)
    grey = unit_range(grey)
    return cv2.resize(grey, (WORK_SIZE, WORK_SIZE), interpolation=cv2.INTER_AREA)


def deviation(grey: np.ndarray) -> np.ndarray:
    """Grey minus its local background (a wide median), lightly smoothed."""
    import cv2

    as_byte = np.clip(grey * 255 + 0.5, 0, 255).astype(np.uint8)
    background = cv2.medianBlur(as_byte, BACKGROUND_KERNEL).astype(np.float32) / 255
    return cv2.GaussianBlur(grey - background, (0, 0), 1.2)


def regions(dev: np.ndarray, polarity: int, threshold: float) -> list[tuple[int, float]]:
    """(area, centroid x in [0, 1]) of the regions beyond ``threshold`` in ``polarity``'s
    direction (0: either), largest first."""
    import cv2

    found = np.abs(dev) > threshold if polarity == 0 else polarity * dev > threshold
    found[:BORDER] = found[-BORDER:] = False
    found[:, :BORDER] = found[:, -BORDER:] = False
    count, labels, stats, centroids = cv2.connectedComponentsWithStats(found.astype(np.uint8), 8)
    kept = [
        (int(stats[i, cv2.CC_STAT_AREA]), float(centroids[i][0]) / WORK_SIZE)
        for i in range(1, count)
        if stats[i, cv2.CC_STAT_AREA] >= MIN_AREA
    ]
    return sorted(kept, reverse=True)


def statistics(image: np.ndarray) -> np.ndarray:
    """Mean R, G, B, grey spread, dark and bright fractions, on [0, 1] values."""
    array = np.asarray(image, dtype=np.float32) / 255.0
    rgb = array[..., :3] if array.ndim == 3 else np.repeat(array[..., None], 3, axis=2)
    grey = rgb.mean(axis=2)
    return np.array(
        [
            *rgb.reshape(-1, 3).mean(axis=0),
            grey.std(),
            float((grey < 0.08).mean()),
            float((grey > 0.85).mean()),
        ]
    )


def _truth(kind: str, answer: str) -> Any:
    """What a clean sample's answer says of the count (a test on the predicted count)."""
    text = answer_key(answer)
    if kind == "count" and text.isdigit():
        return lambda n: n == int(text)
    if kind == "presence":
        return lambda n: (n > 0) == (text == "yes")
    if kind in ("side", "size"):
        return lambda n: n >= 1
    return None


Calibration = list[tuple[np.ndarray, Any, str | None]]  # (deviation, count test, "small"/"large")


def calibrate(items: Calibration) -> tuple[tuple[int, float], float | None]:
    """The (polarity, threshold) whose region counts pass the most tests of ``items``, and the area
    between the median "small" and "large" finding (their geometric mean; None without both)."""
    best = max(
        ((p, t) for p in (-1, 1) for t in THRESHOLDS),
        key=lambda pt: sum(test(len(regions(dev, *pt))) for dev, test, _ in items),
    )
    areas: dict[str, list[int]] = defaultdict(list)
    for dev, _, size in items:
        found = regions(dev, *best) if size else None
        if found:
            areas[size].append(found[0][0])
    if not (areas.get("small") and areas.get("large")):
        return best, None
    return best, float(np.sqrt(np.median(areas["small"]) * np.median(areas["large"])))


class LesionFinderBaseline(_InstantVLM):
    """Multiple-choice floor that finds blobs in the image (see the module doc)."""

    name = "baseline:lesion-finder"

    def __init__(self) -> None:
        self.detectors: dict[str, tuple[int, float]] = {}  # finding -> (polarity, threshold)
        self.large_area: dict[str, float] = {}  # finding -> area (px) above which "large"
        self.centroids: dict[str, np.ndarray] = {}  # modality -> mean statistics

    # ------------------------------------------------------------------ fitting

    def fit(self, samples: Iterable[Any]) -> LesionFinderBaseline:
        """Calibrate on clean multiple-choice samples (their presented images and answers)."""
        from ..views import CorruptedViews

        views = CorruptedViews(memory_items=0)
        by_finding: dict[str, Calibration] = defaultdict(list)
        stats: dict[str, list[np.ndarray]] = defaultdict(list)
        for sample in samples:
            options = getattr(sample, "options", None) or {}
            answer = options.get(getattr(sample, "answer", None))
            question = getattr(sample, "question", None) or ""
            kind, finding = question_of(question)
            if answer is None or kind is None:
                continue
            image = views.display(views.get(sample))
            stats[sample.modality].append(statistics(image))
            test = _truth(kind, answer)
            if finding and test is not None:
                size = answer_key(answer) if kind == "size" else None
                by_finding[finding].append((deviation(grey_work(image)), test, size))
        self.centroids = {m: np.mean(v, axis=0) for m, v in stats.items()}
        for finding, items in by_finding.items():
            self.detectors[finding], large_area = calibrate(items)
            if large_area is not None:
                self.large_area[finding] = large_area
        return self

    # ------------------------------------------------------------------ answering

    def answer(self, images: Sequence[Any], prompt: str) -> str:
        options = parse_options(prompt)
        if not options:
            return "A"
        kind, finding = question_of(prompt)
        image = first_image(images)
        if kind == "modality":
            return self._modality(image, options)
        if kind is None:
            return "A"
        polarity, threshold = self.detectors.get(finding or "", (0, DEFAULT_THRESHOLD))
        found = regions(deviation(grey_work(image)), polarity, threshold)
        if kind == "count":
            wanted = str(min(len(found), MAX_COUNT))
        elif kind == "presence":
            wanted = "yes" if found else "no"
        elif kind == "side":
            wanted = "left" if found and found[0][1] < 0.5 else "right"
        else:  # size
            limit = self.large_area.get(finding or "", 60.0)
            wanted = "large" if found and found[0][0] > limit else "small"
        return next((k for k, v in options.items() if answer_key(v) == wanted), "A")

    def _modality(self, image: np.ndarray, options: dict[str, str]) -> str:
        if not self.centroids:
            return "A"
        features = statistics(image)
        ranked = sorted(
            self.centroids, key=lambda m: float(np.sum((features - self.centroids[m]) ** 2))
        )
        for modality in ranked:
            name = answer_key(label(modality))
            for letter, text in options.items():
                if answer_key(text) == name:
                    return letter
        return "A"


# Captions -----------------------------------------------------------------------------------

NUMBER_WORDS = ("no", "one", "two", "three")
CAPTION = re.compile(
    r"^(?P<title>.+?) (?:showing (?P<count>one|two|three) (?:(?P<size>small|large) )?"
    r"(?P<noun>.+?) on (?:the (?P<side>left|right) side|both sides) of the image"
    r"|with no focal (?P<none>.+?))\.$"
)


class FindingsCaptionBaseline(_InstantVLM):
    """Captioning floor whose findings come from the pixels: ``fit`` reads the reference captions'
    wording per modality (the image title and the finding's noun, e.g. "Axial CT slice of the
    abdomen", "hypodense lesion") and calibrates the blob finder of ``baseline:lesion-finder`` on
    the counts they state; a caption then says how many findings the image shows, on which side,
    and whether a single one is small or large. Modalities it has no wording for get a sentence
    of coarse image statistics (as ``baseline:template-caption``)."""

    name = "baseline:findings-caption"

    def __init__(self) -> None:
        self.wording: dict[str, tuple[str, str, str]] = {}  # modality -> (title, noun, plural)
        self.finder = LesionFinderBaseline()

    def fit(self, samples: Iterable[Any]) -> FindingsCaptionBaseline:
        from ..views import CorruptedViews

        views = CorruptedViews(memory_items=0)
        singular: dict[str, Counter[str]] = defaultdict(Counter)
        plural: dict[str, Counter[str]] = defaultdict(Counter)
        titles: dict[str, Counter[str]] = defaultdict(Counter)
        items: dict[str, Calibration] = defaultdict(list)
        for sample in samples:
            match = CAPTION.match((getattr(sample, "answer", None) or "").strip())
            if not match:
                continue
            modality = sample.modality
            titles[modality][match["title"]] += 1
            count = 0 if match["none"] else NUMBER_WORDS.index(match["count"])
            noun = match["none"] or match["noun"]
            (plural if count > 1 else singular)[modality][noun] += 1
            dev = deviation(grey_work(views.display(views.get(sample))))
            size = match["size"] if count == 1 else None
            items[modality].append((dev, lambda n, c=count: n == c, size))
        for modality, counter in titles.items():
            noun = (singular[modality] or plural[modality]).most_common(1)[0][0]
            many = plural[modality].most_common(1)[0][0] if plural[modality] else noun + "s"
            self.wording[modality] = (counter.most_common(1)[0][0], noun, many)
            self.finder.detectors[modality], large_area = calibrate(items[modality])
            if large_area is not None:
                self.finder.large_area[modality] = large_area
        return self

    def answer(self, images: Sequence[Any], prompt: str) -> str:
        from .baselines import named_modality, template_caption

        image = first_image(images)
        modality = named_modality(prompt)
        if modality not in self.wording:
            return template_caption(image, modality)
        title, noun, many = self.wording[modality]
        found = regions(deviation(grey_work(image)), *self.finder.detectors[modality])
        found = found[:MAX_COUNT]
        if not found:
            return f"{title} with no focal {noun}."
        sides = {"left" if x < 0.5 else "right" for _, x in found}
        where = f"on the {sides.pop()} side" if len(sides) == 1 else "on both sides"
        if len(found) == 1:
            large = found[0][0] > self.finder.large_area.get(modality, 60.0)
            size = "large" if large else "small"
            return f"{title} showing one {size} {noun} {where} of the image."
        return f"{title} showing {NUMBER_WORDS[len(found)]} small {many} {where} of the image."


@hookimpl
def register_models(register):
    register(
        ModelSpec(
            name="baseline:findings-caption",
            kind="vlm",
            factory=FindingsCaptionBaseline,
            description="Floor: a caption in the references' wording whose findings (how many, "
            "which side, small or large) come from blobs found in the image (calibrated by "
            "fit(samples))",
        )
    )

    register(
        ModelSpec(
            name="baseline:lesion-finder",
            kind="vlm",
            factory=LesionFinderBaseline,
            description="Floor: answers presence, count, side and size questions from the blobs "
            "that stand out of the image's local background, and the modality from image "
            "statistics (calibrated by fit(samples))",
        )
    )
