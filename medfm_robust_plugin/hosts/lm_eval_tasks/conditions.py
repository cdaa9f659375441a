"""What lm-eval calls for each MedFM-Robust condition task (named by ``!function`` in the YAML).

A condition task holds the samples of one task card under one condition (clean, or one corruption
at one severity). Its documents are small dicts naming the sample; the images come from the shared
corrupted-view layer, so lm-eval sees the same pixels as the native runner and VLMEvalKit. Where a
task mixes modalities, a corruption's task holds only the samples whose modality suite has it.

The data root comes from ``--metadata data_root=DIR`` or ``MEDFM_ROBUST_DATA``; the global seed of
the views from ``--metadata seed=N`` (default 0). The Mini suite needs neither.
``--metadata samples=N`` keeps N samples of the card (stratified, as our runner's ``--limit``), each
clean and under every condition, so that every condition is paired with the clean task; the
launchers turn ``--limit N`` into it (see ``hosts.lm_eval.whole_sample_limit``).
"""

from __future__ import annotations

import re
import sys
import threading
from typing import Any

PLACEHOLDER = "<image>"  # lm-eval's image placeholder: one per image in the prompt

_CONDITION = re.compile(r"^(?P<corruption>.+)_s(?P<severity>\d+)$")
_lock = threading.Lock()
_samples: dict[tuple[str, str, str], Any] = {}  # (card, dataset, sample id) -> Sample
_loaded: dict[tuple[str, str | None], list[Any]] = {}  # (card, data root) -> samples
_views: dict[tuple[int, str], Any] = {}  # (seed, severity mode) -> CorruptedViews
_chosen: dict[tuple[str, str | None, int], list[Any]] = {}  # (card, data root, N) -> samples


def parse_condition(key: str) -> Any:
    """The Condition of a key: ``clean`` or ``<corruption>_s<severity>``."""
    from ...tasks import CLEAN, CLEAN_CONDITION, Condition

    if key == CLEAN:
        return CLEAN_CONDITION
    match = _CONDITION.match(key)
    if match is None:
        raise ValueError(f"condition '{key}' is neither 'clean' nor '<corruption>_s<severity>'")
    return Condition(match["corruption"], int(match["severity"]))


def card_samples(card_name: str, data_root: str | None = None) -> list[Any]:
    """The card's samples (loaded once per process), remembered for the per-document functions."""
    from ...tasks import get_task

    key = (card_name, str(data_root) if data_root else None)
    with _lock:
        if key in _loaded:
            return _loaded[key]
    card = get_task(card_name)
    samples = card.load(data_root if card.needs_data_root else None).samples
    with _lock:
        _loaded[key] = samples
        for sample in samples:
            _samples[(card.name, sample.dataset, sample.id)] = sample
    return samples


def samples_of(card_name: str) -> list[Any]:
    """The samples of a card that this process has loaded (for models that fit on them)."""
    with _lock:
        return [s for (card, _, _), s in _samples.items() if card == card_name]


def views_for(seed: int, mode: str) -> Any:
    from ...views import CorruptedViews

    with _lock:
        if (seed, mode) not in _views:
            _views[(seed, mode)] = CorruptedViews(global_seed=seed, mode=mode)
        return _views[(seed, mode)]


def load_condition(
    medfm_task: str,
    medfm_condition: str,
    data_root: str | None = None,
    seed: int = 0,
    samples: int | float | str | None = None,
    **_lm_eval_metadata: Any,
) -> dict[str, Any]:
    """lm-eval's ``custom_dataset``: the documents of one (task card, condition), split ``test``.

    lm-eval passes the task's metadata and ``--metadata`` (and the model arguments) as keywords;
    only ``data_root``, ``seed`` and ``samples`` matter here.
    """
    import datasets

    return {
        "test": datasets.Dataset.from_list(
            condition_documents(medfm_task, medfm_condition, data_root, seed, samples)
        )
    }


def paired_samples(card: Any, data_root: str | None, samples: Any) -> list[Any]:
    """The card's samples that every condition task holds: all of them, or ``samples`` of them.

    ``samples=N`` chooses N as our runner's ``--limit N`` does (stratified by modality, seeded
    by the card). A harness cannot run a task without documents, so a modality of the card that
    the N leave out gets one sample of its own (chosen the same way), and the choice is
    announced once on stderr. Every task of the card then holds the same samples: each
    condition is paired with the clean task.
    """
    from ...plan import limit_samples
    from ...tasks import Sampling, select

    loaded = card_samples(card.name, data_root)
    count = sample_count(samples, len(loaded))
    if count is None:
        return loaded
    key = (card.name, str(data_root) if data_root else None, count)
    with _lock:
        if key in _chosen:
            return _chosen[key]
    seed = card.sampling.seed
    chosen = limit_samples(loaded, count, seed)
    missing = sorted({s.modality for s in loaded} - {s.modality for s in chosen})
    for modality in missing:
        chosen += select([s for s in loaded if s.modality == modality], Sampling(size=1, seed=seed))
    order = {id(sample): at for at, sample in enumerate(loaded)}
    chosen.sort(key=lambda sample: order[id(sample)])
    if missing:
        print(
            f"{card.name}: {count} samples leave out {', '.join(missing)}, whose corruption "
            f"tasks would be empty; one sample of each is added ({len(chosen)} samples)",
            file=sys.stderr,
        )
    with _lock:
        _chosen[key] = chosen
    return chosen


def sample_count(samples: int | float | str | None, total: int) -> int | None:
    """``samples=N`` as a number of whole samples: N (>= 1), or a fraction (0, 1) of ``total``
    (at least one); None, 0 or a negative number (lm-eval's "no limit") keep them all."""
    if samples is None or str(samples).strip() in ("", "None"):
        return None
    try:
        value = float(samples)
    except ValueError:
        raise ValueError(
            f"samples={samples!r}: give a number of samples (e.g. samples=5) or a fraction"
        ) from None
    if value <= 0:
        return None
    return max(1, round(value * total)) if value < 1 else int(value)


def condition_documents(
    medfm_task: str,
    medfm_condition: str,
    data_root: str | None = None,
    seed: int = 0,
    samples: int | float | str | None = None,
) -> list[dict[str, Any]]:
    """The documents of one (task card, condition): the plan's items under that condition, of
    ``samples`` whole samples when given (the same ones in every condition of the card)."""
    from ...plan import EvaluationPlan
    from ...tasks import get_task

    card = get_task(medfm_task)
    condition = parse_condition(medfm_condition)
    plan = EvaluationPlan.from_card(
        card,
        corruptions=[condition.corruption] if condition.corruption else None,
        severities=[condition.severity] if condition.severity else None,
        seed=int(seed),
        samples=paired_samples(card, data_root, samples),
    )
    views = views_for(plan.seed, plan.mode)
    return [
        {
            "medfm_task": card.name,
            "key": item.key,
            "sample_id": item.sample.id,
            "dataset": item.sample.dataset,
            "modality": item.sample.modality,
            "condition": condition.key,
            "corruption": condition.corruption,
            "severity": condition.severity,
            "family": item.family,
            "seed": views.seed_for(item.sample, condition),
            "global_seed": plan.seed,
        }
        for item in plan.items()
        if item.condition == condition  # none where a modality's suite lacks the corruption
    ]


def _spec(card: Any, modality: str, corruption: str | None) -> Any:
    if corruption is None:
        return None
    return next((s for s in card.corruptions_for(modality) if s.name == corruption), None)


def _sample(doc: dict[str, Any]) -> Any:
    key = (doc["medfm_task"], doc["dataset"], doc["sample_id"])
    if key not in _samples:
        card_samples(doc["medfm_task"])  # a process that did not load the dataset itself
    return _samples[key]


def view_of(doc: dict[str, Any]) -> tuple[Any, Any]:
    """(views, view) of a document: the shared view layer's image for its condition."""
    from ...tasks import get_task

    card = get_task(doc["medfm_task"])
    sample = _sample(doc)
    condition = parse_condition(doc["condition"])
    views = views_for(int(doc["global_seed"]), card.severity_mode)
    spec = _spec(card, sample.modality, condition.corruption)
    return views, views.get(sample, condition, corruption=spec)


def doc_to_image(doc: dict[str, Any]) -> list[Any]:
    """The condition's image as lm-eval wants it: a list of one PIL image (8-bit RGB display)."""
    views, view = view_of(doc)
    return [views.pil(view)]


def doc_to_text(doc: dict[str, Any]) -> str:
    """The card's prompt, after one ``<image>`` placeholder for the one image."""
    from ...tasks import get_task

    card = get_task(doc["medfm_task"])
    sample = _sample(doc)
    views = views_for(int(doc["global_seed"]), card.severity_mode)
    height, width = views.clean_image(sample).shape[:2]  # corruptions keep the size
    return f"{PLACEHOLDER}\n{card.render_prompt(sample, (width, height))}"


def doc_to_target(doc: dict[str, Any]) -> str:
    """The reference (option letter, caption, report or box), for lm-eval's logs only."""
    sample = _sample(doc)
    if sample.answer is not None:
        return str(sample.answer)
    return str(list(sample.box)) if sample.box is not None else ""


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, Any]:
    """Each card metric's per-sample state (aggregated by the matching ``aggregate_*``)."""
    from ...metrics.base import get_metric
    from ...tasks import get_task

    card = get_task(doc["medfm_task"])
    sample = _sample(doc)
    prediction = results[0] if results else ""
    return {name: get_metric(name).score(prediction, sample) for name in card.metrics}


def metric_identifier(name: str) -> str:
    """A metric name as a Python identifier (``acc_iou_0.5`` -> ``acc_iou_0_5``)."""
    return re.sub(r"\W", "_", name)


def aggregation_name(name: str) -> str:
    """The function of this module that aggregates metric ``name`` (resolved by ``__getattr__``)."""
    return f"aggregate_{metric_identifier(name)}"


def __getattr__(attribute: str) -> Any:
    # ``aggregate_<metric>`` for every registered metric: the metric's own aggregate over states,
    # so corpus metrics (BLEU, CIDEr-D) are computed over the set, not averaged per sample.
    if not attribute.startswith("aggregate_"):
        raise AttributeError(attribute)
    from ...metrics.base import get_metric
    from ...plugins import get_registry

    wanted = attribute[len("aggregate_") :]
    name = next(
        (n for n in get_registry().names("metrics") if metric_identifier(n) == wanted), None
    )
    if name is None:
        raise AttributeError(f"no registered metric is aggregated by '{attribute}'")

    def aggregate(states: list[Any]) -> float:
        return get_metric(name).summarize(list(states))

    aggregate.__name__ = attribute
    return aggregate
