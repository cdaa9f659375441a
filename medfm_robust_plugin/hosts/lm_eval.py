"""lm-evaluation-harness host: task YAML generated from the task cards, our models as lm-eval models.

Tasks are built at run time from the task registry, plugins' cards included: ``tasks_dir`` turns
every vision-language task card (VQA, caption, report, grounding) into one folder of YAML in a
cache folder named by a hash of what it holds (pass it to ``--include_path``; ``medfm-robust
lm-eval-tasks`` prints it, ``medfm-robust lm-eval`` adds it). Nothing generated is kept in the
package: a changed card or suite, or a plugin installed, gives a new folder. For the card
``MedFMRobust-VQA``:

    medfm_robust_vqa                         group: the clean task and every corruption subgroup
    medfm_robust_vqa_clean                   task: the clean images
    medfm_robust_vqa_<corruption>            group: that corruption's severities, mean over them
    medfm_robust_vqa_<corruption>_s<k>       task: one corruption at one severity
    medfm_robust_vqa_s<k>                    tag: every corruption at severity k

Which corruptions a card gets: its own modality's suite when the card names one; the suites of the
modalities its embedded data has (the Mini suite); otherwise the union of all registered suites. A
corruption's task holds only the samples whose modality suite has that corruption.

Models. ``register_models`` adds our vision-language models to lm-eval's registry (lazily; after
``import lm_eval.models``, whose import fills the registry: registering first would leave it with
ours only). ``main`` runs lm-eval's own command line with them registered and our tasks included;
there ``--limit N`` means N whole samples of each card (``whole_sample_limit``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

GENERATOR = "medfm_robust_plugin.hosts.lm_eval"  # the module that writes the YAML
STALE_AFTER_S = 30 * 24 * 3600  # task folders of other card sets unused this long are removed
FUNCTIONS = "medfm_robust_plugin.hosts.lm_eval_tasks.conditions"
HOST_KINDS = ("vqa", "caption", "report", "grounding")  # what a text-generating model answers
TEMPLATE = "_template_yaml"  # not *.yaml, so that lm-eval's index does not read it as a task
GENERATED_HEADER = "# Built from the task card {card} by {module}; do not edit.\n"
UNTIL = ["<|endoftext|>"]
MAX_GEN_TOKS = 256  # the native runner's default


def tasks_root() -> Path:
    """``$MEDFM_ROBUST_CACHE/lm_eval_tasks``, else ``$XDG_CACHE_HOME`` or ``~/.cache`` + ``medfm-robust/lm_eval_tasks``."""
    from ..resources import cache_dir

    return cache_dir("lm_eval_tasks")


def tasks_dir(cards: Sequence[Any] | None = None, root: str | Path | None = None) -> Path:
    """The folder to pass to lm-eval's ``--include_path``, built from the registry when needed.

    The folder is named by a hash of the files it holds, so that every set of cards and suites has
    its own and a folder is never rewritten under a running lm-eval; it is written beside its final
    name and moved there whole. Folders of other card sets unused for 30 days are removed.
    """
    return build_folder(generate_tasks(cards), Path(root) if root is not None else tasks_root())


def build_folder(files: dict[str, str], base: Path) -> Path:
    """``files`` written under ``base/<hash of files>`` unless already there (any harness's tasks)."""
    digest = hashlib.sha256()
    for relative in sorted(files):
        digest.update(relative.encode() + b"\0" + files[relative].encode() + b"\0")
    folder = base / digest.hexdigest()[:16]
    if folder.is_dir():
        os.utime(folder)  # marks it in use for the clean-up of stale folders
        return folder
    base.mkdir(parents=True, exist_ok=True)
    partial = base / f".{folder.name}.{os.getpid()}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    write_tasks(partial, files)
    try:
        partial.rename(folder)
    except OSError:  # another process built the same folder first
        shutil.rmtree(partial, ignore_errors=True)
        if not folder.is_dir():
            raise
    _remove_stale(base, keep=folder)
    return folder


def _remove_stale(base: Path, keep: Path) -> None:
    now = time.time()
    for child in base.iterdir():
        if child == keep or not child.is_dir():
            continue
        try:
            if now - child.stat().st_mtime > STALE_AFTER_S:
                shutil.rmtree(child, ignore_errors=True)
        except OSError:
            continue


def task_prefix(card_name: str) -> str:
    """``MedFMRobust-Mini-VQA-Lite`` -> ``medfm_robust_mini_vqa_lite``."""
    name = card_name.replace("MedFMRobust", "medfm_robust")
    return name.replace("-", "_").lower()


def host_cards() -> list[Any]:
    """The registered task cards lm-eval can run (built-in and plugins' cards), by name."""
    from ..plugins import get_registry

    registry = get_registry()
    cards = [registry.get("tasks", name) for name in registry.names("tasks")]
    return sorted((c for c in cards if c.kind in HOST_KINDS), key=lambda c: c.name)


def card_modalities(card: Any) -> list[str]:
    """The modalities whose suites a card's lm-eval tasks cover (see the module docstring)."""
    from ..plugins import get_registry

    if card.modality:
        return [card.modality]
    if not card.needs_data_root:
        return sorted({sample.modality for sample in card.load().samples})
    suites = get_registry().items["suites"].values()
    return sorted({suite.modality for suite in suites if suite.modality})


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

    add_grid(files, card, prefix, header, task_file)
    return files


def add_grid(
    files: dict[str, str],
    card: Any,
    prefix: str,
    header: str,
    task_file: Any,
) -> None:
    """The layout both lm-eval-style harnesses share: ``task_file(condition, tags)`` writes one task
    per condition (clean, then each corruption at each severity, tagged ``<prefix>_s<k>``); a group
    per corruption (mean of its severities, weighted by size) and the card's group go into
    ``files``."""
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
    """JSON, which YAML reads as it is (and which writes 30 times faster than PyYAML)."""
    return json.dumps(data, indent=2) + "\n"


def write_tasks(folder: str | Path, files: dict[str, str] | None = None) -> int:
    """Write the generated files (``generate_tasks()`` by default) under ``folder``; the count."""
    folder = Path(folder)
    files = generate_tasks() if files is None else files
    for relative, text in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
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


def harness_model(
    name: str | None,
    pretrained: str | None,
    batch_size: int | str | None,
    device: str | None,
    options: dict[str, Any],
) -> tuple[Any, int]:
    """One of our models as an lm-eval-style harness asks for it (``--model_args model=NAME,
    pretrained=..., batch_size=..., device=...``): the model and the batch to send it."""
    from ..models.base import load_model

    if name is None:
        raise ValueError("pass the model to evaluate: --model_args model=<name>")
    options = {k: v for k, v in options.items() if v is not None}
    if pretrained:
        options["model_id"] = pretrained
    if device and name.startswith(("hf:", "medgemma", "llava-med")):
        options.setdefault("device", _device(device))
    vlm = load_model(name, **options)
    size = str(batch_size or "")
    capabilities = getattr(vlm, "capabilities", None)
    return vlm, int(size) if size.isdigit() else getattr(capabilities, "max_batch", 1)


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
            self.vlm, self.batch = harness_model(
                model or self.default_model, pretrained, batch_size, device, options
            )
            self._fitted: set[str] = set()

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

LIMIT_OPTIONS = ("--limit", "-L")
TASKS_OPTIONS = ("--tasks", "-t")


def option_values(args: Sequence[str], names: Sequence[str]) -> tuple[int, int, list[str]] | None:
    """(start, end, values) of the first of ``names`` in ``args``: ``--x v1 v2`` or ``--x=v``."""
    for at, arg in enumerate(args):
        flag, equals, value = arg.partition("=")
        if flag not in names:
            continue
        if equals:
            return at, at + 1, [value]
        end = at + 1
        while end < len(args) and (not args[end].startswith("-") or _is_number(args[end])):
            end += 1
        return at, end, list(args[at + 1 : end])
    return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def is_card_task(name: str, prefixes: Sequence[str]) -> bool:
    """Whether a task, group or tag name is one of a MedFM-Robust card's (``<prefix>...``)."""
    return any(name == prefix or name.startswith(prefix + "_") for prefix in prefixes)


def whole_sample_limit(
    args: Sequence[str], harness: str = "lm-eval"
) -> tuple[list[str], int | float | None, str | None]:
    """``--limit N`` as N whole samples of each MedFM-Robust card: (args, samples, note).

    The harness's ``--limit N`` keeps the first N documents of each task. A condition task holds
    only the samples whose suite has its corruption, so the first N documents of the clean task
    (CT, say) and of an MRI corruption are different samples and no drop can be measured between
    them. Our tasks take ``samples`` instead: N whole samples of the card, chosen as our runner's
    ``--limit`` chooses them, each clean and under every condition of its suite (see
    ``conditions.paired_samples``). When every task of the run is ours, the limit is taken out of
    the harness's arguments. Beside other tasks it stays for them, and so also cuts ours to N
    documents each (a fraction is left to the harness alone); ``note`` says so. ``note`` is what
    to tell the user on stderr (None: nothing to say).
    """
    args = list(args)
    limit, tasks = option_values(args, LIMIT_OPTIONS), option_values(args, TASKS_OPTIONS)
    if limit is None or tasks is None or len(limit[2]) != 1 or not _is_number(limit[2][0]):
        return args, None, None  # the harness reports a bad --limit itself
    value = float(limit[2][0])
    names = [n.strip() for v in tasks[2] for n in v.split(",") if n.strip()]
    prefixes = [task_prefix(card.name) for card in host_cards()]
    ours = [n for n in names if is_card_task(n, prefixes)]
    if value <= 0 or not ours:
        return args, None, None
    if len(ours) < len(names):
        note = (
            f"{harness}: --limit {value:g} with other tasks in the run applies to every task, "
            "ours too: a MedFM-Robust condition task may then hold other samples than its clean "
            "task. Run the MedFM-Robust tasks apart for paired results"
        )
        return args, (int(value) if value >= 1 else None), note
    del args[limit[0] : limit[1]]
    samples: int | float = int(value) if value >= 1 else value
    what = f"{samples} samples" if value >= 1 else f"a fraction {samples:g} of the samples"
    note = (
        f"{harness}: --limit {value:g}: {what} of each MedFM-Robust task card, each clean and "
        f"under every condition (samples={samples}), not the first documents of each condition task"
    )
    return args, samples, note


def _after_subcommand(args: Sequence[str]) -> int:
    return 1 if args and args[0] in ("run", "ls", "validate") else 0


def main(argv: Sequence[str] | None = None) -> None:
    """lm-eval's own command line, with our models registered and our tasks on the include path;
    ``--limit N`` takes N whole samples of each of our cards (``whole_sample_limit``)."""
    from lm_eval.__main__ import cli_evaluate

    args = list(sys.argv[1:] if argv is None else argv)
    if args and not any(a == "--include_path" or a.startswith("--include_path=") for a in args):
        at = _after_subcommand(args)
        args[at:at] = ["--include_path", str(tasks_dir())]
    args, samples, note = whole_sample_limit(args)
    if note:
        print(note, file=sys.stderr)
    if samples is not None:
        at = _after_subcommand(args)  # before the user's --metadata, which merges over it
        args[at:at] = ["--metadata", f"samples={samples}"]
    register_models()
    saved = sys.argv
    sys.argv = ["lm_eval", *args]
    try:
        cli_evaluate()
    finally:
        sys.argv = saved


if __name__ == "__main__":
    print(tasks_dir())
