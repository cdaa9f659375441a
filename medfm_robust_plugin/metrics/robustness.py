"""Robustness summaries: from per-sample records of a run to clean scores, drops and mCE.

A record is one (sample, condition) result of a run, as the runner writes it (one JSON line)::

    {"sample_id": "17", "dataset": "busi", "modality": "ultrasound",
     "condition": "speckle_noise_s3", "corruption": "speckle_noise", "severity": 3,
     "family": "ultrasound", "state": {"dice": 0.81, "iou": 0.68}, "error": null}

``condition`` is "clean" or "<corruption>_s<severity>"; ``corruption``, ``severity`` and ``family``
are None when clean; ``family`` "natural" is a base corruption, any other family a medical one.
A record with an ``error`` is a failure: counted, never scored.

``summarize(records, metrics)`` gives, per metric: the clean score; the score of each
(corruption, severity) and its absolute drop (clean - corrupted, sign flipped for lower-is-better
metrics, so a positive drop is always worse) and relative drop (absolute drop / clean); the mean
over severities per corruption; the worst corruption (largest mean absolute drop, none when no
corruption lowers the score); means over
the base and the medical corruptions and over all; the same per modality; failure counts; and
paired bootstrap intervals on the drops. Scores of a set are the metric's own aggregate of the
per-sample states (so corpus metrics such as BLEU and CIDEr-D are recomputed on every subset
and resample, not averaged). A drop compares a condition with the clean score of the same samples;
a condition none of whose samples was scored clean has no drop (its ``note`` says so) and is left
out of every mean drop.

``mce`` and ``relative_mce`` compare a summary with a reference model's, as ImageNet-C does
(Hendrycks & Dietterich 2019) and MedMNIST-C after it (Di Salvo et al. 2024).
"""

from __future__ import annotations

import math
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..attacks import ADVERSARIAL_FAMILY, ATTACKS
from .base import Metric, MetricError, get_metric

CLEAN = "clean"
BASE_FAMILY = "natural"  # the family of the base (natural-image) corruptions
GROUPS = ("base", "medical", "adversarial")
RESAMPLES = 1000
SEED = 0
CONFIDENCE = 0.95
NO_PAIRED = "no paired clean samples"  # why a condition has no drop

ROW_FIELDS = (
    "scope",
    "modality",
    "level",
    "corruption",
    "severity",
    "family",
    "metric",
    "higher_is_better",
    "score",
    "clean",
    "absolute_drop",
    "relative_drop",
    "absolute_drop_low",
    "absolute_drop_high",
    "relative_drop_low",
    "relative_drop_high",
    "n",
    "n_paired",
    "failed",
)

Interval = tuple[float, float]
SampleKey = tuple[str, str]  # (dataset, sample id)


def family_group(family: str | None) -> str | None:
    """ "base" for the natural family, "adversarial" for attacks, "medical" for any other
    corruption family, None for clean."""
    if family is None:
        return None
    if family == ADVERSARIAL_FAMILY:
        return "adversarial"
    return "base" if family == BASE_FAMILY else "medical"


def condition_key(corruption: str | None, severity: int | None) -> str:
    if corruption is None:
        return CLEAN
    if corruption in ATTACKS:
        return f"{corruption}_eps{severity}"
    return f"{corruption}_s{severity}"


# ------------------------------------------------------------------ results


@dataclass
class ConditionResult:
    """One corruption at one severity: scores, drops and their paired bootstrap intervals."""

    corruption: str
    severity: int
    family: str | None
    scores: dict[str, float]
    clean_scores: dict[str, float]  # the clean score of the same samples, which drops compare to
    absolute_drop: dict[str, float]
    relative_drop: dict[str, float]
    absolute_interval: dict[str, Interval | None]
    relative_interval: dict[str, Interval | None]
    n: int  # records scored
    n_paired: int  # samples scored both clean and here (what the intervals resample)
    failed: int

    @property
    def key(self) -> str:
        return condition_key(self.corruption, self.severity)

    @property
    def note(self) -> str | None:
        """Why this condition has no drop, or None when it has one."""
        if self.n_paired:
            return None
        return NO_PAIRED if self.n else "no scored samples"


@dataclass
class CorruptionResult:
    """One corruption, mean over its severities (severities whose records all failed are left out)."""

    corruption: str
    family: str | None
    severities: list[int]
    scores: dict[str, float]
    clean_scores: dict[str, float]
    absolute_drop: dict[str, float]
    relative_drop: dict[str, float]
    failed: int


@dataclass
class GroupResult:
    """Means over the (corruption, severity) conditions of a group: base, medical, or all.

    ``clean_scores`` is the mean of the conditions' own clean scores (each over the samples its
    corruption applies to), so ``clean_scores - scores`` is the mean absolute drop; the relative
    drop is that mean over ``clean_scores`` (a ratio of means: a subset whose clean score is near 0
    cannot blow it up, as a mean of ratios would).
    """

    group: str
    corruptions: list[str]
    scores: dict[str, float]
    clean_scores: dict[str, float]
    absolute_drop: dict[str, float]
    relative_drop: dict[str, float]
    unpaired: list[str] = field(default_factory=list)  # conditions without a drop: left out


@dataclass
class Summary:
    """The robustness of one model on one task (see the module doc)."""

    metrics: dict[str, bool]  # metric -> higher is better
    clean: dict[str, float]
    clean_n: int
    clean_failed: int
    conditions: list[ConditionResult]
    corruptions: list[CorruptionResult]
    overall: GroupResult
    by_family: dict[str, GroupResult]
    worst: dict[str, str | None]  # metric -> corruption with the largest mean absolute drop > 0
    failures: dict[str, Any]
    by_modality: dict[str, Summary] = field(default_factory=dict)
    bootstrap: dict[str, Any] = field(default_factory=dict)

    def condition(self, corruption: str, severity: int) -> ConditionResult:
        for result in self.conditions:
            if result.corruption == corruption and result.severity == severity:
                return result
        raise KeyError(f"no condition {condition_key(corruption, severity)} in this summary")

    def corruption(self, name: str) -> CorruptionResult:
        for result in self.corruptions:
            if result.corruption == name:
                return result
        raise KeyError(f"no corruption '{name}' in this summary")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (NaN as None)."""
        return _jsonable(
            {
                "metrics": {m: {"higher_is_better": hib} for m, hib in self.metrics.items()},
                "clean": {"scores": self.clean, "n": self.clean_n, "failed": self.clean_failed},
                "conditions": [
                    {
                        "condition": c.key,
                        "corruption": c.corruption,
                        "severity": c.severity,
                        "family": c.family,
                        "scores": c.scores,
                        "clean_scores": c.clean_scores,
                        "absolute_drop": c.absolute_drop,
                        "relative_drop": c.relative_drop,
                        "absolute_interval": c.absolute_interval,
                        "relative_interval": c.relative_interval,
                        "n": c.n,
                        "n_paired": c.n_paired,
                        "failed": c.failed,
                        "note": c.note,
                    }
                    for c in self.conditions
                ],
                "corruptions": [vars(c) for c in self.corruptions],
                "overall": vars(self.overall),
                "by_family": {g: vars(r) for g, r in self.by_family.items()},
                "worst": self.worst,
                "failures": self.failures,
                "bootstrap": self.bootstrap,
                "by_modality": {m: s.to_dict() for m, s in self.by_modality.items()},
            }
        )

    def rows(self) -> list[dict[str, Any]]:
        """Flat rows (keys ``ROW_FIELDS``) for a CSV: clean, conditions, corruptions, groups,
        for the whole run and then per modality."""
        rows = self._rows("all", None)
        for modality, summary in self.by_modality.items():
            rows.extend(summary._rows("modality", modality))
        return rows

    def _rows(self, scope: str, modality: str | None) -> list[dict[str, Any]]:
        rows = []

        def add(level: str, metric: str, **values: Any) -> None:
            row = dict.fromkeys(ROW_FIELDS)
            row.update(scope=scope, modality=modality, level=level, metric=metric)
            row.update(higher_is_better=self.metrics[metric], clean=self.clean[metric])
            row.update(values)
            rows.append(_jsonable(row))

        for metric in self.metrics:
            add("clean", metric, score=self.clean[metric], n=self.clean_n, failed=self.clean_failed)
            for c in self.conditions:
                low, high = c.absolute_interval.get(metric) or (None, None)
                rel_low, rel_high = c.relative_interval.get(metric) or (None, None)
                add(
                    "condition",
                    metric,
                    corruption=c.corruption,
                    severity=c.severity,
                    family=c.family,
                    score=c.scores[metric],
                    absolute_drop=c.absolute_drop[metric],
                    relative_drop=c.relative_drop[metric],
                    absolute_drop_low=low,
                    absolute_drop_high=high,
                    relative_drop_low=rel_low,
                    relative_drop_high=rel_high,
                    n=c.n,
                    n_paired=c.n_paired,
                    failed=c.failed,
                )
            for c in self.corruptions:
                add(
                    "corruption",
                    metric,
                    corruption=c.corruption,
                    family=c.family,
                    score=c.scores[metric],
                    absolute_drop=c.absolute_drop[metric],
                    relative_drop=c.relative_drop[metric],
                    failed=c.failed,
                )
            for group in (*self.by_family.values(), self.overall):
                add(
                    "family" if group is not self.overall else "overall",
                    metric,
                    family=group.group,
                    score=group.scores[metric],
                    absolute_drop=group.absolute_drop[metric],
                    relative_drop=group.relative_drop[metric],
                )
        return rows


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


# ------------------------------------------------------------------ records


@dataclass(frozen=True)
class _Record:
    sample: SampleKey
    modality: str
    corruption: str | None
    severity: int | None
    family: str | None
    state: Mapping[str, Any] | None
    error: str | None


def _read_records(records: Iterable[Mapping[str, Any]]) -> list[_Record]:
    """Checked records; a later record of the same (sample, condition) replaces an earlier one."""
    latest: dict[tuple[SampleKey, str], _Record] = {}
    for number, raw in enumerate(records):
        missing = [k for k in ("sample_id", "dataset", "state") if k not in raw]
        if missing:
            raise MetricError(
                f"record {number} lacks {', '.join(missing)}; records need sample_id, dataset, "
                "modality, condition, corruption, severity, family, state and error"
            )
        corruption = raw.get("corruption")
        severity = raw.get("severity")
        if corruption is None and raw.get("condition") not in (None, CLEAN):
            raise MetricError(
                f"record {number} ({raw['dataset']}/{raw['sample_id']}) has condition "
                f"'{raw.get('condition')}' but no corruption"
            )
        record = _Record(
            sample=(str(raw["dataset"]), str(raw["sample_id"])),
            modality=str(raw.get("modality") or "unknown"),
            corruption=None if corruption is None else str(corruption),
            severity=None if corruption is None else int(severity),
            family=raw.get("family"),
            state=raw.get("state"),
            error=raw.get("error") or None,
        )
        latest[(record.sample, condition_key(record.corruption, record.severity))] = record
    return list(latest.values())


def _states(records: Sequence[_Record], metric: str) -> dict[SampleKey, Any]:
    """The per-sample states of ``metric`` of the records that did not fail."""
    states = {}
    for record in records:
        if record.error is not None:
            continue
        if not record.state or metric not in record.state:
            raise MetricError(
                f"record {'/'.join(record.sample)} "
                f"({condition_key(record.corruption, record.severity)}) has no state for metric "
                f"'{metric}'; score it with that metric or leave the metric out of the summary"
            )
        states[record.sample] = record.state[metric]
    return states


def _resolve(metrics: Sequence[Metric | str]) -> list[Metric]:
    resolved = [m if isinstance(m, Metric) else get_metric(m) for m in metrics]
    if not resolved:
        raise MetricError("summarize needs at least one metric")
    return resolved


# ------------------------------------------------------------------ scores and drops


def _drop(metric: Metric, clean: Any, corrupted: Any) -> Any:
    """Clean minus corrupted, oriented so that a positive drop is worse."""
    return _oriented_drop(clean, corrupted, metric.higher_is_better)


def _oriented_drop(clean: Any, corrupted: Any, higher_is_better: bool) -> Any:
    return clean - corrupted if higher_is_better else corrupted - clean


def score_drops(
    clean: float, corrupted: float, higher_is_better: bool = True
) -> tuple[float, float]:
    """(absolute, relative) drop of a corrupted score from its clean score, as summaries give them:
    positive is worse; the relative drop is NaN when the clean score is 0.

    For scores a host computed itself (VLMEvalKit's own metric per condition), where no
    per-sample states exist to ``summarize``.
    """
    absolute = float(_oriented_drop(clean, corrupted, higher_is_better))
    return absolute, float(_relative(absolute, clean))


def _relative(drop: Any, clean: Any) -> Any:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(clean != 0, np.divide(drop, clean), np.nan)


Weigher = Callable[[np.ndarray], np.ndarray]  # sample weights (B x n) -> B scores


def _weigher(metric: Metric, states: Sequence[Any]) -> Weigher:
    """The metric's score of ``states`` as a function of per-sample weights (B x n -> B).

    Means are weighted means; an aggregate with ``prepare(states) -> f(weights)`` (BLEU, CIDEr-D)
    scores all rows at once; any other aggregate is rerun on each resampled list.
    """
    if metric.aggregate is None:
        values = np.asarray([metric.per_sample(s) for s in states], dtype=float)
        return lambda weights: weights @ values / weights.sum(axis=1)
    prepare = getattr(metric.aggregate, "prepare", None)
    if prepare is not None:
        prepared = prepare(list(states))
        return lambda weights: np.asarray(prepared(weights), dtype=float)

    def rescored(weights: np.ndarray) -> np.ndarray:
        return np.asarray(
            [
                metric.summarize([s for s, count in zip(states, row) for _ in range(count)])
                for row in weights.astype(int)
            ],
            dtype=float,
        )

    return rescored


def _bootstrap_weights(n: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """How often each of n samples is drawn in each of ``resamples`` resamples (B x n)."""
    draws = rng.integers(0, n, size=(resamples, n))
    flat = (draws + n * np.arange(resamples)[:, None]).ravel()
    return np.bincount(flat, minlength=resamples * n).reshape(resamples, n).astype(float)


def _interval(values: np.ndarray, confidence: float) -> Interval | None:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


@dataclass
class _Options:
    resamples: int
    seed: int
    confidence: float


def _condition(
    metrics: list[Metric],
    corruption: str,
    severity: int,
    records: list[_Record],
    clean: _Clean,
    options: _Options,
) -> ConditionResult:
    family = next((r.family for r in records if r.family is not None), None)
    states = {m.name: _states(records, m.name) for m in metrics}
    scored = next(iter(states.values()))
    paired = tuple(sorted(set(scored) & set(clean.states[metrics[0].name])))
    scores, baseline, absolute, relative, abs_interval, rel_interval = {}, {}, {}, {}, {}, {}
    weights = clean.resample(paired, options) if paired and options.resamples > 0 else None
    for metric in metrics:
        name = metric.name
        corrupted = None
        if weights is not None:
            corrupted = _weigher(metric, [states[name][k] for k in paired])
        if corrupted is not None and len(paired) == len(scored) and metric.aggregate is not None:
            scores[name] = float(corrupted(np.ones((1, len(paired))))[0])  # one costly setup
        else:
            scores[name] = metric.summarize(list(states[name].values()))
        # A suite's own corruptions apply to some modalities only: compare with the clean score of
        # the same samples, never with the whole task's clean score. Without such samples (e.g. a
        # limit that kept other samples clean) there is no drop to give.
        baseline[name] = clean.score_of(metric, paired) if paired else float("nan")
        absolute[name] = float(_drop(metric, baseline[name], scores[name]))
        relative[name] = float(_relative(absolute[name], baseline[name]))
        abs_interval[name] = rel_interval[name] = None
        if corrupted is not None:
            clean_b = clean.resampled_scores(metric, paired, options)
            drops = _drop(metric, clean_b, corrupted(weights))
            abs_interval[name] = _interval(drops, options.confidence)
            rel_interval[name] = _interval(_relative(drops, clean_b), options.confidence)
    return ConditionResult(
        corruption=corruption,
        severity=severity,
        family=family,
        scores=scores,
        clean_scores=baseline,
        absolute_drop=absolute,
        relative_drop=relative,
        absolute_interval=abs_interval,
        relative_interval=rel_interval,
        n=len(scored),
        n_paired=len(paired),
        failed=sum(r.error is not None for r in records),
    )


@dataclass
class _Clean:
    """The clean states and scores of a summary, and the bootstrap resamples of a paired set
    with the clean scores under them, made once per paired set (the same for every condition
    unless some samples failed). Every condition with the same paired samples thus uses the same
    resamples (common random numbers), and corpus metrics set up their clean tables once."""

    states: dict[str, dict[SampleKey, Any]]
    scores: dict[str, float]
    weights: dict[tuple[SampleKey, ...], np.ndarray] = field(default_factory=dict)
    resampled: dict[tuple[str, tuple[SampleKey, ...]], np.ndarray] = field(default_factory=dict)
    subset_scores: dict[tuple[str, tuple[SampleKey, ...]], float] = field(default_factory=dict)

    def score_of(self, metric: Metric, paired: tuple[SampleKey, ...]) -> float:
        """The clean score of the samples in ``paired`` (all of them: the task's clean score)."""
        if len(paired) == len(self.states[metric.name]):
            return self.scores[metric.name]
        key = (metric.name, paired)
        if key not in self.subset_scores:
            states = [self.states[metric.name][k] for k in paired]
            self.subset_scores[key] = float(metric.summarize(states))
        return self.subset_scores[key]

    def resample(self, paired: tuple[SampleKey, ...], options: _Options) -> np.ndarray:
        """How often each paired sample is drawn in each resample (B x n); one draw serves the
        clean and the corrupted states (a paired bootstrap) and every metric."""
        if paired not in self.weights:
            digest = zlib.crc32(repr(paired).encode())
            rng = np.random.default_rng([options.seed, digest])
            self.weights[paired] = _bootstrap_weights(len(paired), options.resamples, rng)
        return self.weights[paired]

    def resampled_scores(
        self, metric: Metric, paired: tuple[SampleKey, ...], options: _Options
    ) -> np.ndarray:
        key = (metric.name, paired)
        if key not in self.resampled:
            states = [self.states[metric.name][k] for k in paired]
            self.resampled[key] = _weigher(metric, states)(self.resample(paired, options))
        return self.resampled[key]


def _mean(values: Iterable[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _group(name: str, conditions: list[ConditionResult], metrics: list[Metric]) -> GroupResult:
    def mean_of(attribute: str) -> dict[str, float]:
        return {m.name: _mean(getattr(c, attribute)[m.name] for c in conditions) for m in metrics}

    absolute = mean_of("absolute_drop")  # conditions without paired clean samples have none
    clean = mean_of("clean_scores")
    return GroupResult(
        group=name,
        corruptions=sorted({c.corruption for c in conditions}),
        scores=mean_of("scores"),
        clean_scores=clean,
        absolute_drop=absolute,
        relative_drop={k: float(_relative(absolute[k], clean[k])) for k in absolute},
        unpaired=[c.key for c in conditions if c.n and not c.n_paired],
    )


def _corruption(name: str, conditions: list[ConditionResult], metrics: list[Metric]):
    group = _group(name, conditions, metrics)
    return CorruptionResult(
        corruption=name,
        family=conditions[0].family,
        severities=sorted(c.severity for c in conditions if c.n > 0),
        scores=group.scores,
        clean_scores=group.clean_scores,
        absolute_drop=group.absolute_drop,
        relative_drop=group.relative_drop,
        failed=sum(c.failed for c in conditions),
    )


def _summarize(records: list[_Record], metrics: list[Metric], options: _Options) -> Summary:
    clean_records = [r for r in records if r.corruption is None]
    by_condition: dict[tuple[str, int], list[_Record]] = defaultdict(list)
    for record in records:
        if record.corruption is not None:
            by_condition[(record.corruption, record.severity)].append(record)
    clean_states = {m.name: _states(clean_records, m.name) for m in metrics}
    clean_scores = {m.name: m.summarize(list(clean_states[m.name].values())) for m in metrics}
    clean = _Clean(clean_states, clean_scores)
    conditions = [
        _condition(metrics, c, s, by_condition[(c, s)], clean, options)
        for c, s in sorted(by_condition)
    ]
    per_corruption: dict[str, list[ConditionResult]] = defaultdict(list)
    for result in conditions:
        per_corruption[result.corruption].append(result)
    corruptions = [_corruption(name, per_corruption[name], metrics) for name in per_corruption]
    by_family = {}
    for group in GROUPS:
        members = [c for c in conditions if family_group(c.family) == group]
        if members:
            by_family[group] = _group(group, members, metrics)
    # the headline and the worst corruption are the corruptions' (attacks: group "adversarial")
    corrupting = [c for c in conditions if family_group(c.family) != "adversarial"]
    worst = {
        m.name: _worst([c for c in corruptions if family_group(c.family) != "adversarial"], m.name)
        for m in metrics
    }
    failed = [r for r in records if r.error is not None]
    failures = {
        "total": len(failed),
        "records": len(records),
        "by_condition": _counts(condition_key(r.corruption, r.severity) for r in failed),
        "by_modality": _counts(r.modality for r in failed),
    }
    return Summary(
        metrics={m.name: m.higher_is_better for m in metrics},
        clean=clean_scores,
        clean_n=len(next(iter(clean_states.values()))),
        clean_failed=sum(r.error is not None for r in clean_records),
        conditions=conditions,
        corruptions=corruptions,
        overall=_group("all", corrupting, metrics),
        by_family=by_family,
        worst=worst,
        failures=failures,
        bootstrap={
            "resamples": options.resamples,
            "seed": options.seed,
            "confidence": options.confidence,
        },
    )


def _worst(corruptions: list[CorruptionResult], metric: str) -> str | None:
    """The corruption with the largest mean absolute drop; None when no corruption lowers the
    score (every drop 0 or less, or none known); tied corruptions are all named, comma-separated."""
    drops = {c.corruption: c.absolute_drop[metric] for c in corruptions}
    drops = {k: v for k, v in drops.items() if not math.isnan(v)}
    if not drops or max(drops.values()) <= 0:
        return None
    top = max(drops.values())
    return ", ".join(sorted(k for k, v in drops.items() if math.isclose(v, top, abs_tol=1e-12)))


def _counts(values: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for value in values:
        counts[value] += 1
    return dict(sorted(counts.items()))


def summarize(
    records: Iterable[Mapping[str, Any]],
    metrics: Sequence[Metric | str],
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    confidence: float = CONFIDENCE,
    by_modality: bool = True,
) -> Summary:
    """The robustness summary of a run's records for ``metrics`` (Metric objects or names).

    Bootstrap intervals resample, ``resamples`` times with a generator seeded by ``seed`` and the
    condition, the samples scored both clean and under the condition; the same draw weighs the
    clean and the corrupted states (a paired bootstrap) and every metric. ``resamples=0`` skips
    them. ``by_modality`` adds a summary per modality.
    """
    if not 0 < confidence < 1:
        raise MetricError(f"confidence must lie in (0, 1), not {confidence}")
    read = _read_records(records)
    resolved = _resolve(metrics)
    options = _Options(int(resamples), int(seed), float(confidence))
    summary = _summarize(read, resolved, options)
    if by_modality:
        modalities = sorted({r.modality for r in read})
        summary.by_modality = {
            m: _summarize([r for r in read if r.modality == m], resolved, options)
            for m in modalities
        }
    return summary


# ------------------------------------------------------------------ mCE


@dataclass
class CorruptionError:
    """mCE (or relative mCE) of a model against a reference model, and its per-corruption CE."""

    metric: str
    value: float  # mean over the corruptions with a defined CE
    per_corruption: dict[str, float]
    relative: bool
    undefined: list[str]  # corruptions whose reference error (or its rise) is zero or less
    missing: list[str]  # corruptions in only one of the two summaries

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(vars(self))


def _error(score: float, higher_is_better: bool) -> float:
    """ImageNet-C's error: 1 - score for a score in [0, 1]; the value itself when lower is better."""
    return 1.0 - score if higher_is_better else score


def _corruption_errors(
    summary: Summary, reference: Summary, metric: str | None, relative: bool
) -> CorruptionError:
    name = metric or next(iter(summary.metrics))
    if summary.clean_n != reference.clean_n:
        import warnings

        warnings.warn(
            f"mCE between summaries of {summary.clean_n} and {reference.clean_n} clean samples: "
            "errors of different samples do not compare; summarize runs on the same samples",
            stacklevel=3,
        )
    if name not in summary.metrics or name not in reference.metrics:
        raise MetricError(f"metric '{name}' is not in both summaries; summarize both with it")
    higher = summary.metrics[name]

    def errors(s: Summary) -> dict[str, dict[int, float]]:
        table: dict[str, dict[int, float]] = defaultdict(dict)
        for c in s.conditions:
            if not math.isnan(c.scores[name]):
                table[c.corruption][c.severity] = _error(c.scores[name], higher)
        return table

    ours, theirs = errors(summary), errors(reference)
    clean, reference_clean = (
        _error(summary.clean[name], higher),
        _error(reference.clean[name], higher),
    )
    common = sorted(set(ours) & set(theirs))
    if not common:
        raise MetricError(
            "the summary and the reference share no corruption: mCE needs the same grid"
        )
    per_corruption, undefined = {}, []
    for corruption in common:
        severities = sorted(set(ours[corruption]) & set(theirs[corruption]))
        numerator = sum(ours[corruption][s] - (clean if relative else 0.0) for s in severities)
        denominator = sum(
            theirs[corruption][s] - (reference_clean if relative else 0.0) for s in severities
        )
        if not severities or denominator <= 0:
            undefined.append(corruption)
            per_corruption[corruption] = float("nan")
        else:
            per_corruption[corruption] = numerator / denominator
    defined = [v for v in per_corruption.values() if not math.isnan(v)]
    return CorruptionError(
        metric=name,
        value=float(np.mean(defined)) if defined else float("nan"),
        per_corruption=per_corruption,
        relative=relative,
        undefined=undefined,
        missing=sorted(set(ours) ^ set(theirs)),
    )


def mce(summary: Summary, reference_summary: Summary, metric: str | None = None) -> CorruptionError:
    """Mean corruption error normalised by a reference model (ImageNet-C).

    CE_c = sum_s E_{s,c} / sum_s E^ref_{s,c}, with E = 1 - score for a higher-is-better metric in
    [0, 1] and E = the value for a lower-is-better one; mCE is the mean of CE_c over the
    corruptions both summaries hold. ``metric`` defaults to the summary's first metric.
    """
    return _corruption_errors(summary, reference_summary, metric, relative=False)


def relative_mce(
    summary: Summary, reference_summary: Summary, metric: str | None = None
) -> CorruptionError:
    """Relative mCE: CE_c = sum_s (E_{s,c} - E_clean) / sum_s (E^ref_{s,c} - E^ref_clean), the
    degradation beyond the model's own clean error relative to the reference's. A corruption that
    does not raise the reference's error has no relative CE (listed in ``undefined``)."""
    return _corruption_errors(summary, reference_summary, metric, relative=True)


__all__ = [
    "ConditionResult",
    "CorruptionError",
    "CorruptionResult",
    "GroupResult",
    "Summary",
    "family_group",
    "mce",
    "relative_mce",
    "summarize",
]
