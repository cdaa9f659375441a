"""lmms-eval host: task YAML generated from the task cards, lmms-eval's own command line with it.

lmms-eval 0.7 reads external tasks only from ``--include_path`` (its ``LMMS_EVAL_PLUGINS`` variable
is deprecated and applied after the task index is built). ``tasks_dir`` writes every
vision-language task card as YAML into a cache folder named by a hash of what it holds, with the
names of the lm-eval host (``hosts.lm_eval``): for the card ``MedFMRobust-VQA``

    medfm_robust_vqa                         group: the clean task and every corruption subgroup
    medfm_robust_vqa_clean                   task: the clean images
    medfm_robust_vqa_<corruption>            group: that corruption's severities, mean over them
    medfm_robust_vqa_<corruption>_s<k>       task: one corruption at one severity
    medfm_robust_vqa_s<k>                    tag: every corruption at severity k

lmms-eval loads a task's documents with ``datasets.load_dataset``; each condition task names a
one-line JSON file beside its YAML (card and condition) and ``process_docs`` expands it into the
plan's documents. ``doc_to_visual`` makes the condition's image from the shared view layer when
lmms-eval asks for it, so nothing is stored and lmms-eval sees the pixels every other host sees.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .lm_eval import (
    GENERATED_HEADER,
    MAX_GEN_TOKS,
    TEMPLATE,
    _dump,
    add_grid,
    build_folder,
    host_cards,
    task_prefix,
    whole_sample_limit,
)

GENERATOR = "medfm_robust_plugin.hosts.lmms_eval"
FUNCTIONS = "medfm_robust_plugin.hosts.lmms_eval_conditions"
FOLDER = "lmms_eval_tasks"
# lmms-eval model name -> class in hosts.lmms_eval_models (its manifests, lmms_eval.models group)
LMMS_EVAL_MODELS = {
    "medfm-robust": "MedFMRobustLMMS",
    "medfm-medgemma": "MedGemmaLMMS",
    "medfm-llava-med": "LlavaMedLMMS",
}


def tasks_root() -> Path:
    """``$MEDFM_ROBUST_CACHE/lmms_eval_tasks``, else the user cache + ``medfm-robust/lmms_eval_tasks``."""
    from ..resources import cache_dir

    return cache_dir(FOLDER)


def tasks_dir(cards: Sequence[Any] | None = None, root: str | Path | None = None) -> Path:
    """The folder to pass to lmms-eval's ``--include_path``, built from the registry when needed."""
    return build_folder(generate_tasks(cards), Path(root) if root is not None else tasks_root())


def generate_tasks(cards: Sequence[Any] | None = None) -> dict[str, str]:
    """Relative path -> text of every generated file (YAML and the one-line condition files)."""
    files: dict[str, str] = {}
    for card in host_cards() if cards is None else cards:
        files.update(_card_files(card))
    return files


def _card_files(card: Any) -> dict[str, str]:
    prefix = task_prefix(card.name)
    header = GENERATED_HEADER.format(card=card.name, module=GENERATOR)
    files = {f"{prefix}/{TEMPLATE}": header + _template(card)}

    def task_file(condition: str, tags: list[str]) -> None:
        name = f"{prefix}_{condition}"
        body: dict[str, Any] = {"include": TEMPLATE, "task": name}
        if tags:
            body["tag"] = tags
        # a path relative to this YAML: lmms-eval resolves it against the YAML's folder
        body["dataset_kwargs"] = {"data_files": {"test": f"{name}.jsonl"}}
        files[f"{prefix}/{name}.yaml"] = header + _dump(body)
        row = {"medfm_task": card.name, "medfm_condition": condition}
        files[f"{prefix}/{name}.jsonl"] = json.dumps(row) + "\n"

    add_grid(files, card, prefix, header, task_file)
    return files


def _template(card: Any) -> str:
    from ..metrics.base import get_metric
    from .lm_eval_tasks.conditions import aggregation_name

    generation = {"max_new_tokens": MAX_GEN_TOKS, "temperature": 0.0, "do_sample": False}
    lines = [
        "dataset_path: json",
        "test_split: test",
        "output_type: generate_until",
        f"process_docs: !function {FUNCTIONS}.process_docs",
        f"doc_to_visual: !function {FUNCTIONS}.doc_to_visual",
        f"doc_to_text: !function {FUNCTIONS}.doc_to_text",
        f"doc_to_target: !function {FUNCTIONS}.doc_to_target",
        f"process_results: !function {FUNCTIONS}.process_results",
        f"generation_kwargs: {json.dumps(generation)}",
        'lmms_eval_specific_kwargs: {"default": {"pre_prompt": "", "post_prompt": ""}}',
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


# ---------------------------------------------------------------------- launcher


def with_include_path(args: list[str], folder: str | Path) -> list[str]:
    """lmms-eval's arguments with ``--include_path folder`` added to an evaluation, unless given."""
    if not args or any(a == "--include_path" or a.startswith("--include_path=") for a in args):
        return args
    if args[0] == "eval":
        return ["eval", "--include_path", str(folder), *args[1:]]
    if args[0].startswith("-") and args[0] not in ("-h", "--help"):
        return ["--include_path", str(folder), *args]
    return args  # another subcommand (tasks, models, ...): as it is


def main(argv: Sequence[str] | None = None) -> None:
    """lmms-eval's own command line, with our tasks on the include path; ``--limit N`` takes N
    whole samples of each of our cards (``hosts.lm_eval.whole_sample_limit``)."""
    from lmms_eval.cli.dispatch import main as lmms_eval_main

    from .lmms_eval_conditions import SAMPLES_ENV

    args = list(sys.argv[1:] if argv is None else argv)
    args = with_include_path(args, tasks_dir())
    args, samples, note = whole_sample_limit(args, "lmms-eval")
    if note:
        print(note, file=sys.stderr)
    _skip_filelock_patch()
    failures = _count_failures()
    saved, saved_samples = sys.argv, os.environ.get(SAMPLES_ENV)
    sys.argv = ["lmms-eval", *args]
    if samples is not None:
        os.environ[SAMPLES_ENV] = str(samples)
    try:
        lmms_eval_main()
    finally:
        sys.argv = saved
        if saved_samples is None:
            os.environ.pop(SAMPLES_ENV, None)
        else:
            os.environ[SAMPLES_ENV] = saved_samples
    if failures:
        raise SystemExit(f"lmms-eval: {len(failures)} evaluation(s) failed: {failures[0]}")


def _count_failures() -> list[str]:
    """The errors of lmms-eval's evaluations in this run (its command line logs them, exits 0)."""
    import lmms_eval.__main__ as lmms_eval_cli

    failures: list[str] = []
    evaluate = getattr(lmms_eval_cli.cli_evaluate_single, "__wrapped__", None)
    evaluate = evaluate or lmms_eval_cli.cli_evaluate_single

    def evaluate_single(*args: Any, **kwargs: Any) -> Any:
        try:
            return evaluate(*args, **kwargs)
        except Exception as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
            raise

    evaluate_single.__wrapped__ = evaluate  # type: ignore[attr-defined]
    lmms_eval_cli.cli_evaluate_single = evaluate_single
    return failures


def _skip_filelock_patch() -> None:
    """Let lmms-eval 0.7.3 run with filelock 4, which torch and datasets now install.

    Its evaluator patches ``filelock._api`` (filelock 3) before every run, to share one lock per
    file between filelock's and datasets' lock classes, and fails where that module is gone.
    Without it datasets' locks are used as they are, which one process loading local JSON needs.
    """
    import importlib.util

    if importlib.util.find_spec("filelock._api") is None:
        from lmms_eval import evaluator

        evaluator._enable_reentrant_filelocks._patched = True


if __name__ == "__main__":
    print(tasks_dir())
