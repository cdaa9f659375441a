"""The per-sample record: one (sample, condition) result, as every run and host writes it.

The native runner appends one record per item to ``records.jsonl``; lm-eval's logged samples and
VLMEvalKit's scored rows are read back into the same type, so reports and
``metrics.robustness.summarize`` read one shape whoever ran the model. A record on disk is
``Record.to_dict()``, one JSON line, with ``"schema": SCHEMA``; records written before that field
existed read back as schema 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from .errors import MedFMRobustError
from .plan import WorkItem, item_key

SCHEMA = 1


class RecordError(MedFMRobustError):
    """A record that cannot be read back."""


@dataclass
class Record:
    """One scored (or failed) item. ``state`` holds each metric's per-sample state (what its
    aggregate reads), ``score`` the per-sample number (None for corpus metrics); ``error`` set
    means the item failed and is never scored."""

    key: str
    sample_id: str
    dataset: str
    modality: str | None = None
    condition: str = "clean"
    corruption: str | None = None
    severity: int | None = None
    family: str | None = None
    task: str | None = None
    model: str | None = None
    seed: int | None = None  # the view's seed (None when clean)
    params: dict[str, Any] | None = None  # the corruption's applied parameters, for replay
    ssim: float | None = None  # of the presented view to the presented clean image
    prediction: Any = None
    state: dict[str, Any] = field(default_factory=dict)
    score: dict[str, Any] = field(default_factory=dict)
    tokens: dict[str, Any] | None = None
    cost_usd: float | None = None
    cached: bool | None = None
    seconds: dict[str, float] | None = None  # {"view": s, "model": s}
    error: str | None = None
    host: str | None = None  # the harness that ran the model (None: the native runner)
    extra: dict[str, Any] = field(default_factory=dict)  # keys of other writers, kept as read

    @classmethod
    def of(cls, item: WorkItem, **values: Any) -> Record:
        """The record of a plan's work item (its key, sample and condition), with ``values``."""
        sample, condition = item.sample, item.condition
        return cls(
            key=item.key,
            sample_id=sample.id,
            dataset=sample.dataset,
            modality=sample.modality,
            condition=condition.key,
            corruption=condition.corruption,
            severity=condition.severity,
            family=item.family,
            **values,
        )

    @property
    def failed(self) -> bool:
        return self.error is not None

    def to_dict(self) -> dict[str, Any]:
        """The record as one JSON line holds it (the fields, then ``schema``, then ``extra``)."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        data["schema"] = SCHEMA
        for name, value in self.extra.items():
            data.setdefault(name, value)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Record:
        """A record from its dict; one without ``schema`` (written before it existed) is schema 1,
        one without ``key`` gets the key of its dataset, sample and condition."""
        schema = data.get("schema", 1)
        if not isinstance(schema, int) or schema > SCHEMA:
            raise RecordError(
                f"record {data.get('key', '?')} has schema {schema!r}; this version reads schema "
                f"{SCHEMA} and older: upgrade medfm-robust-plugin to read it"
            )
        missing = [k for k in ("sample_id", "dataset") if k not in data]
        if missing:
            raise RecordError(
                f"record {dict(data)!r:.200} lacks {', '.join(missing)}; a record names its "
                "sample and dataset"
            )
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {k: v for k, v in data.items() if k in known}
        values["extra"] = {k: v for k, v in data.items() if k not in known and k != "schema"}
        values.setdefault("condition", "clean")
        values.setdefault(
            "key", item_key(str(data["dataset"]), str(data["sample_id"]), values["condition"])
        )
        for name in ("state", "score"):
            if values.get(name) is None:
                values[name] = {}
        return cls(**values)


def normalized(data: Mapping[str, Any]) -> dict[str, Any]:
    """A record dict as this version writes it (an older one gains the fields it lacked)."""
    return Record.from_dict(data).to_dict()
