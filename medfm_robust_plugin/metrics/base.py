"""What a task metric is: a per-sample score, and how a set of samples aggregates into one number.

Most metrics are means of per-sample values (accuracy, Dice, Acc@IoU). Corpus metrics (BLEU,
CIDEr-D) keep per-sample statistics and compute the score over the set, so ``aggregate`` receives
the per-sample states, never the already-averaged numbers. Metrics are registered through
``register_metrics`` and looked up by name with ``get_metric``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import MetricError
from ..lookup import get_metric

__all__ = ["Metric", "MetricError", "get_metric"]


@dataclass(frozen=True)
class Metric:
    """A registered task metric.

    ``score(prediction, sample) -> state``: the per-sample state (a float for mean metrics; any
    JSON-able value for corpus metrics). ``aggregate(states) -> float``: the score of a set.
    ``value(state) -> float``: the per-sample number shown in records (the state itself by default).
    ``higher_is_better`` orients drops and mCE.
    """

    name: str
    kinds: tuple[str, ...]  # task kinds it applies to
    score: Callable[[Any, Any], Any]
    aggregate: Callable[[Sequence[Any]], float] | None = None
    value: Callable[[Any], float] | None = None
    higher_is_better: bool = True
    description: str = ""

    def summarize(self, states: Sequence[Any]) -> float:
        if not states:
            return float("nan")
        if self.aggregate is not None:
            return float(self.aggregate(states))
        return float(sum(states) / len(states))

    def per_sample(self, state: Any) -> float:
        return float(self.value(state) if self.value is not None else state)
