"""The modalities of the benchmark: the keys used everywhere, how to name them to a reader, and how
free text and dataset names denote them. Everything else derives from this one table.

The paper's eight modality groups are these keys, with its "OCT / fundus" group split into colour
fundus photographs and OCT B-scans, which share corruptions but not a suite. ``other`` is anything
the benchmark has no suite for (PET, infrared, photographs...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

OTHER = "other"


@dataclass(frozen=True)
class Modality:
    key: str
    label: str  # a reader's name
    words: str  # regular expression (on lower-cased text) for how releases and prompts name it
    dataset_fragments: tuple[str, ...] = ()  # parts of dataset names that imply it (ISIC, Kvasir)


# In the order text is checked: the first modality whose words occur decides, so OCT and the
# photographic modalities come before CT ("optical coherence tomography" is not CT).
TABLE: tuple[Modality, ...] = (
    Modality("oct", "OCT", r"optical coherence|(?<![a-z])oct(?![a-z])"),
    Modality("fundus", "fundus", r"fundus|retinal photograph|(?<![a-z])cfp(?![a-z])", ("refuge",)),
    Modality("dermoscopy", "dermoscopy", r"dermoscop|dermatoscop", ("derm", "isic", "ham10000")),
    Modality(
        "endoscopy",
        "endoscopy",
        r"endoscop|colonoscop|gastroscop|laparoscop",
        ("endo", "kvasir", "cvc"),
    ),
    Modality(
        "pathology",
        "histopathology",
        r"patholog|microscop|histolog|cytolog|h&e|whole.slide",
        ("pathvqa", "patho", "monuseg"),
    ),
    Modality(
        "ultrasound", "ultrasound", r"ultrasound|ultrason|sonograph|echocardio|b-mode", ("busi",)
    ),
    Modality(
        "xray",
        "X-ray",
        r"x[-_ ]?ray|radiograph|mammogra|angiogra|fluorosc",
        ("chest", "cxr", "mimic"),
    ),
    Modality("mri", "MRI", r"magnetic resonance|mag-netic|(?<![a-z])mri?(?![a-z])", ("brats",)),
    Modality("ct", "CT", r"computed tomography|(?<![a-z])ct(?![a-z])", ("flare", "lidc")),
)
BY_KEY: dict[str, Modality] = {m.key: m for m in TABLE}
# The keys in the order a reader meets them (tables, reports, suites).
MODALITIES: tuple[str, ...] = (
    "ct",
    "mri",
    "xray",
    "ultrasound",
    "endoscopy",
    "dermoscopy",
    "pathology",
    "fundus",
    "oct",
)
LABELS: dict[str, str] = {key: BY_KEY[key].label for key in MODALITIES}
_WORDS = tuple((m.key, re.compile(m.words)) for m in TABLE)


def label(modality: str) -> str:
    """A reader's name for a modality key (the key itself when unknown)."""
    return LABELS.get(modality, modality)


def modality_from_text(text: str | None) -> str:
    """The modality key a free-text modality name (or file-name prefix) denotes; ``other``."""
    if not text:
        return OTHER
    lowered = str(text).lower()
    return next((key for key, pattern in _WORDS if pattern.search(lowered)), OTHER)


def first_named_modality(text: str) -> str | None:
    """The modality a text (a prompt) names first, by position; None when it names none."""
    lowered = text.lower()
    found = [(m.start(), key) for key, pattern in _WORDS if (m := pattern.search(lowered))]
    return min(found)[1] if found else None


def modality_from_dataset_name(name: str) -> str | None:
    """The modality a dataset's name implies (its words, or a known dataset's name); None."""
    key = modality_from_text(name)
    if key != OTHER:
        return key
    lowered = name.lower()
    return next((m.key for m in TABLE for f in m.dataset_fragments if f in lowered), None)
