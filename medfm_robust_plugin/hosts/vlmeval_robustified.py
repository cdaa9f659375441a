"""VLMEvalKit's own datasets made robust: ``<dataset>-MedFMRobust`` rows are a VLMEvalKit dataset's
rows under the corruptions of the modality its name implies (the natural family when none), at
severities 1, 3 and 5 by default; VLMEvalKit's own scoring runs per condition and the drops come
from ``metrics.robustness``.

Imported by ``hosts.vlmeval.register()`` only, once VLMEvalKit is known to be importable. The task
cards' datasets are in ``vlmeval_datasets``; the parts both share (condition columns, the judge,
the robustness table) are there too.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd
from vlmeval.dataset.image_base import ImageBaseDataset
from vlmeval.smp import dump, get_intermediate_file_path, load

from ..data.sample import Sample
from ..plan import condition_grid, limit_samples
from ..tasks import CLEAN
from ..views import CorruptedViews
from .vlmeval_datasets import (
    ROBUSTIFIED_SEVERITIES,
    MedFMRobustDatasetError,
    announce,
    as_list,
    choose_judge,
    condition_columns,
    condition_of,
)


def guess_modality(name: str) -> str | None:
    """The modality whose suite fits a VLMEvalKit dataset, from its name (None: unknown)."""
    from ..modalities import modality_from_dataset_name

    return modality_from_dataset_name(name)


def corruptions_for_modality(modality: str | None) -> list[Any]:
    """The modality's suite; the base (natural) corruptions when it has none or is unknown."""
    from ..plugins import get_registry
    from ..suites import SuiteError, get_suite

    if modality:
        try:
            return get_suite(modality).corruptions()
        except SuiteError:
            pass
    registry = get_registry()
    specs = [registry.get("corruptions", n) for n in registry.names("corruptions")]
    return [s for s in specs if s.family == "natural"]


def base_class_of(base_name: str) -> type:
    """The VLMEvalKit class that builds ``base_name``; a custom TSV gets VLMEvalKit's custom classes."""
    import vlmeval.dataset as vd

    for cls in vd.DATASET_CLASSES:
        if getattr(cls, "_medfm_robust", False) or getattr(cls, "MODALITY", "IMAGE") != "IMAGE":
            continue
        try:
            if base_name in cls.supported_datasets():
                return cls
        except Exception:  # a class whose listing needs something absent cannot be the one
            continue
    tsv = os.path.join(vd.LMUDataRoot(), f"{base_name}.tsv")
    if os.path.exists(tsv):
        columns = pd.read_csv(tsv, sep="\t", nrows=1).columns
        return vd.CustomMCQDataset if "A" in columns and "B" in columns else vd.CustomVQADataset
    raise MedFMRobustDatasetError(
        f"'{base_name}' is not a VLMEvalKit image dataset (and {tsv} does not exist), so "
        f"'{base_name}-MedFMRobust' cannot be built; list the names with "
        "`python -c 'from vlmeval.dataset import SUPPORTED_DATASETS; print(SUPPORTED_DATASETS)'`"
    )


class RobustifiedRows:
    """An existing VLMEvalKit dataset, each row repeated under the corruptions of its modality.

    VLMEvalKit's own class builds the prompts and scores; the corrupted images come from the view
    layer; the score of each condition is VLMEvalKit's primary metric on that condition's rows.
    """

    _medfm_robust = True
    BASE_NAME = ""
    BASE_CLASS: type = ImageBaseDataset

    def __init__(
        self,
        dataset: str | None = None,
        corruptions: list[str] | str | None = None,
        severities: list[int] | str | None = None,
        samples: int | None = None,
        seed: int = 0,
        severity_mode: str = "table",
        modality: str | None = None,
    ) -> None:
        dataset = dataset or f"{self.BASE_NAME}-MedFMRobust"
        self.modality = modality or guess_modality(self.BASE_NAME)
        self.specs = {s.name: s for s in corruptions_for_modality(self.modality)}
        chosen = as_list(corruptions)
        unknown = set(chosen or ()) - set(self.specs)
        if unknown:
            raise MedFMRobustDatasetError(
                f"{dataset}: corruptions {sorted(unknown)} are not in the {self.modality or 'base'} "
                f"suite ({', '.join(self.specs)})"
            )
        levels = as_list(severities, int) or list(ROBUSTIFIED_SEVERITIES)
        specs = [spec for name, spec in self.specs.items() if chosen is None or name in chosen]
        self.conditions = [condition for condition, _ in condition_grid(specs, levels)]
        self.sample_count = int(samples) if samples else None
        self.seed = int(seed)
        self.views = CorruptedViews(global_seed=self.seed, mode=severity_mode)
        self.BASE_CLASS.__init__(self, dataset=dataset)

    @classmethod
    def supported_datasets(cls) -> list[str]:
        return [f"{cls.BASE_NAME}-MedFMRobust"]

    def load_data(self, dataset: str) -> pd.DataFrame:
        own_name = self.dataset_name
        self.dataset_name = self.BASE_NAME  # the base TSV keeps its own file name
        try:
            clean = self.BASE_CLASS.load_data(self, self.BASE_NAME)
        finally:
            self.dataset_name = own_name
        if self.sample_count is not None:
            # each clean row is a sample of the dataset: the plan's sampling picks them
            rows_as_samples = [
                Sample(str(position), self.BASE_NAME, self.modality or "unknown", image="")
                for position in range(len(clean))
            ]
            kept = limit_samples(rows_as_samples, self.sample_count, self.seed)
            clean = clean.iloc[[int(sample.id) for sample in kept]]
        rows = []
        for _, line in clean.iterrows():
            for condition in self.conditions:
                row = dict(line)
                row.update(condition_columns(condition))
                row["sample_id"] = str(line["index"])
                row["modality"] = self.modality or "unknown"
                row["index"] = len(rows)
                if "image" in row and not condition.is_clean:
                    row["image"] = str(line["index"])  # a reference to the clean row's image
                rows.append(row)
        frame = pd.DataFrame(rows)
        if "image" in frame:  # the clean rows keep the base64 image under their new index
            clean_index = {r["sample_id"]: r["index"] for r in rows if r["condition"] == CLEAN}
            frame["image"] = [
                str(clean_index[v]) if len(str(v)) <= 64 else v for v in frame["image"]
            ]
        return frame

    def clean_paths(self, line: Any) -> list[str]:
        """The clean image file(s) of a row, written by VLMEvalKit's own ``dump_image``."""
        clean = dict(line)
        clean["index"] = f"{line['sample_id']}_clean"  # one file per clean sample, not per row
        paths = self.BASE_CLASS.dump_image(self, clean)
        return [paths] if isinstance(paths, str) else list(paths)

    def dump_image(self, line: Any) -> list[str]:
        condition = condition_of(line)
        out = []
        for k, path in enumerate(self.clean_paths(line)):
            sample = Sample(
                id=f"{line['sample_id']}" + (f"_{k}" if k else ""),
                dataset=self.BASE_NAME,
                modality=self.modality or "unknown",
                image=path,
            )
            spec = None if condition.is_clean else self.specs[condition.corruption]
            view = self.views.get(sample, condition, corruption=spec)
            out.append(str(self.views.png_path(view, os.path.join(self.img_root, "medfm_robust"))))
        return out

    def build_prompt(self, line: Any) -> list[dict[str, str]]:
        if isinstance(line, int):
            line = self.data.iloc[line]
        messages = self.BASE_CLASS.build_prompt(self, line)
        paths = iter(self.dump_image(line))
        return [
            dict(m, value=next(paths, m["value"])) if m.get("type") == "image" else m
            for m in messages
        ]

    def evaluate(self, eval_file: str, **judge_kwargs: Any) -> pd.DataFrame:
        """VLMEvalKit's own evaluation on each condition's rows, then the drops from clean."""
        from vlmeval.smp.status_report import flatten_summary_metrics

        if self.TYPE == "MCQ":
            judge_kwargs, _ = choose_judge(judge_kwargs)
        data = load(eval_file)
        # each condition's rows, and VLMEvalKit's files about them, in a folder of their own
        parts = Path(get_intermediate_file_path(eval_file, "_medfm_robust_conditions", "d")[:-2])
        parts.mkdir(parents=True, exist_ok=True)
        scores: dict[str, tuple[str, float, int]] = {}
        for key in [c.key for c in self.conditions]:
            part = data[data["condition"] == key]
            if not len(part):
                continue
            part_file = str(parts / f"{key}{Path(eval_file).suffix}")
            dump(part, part_file)
            result = self.BASE_CLASS.evaluate(self, part_file, **dict(judge_kwargs))
            primary = self.report_primary_metric(flatten_summary_metrics(result))
            if primary:
                metric, value = next(iter(primary.items()))
                scores[key] = (metric, float(value), len(part))
        if CLEAN not in scores:
            raise MedFMRobustDatasetError(f"{self.dataset_name}: no clean rows were evaluated")
        from ..metrics.robustness import score_drops

        metric, clean_score, clean_n = scores[CLEAN]
        rows = [
            {
                "condition": CLEAN,
                "corruption": "",
                "severity": "",
                "n": clean_n,
                metric: clean_score,
                "abs drop": None,
                "rel drop": None,
            }
        ]
        for condition in self.conditions[1:]:
            if condition.key not in scores:
                continue
            _, value, n = scores[condition.key]
            absolute, relative = score_drops(
                clean_score, value
            )  # VLMEvalKit's metrics: higher is better
            rows.append(
                {
                    "condition": condition.key,
                    "corruption": condition.corruption,
                    "severity": condition.severity,
                    "n": n,
                    metric: value,
                    "abs drop": absolute,
                    "rel drop": None if relative != relative else relative,
                }
            )
        table = pd.DataFrame(rows)
        json_file = get_intermediate_file_path(eval_file, "_medfm_robust", "json")
        with open(json_file, "w", encoding="utf-8") as handle:
            json.dump(
                {
                    "dataset": self.dataset_name,
                    "base": self.BASE_NAME,
                    "modality": self.modality,
                    "metric": metric,
                    "conditions": json.loads(table.to_json(orient="records")),
                },
                handle,
                indent=2,
                default=str,
            )
        return announce(eval_file, json_file, table)


def robustified_class(base_name: str) -> type:
    """A class serving ``<base_name>-MedFMRobust`` on top of VLMEvalKit's class for ``base_name``."""
    base = base_class_of(base_name)
    safe = re.sub(r"\W", "_", base_name)
    return type(
        f"MedFMRobust_{safe}",
        (RobustifiedRows, base),
        {"BASE_NAME": base_name, "BASE_CLASS": base, "__doc__": RobustifiedRows.__doc__},
    )
