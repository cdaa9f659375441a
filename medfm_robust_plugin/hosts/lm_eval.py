"""lm-evaluation-harness host: task YAML generated from the task cards, our models as lm-eval models.

Tasks. ``write_tasks`` turns every vision-language task card (VQA, caption, report, grounding) into
one folder of ``medfm_robust_plugin/hosts/lm_eval_tasks/`` (pass that folder to ``--include_path``;
``medfm-robust lm-eval-tasks`` prints it). For the card ``MedFMRobust-VQA``:

    medfm_robust_vqa                         group: the clean task and every corruption subgroup
    medfm_robust_vqa_clean                   task: the clean images
    medfm_robust_vqa_<corruption>            group: that corruption's severities, mean over them
    medfm_robust_vqa_<corruption>_s<k>       task: one corruption at one severity
    medfm_robust_vqa_s<k>                    tag: every corruption at severity k

Which corruptions a card gets: its own modality's suite when the card names one; the suites of the
modalities its embedded data has (the Mini suite); otherwise the union of all built-in suites. A
corruption's task holds only the samples whose modality suite has that corruption.

Models. ``register_models`` adds our vision-language models to lm-eval's registry (lazily; after
``import lm_eval.models``, whose import fills the registry: registering first would leave it with
ours only). ``main`` runs lm-eval's own command line with them registered and our tasks included.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

GENERATOR = "medfm_robust_plugin.hosts.lm_eval"  # the module that writes the YAML
TASKS_DIR = Path(__file__).resolve().parent / "lm_eval_tasks"
FUNCTIONS = "medfm_robust_plugin.hosts.lm_eval_tasks.conditions"
HOST_KINDS = ("vqa", "caption", "report", "grounding")  # what a text-generating model answers
TEMPLATE = "_template_yaml"  # not *.yaml, so that lm-eval's index does not read it as a task
GENERATED_HEADER = "# Generated from the task card {card}; `python -m {module}` rewrites it.\n"
UNTIL = ["<|endoftext|>"]
MAX_GEN_TOKS = 256  # the native runner's default


def tasks_dir() -> Path:
    """The folder to pass to lm-eval's ``--include_path``."""
    return TASKS_DIR


def task_prefix(card_name: str) -> str:
    """``MedFMRobust-Mini-VQA-Lite`` -> ``medfm_robust_mini_vqa_lite``."""
    name = card_name.replace("MedFMRobust", "medfm_robust")
    return name.replace("-", "_").lower()


def host_cards() -> list[Any]:
    """The built-in task cards lm-eval can run (plugins' cards are left out: the folder is shared)."""
    from ..resources import bundled_files
    from ..tasks import load_card_file

    cards = []
    for path in bundled_files("tasks"):
        if not path.name.startswith("_"):
            cards.extend(c for c in load_card_file(path) if c.kind in HOST_KINDS)
    return sorted(cards, key=lambda c: c.name)


def card_modalities(card: Any) -> list[str]:
    """The modalities whose suites a card's lm-eval tasks cover (see the module docstring)."""
    from ..resources import bundled_files

    if card.modality:
        return [card.modality]
    if not card.needs_data_root:
        return sorted({sample.modality for sample in card.load().samples})
    return [path.stem for path in bundled_files("corruptions")]


def card_corruptions(card: Any) -> list[str]:
    """The union of the card's suites over its modalities, in suite order."""
    names: list[str] = []
    for modality in card_modalities(card):
        names += [s.name for s in card.corruptions_for(modality) if s.name not in names]
    return names


def generate_tasks(cards: Sequence[Any] | None = None) -> dict[str, str]:
    """Relative path -> text of every generated file (what ``write_tasks`` writes)."""
    files: dict[str, str] = {}
    for card in host_cards() if cards is None else cards:
        files.update(_card_files(card))
    return files


def _card_files(card: Any) -> dict[str, str]:
    prefix = task_prefix(card.name)
    header = GENERATED_HEADER.format(card=card.name, module=GENERATOR)
    files = {f"{prefix}/{TEMPLATE}": header + _template(card)}

    def task_file(condition: str, tags: list[str]) -> None:
        body: dict[str, Any] = {"include": TEMPLATE, "task": f"{prefix}_{condition}"}
        if tags:
            body["tag"] = tags
        body["dataset_kwargs"] = {"medfm_task": card.name, "medfm_condition": condition}
        files[f"{prefix}/{prefix}_{condition}.yaml"] = header + _dump(body)

    task_file("clean", [])
    members = [f"{prefix}_clean"]
    for corruption in card_corruptions(card):
        severities = [f"{corruption}_s{level}" for level in card.severities]
        for level, condition in zip(card.severities, severities):
            task_file(condition, [f"{prefix}_s{level}"])
        group = {
            "group": f"{prefix}_{corruption}",
            "task": [f"{prefix}_{c}" for c in severities],
            "aggregate_metric_list": [
                {"metric": name, "aggregation": "mean", "weight_by_size": True}
                for name in card.metrics
            ],
            "metadata": {"version": 1.0},
        }
        files[f"{prefix}/{prefix}_{corruption}.yaml"] = header + _dump(group)
        members.append(f"{prefix}_{corruption}")
    top = {"group": prefix, "task": members, "metadata": {"version": 1.0}}
    files[f"{prefix}/{prefix}.yaml"] = header + _dump(top)
    return files


def _template(card: Any) -> str:
    from ..metrics.base import get_metric
    from .lm_eval_tasks.conditions import aggregation_name

    generation = {
        "until": UNTIL,
        "max_gen_toks": MAX_GEN_TOKS,
        "do_sample": False,
        "temperature": 0.0,
    }
    lines = [
        f"custom_dataset: !function {FUNCTIONS}.load_condition",
        "test_split: test",
        "output_type: generate_until",
        f"doc_to_image: !function {FUNCTIONS}.doc_to_image",
        f"doc_to_text: !function {FUNCTIONS}.doc_to_text",
        f"doc_to_target: !function {FUNCTIONS}.doc_to_target",
        f"process_results: !function {FUNCTIONS}.process_results",
        f"generation_kwargs: {json.dumps(generation)}",
        "metric_list:",
    ]
    for name in card.metrics:
        lines += [
            f"  - metric: {name}",
            f"    aggregation: !function {FUNCTIONS}.{aggregation_name(name)}",
            f"    higher_is_better: {str(get_metric(name).higher_is_better).lower()}",
        ]
    lines += ["metadata:", "  version: 1.0"]
    return "\n".join(lines) + "\n"


def _dump(data: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)


def write_tasks(folder: str | Path = TASKS_DIR) -> int:
    """Write the generated files under ``folder`` (stale card folders removed); the file count."""
    import shutil

    folder = Path(folder)
    files = generate_tasks()
    wanted = {relative.split("/")[0] for relative in files}
    for child in folder.iterdir() if folder.exists() else []:
        if child.is_dir() and child.name.startswith("medfm_robust") and child.name not in wanted:
            shutil.rmtree(child)
    for card_dir in wanted:
        for old in (folder / card_dir).glob("*") if (folder / card_dir).exists() else []:
            if f"{card_dir}/{old.name}" not in files:
                old.unlink()
    for relative, text in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    return len(files)


# ---------------------------------------------------------------------- models

LM_EVAL_MODELS = {
    "medfm-robust": "MedFMRobustLM",
    "medfm-medgemma": "MedGemmaLM",
    "medfm-llava-med": "LlavaMedLM",
}


def register_models() -> None:
    """Add our models to lm-eval's registry, after lm-eval's own (lazy: nothing heavy imported)."""
    import lm_eval.models  # noqa: F401  (fills the registry; must come first)
    from lm_eval.api.registry import model_registry

    for name, class_name in LM_EVAL_MODELS.items():
        if name not in model_registry:
            model_registry.register(name, target=f"{__name__}:{class_name}")


def __getattr__(name: str) -> Any:
    # The model classes subclass lm-eval's LM, so they are built on first access: importing this
    # module (for the task YAML) needs no lm-eval, and lm-eval's lazy registry resolves them here.
    if name in LM_EVAL_MODELS.values():
        return _model_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_CLASSES: dict[str, type] = {}


def _device(asked: str) -> str:
    """lm-eval's --device for a local model; its default 'cuda:0' becomes 'auto' without a GPU."""
    import torch

    return "auto" if asked.startswith("cuda") and not torch.cuda.is_available() else asked


def _model_classes() -> dict[str, type]:
    if _CLASSES:
        return _CLASSES
    from lm_eval.api.model import LM

    class MedFMRobustLM(LM):
        """Any registered MedFM-Robust vision-language model: ``--model_args model=NAME,...``.

        The other model arguments go to ``load_model`` (``model_id``, ``device``, ``base_url``...).
        Only generation is supported: the benchmark's tasks are all ``generate_until``.
        """

        MULTIMODAL = True
        default_model: str | None = None

        def __init__(
            self,
            model: str | None = None,
            pretrained: str | None = None,
            batch_size: int | str | None = None,
            max_batch_size: int | None = None,
            device: str | None = None,
            **options: Any,
        ) -> None:
            super().__init__()
            from ..models.base import load_model

            name = model or self.default_model
            if name is None:
                raise ValueError("pass the model to evaluate: --model_args model=<name>")
            if pretrained:
                options["model_id"] = pretrained
            if device and name.startswith(("hf:", "medgemma", "llava-med")):
                options.setdefault("device", _device(device))
            self.vlm = load_model(name, **options)
            self._fitted: set[str] = set()
            capabilities = getattr(self.vlm, "capabilities", None)
            size = str(batch_size or "")
            self.batch = int(size) if size.isdigit() else getattr(capabilities, "max_batch", 1)

        def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
            self._fit(requests)
            answers: list[str] = []
            for start in range(0, len(requests), max(1, self.batch)):
                answers += self._generate(requests[start : start + max(1, self.batch)])
            return answers

        def _fit(self, requests: list[Any]) -> None:
            """A model that learns from the task's samples (the baselines) sees them, as in our runner."""
            if not hasattr(self.vlm, "fit"):
                return
            from .lm_eval_tasks.conditions import samples_of

            cards = {(getattr(r, "doc", None) or {}).get("medfm_task") for r in requests}
            for card in sorted(c for c in cards if c and c not in self._fitted):
                self.vlm.fit(samples_of(card))
                self._fitted.add(card)

        def _generate(self, requests: list[Any]) -> list[str]:
            import numpy as np

            from .lm_eval_tasks.conditions import PLACEHOLDER

            items, settings = [], []
            for request in requests:
                context, gen_kwargs, *rest = request.args
                visuals = (rest[0] or {}).get("visual") or [] if rest else []
                images = [np.asarray(image.convert("RGB")) for image in visuals]
                items.append(
                    (images, context.replace(PLACEHOLDER + "\n", "").replace(PLACEHOLDER, ""))
                )
                settings.append(gen_kwargs or {})
            first = settings[0]
            outputs = self.vlm.generate(
                items,
                max_new_tokens=int(first.get("max_gen_toks", 256)),
                temperature=float(first.get("temperature", 0.0)),
            )
            answers = []
            for output, setting in zip(outputs, settings, strict=True):
                text = getattr(output, "text", output)
                for stop in setting.get("until") or []:
                    if stop:
                        text = text.split(stop)[0]
                answers.append(text)
            return answers

        def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[Any]:
            raise NotImplementedError(
                "MedFM-Robust models only generate; run generate_until tasks (all medfm_robust_*)"
            )

        def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False):
            raise NotImplementedError(
                "MedFM-Robust models only generate; run generate_until tasks (all medfm_robust_*)"
            )

    class MedGemmaLM(MedFMRobustLM):
        """MedGemma through our wrapper (``--model_args pretrained=<id or path>`` to change it)."""

        default_model = "medgemma"

    class LlavaMedLM(MedFMRobustLM):
        """LLaVA-Med v1.5 through our wrapper (its own prompt format when there is no template)."""

        default_model = "llava-med"

    _CLASSES.update(MedFMRobustLM=MedFMRobustLM, MedGemmaLM=MedGemmaLM, LlavaMedLM=LlavaMedLM)
    return _CLASSES


# ---------------------------------------------------------------------- launcher


def main(argv: Sequence[str] | None = None) -> None:
    """lm-eval's own command line, with our models registered and our tasks on the include path."""
    from lm_eval.__main__ import cli_evaluate

    args = list(sys.argv[1:] if argv is None else argv)
    if args and not any(a == "--include_path" or a.startswith("--include_path=") for a in args):
        at = 1 if args[0] in ("run", "ls", "validate") else 0  # after lm-eval's subcommand
        args[at:at] = ["--include_path", str(TASKS_DIR)]
    register_models()
    saved = sys.argv
    sys.argv = ["lm_eval", *args]
    try:
        cli_evaluate()
    finally:
        sys.argv = saved


if __name__ == "__main__":
    print(f"wrote {write_tasks()} files under {TASKS_DIR}")
