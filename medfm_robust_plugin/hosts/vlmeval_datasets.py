"""VLMEvalKit dataset classes over the task cards and the shared corrupted-view layer.

Imported by ``hosts.vlmeval.register()`` only, once VLMEvalKit is known to be importable.

One row per item of the evaluation plan (``plan.EvaluationPlan``): clean first, then every corruption
of the sample's modality suite at every severity, grouped by sample; ``vlmeval --limit N`` (when
every dataset is ours) takes N whole samples (``hosts.vlmeval.whole_sample_limit``). A row carries ``condition``, ``corruption``, ``severity``, ``modality``, ``sample_id`` (the clean sample)
and ``source_dataset`` but no image: the image is made by the view layer when VLMEvalKit asks for
it (``build_prompt`` / ``dump_image``) and written once as a content-addressed PNG.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

import pandas as pd
from vlmeval.dataset.image_base import ImageBaseDataset
from vlmeval.dataset.image_mcq import ImageMCQDataset
from vlmeval.smp import dump, get_intermediate_file_path, load

from ..data.sample import DATA_ROOT_ENV
from ..errors import MedFMRobustError
from ..metrics.base import get_metric
from ..plan import EvaluationPlan, WorkItem, item_key
from ..records import Record
from ..tasks import CLEAN, CLEAN_CONDITION, Condition, TaskCard, get_task

CLEAN_SEVERITY = 0  # what a clean row carries in the ``severity`` column
NO_CORRUPTION = "none"  # ... and in the ``corruption`` column
INFER_FAIL = "Failed to obtain answer"  # VLMEvalKit's marker of a failed API call
ROBUSTIFIED_SEVERITIES = (1, 3, 5)  # default grid of <dataset>-MedFMRobust (as the -Lite cards)
JUDGE_KEY_ENVS = ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "LOCAL_LLM")


class MedFMRobustDatasetError(MedFMRobustError, ValueError):
    """A MedFM-Robust dataset that VLMEvalKit asked for but that cannot be built as asked."""


VLMEVAL_DATA_ROOT = (
    f"Under vlmeval the data root is ${DATA_ROOT_ENV} (DIR holding each dataset as "
    'DIR/<dataset name>), or "data_root" in the dataset\'s entry of a --config JSON '
    "(docs/vlmeval.md)"
)


def no_data_root(dataset: str, card: TaskCard) -> str:
    """What to do when a card that reads files is asked for without a data root."""
    names = ", ".join(ref.name for ref in card.datasets)
    return (
        f"{dataset}: task card {card.name} reads {names} from disk, and no data root is set: "
        f"set {DATA_ROOT_ENV}=DIR before vlmeval (with {names} in DIR/<dataset name>), or give "
        f'"data_root": DIR in the dataset\'s entry of a --config JSON (docs/vlmeval.md); '
        f"`medfm-robust tasks show {card.name}` says how to get the data"
    )


# --------------------------------------------------------------------------- shared parts


def card_names(kinds: tuple[str, ...]) -> list[str]:
    from ..plugins import get_registry

    registry = get_registry()
    return [n for n in registry.names("tasks") if registry.get("tasks", n).kind in kinds]


def condition_of(row: Any) -> Condition:
    if row["condition"] == CLEAN:
        return CLEAN_CONDITION
    return Condition(str(row["corruption"]), int(row["severity"]))


def condition_columns(condition: Condition) -> dict[str, Any]:
    return {
        "condition": condition.key,
        "corruption": condition.corruption or NO_CORRUPTION,
        "severity": condition.severity or CLEAN_SEVERITY,
    }


def as_list(value: Any, cast: type = str) -> list[Any] | None:
    """A list from a JSON list, a comma-separated string or one value; None stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [v for v in re.split(r"[,\s]+", value) if v]
    elif not isinstance(value, (list, tuple)):
        value = [value]
    return [cast(v) for v in value]


def judge_requested(argv: list[str] | None = None) -> bool:
    argv = sys.argv if argv is None else argv
    return any(a == "--judge" or a.startswith("--judge=") for a in argv)


def choose_judge(judge_kwargs: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """VLMEvalKit's judge as configured; exact matching, said aloud, when none is configured and no
    judge key is set (instead of VLMEvalKit's default judge failing through its retries)."""
    judge = judge_kwargs.get("model") or "exact_matching"
    if judge == "exact_matching":
        return {**judge_kwargs, "model": "exact_matching"}, "exact matching"
    has_key = judge_kwargs.get("key") or any(os.environ.get(e) for e in JUDGE_KEY_ENVS)
    if judge_requested() or has_key:
        return judge_kwargs, f"VLMEvalKit's answer extraction with judge {judge}"
    print(
        "MedFM-Robust: no judge configured (--judge) and no judge key set (OPENAI_API_KEY): "
        "multiple-choice answers are scored by exact matching. Pass --judge <model> with a key "
        "to let an LLM judge extract answers that do not match an option letter.",
        flush=True,
    )
    return {**judge_kwargs, "model": "exact_matching"}, "exact matching (no judge configured)"


def robustness_table(summary: Any) -> pd.DataFrame:
    """VLMEvalKit's table output: clean, each corruption at each severity, each corruption's mean
    and the mean over all corrupted conditions, with absolute and relative drops."""
    metrics = list(summary.metrics)

    def row(name: str, corruption: Any, severity: Any, n: Any, scores, absolute, relative):
        out = {"condition": name, "corruption": corruption, "severity": severity, "n": n}
        for m in metrics:
            out[m] = scores.get(m)
            out[f"{m} abs drop"] = absolute.get(m) if absolute is not None else None
            out[f"{m} rel drop"] = relative.get(m) if relative is not None else None
        return out

    rows = [row(CLEAN, "", "", summary.clean_n, summary.clean, None, None)]
    for c in summary.conditions:
        rows.append(
            row(c.key, c.corruption, c.severity, c.n, c.scores, c.absolute_drop, c.relative_drop)
        )
    for c in summary.corruptions:
        rows.append(
            row(
                f"{c.corruption} (mean)",
                c.corruption,
                "mean",
                "",
                c.scores,
                c.absolute_drop,
                c.relative_drop,
            )
        )
    o = summary.overall
    rows.append(
        row("all corruptions (mean)", "all", "mean", "", o.scores, o.absolute_drop, o.relative_drop)
    )
    return pd.DataFrame(rows)


def write_robustness(
    eval_file: str, records: list[dict[str, Any]], metrics: list[Any], about: dict[str, Any]
) -> pd.DataFrame:
    """Our summary beside VLMEvalKit's result files: ``*_medfm_robust.json`` (the full summary),
    ``*_medfm_robust.csv`` (flat rows) and ``*_medfm_robust_table.csv`` (the table printed)."""
    from ..metrics.robustness import summarize

    summary = summarize(records, metrics)
    # the records themselves, for `medfm-robust report` (hosts.vlmeval_results reads them back)
    from .vlmeval_results import write_records

    write_records(eval_file, records, about)
    data = {**about, **summary.to_dict()}
    json_file = get_intermediate_file_path(eval_file, "_medfm_robust", "json")
    with open(json_file, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, default=str)
    pd.DataFrame(summary.rows()).to_csv(
        get_intermediate_file_path(eval_file, "_medfm_robust", "csv"), index=False
    )
    table = robustness_table(summary)
    return announce(eval_file, json_file, table)


def announce(eval_file: str, json_file: str, table: pd.DataFrame) -> pd.DataFrame:
    """Write the table beside the results and print it with its headers (VLMEvalKit prints the
    returned table without them)."""
    from tabulate import tabulate

    table.to_csv(get_intermediate_file_path(eval_file, "_medfm_robust_table", "csv"), index=False)
    text = tabulate(table, headers="keys", showindex=False, floatfmt=".4g", missingval="")
    print(f"MedFM-Robust robustness of {os.path.basename(eval_file)}:\n{text}", flush=True)
    print(f"MedFM-Robust: robustness summary written to {json_file}", flush=True)
    return table


# --------------------------------------------------------------------------- task-card datasets


class MedFMRobustRows:
    """Rows of a MedFM-Robust task card for VLMEvalKit (mixed into an ImageBaseDataset class)."""

    _medfm_robust = True
    KINDS: tuple[str, ...] = ()
    default_samples: int | None = None  # set by hosts.vlmeval.register (the command's --limit)
    force_use_dataset_prompt = True  # the card's prompt, whatever the model's own MCQ prompt

    def __init__(
        self,
        dataset: str | None = None,
        task: str | None = None,
        corruptions: list[str] | str | None = None,
        severities: list[int] | str | None = None,
        samples: int | None = None,
        seed: int = 0,
        severity_mode: str | None = None,
        data_root: str | None = None,
    ) -> None:
        # ``dataset`` is the name VLMEvalKit files results under (a --config key); ``task`` the
        # task card, when the name is not the card's own
        dataset = dataset or task or self.supported_datasets()[0]
        card = get_task(task or dataset)
        if card.kind not in self.KINDS:
            raise MedFMRobustDatasetError(
                f"{type(self).__name__} takes {'/'.join(self.KINDS)} tasks; '{card.name}' is a "
                f"{card.kind} task"
            )
        if card.needs_data_root and not data_root and not os.environ.get(DATA_ROOT_ENV):
            raise MedFMRobustDatasetError(no_data_root(dataset, card))
        if not samples:  # `vlmeval --limit N` on our datasets only: N whole samples
            samples = self.default_samples
        self.plan = EvaluationPlan.from_card(
            card,
            data_root=data_root,
            limit=int(samples) if samples else None,
            corruptions=as_list(corruptions),
            severities=as_list(severities, int),
            seed=int(seed),
            severity_mode=severity_mode,
        )
        self.card: TaskCard = self.plan.card
        self.views = self.plan.views()
        self.global_seed = self.plan.seed
        self._samples: dict[tuple[str, str], Any] = {}
        self._items: dict[str, WorkItem] = {}
        try:
            ImageBaseDataset.__init__(self, dataset=dataset, skip_noimg=False)
        except MedFMRobustError as exc:
            if "--data-root" not in str(exc):
                raise
            # the loaders speak to `medfm-robust run`; vlmeval has no --data-root option
            raise MedFMRobustDatasetError(f"{dataset}: {exc}. {VLMEVAL_DATA_ROOT}") from exc

    @classmethod
    def supported_datasets(cls) -> list[str]:
        return card_names(cls.KINDS)

    def load_data(self, dataset: str) -> pd.DataFrame:
        unknown = self.plan.unknown_corruptions()
        if unknown:
            raise MedFMRobustDatasetError(
                f"{dataset}: corruptions {unknown} are in no suite of its samples; see "
                "`medfm-robust suites list`"
            )
        rows = []
        for item in self.plan.items():
            sample = item.sample
            self._samples[(sample.dataset, sample.id)] = sample
            self._items[item.key] = item
            rows.append(
                {
                    "index": len(rows),
                    **self.label_columns(sample),
                    **condition_columns(item.condition),
                    "category": item.condition.key,  # VLMEvalKit's own tables then split by it
                    "modality": sample.modality,
                    "sample_id": sample.id,
                    "source_dataset": sample.dataset,
                }
            )
        if not rows:
            raise MedFMRobustDatasetError(f"{dataset}: no samples were loaded")
        return pd.DataFrame(rows)

    def label_columns(self, sample: Any) -> dict[str, Any]:
        return {"question": sample.question or "", "answer": sample.answer or ""}

    # ---------------------------------------------------------------- images and prompts

    def sample_of(self, line: Any) -> Any:
        return self._samples[(str(line["source_dataset"]), str(line["sample_id"]))]

    def item_of(self, line: Any) -> WorkItem:
        """The plan's item of a row (its key from the row's dataset, sample and condition)."""
        sample = self.sample_of(line)
        return self._items[item_key(sample.dataset, sample.id, condition_of(line))]

    def view_of(self, line: Any) -> Any:
        item = self.item_of(line)
        return self.views.get(item.sample, item.condition, corruption=item.spec)

    def dump_image(self, line: Any) -> list[str]:
        """The row's image as the view layer makes it, written once (content-addressed)."""
        return [str(self.views.png_path(self.view_of(line), self.img_root))]

    def build_prompt(self, line: Any) -> list[dict[str, str]]:
        if isinstance(line, int):
            line = self.data.iloc[line]
        view = self.view_of(line)
        path = self.views.png_path(view, self.img_root)
        height, width = view.image.shape[:2]
        prompt = self.card.render_prompt(view.sample, (width, height))
        return [dict(type="image", value=str(path)), dict(type="text", value=prompt)]

    # ---------------------------------------------------------------- scoring

    def records(self, scored: pd.DataFrame, states: list[dict[str, Any] | None]) -> list[dict]:
        """Per-row records (``records.Record``), for the robustness summary."""
        return [
            Record.of(
                self.item_of(line),
                task=self.card.name,
                prediction=None if pd.isna(line["prediction"]) else str(line["prediction"]),
                state=state or {},
                error="no answer from the model" if state is None else None,
                host="vlmeval",
            ).to_dict()
            for (_, line), state in zip(scored.iterrows(), states, strict=True)
        ]

    def our_scores(self, eval_file: str) -> pd.DataFrame:
        """Score every prediction with the card's metrics; the per-row file goes beside the others."""
        data = load(eval_file)
        metrics = [get_metric(m) for m in self.card.metrics]
        states: list[dict[str, Any] | None] = []
        for _, line in data.iterrows():
            prediction = "" if pd.isna(line["prediction"]) else str(line["prediction"])
            if INFER_FAIL in prediction:
                states.append(None)
                continue
            sample = self.sample_of(line)
            states.append({m.name: m.score(prediction, sample) for m in metrics})
        for m in metrics:
            data[m.name] = [None if s is None else _number(m.per_sample(s[m.name])) for s in states]
        dump(data, get_intermediate_file_path(eval_file, "_medfm_robust_scores"))
        about = {"task": self.card.name, "dataset": self.dataset_name, "scoring": "MedFM-Robust"}
        return write_robustness(eval_file, self.records(data, states), metrics, about)


def _number(value: float) -> float | None:
    return None if value != value else float(value)


class MedFMRobustVQA(MedFMRobustRows, ImageMCQDataset):
    """MedFM-Robust multiple choice, scored by VLMEvalKit's own MCQ evaluation per row."""

    TYPE = "MCQ"
    KINDS = ("vqa",)

    def label_columns(self, sample: Any) -> dict[str, Any]:
        return {
            "question": sample.question or "",
            "answer": sample.answer,
            **(sample.options or {}),
        }

    def evaluate(self, eval_file: str, **judge_kwargs: Any) -> pd.DataFrame:
        judge_kwargs, scoring = choose_judge(judge_kwargs)
        ImageMCQDataset.evaluate(self, eval_file, **judge_kwargs)
        judge = judge_kwargs.get("model", "exact_matching")
        name = {"chatgpt-0125": "openai", "gpt-4-0125": "gpt4"}.get(judge, judge)
        scored = load(get_intermediate_file_path(eval_file, f"_{name}_result"))
        states = [
            None if INFER_FAIL in str(p) else {"accuracy": float(h)}
            for p, h in zip(scored["prediction"], scored["hit"], strict=True)
        ]
        about = {"task": self.card.name, "dataset": self.dataset_name, "scoring": scoring}
        metrics = [get_metric("accuracy")]
        return write_robustness(eval_file, self.records(scored, states), metrics, about)


class MedFMRobustCaption(MedFMRobustRows, ImageBaseDataset):
    """MedFM-Robust captioning and report generation, scored with the card's metrics."""

    TYPE = "Caption"
    KINDS = ("caption", "report")

    def evaluate(self, eval_file: str, **judge_kwargs: Any) -> pd.DataFrame:
        return self.our_scores(eval_file)


class MedFMRobustGrounding(MedFMRobustRows, ImageBaseDataset):
    """MedFM-Robust visual grounding (a box per question), scored with Acc@IoU and mean IoU."""

    TYPE = "VQA"
    KINDS = ("grounding",)

    def label_columns(self, sample: Any) -> dict[str, Any]:
        return {"question": sample.question or "", "answer": json.dumps(list(sample.box))}

    def evaluate(self, eval_file: str, **judge_kwargs: Any) -> pd.DataFrame:
        return self.our_scores(eval_file)


def dataset_classes() -> list[type]:
    return [MedFMRobustVQA, MedFMRobustCaption, MedFMRobustGrounding]
