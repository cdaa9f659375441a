"""Task cards: one YAML file per benchmark task, read by every host and by the native runner.

A card says what data (dataset loader and options), which prompt, which metrics, which corruption
suite per modality, which severities and how they are set (table or SSIM), and how to sample. Files
may ``include:`` a shared template (names starting with ``_`` are templates, not tasks), and
``variants:`` generate sized-down copies such as ``-Lite`` instead of copied files.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .attacks import ATTACKS
from .data.sample import TASK_KINDS, LoadResult, Sample, Skipped
from .errors import SuiteError, TaskError
from .hookspecs import hookimpl
from .lookup import get_suite
from .lookup import get_task as get_task  # handed on: tasks.get_task is public
from .resources import bundled_files

CLEAN = "clean"


@dataclass(frozen=True)
class Condition:
    """One evaluation condition: clean, or one corruption at one severity."""

    corruption: str | None
    severity: int | None

    @property
    def key(self) -> str:
        """A slug used in file names, host row ids and lm-eval task names: ``clean``, ``name_s3``,
        or an attack at an epsilon, ``pgd_eps8``."""
        if self.corruption is None:
            return CLEAN
        if self.corruption in ATTACKS:
            return f"{self.corruption}_eps{self.severity}"
        return f"{self.corruption}_s{self.severity}"

    @property
    def is_clean(self) -> bool:
        return self.corruption is None


CLEAN_CONDITION = Condition(None, None)


@dataclass(frozen=True)
class DatasetRef:
    name: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Sampling:
    """Which samples a run uses: all, ``size`` in total, or ``per_modality`` / ``per_dataset`` each."""

    size: int | None = None
    per_group: int | None = None
    stratify: str = "modality"  # "modality" or "dataset"
    seed: int = 0


@dataclass(frozen=True)
class TaskCard:
    name: str
    kind: str
    datasets: tuple[DatasetRef, ...]
    prompt: str
    metrics: tuple[str, ...]
    suites: dict[str, str] | str  # "by_modality", one suite name, or {modality: suite}
    severities: tuple[int, ...] = (1, 2, 3, 4, 5)
    severity_mode: str = "table"
    corruptions: tuple[str, ...] | None = None  # restrict every suite to these
    modality: str | None = None
    sampling: Sampling = Sampling()
    description: str = ""
    citation: str = ""
    license: str = ""
    access: str = ""
    needs_data_root: bool = True
    source: str = ""
    # the window a modality is shown in ({modality: CT preset name or (bottom, top)}); see presentation
    windows: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ data

    def load(
        self, data_root: str | Path | None = None, allow_outside_data_root: bool | None = None
    ) -> LoadResult:
        """The task's samples (after sampling) and every item its loaders skipped.

        Files a dataset names outside its data root are refused unless ``allow_outside_data_root``
        (default: ``$MEDFM_ROBUST_ALLOW_OUTSIDE_DATA_ROOT``).
        """
        from .data.sample import data_root as resolve_root
        from .plugins import get_registry

        registry = get_registry()
        samples: list[Sample] = []
        skipped: list[Skipped] = []
        for ref in self.datasets:
            try:
                loader = registry.get("datasets", ref.name)
            except KeyError:
                raise TaskError(
                    f"task '{self.name}' needs dataset '{ref.name}', which no loaded plugin registers"
                ) from None
            root = None
            if self.needs_data_root:
                explicit = (
                    Path(data_root) / ref.name
                    if data_root and len(self.datasets) > 1
                    else data_root
                )
                root = resolve_root(explicit, ref.name)
            options = dict(ref.options)
            if allow_outside_data_root is not None:
                options["allow_outside_data_root"] = allow_outside_data_root
            result = loader.load(root, **options)
            for sample in result.samples:
                if self.modality and not sample.modality:
                    sample.modality = self.modality
                if sample.modality in self.windows:
                    # the task's window wins over the file's (a lung task reads CT in a lung window)
                    sample.meta["display_window"] = self.windows[sample.modality]
            samples.extend(result.samples)
            skipped.extend(result.skipped)
        return LoadResult(select(samples, self.sampling), skipped)

    # ------------------------------------------------------------------ conditions

    def suite_name(self, modality: str) -> str | None:
        if isinstance(self.suites, dict):
            return self.suites.get(modality)
        if self.suites == "by_modality":
            return modality
        return self.suites

    def corruptions_for(self, modality: str) -> list[Any]:
        """The corruptions a sample of ``modality`` is run under (the suite's, restricted if asked)."""
        name = self.suite_name(modality)
        if name is None:
            return []
        try:
            suite = get_suite(name)
        except SuiteError:
            return []  # a modality without a suite is evaluated clean only
        specs = suite.corruptions()
        if self.corruptions is not None:
            specs = [s for s in specs if s.name in self.corruptions]
        return specs

    def conditions_for(self, modality: str) -> list[Condition]:
        """Clean first, then every corruption at every severity."""
        return [CLEAN_CONDITION] + [
            Condition(spec.name, level)
            for spec in self.corruptions_for(modality)
            for level in self.severities
        ]

    # ------------------------------------------------------------------ prompts

    def render_prompt(self, sample: Sample, image_size: tuple[int, int] | None = None) -> str:
        """The prompt of ``sample`` from the card's template."""
        from .modalities import label

        fields: dict[str, Any] = {
            "question": sample.question or "",
            "modality": label(sample.modality),
        }
        if sample.options:
            fields["options"] = "\n".join(f"{k}. {v}" for k, v in sample.options.items())
        if image_size is not None:
            fields["width"], fields["height"] = image_size
        try:
            return self.prompt.format(**fields)
        except KeyError as exc:
            raise TaskError(
                f"task '{self.name}': prompt uses {{{exc.args[0]}}}, which sample '{sample.id}' lacks"
            ) from None

    def with_overrides(self, **changes: Any) -> TaskCard:
        """A copy with some fields changed (e.g. from the command line)."""
        import dataclasses

        return dataclasses.replace(self, **changes)


def select(samples: list[Sample], sampling: Sampling) -> list[Sample]:
    """Deterministic, stratified sub-sampling; the original order is kept."""
    if sampling.size is None and sampling.per_group is None:
        return samples
    groups: dict[str, list[int]] = defaultdict(list)
    for index, sample in enumerate(samples):
        key = sample.dataset if sampling.stratify == "dataset" else sample.modality
        groups[key].append(index)
    rng = np.random.default_rng(sampling.seed)
    keep: set[int] = set()
    if sampling.per_group is not None:
        for key in sorted(groups):
            members = groups[key]
            keep.update(rng.permutation(members)[: sampling.per_group].tolist())
    if sampling.size is not None:
        pool = sorted(keep) if keep else list(range(len(samples)))
        if len(pool) > sampling.size:
            by_group: dict[str, list[int]] = defaultdict(list)
            for index in pool:
                s = samples[index]
                by_group[s.dataset if sampling.stratify == "dataset" else s.modality].append(index)
            quota = _quotas({k: len(v) for k, v in by_group.items()}, sampling.size)
            keep = set()
            for key in sorted(by_group):
                keep.update(rng.permutation(by_group[key])[: quota[key]].tolist())
        else:
            keep = set(pool)
    return [samples[i] for i in sorted(keep)]


def _quotas(sizes: dict[str, int], total: int) -> dict[str, int]:
    """Proportional quotas summing to ``total`` (largest remainders)."""
    whole = sum(sizes.values())
    exact = {k: total * n / whole for k, n in sizes.items()}
    quota = {k: int(v) for k, v in exact.items()}
    for key in sorted(exact, key=lambda k: exact[k] - quota[k], reverse=True)[
        : total - sum(quota.values())
    ]:
        quota[key] += 1
    return quota


# ---------------------------------------------------------------------- reading cards

CARD_KEYS = {
    "task",
    "kind",
    "dataset",
    "datasets",
    "prompt",
    "metrics",
    "suites",
    "severities",
    "severity_mode",
    "corruptions",
    "modality",
    "sampling",
    "description",
    "citation",
    "license",
    "access",
    "needs_data_root",
    "windows",
    "include",
    "variants",
}


def read_card_data(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A card's YAML with its ``include:`` chain merged (the including file wins)."""
    if path in seen:
        raise TaskError(f"task card '{path}' includes itself")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise TaskError(f"task card '{path}' could not be read: {exc}") from exc
    if not isinstance(data, dict):
        raise TaskError(f"task card '{path}' must hold a mapping")
    include = data.pop("include", None)
    if include:
        base = read_card_data(path.parent / include, (*seen, path))
        data = _merge(base, data)
    return data


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "suites":
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_card(data: dict[str, Any], source: str = "<card>") -> list[TaskCard]:
    """The card and the variants it declares."""
    unknown = set(data) - CARD_KEYS
    if unknown:
        raise TaskError(f"task card '{source}' has unknown keys {sorted(unknown)}")
    variants = data.pop("variants", None) or {}
    cards = [_card(data, source)]
    for suffix, changes in variants.items():
        if not isinstance(changes, dict):
            raise TaskError(
                f"task card '{source}': variant '{suffix}' must be a mapping of changes"
            )
        variant = _merge(data, changes)
        variant["task"] = f"{data['task']}-{suffix}"
        cards.append(_card(variant, source))
    return cards


def _windows(raw: Any, source: str) -> dict[str, Any]:
    """A card's ``windows:`` ({modality: CT preset or [bottom, top]}), checked."""
    from .presentation import ct_window

    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise TaskError(f"task card '{source}': windows must map modalities to windows")
    windows: dict[str, Any] = {}
    for modality, window in raw.items():
        try:
            lo, hi = ct_window(window if isinstance(window, str) else tuple(window))
        except Exception as exc:
            raise TaskError(f"task card '{source}': window of '{modality}': {exc}") from None
        if not hi > lo:
            raise TaskError(f"task card '{source}': window of '{modality}' must rise, got {window}")
        windows[str(modality)] = window if isinstance(window, str) else [lo, hi]
    return windows


def _card(data: dict[str, Any], source: str) -> TaskCard:
    def need(key: str) -> Any:
        if key not in data or data[key] in (None, ""):
            raise TaskError(f"task card '{source}' lacks '{key}'")
        return data[key]

    name = str(need("task"))
    kind = need("kind")
    if kind not in TASK_KINDS:
        raise TaskError(
            f"task card '{source}': kind '{kind}' is not one of {', '.join(TASK_KINDS)}"
        )
    raw = data.get("datasets") or ([data["dataset"]] if data.get("dataset") else None)
    if not raw:
        raise TaskError(f"task card '{source}' lacks 'dataset'")
    datasets = tuple(_dataset_ref(item, source) for item in raw)
    severities = tuple(int(s) for s in data.get("severities", (1, 2, 3, 4, 5)))
    if not severities or any(not 1 <= s <= 5 for s in severities):
        raise TaskError(
            f"task card '{source}': severities must be within 1-5, got {list(severities)}"
        )
    mode = data.get("severity_mode", "table")
    if mode not in ("table", "ssim"):
        raise TaskError(f"task card '{source}': severity_mode must be 'table' or 'ssim'")
    sampling_data = data.get("sampling") or {}
    per_group = sampling_data.get("per_modality", sampling_data.get("per_dataset"))
    sampling = Sampling(
        size=sampling_data.get("size"),
        per_group=per_group,
        stratify="dataset"
        if "per_dataset" in sampling_data
        else sampling_data.get("stratify", "modality"),
        seed=int(sampling_data.get("seed", 0)),
    )
    corruptions = data.get("corruptions")
    return TaskCard(
        name=name,
        kind=kind,
        datasets=datasets,
        prompt=str(data.get("prompt", "")),
        metrics=tuple(need("metrics")),
        suites=data.get("suites", "by_modality"),
        severities=severities,
        severity_mode=mode,
        corruptions=tuple(corruptions) if corruptions else None,
        modality=data.get("modality"),
        sampling=sampling,
        description=str(data.get("description", "")).strip(),
        citation=str(data.get("citation", "")).strip(),
        license=str(data.get("license", "")).strip(),
        access=str(data.get("access", "")).strip(),
        needs_data_root=bool(data.get("needs_data_root", True)),
        windows=_windows(data.get("windows"), source),
        source=source,
    )


def _dataset_ref(item: Any, source: str) -> DatasetRef:
    if isinstance(item, str):
        return DatasetRef(item)
    if isinstance(item, dict) and isinstance(item.get("name"), str):
        return DatasetRef(item["name"], dict(item.get("options") or {}))
    raise TaskError(
        f"task card '{source}': dataset entry {item!r} must be a name or {{name, options}}"
    )


def load_card_file(path: str | Path) -> list[TaskCard]:
    """The task(s) one card file defines."""
    path = Path(path)
    return parse_card(read_card_data(path), str(path))


@hookimpl
def register_tasks(register):
    for path in bundled_files("tasks"):
        if path.name.startswith("_"):
            continue
        for card in load_card_file(path):
            register(card)
