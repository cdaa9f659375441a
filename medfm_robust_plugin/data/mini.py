"""MedFM-Robust-Mini: the embedded default suite, built from procedural phantoms on demand.

Every label follows from how the image was drawn: how many lesions, on which side of the image,
small or large, which modality. So multiple-choice answers, reference captions, grounding boxes and
segmentation masks are exact, and nothing but this code is stored in the repository.

Layout per modality: ``per_modality`` cases, case k has ``k % 4`` lesions (0 to 3) placed in
distinct slots (two on the left half of the image, two on the right).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..engine import sample_seed
from ..errors import MedFMRobustError
from ..hookspecs import hookimpl
from ..modalities import label
from .phantoms import GENERATORS, Lesion
from .sample import LoadResult, Sample, mask_box

NAME = "medfm_robust_mini"
MODALITIES = ("ct", "mri", "xray", "dermoscopy", "endoscopy")

# Lesion slots as (y, x) centres in [-1, 1] image coordinates: inside the body / lungs / brain of
# every phantom, two on each side, far enough apart that lesions never touch.
SLOTS = ((-0.3, -0.4), (0.3, -0.38), (-0.28, 0.4), (0.32, 0.38))
# (small, large) lesion radii per modality, in the same units.
RADII = {
    "ct": (0.06, 0.11),
    "mri": (0.07, 0.12),
    "xray": (0.06, 0.1),
    "dermoscopy": (0.08, 0.16),
    "endoscopy": (0.08, 0.14),
}

# (image description, finding, finding in plural)
DESCRIPTIONS = {
    "ct": ("Axial CT slice of the abdomen", "hypodense lesion", "hypodense lesions"),
    "mri": ("Axial T1-weighted brain MRI", "enhancing mass", "enhancing masses"),
    "xray": ("Frontal chest radiograph", "pulmonary nodule", "pulmonary nodules"),
    "dermoscopy": ("Dermoscopic image of the skin", "pigmented lesion", "pigmented lesions"),
    "endoscopy": ("Colonoscopy frame", "polyp", "polyps"),
}
NUMBER_WORDS = ("no", "one", "two", "three")


@dataclass(frozen=True)
class Case:
    """One phantom image of the suite and the facts it was drawn from."""

    id: str
    modality: str
    seed: int
    lesions: tuple[Lesion, ...]
    sizes: tuple[str, ...]  # "small" / "large" per lesion

    def content_key(self, size: int) -> str:
        return f"{NAME}:{self.modality}:{self.seed}:{size}:{self.lesions}"

    def sides(self) -> tuple[str, ...]:
        return tuple("left" if les.centre[1] < 0 else "right" for les in self.lesions)


def build_cases(per_modality: int = 40, seed: int = 0) -> list[Case]:
    """The suite's cases in a fixed order (modality by modality)."""
    cases = []
    for modality in MODALITIES:
        small, large = RADII[modality]
        for k in range(per_modality):
            case_id = f"{modality}-{k:03d}"
            case_seed = sample_seed(seed, NAME, case_id, "phantom", 0)
            rng = np.random.default_rng(case_seed)
            count = k % 4
            slots = rng.permutation(len(SLOTS))[:count]
            sizes = tuple(
                ("small", "large")[int(rng.integers(2))] if count == 1 else "small" for _ in slots
            )
            lesions = tuple(
                Lesion(SLOTS[s], large if size == "large" else small)
                for s, size in zip(slots, sizes)
            )
            cases.append(Case(case_id, modality, case_seed, lesions, sizes))
    return cases


@functools.lru_cache(maxsize=64)
def _render(modality: str, seed: int, lesions: tuple[Lesion, ...], size: int):
    return GENERATORS[modality](size=size, seed=seed, lesions=lesions)


def case_image(case: Case, size: int) -> np.ndarray:
    return _render(case.modality, case.seed, case.lesions, size).image


def lesion_mask(case: Case, index: int, size: int) -> np.ndarray:
    return _render(case.modality, case.seed, case.lesions, size).lesion_masks[index]


# --------------------------------------------------------------------------- labels


def caption(case: Case) -> str:
    """The reference caption: modality, anatomy, number, size and side of the lesions."""
    title, noun, plural = DESCRIPTIONS[case.modality]
    count = len(case.lesions)
    if count == 0:
        return f"{title} with no focal {noun}."
    if count == 1:
        return f"{title} showing one {case.sizes[0]} {noun} on the {case.sides()[0]} side of the image."
    sides = case.sides()
    where = (
        f"on the {sides[0]} side of the image"
        if len(set(sides)) == 1
        else "on both sides of the image"
    )
    return f"{title} showing {NUMBER_WORDS[count]} small {plural} {where}."


def _question(case: Case, index: int) -> tuple[str, list[str], str]:
    """(question, option texts, correct text) for the question type this case is asked."""
    _, noun, plural = DESCRIPTIONS[case.modality]
    count = len(case.lesions)
    kinds = ["presence", "count", "modality"] + (["side", "size"] if count == 1 else [])
    kind = kinds[index % len(kinds)]
    if kind == "presence":
        return f"Is there a {noun} in this image?", ["Yes", "No"], "Yes" if count else "No"
    if kind == "count":
        return f"How many {plural} are visible in this image?", ["0", "1", "2", "3"], str(count)
    if kind == "side":
        return (
            f"On which side of the image is the {noun}?",
            ["Left", "Right"],
            case.sides()[0].capitalize(),
        )
    if kind == "size":
        return f"Is the {noun} small or large?", ["Small", "Large"], case.sizes[0].capitalize()
    names = [label(m)[0].upper() + label(m)[1:] for m in MODALITIES]
    own = names[MODALITIES.index(case.modality)]
    others = [n for n in names if n != own]
    return "What imaging modality is this image?", [own, *others[:3]], own


def vqa_sample(case: Case, index: int, size: int) -> Sample:
    question, texts, correct = _question(case, index)
    order = np.random.default_rng(case.seed + 1).permutation(len(texts))
    letters = "ABCD"
    options = {letters[i]: texts[j] for i, j in enumerate(order)}
    answer = next(letter for letter, text in options.items() if text == correct)
    return Sample(
        id=case.id,
        dataset=NAME,
        modality=case.modality,
        image=functools.partial(case_image, case, size),
        question=question,
        options=options,
        answer=answer,
        meta={"lesions": len(case.lesions), "content_key": case.content_key(size)},
    )


def _box_of(case: Case, index: int, size: int) -> tuple[float, float, float, float]:
    box = mask_box(lesion_mask(case, index, size))
    if box is None:  # cannot happen with the slots above; guard the invariant loudly
        raise MedFMRobustError(f"{NAME}/{case.id}: lesion {index} left no pixels in the phantom")
    return box


def grounding_samples(case: Case, size: int) -> list[Sample]:
    """A referring expression per lesion that it picks out alone (one lesion, or alone on its side)."""
    _, noun, _ = DESCRIPTIONS[case.modality]
    sides = case.sides()
    out = []
    for index, side in enumerate(sides):
        if len(sides) == 1:
            question = f"Locate the {noun} in this image."
        elif sides.count(side) == 1:
            question = f"Locate the {noun} on the {side} side of the image."
        else:
            continue
        out.append(
            Sample(
                id=f"{case.id}-lesion{index}",
                dataset=NAME,
                modality=case.modality,
                image=functools.partial(case_image, case, size),
                question=question,
                box=_box_of(case, index, size),
                meta={
                    "side": side,
                    "size": case.sizes[index],
                    "content_key": case.content_key(size),
                },
            )
        )
    return out


def segmentation_samples(case: Case, size: int) -> list[Sample]:
    """One sample per lesion: its mask, and its tight box as the prompt."""
    return [
        Sample(
            id=f"{case.id}-lesion{index}",
            dataset=NAME,
            modality=case.modality,
            image=functools.partial(case_image, case, size),
            mask=functools.partial(lesion_mask, case, index, size),
            box=_box_of(case, index, size),
            meta={
                "side": case.sides()[index],
                "size": case.sizes[index],
                "content_key": case.content_key(size),
            },
        )
        for index in range(len(case.lesions))
    ]


class MiniSuite:
    """The ``medfm_robust_mini`` dataset: every task kind from the same phantoms, no files needed."""

    name = NAME
    kinds = ("vqa", "caption", "report", "grounding", "segmentation")
    modality = None
    description = (
        "MedFM-Robust-Mini: procedural phantoms of five modalities (CT in HU, MRI magnitude, "
        "12-bit X-ray, dermoscopy, endoscopy) with exact labels for every task kind."
    )
    access = "Embedded: generated on demand from code, no download or licence needed."

    def load(
        self,
        root: Path | None = None,
        *,
        task: str = "vqa",
        per_modality: int = 40,
        image_size: int = 128,
        seed: int = 0,
        **options: Any,
    ) -> LoadResult:
        if options:
            raise MedFMRobustError(f"dataset '{NAME}' has no options {sorted(options)}")
        cases = build_cases(per_modality, seed)
        if task == "vqa":
            samples = [vqa_sample(c, k, image_size) for k, c in enumerate(cases)]
        elif task in ("caption", "report"):
            samples = [
                Sample(
                    c.id,
                    NAME,
                    c.modality,
                    functools.partial(case_image, c, image_size),
                    answer=caption(c),
                )
                for c in cases
            ]
        elif task == "grounding":
            samples = [s for c in cases for s in grounding_samples(c, image_size)]
        elif task == "segmentation":
            samples = [s for c in cases for s in segmentation_samples(c, image_size)]
        else:
            raise MedFMRobustError(
                f"dataset '{NAME}' has no task '{task}'; choose one of {self.kinds}"
            )
        return LoadResult(samples)


@hookimpl
def register_datasets(register):
    register(MiniSuite())
