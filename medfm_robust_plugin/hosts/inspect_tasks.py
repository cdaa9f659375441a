"""Inspect AI tasks built from the task cards: ``medfm_robust/vqa``, ``/caption``, ``/report``,
``/grounding``.

Inspect finds them through the ``inspect_ai`` entry point named ``medfm_robust`` (this module)::

    inspect eval medfm_robust/vqa -T task=MedFMRobust-Mini-VQA -T corruptions=gaussian_noise \\
        -T severities=3 -T limit=5 --model openai/gpt-4o

Each Inspect sample is one item of the card's ``plan.EvaluationPlan`` (a sample clean, or under one
corruption at one severity): its input is the card's prompt, its id the item key and its metadata
the record fields (dataset, sample id, condition, corruption, severity, modality, key, ...). The
first solver, ``corrupted_view``, puts the shared view layer's 8-bit image before the prompt as a
PNG data URL (``views.CorruptedViews.png_bytes``, the bytes every host sends) when the sample runs:
views are made on demand, as for every host, never all at once when the task is built. The scorer computes the card's metrics with our own metric code
and keeps each per-sample state in the score's metadata, so that ``hosts.inspect_results`` reads
a log back into ``records.Record`` s exactly.

Task options (``-T key=value``): ``task`` a task card of the tool's kind (default: the full
benchmark's card), ``corruptions`` and ``severities`` comma-separated (default: the card's),
``mode`` ``table`` or ``ssim``, ``limit`` the number of samples (stratified; each keeps all its
conditions), ``seed`` the global seed of the views, ``data_root`` the data folder of cards that
need one (default ``$MEDFM_ROBUST_DATA``).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Sequence
from typing import Any

import anyio
from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset
from inspect_ai.dataset import Sample as InspectSample
from inspect_ai.model import ChatMessageUser, ContentImage, ContentText, GenerateConfig
from inspect_ai.scorer import Metric, SampleScore, Score, Scorer, Target, metric, scorer
from inspect_ai.solver import Generate, Solver, TaskState, chain, generate, solver

from .inspect_results import SCORER, STATE

NAMESPACE = "medfm_robust"  # the entry point's name: Inspect loads this module for medfm_robust/*
DEFAULT_CARDS = {
    "vqa": "MedFMRobust-VQA",
    "caption": "MedFMRobust-Caption",
    "report": "MedFMRobust-Report",
    "grounding": "MedFMRobust-Grounding",
}
MAX_TOKENS = 256  # the native runner's and lm-eval's default
_items: dict[str, tuple[Any, Any]] = {}  # item key -> (WorkItem, CorruptedViews) of built tasks
_task_samples: list[Any] = []  # the samples of the task built last


def task_samples() -> list[Any]:
    """The samples of the task built last in this process (the one `inspect eval` runs): what a
    model that learns from its task's samples, like the baselines, is fitted on, as our runner
    fits it on its plan's samples."""
    return list(_task_samples)


def _names(value: Any) -> tuple[str, ...] | None:
    """``-T corruptions=a,b`` arrives as ``"a,b"``, one name as a string, YAML lists as lists."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = value.split(",")
    elif not isinstance(value, (list, tuple)):
        value = [value]
    names = tuple(str(v).strip() for v in value if str(v).strip())
    return names or None


def _levels(value: Any) -> tuple[int, ...] | None:
    names = _names(value)
    return tuple(int(v) for v in names) if names else None


def build_plan(
    kind: str,
    task: str | None = None,
    corruptions: Any = None,
    severities: Any = None,
    mode: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    data_root: str | None = None,
) -> Any:
    """The evaluation plan of a task option set (``-T`` values as Inspect passes them)."""
    from ..errors import TaskError
    from ..plan import EvaluationPlan
    from ..tasks import get_task

    card = get_task(task or DEFAULT_CARDS[kind])
    if card.kind != kind:
        raise TaskError(
            f"task card '{card.name}' is a {card.kind} task; run it with "
            f"`inspect eval {NAMESPACE}/{card.kind}` (this is {NAMESPACE}/{kind})"
        )
    if mode not in (None, "", "table", "ssim"):
        raise TaskError(f"mode '{mode}' is unknown; use -T mode=table or -T mode=ssim")
    plan = EvaluationPlan.from_card(
        card,
        data_root=data_root if card.needs_data_root else None,
        limit=int(limit) if limit not in (None, "") else None,
        corruptions=_names(corruptions),
        severities=_levels(severities),
        seed=int(seed),
        severity_mode=mode or None,
    )
    unknown = plan.unknown_corruptions()
    if unknown:
        raise TaskError(
            f"corruptions {', '.join(unknown)} are in no suite of '{card.name}'; "
            "`medfm-robust corruptions list` shows the names"
        )
    return plan


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def item_metadata(item: Any, views: Any, plan: Any) -> dict[str, Any]:
    """The record fields of one plan item, as an Inspect sample's metadata."""
    sample, condition = item.sample, item.condition
    return {
        "medfm_task": plan.card.name,
        "key": item.key,
        "dataset": sample.dataset,
        "sample_id": sample.id,
        "modality": sample.modality,
        "condition": condition.key,
        "corruption": condition.corruption,
        "severity": condition.severity,
        "family": item.family,
        "seed": views.seed_for(sample, condition),
        "global_seed": plan.seed,
    }


def reference(sample: Any) -> str:
    """The target Inspect logs beside the answer (option letter, caption, report or box)."""
    if sample.answer is not None:
        return str(sample.answer)
    return str(list(sample.box)) if sample.box is not None else ""


def plan_samples(plan: Any) -> list[InspectSample]:
    """One Inspect sample per plan item: the card's prompt (the view is added when it runs)."""
    views = plan.views()
    samples = []
    for item in plan.items():
        _items[item.key] = (item, views)
        height, width = views.clean_image(item.sample).shape[:2]  # corruptions keep the size
        prompt = plan.card.render_prompt(item.sample, (width, height))
        samples.append(
            InspectSample(
                input=[ChatMessageUser(content=[ContentText(text=prompt)])],
                target=reference(item.sample),
                id=item.key,
                metadata=item_metadata(item, views, plan),
            )
        )
    return samples


def view_png(key: str) -> bytes:
    """The PNG of an item's view (made now, or taken from the view layer's cache)."""
    item, views = _items[key]
    return views.png_bytes(views.get(item.sample, item.condition, corruption=item.spec))


@solver(name="corrupted_view")
def corrupted_view() -> Solver:
    """Put the item's view before the prompt of its first user message, as a PNG data URL."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        png = await anyio.to_thread.run_sync(view_png, str(state.sample_id))
        image = ContentImage(image=data_url(png))
        for index, message in enumerate(state.messages):
            if isinstance(message, ChatMessageUser):
                content = message.content
                parts = [ContentText(text=content)] if isinstance(content, str) else content
                state.messages[index] = ChatMessageUser(content=[image, *parts])
                break
        return state

    return solve


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else value


@metric
def card_metrics(names: Sequence[str]) -> Metric:
    """Each card metric over the scored samples, overall and per condition (``name@condition``, e.g.
    ``accuracy@gaussian_noise_s3``; not brackets, which Inspect's console reads as markup),
    aggregated from the per-sample states by the metric's own code (corpus BLEU and CIDEr-D too)."""
    from ..metrics.base import get_metric

    def aggregate(name: str, group: list[SampleScore]) -> float:
        states = [
            (s.score.metadata or {})[STATE][name]
            for s in group
            if name in (s.score.metadata or {}).get(STATE, {})
        ]
        return get_metric(name).summarize(states)

    def compute(scores: list[SampleScore]) -> dict[str, float]:
        by_condition: dict[str, list[SampleScore]] = {}
        for sample_score in scores:
            condition = (sample_score.sample_metadata or {}).get("condition", "clean")
            by_condition.setdefault(condition, []).append(sample_score)
        conditions = sorted(by_condition, key=lambda c: (c != "clean", c))
        values: dict[str, float] = {}
        for name in names:
            values[name] = aggregate(name, scores)
            for condition in conditions:
                values[f"{name}@{condition}"] = aggregate(name, by_condition[condition])
        return values

    return compute


@scorer(metrics=[], name=SCORER)
def card_score(card: str) -> Scorer:
    """The card's metrics of one answer, by our metric code (accuracy with its answer extraction,
    BLEU / ROUGE-L / CIDEr-D, grounding IoU); each per-sample state goes into the metadata."""
    from ..metrics.base import get_metric
    from ..tasks import get_task

    task_card = get_task(card)

    async def score(state: TaskState, target: Target) -> Score:
        sample = _items[str(state.sample_id)][0].sample
        prediction = state.output.completion if state.output else ""
        states = {name: get_metric(name).score(prediction, sample) for name in task_card.metrics}
        values = {
            name: _finite(get_metric(name).per_sample(value)) for name, value in states.items()
        }
        return Score(value=values, answer=prediction, metadata={STATE: states})

    return score


def build_task(kind: str, **options: Any) -> Task:
    """The Inspect task of one kind for ``options`` (the ``-T`` values)."""
    plan = build_plan(kind, **options)
    samples = plan_samples(plan)
    _task_samples[:] = plan.samples()
    return Task(
        name=f"{NAMESPACE}/{kind}",
        dataset=MemoryDataset(samples, name=plan.card.name),
        solver=chain(corrupted_view(), generate()),
        scorer=card_score(plan.card.name),
        metrics=[card_metrics(list(plan.card.metrics))],
        config=GenerateConfig(temperature=0.0, max_tokens=MAX_TOKENS),
        metadata={"medfm_task": plan.card.name, "severity_mode": plan.mode, "seed": plan.seed},
    )


def _registered(kind: str) -> Callable[..., Task]:
    def factory(
        task: str | None = None,
        corruptions: str | None = None,
        severities: str | None = None,
        mode: str | None = None,
        limit: int | None = None,
        seed: int = 0,
        data_root: str | None = None,
    ) -> Task:
        return build_task(
            kind,
            task=task,
            corruptions=corruptions,
            severities=severities,
            mode=mode,
            limit=limit,
            seed=seed,
            data_root=data_root,
        )

    factory.__name__ = factory.__qualname__ = kind
    factory.__doc__ = f"MedFM-Robust {kind} task cards under corruptions (-T task=<card> ...)."
    # Inspect prefixes a task's name with the import package of its function
    # (medfm_robust_plugin); the tasks live in the namespace of their entry point instead, so that
    # `inspect eval medfm_robust/<kind>` finds them and a log names them so for `inspect eval-retry`.
    factory.__module__ = NAMESPACE
    return task(name=f"{NAMESPACE}/{kind}")(factory)


vqa = _registered("vqa")
caption = _registered("caption")
report = _registered("report")
grounding = _registered("grounding")
