"""The evaluation plan: which samples, under which conditions, in which order, under which keys.

One plan serves the native runner, ``materialize`` and every host, so that they all evaluate the
same grid and name its items alike. A plan is built from a task card and the options a user
passes (corruptions, severities, severity mode, a sample limit, the global seed)::

    plan = EvaluationPlan.from_card("MedFMRobust-Mini-VQA-Lite", limit=6, severities=(1, 5))
    for item in plan.items():  # sample by sample: clean, then each corruption at each severity
        print(item.key)        # "<dataset>/<sample id>/<condition>", e.g. "mini/3/contrast_s5"

The samples are the card's (after its own sampling); ``limit`` keeps a stratified, seeded subset of
them (every modality stays; see ``tasks.select``), drawn with the card's sampling seed unless
``limit_seed`` says otherwise. The corruptions of a sample are its modality suite's, as the card
chooses them, narrowed to ``corruptions`` when given.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .attacks import is_attack
from .data.sample import Sample
from .tasks import CLEAN_CONDITION, Condition, Sampling, TaskCard, select


def item_key(dataset: str, sample_id: str, condition: Condition | str) -> str:
    """The key of one (sample, condition) item: ``<dataset>/<sample id>/<condition key>``.

    Records, manifests, host rows and lm-eval documents all carry it; a rerun skips the keys it
    finds finished.
    """
    key = condition if isinstance(condition, str) else condition.key
    return f"{dataset}/{sample_id}/{key}"


@dataclass(frozen=True)
class WorkItem:
    """One sample under one condition, with its key and the suite's Corruption (None when clean)."""

    sample: Sample
    condition: Condition
    key: str
    spec: Any = None

    @property
    def family(self) -> str | None:
        return self.spec.family if self.spec is not None else None

    @property
    def is_attack(self) -> bool:
        """An attacked item: made from the clean view by the model's own gradients, at predict time."""
        return is_attack(self.condition.corruption)


def condition_grid(specs: Iterable[Any], severities: Sequence[int]) -> list[tuple[Condition, Any]]:
    """(condition, corruption) pairs in plan order: clean, then each corruption at each severity."""
    return [(CLEAN_CONDITION, None)] + [
        (Condition(spec.name, level), spec) for spec in specs for level in severities
    ]


def limit_samples(samples: list[Sample], limit: int | None, seed: int) -> list[Sample]:
    """At most ``limit`` of ``samples``: a stratified subset drawn with ``seed``, in their order."""
    if limit is None:
        return samples
    return select(samples, Sampling(size=limit, seed=seed))


@dataclass(frozen=True)
class EvaluationPlan:
    """A task's samples x conditions, in a fixed order, with the options that shaped them.

    ``loaded`` may hand over the card's samples when the caller has loaded them already (the
    limit still applies); otherwise they are loaded when first asked for.
    """

    card: TaskCard
    data_root: str | None = None
    limit: int | None = None
    corruptions: tuple[str, ...] | None = None  # None: every corruption of each modality suite
    severities: tuple[int, ...] | None = None  # None: the card's
    seed: int = 0  # the global seed of the corrupted views
    severity_mode: str | None = None  # None: the card's
    limit_seed: int | None = None  # the seed of the limit's sampling; None: the card's
    # white-box attacks (attacks.Attack) at each epsilon, after the corruptions; none by default
    attacks: tuple[Any, ...] = ()
    epsilons: tuple[int, ...] = ()
    loaded: tuple[Sample, ...] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.severity_mode and self.severity_mode != self.card.severity_mode:
            object.__setattr__(
                self, "card", self.card.with_overrides(severity_mode=self.severity_mode)
            )
        object.__setattr__(self, "_samples", None)

    @classmethod
    def from_card(
        cls,
        card: TaskCard | str,
        *,
        data_root: str | None = None,
        limit: int | None = None,
        corruptions: Iterable[str] | None = None,
        severities: Iterable[int] | None = None,
        seed: int = 0,
        severity_mode: str | None = None,
        limit_seed: int | None = None,
        samples: Iterable[Sample] | None = None,
        attacks: Iterable[Any] = (),
        epsilons: Iterable[int] = (),
    ) -> EvaluationPlan:
        """The plan of a task card (or its name) with a user's options; empty choices mean all."""
        if isinstance(card, str):
            from .tasks import get_task

            card = get_task(card)
        corruptions = tuple(corruptions) if corruptions else None
        severities = tuple(int(s) for s in severities) if severities else None
        return cls(
            card,
            data_root=data_root,
            limit=int(limit) if limit is not None else None,
            corruptions=corruptions,
            severities=severities,
            seed=int(seed),
            severity_mode=severity_mode or None,
            limit_seed=limit_seed,
            attacks=tuple(attacks),
            epsilons=tuple(int(e) for e in epsilons),
            loaded=tuple(samples) if samples is not None else None,
        )

    def __getstate__(self) -> dict[str, Any]:
        # a worker process gets the options, not the samples: it loads them itself and its keys
        # are checked against the parent's (a loader must list samples in the same order)
        state = dict(self.__dict__)
        state["_samples"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    # ------------------------------------------------------------------ the grid

    @property
    def levels(self) -> tuple[int, ...]:
        """The severities every corruption is run at."""
        return tuple(self.severities or self.card.severities)

    @property
    def mode(self) -> str:
        """How severities are set: ``table`` or ``ssim``."""
        return self.card.severity_mode

    def with_samples(self, samples: Iterable[Sample]) -> EvaluationPlan:
        """The same plan over samples already loaded (the limit still applies)."""
        return replace(self, loaded=tuple(samples))

    def samples(self) -> list[Sample]:
        """The card's samples after its sampling and the limit (loaded once)."""
        cached = self.__dict__.get("_samples")
        if cached is None:
            if self.loaded is not None:
                loaded = list(self.loaded)
            else:
                loaded = self.card.load(self.data_root).samples
            seed = self.card.sampling.seed if self.limit_seed is None else self.limit_seed
            cached = limit_samples(loaded, self.limit, seed)
            object.__setattr__(self, "_samples", cached)
        return list(cached)

    def corruptions_for(self, modality: str) -> list[Any]:
        """The corruptions a sample of ``modality`` is run under."""
        specs = self.card.corruptions_for(modality)
        if self.corruptions:
            specs = [s for s in specs if s.name in self.corruptions]
        return specs

    def items_of(self, sample: Sample) -> list[WorkItem]:
        """The items of one sample: clean, then each corruption at each severity, then each
        attack at each epsilon."""
        grid = condition_grid(self.corruptions_for(sample.modality), self.levels)
        grid += [
            (Condition(attack.name, epsilon), attack)
            for attack in self.attacks
            for epsilon in self.epsilons
        ]
        return [
            WorkItem(sample, condition, item_key(sample.dataset, sample.id, condition), spec)
            for condition, spec in grid
        ]

    def items(self, samples: Iterable[Sample] | None = None) -> Iterator[WorkItem]:
        """Every item, sample by sample (of ``samples`` when given, else the plan's)."""
        for sample in self.samples() if samples is None else samples:
            yield from self.items_of(sample)

    def keys(self) -> list[str]:
        return [item.key for item in self.items()]

    def unknown_corruptions(self) -> list[str]:
        """Chosen corruptions that no suite of the plan's samples has (so nothing runs them)."""
        known = {
            spec.name
            for modality in {s.modality for s in self.samples()}
            for spec in self.card.corruptions_for(modality)
        }
        return sorted(set(self.corruptions or ()) - known)

    def views(self, memory_items: int = 256) -> Any:
        """The corrupted-view layer this plan's items are made by (its seed and severity mode)."""
        from .views import CorruptedViews

        return CorruptedViews(global_seed=self.seed, mode=self.mode, memory_items=memory_items)
