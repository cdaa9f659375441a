"""What lmms-eval calls for each MedFM-Robust condition task (named by ``!function`` in the YAML).

The documents, images, prompts and metric states are those of the lm-eval host
(``hosts.lm_eval_tasks.conditions``): one plan, one view layer. What differs is lmms-eval's
shape: documents come from ``process_docs`` over a one-line dataset naming the card and
condition, the prompt carries no image placeholder (lmms-eval places the images itself), and the
document's identity is returned by ``process_results`` under ``ITEM`` because lmms-eval drops the
document from its ``--log_samples`` output.

The data root comes from ``MEDFM_ROBUST_DATA`` (the Mini suite needs none); the views' global seed
is 0, as in the other hosts' defaults. ``MEDFM_ROBUST_SAMPLES=N`` keeps N whole samples of each
card, each clean and under every condition (``medfm-robust lmms-eval --limit N`` sets it).
"""

from __future__ import annotations

import os
from typing import Any

from .lm_eval_tasks import conditions

ITEM = "medfm_robust_item"  # the logged sample's key holding our document
SEED = 0
SAMPLES_ENV = "MEDFM_ROBUST_SAMPLES"  # lmms-eval passes tasks no metadata: N whole samples


def process_docs(dataset: Any) -> Any:
    """The one-line dataset ``{medfm_task, medfm_condition}`` -> the condition's documents."""
    import datasets

    samples = os.environ.get(SAMPLES_ENV) or None
    documents: list[dict[str, Any]] = []
    for row in dataset:
        documents += conditions.condition_documents(
            row["medfm_task"], row["medfm_condition"], seed=SEED, samples=samples
        )
    return datasets.Dataset.from_list(documents)


def doc_to_visual(doc: dict[str, Any]) -> list[Any]:
    """The condition's image, made by the shared view layer when lmms-eval asks (8-bit RGB PIL)."""
    return conditions.doc_to_image(doc)


def doc_to_text(
    doc: dict[str, Any], lmms_eval_specific_kwargs: dict[str, Any] | None = None
) -> str:
    """The card's prompt, between lmms-eval's per-model ``pre_prompt`` and ``post_prompt``."""
    options = lmms_eval_specific_kwargs or {}
    text = conditions.doc_to_text(doc).removeprefix(conditions.PLACEHOLDER + "\n")
    return f"{options.get('pre_prompt', '')}{text}{options.get('post_prompt', '')}"


def doc_to_target(doc: dict[str, Any]) -> str:
    return conditions.doc_to_target(doc)


def process_results(doc: dict[str, Any], results: list[Any]) -> dict[str, Any]:
    """Each card metric's per-sample state, and the document under ``ITEM`` for our reports."""
    answers = [getattr(result, "text", result) for result in results]
    states = conditions.process_results(doc, [a if isinstance(a, str) else "" for a in answers])
    return {**states, ITEM: dict(doc)}


def __getattr__(attribute: str) -> Any:
    # ``aggregate_<metric>``: the metric's own aggregate over states, as for lm-eval
    if attribute.startswith("aggregate_"):
        return getattr(conditions, attribute)
    raise AttributeError(f"module {__name__!r} has no attribute {attribute!r}")
