"""VLMEvalKit host: MedFM-Robust datasets and models inside VLMEvalKit's own runner.

VLMEvalKit has no plugin mechanism, so ``register()`` adds our classes to a running VLMEvalKit the
way its own modules list theirs: dataset classes at the front of ``vlmeval.dataset.DATASET_CLASSES``
(``build_dataset`` takes the first class that claims a name), their names in ``SUPPORTED_DATASETS``,
model builders in ``vlmeval.config.supported_VLM``, and every class as an attribute of
``vlmeval.dataset`` / ``vlmeval.vlm`` so that the ``--config`` JSON route finds it by class name.

``main()`` is the ``vlmeval`` console script (VLMEvalKit ships only ``vlmutil``): VLMEvalKit's own
``run.py`` with every argument passed through, MedFM-Robust registered::

    vlmeval --data MedFMRobust-Mini-VQA --model gpt-4o
    vlmeval --data PathVQA_TEST-MedFMRobust --model medgemma
    torchrun --nproc-per-node=2 "$(command -v vlmeval)" --data MedFMRobust-VQA-Lite --model medgemma

See docs/vlmeval.md for the dataset names, the ``--config`` arguments and the result files.

VLMEvalKit logs the key of its API models ("Using API Base: ...; API Key: sk-...") into
``<work-dir>/logs/*.log``; ``main()`` first installs a logging filter that redacts keys (those in
the environment, those of our models, and anything shaped like ``sk-...`` / ``AIza...``) on the root
logger, VLMEvalKit's loggers and their handlers, and on every record as it is made.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from ..errors import MedFMRobustError

INSTALL_HINT = "pip install ms-vlmeval  (or: pip install 'medfm-robust-plugin[vlmeval]')"
RUN_PY_ENV = "VLMEVAL_RUN_PY"
ROBUST_SUFFIX = "-MedFMRobust"  # <any VLMEvalKit image dataset>-MedFMRobust

# Lowercase names as the paper writes them -> VLMEvalKit's own entries (first one present wins).
API_ALIASES: dict[str, tuple[str, ...]] = {
    "gpt-4o": ("GPT4o_20240806", "GPT4o"),
    "gpt-4o-mini": ("GPT4o_MINI",),
    "gemini-2.5-flash": ("GeminiFlash2-5",),
    "gemini-2.5-pro": ("GeminiPro2-5",),
}

# What register() needs from VLMEvalKit, checked before anything is changed.
REQUIRED_ATTRIBUTES = (
    ("vlmeval.dataset", "DATASET_CLASSES"),
    ("vlmeval.dataset", "SUPPORTED_DATASETS"),
    ("vlmeval.dataset", "build_dataset"),
    ("vlmeval.dataset.image_base", "ImageBaseDataset"),
    ("vlmeval.dataset.image_mcq", "ImageMCQDataset"),
    ("vlmeval.config", "supported_VLM"),
    ("vlmeval.vlm.base", "BaseModel"),
)

MARK = "_medfm_robust"  # class attribute that tells our classes from VLMEvalKit's
LOGGERS = ("vlmeval",)  # VLMEvalKit's logger tree (vlmeval.smp.log.ROOT_LOGGER_NAME)


class VLMEvalKitMissing(MedFMRobustError, ImportError):
    """VLMEvalKit is not installed."""


class VLMEvalKitIncompatible(MedFMRobustError):
    """The installed VLMEvalKit lacks something that registration relies on."""


@dataclass
class Registration:
    """What ``register()`` did: names added now, and names that were already there."""

    datasets: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    already_registered: bool = False


def import_vlmeval() -> Any:
    """``import vlmeval``, or a clear error with the install command."""
    try:
        import vlmeval
    except ImportError as exc:
        if exc.name is not None and exc.name.split(".")[0] != "vlmeval":
            raise VLMEvalKitMissing(
                f"VLMEvalKit is installed but cannot be imported: it needs '{exc.name}' ({exc}); "
                f"install it, or reinstall VLMEvalKit: {INSTALL_HINT}"
            ) from exc
        raise VLMEvalKitMissing(
            f"VLMEvalKit is not installed; install it with: {INSTALL_HINT}"
        ) from exc
    return vlmeval


def check_vlmeval() -> dict[str, Any]:
    """The VLMEvalKit objects registration uses; a clear error naming whatever is missing."""
    import importlib

    import_vlmeval()
    found: dict[str, Any] = {}
    missing = []
    for module_name, attribute in REQUIRED_ATTRIBUTES:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            missing.append(f"module {module_name} ({exc})")
            continue
        if not hasattr(module, attribute):
            missing.append(f"{module_name}.{attribute}")
            continue
        found[f"{module_name}.{attribute}"] = getattr(module, attribute)
    if missing:
        raise VLMEvalKitIncompatible(
            f"the installed VLMEvalKit ({vlmeval_version()}) lacks {', '.join(missing)}, which "
            "MedFM-Robust registers into; nothing was registered. Install a release that has "
            f"them ({INSTALL_HINT}) or report the VLMEvalKit version"
        )
    return found


def vlmeval_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"ms-vlmeval {version('ms-vlmeval')}"
    except PackageNotFoundError:
        return "a source checkout"


def register(robustify: Sequence[str] = (), samples: int | None = None) -> Registration:
    """Add MedFM-Robust's datasets and models to the running VLMEvalKit; safe to call again.

    ``robustify`` names existing VLMEvalKit image datasets to offer as ``<name>-MedFMRobust``
    (the ``vlmeval`` command passes every ``--data`` name with that suffix). ``samples`` is the
    number of whole samples our task-card datasets keep when their own ``samples`` is not given
    (the ``vlmeval`` command's ``--limit``, see ``whole_sample_limit``); None keeps them all.
    """
    import importlib

    found = check_vlmeval()
    from . import vlmeval_datasets, vlmeval_models, vlmeval_robustified

    vlmeval_datasets.MedFMRobustRows.default_samples = samples

    dataset_module = importlib.import_module("vlmeval.dataset")
    vlm_module = importlib.import_module("vlmeval.vlm")
    classes: list[type] = vlmeval_datasets.dataset_classes()
    for base_name in robustify:
        name = base_name[: -len(ROBUST_SUFFIX)] if base_name.endswith(ROBUST_SUFFIX) else base_name
        classes.append(vlmeval_robustified.robustified_class(name))

    dataset_list: list[type] = found["vlmeval.dataset.DATASET_CLASSES"]
    supported: list[str] = found["vlmeval.dataset.SUPPORTED_DATASETS"]
    result = Registration()
    known = {cls.__name__ for cls in dataset_list if getattr(cls, MARK, False)}
    for cls in classes:
        names = cls.supported_datasets()
        if cls.__name__ in known:
            continue
        dataset_list.insert(0, cls)  # build_dataset takes the first class that claims a name
        supported.extend(n for n in names if n not in supported)
        setattr(dataset_module, cls.__name__, cls)
        result.datasets.extend(names)
        result.classes.append(cls.__name__)

    supported_vlm: dict[str, Any] = found["vlmeval.config.supported_VLM"]
    for name, builder in model_builders(supported_vlm, vlmeval_models).items():
        if name not in supported_vlm:
            supported_vlm[name] = builder
            result.models.append(name)
    for cls in vlmeval_models.model_classes():
        if getattr(vlm_module, cls.__name__, None) is not cls:
            setattr(vlm_module, cls.__name__, cls)
            result.classes.append(cls.__name__)
    result.already_registered = not (result.datasets or result.models or result.classes)
    return result


def model_builders(supported_vlm: dict[str, Any], models: Any) -> dict[str, Any]:
    """Our model names -> builders: the local medical VLMs, and the lowercase API aliases."""
    builders: dict[str, Any] = {
        "medgemma": partial(models.MedFMRobustMedGemma),
        "medgemma-1.5": partial(models.MedFMRobustMedGemma, model_name="medgemma-1.5"),
        "llava-med": partial(models.MedFMRobustLLaVAMed),
    }
    for alias, targets in API_ALIASES.items():
        target = next((t for t in targets if t in supported_vlm), None)
        if target is not None:
            builders[alias] = supported_vlm[target]
    return builders


# --------------------------------------------------------------------------- the command


def run_py_path() -> Path:
    """VLMEvalKit's runner: ``$VLMEVAL_RUN_PY``, ``vlmeval/run.py`` (PyPI), or ``run.py`` beside a
    git checkout's package. Found without importing VLMEvalKit (see ``main``)."""
    import importlib.util

    override = os.environ.get(RUN_PY_ENV)
    if override:
        path = Path(override)
        if not path.is_file():
            raise MedFMRobustError(f"{RUN_PY_ENV}={override} is not a file; point it at run.py")
        return path
    spec = importlib.util.find_spec("vlmeval")
    if spec is None or not spec.submodule_search_locations:
        raise VLMEvalKitMissing(f"VLMEvalKit is not installed; install it with: {INSTALL_HINT}")
    package = Path(next(iter(spec.submodule_search_locations))).resolve()
    for path in (package / "run.py", package.parent / "run.py"):
        if path.is_file():
            return path
    raise MedFMRobustError(
        f"VLMEvalKit's run.py is neither in {package} nor in {package.parent}; set {RUN_PY_ENV} "
        "to its path"
    )


def data_names(argv: Sequence[str]) -> list[str]:
    """The dataset names of a command line: ``--data`` names and ``--config`` data keys."""
    names: list[str] = []
    option = None
    for arg in argv:
        if arg.startswith("--"):
            option, _, value = arg.partition("=")
            if value:
                names.extend(value.split() if option == "--data" else _config_keys(option, value))
                option = None
            continue
        if option == "--data":
            names.append(arg)
        else:
            names.extend(_config_keys(option, arg))
            option = None
    return names


def robust_names(argv: Sequence[str]) -> list[str]:
    """The dataset names that ask for a robustified VLMEvalKit dataset: ``--data`` names and
    ``--config`` data keys that end in ``-MedFMRobust``."""
    return [
        n
        for n in data_names(argv)
        if n.endswith(ROBUST_SUFFIX) and not n.startswith("MedFMRobust-")
    ]


def whole_sample_limit(argv: Sequence[str]) -> tuple[list[str], int | None]:
    """``--limit N`` as N whole samples when every dataset is a MedFM-Robust task card.

    VLMEvalKit's ``--limit N`` keeps a dataset's first N rows; our rows are grouped by sample (clean,
    then every condition), so N rows would be one sample under N conditions. When every dataset is
    one of our cards, the limit is taken out of VLMEvalKit's arguments and becomes N samples, each
    clean and under every condition (returned; the dataset classes read it from
    ``$MEDFM_ROBUST_VLMEVAL_SAMPLES``). Otherwise the arguments are left as they are.
    """
    args = list(argv)
    at = next((i for i, a in enumerate(args) if a == "--limit" or a.startswith("--limit=")), None)
    names = data_names(args)
    if at is None or not names or not all(n.startswith("MedFMRobust-") for n in names):
        return args, None
    flag = args[at]
    if flag.startswith("--limit="):
        value, drop = flag.partition("=")[2], 1
    else:
        value, drop = (args[at + 1] if at + 1 < len(args) else ""), 2
    try:
        count = int(value)
    except ValueError:
        return args, None  # VLMEvalKit reports a bad --limit itself
    del args[at : at + drop]
    return args, count if count > 0 else None


def _config_keys(option: str | None, path: str) -> list[str]:
    if option != "--config":
        return []
    import json

    try:
        return list(json.loads(Path(path).read_text(encoding="utf-8")).get("data", {}))
    except (OSError, ValueError, AttributeError):
        return []  # VLMEvalKit reports a bad config file itself


def main(argv: Sequence[str] | None = None) -> int:
    """``vlmeval ARGS``: VLMEvalKit's run.py with ARGS, MedFM-Robust registered.

    run.py's module code runs first, as it would under ``python run.py``: under torchrun it gives
    each process its GPUs through CUDA_VISIBLE_DEVICES before it imports torch. Registration then
    fills the registries its module code imported, and its ``main()`` runs.
    """
    from ..redaction import install_log_redaction, uninstall_log_redaction

    install_log_redaction(LOGGERS)  # before run.py logs anything
    argv, samples = whole_sample_limit(list(sys.argv[1:] if argv is None else argv))
    if samples is not None:
        print(
            f"vlmeval: --limit {samples}: {samples} samples of each MedFM-Robust dataset, each clean "
            "and under every condition (not VLMEvalKit's first rows)",
            file=sys.stderr,
        )
    saved = sys.argv
    try:
        path = run_py_path()
        sys.argv = [str(path), *argv]
        runner: dict[str, Any] = {"__name__": "vlmeval.run", "__file__": str(path)}
        try:
            exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), runner)
        except ImportError:
            import_vlmeval()  # says whether VLMEvalKit or one of its dependencies is missing
            raise
        register(robustify=robust_names(argv), samples=samples)
        failures = _count_failures(runner)
        if callable(runner.get("load_env")):
            runner["load_env"]()  # what run.py does under ``__main__``: keys from its .env
        runner["main"]()
        if failures:
            print(
                f"vlmeval: {len(failures)} model x dataset combination(s) failed (VLMEvalKit "
                f"skipped them and ran the others): {'; '.join(failures)}",
                file=sys.stderr,
            )
            return 1
    except MedFMRobustError as exc:
        print(f"vlmeval: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # argparse --help and usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = saved
        rows = sys.modules.get(f"{__package__}.vlmeval_datasets")
        if rows is not None:  # a caller in the same process gets whole datasets again
            rows.MedFMRobustRows.default_samples = None
        uninstall_log_redaction()  # a caller in the same process gets its logging back as it was
    return 0


def _count_failures(runner: dict[str, Any]) -> list[str]:
    """The combinations run.py gives up on in this run, as ``model x dataset: error``.

    run.py logs a combination that raised (a dataset that cannot be built, say) or a dataset it
    does not know, marks it in its status file, skips it and exits 0; its status function is
    wrapped here to remember them, so that the command can fail after running the others.
    """
    failures: list[str] = []
    record = runner.get("upsert_dataset_status")
    if not callable(record):
        return failures  # another VLMEvalKit: its own exit status stands

    def upsert_dataset_status(*args: Any, **kwargs: Any) -> Any:
        error = kwargs.get("error_message")
        if error is None and kwargs.get("skip_reason") == "invalid_dataset":
            error = "VLMEvalKit does not know this dataset"
        if error is not None:
            model, dataset = kwargs.get("model_name"), kwargs.get("dataset_name")
            failures.append(f"{model} x {dataset}: {error}")
        return record(*args, **kwargs)

    runner["upsert_dataset_status"] = upsert_dataset_status
    return failures


if __name__ == "__main__":
    sys.exit(main())
