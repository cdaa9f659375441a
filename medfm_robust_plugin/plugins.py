"""Loading plugins (built-in modules and ``medfm_robust`` entry points) and collecting what they register.

Each hook implementation is called on its own with a ``register`` callback that knows which plugin
it belongs to, so that a duplicate name is reported with both plugins and a plugin that raises is
reported by name while every other plugin keeps its registrations. A plugin that raises anything at
all while loading (``SystemExit`` included; only ``KeyboardInterrupt`` goes through) is a failure of
that plugin, never of the command. For a duplicate name the first registration is kept.
"""

from __future__ import annotations

import difflib
import importlib
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import pluggy

from . import hookspecs
from .errors import DuplicateRegistrationError, MedFMRobustError, PluginError

ENTRY_POINT_GROUP = "medfm_robust"
PLUGINS_ENV = "MEDFM_ROBUST_PLUGINS"

# Built-in plugins: plain modules with @hookimpl functions, loaded exactly like external ones.
BUILTIN_PLUGINS: tuple[str, ...] = tuple(
    f"medfm_robust_plugin.corruptions.{family}"
    for family in (
        "natural",
        "mri",
        "ct",
        "xray",
        "ultrasound",
        "endoscopy",
        "dermoscopy",
        "pathology",
        "fundus",
    )
) + (
    "medfm_robust_plugin.suites",
    "medfm_robust_plugin.imaged_region",
    "medfm_robust_plugin.data.loaders",
    "medfm_robust_plugin.data.mini",
    "medfm_robust_plugin.tasks",
    "medfm_robust_plugin.models.api",
    "medfm_robust_plugin.models.local_vlm",
    "medfm_robust_plugin.models.segmenters",
    "medfm_robust_plugin.models.baselines",
    "medfm_robust_plugin.models.vqa_floor",
    "medfm_robust_plugin.metrics.vqa",
    "medfm_robust_plugin.metrics.caption",
    "medfm_robust_plugin.metrics.grounding",
    "medfm_robust_plugin.metrics.segmentation",
    "medfm_robust_plugin.hosts.lm_eval_host",
    "medfm_robust_plugin.hosts.vlmeval_host",
    "medfm_robust_plugin.hosts.lmms_eval_host",
    "medfm_robust_plugin.hosts.inspect_host",
)

# The built-in plugins that add commands. The command line imports only these (and the installed
# plugins) to build itself, so that `medfm-robust --help` needs none of the corruption modules.
BUILTIN_COMMAND_PLUGINS: tuple[str, ...] = (
    "medfm_robust_plugin.hosts.lm_eval_host",
    "medfm_robust_plugin.hosts.vlmeval_host",
    "medfm_robust_plugin.hosts.lmms_eval_host",
    "medfm_robust_plugin.hosts.inspect_host",
)

KINDS: dict[str, str] = {
    "corruptions": "register_corruptions",
    "datasets": "register_datasets",
    "tasks": "register_tasks",
    "models": "register_models",
    "metrics": "register_metrics",
    "suites": "register_suites",
    "hosts": "register_hosts",
    "regions": "register_imaged_regions",
}
SINGULAR = {
    "corruptions": "corruption",
    "datasets": "dataset",
    "tasks": "task",
    "models": "model",
    "metrics": "metric",
    "suites": "suite",
    "hosts": "host",
    "regions": "imaged region",
}


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be imported, or whose hook raised."""

    plugin: str
    stage: str
    error: str

    def __str__(self) -> str:
        return f"plugin '{self.plugin}' failed during {self.stage}: {self.error}"


@dataclass
class Registry:
    """Everything the loaded plugins registered, with the plugin that registered each name."""

    items: dict[str, dict[str, Any]] = field(default_factory=lambda: {k: {} for k in KINDS})
    owners: dict[str, dict[str, str]] = field(default_factory=lambda: {k: {} for k in KINDS})
    aliases: dict[str, dict[str, str]] = field(default_factory=lambda: {k: {} for k in KINDS})
    invalid: dict[str, dict[str, str]] = field(default_factory=lambda: {k: {} for k in KINDS})
    plugins: list[str] = field(default_factory=list)
    failures: list[PluginFailure] = field(default_factory=list)

    def add(
        self, kind: str, name: str, item: Any, plugin: str, aliases: Iterable[str] = ()
    ) -> list[DuplicateRegistrationError]:
        """Register ``item``; a name or alias taken already stays with its first plugin.

        Returns one error per name that was taken (the caller reports them), so that a duplicate
        leaves every other registration working.
        """
        taken = [key for key in (name, *aliases) if key in self.owners[kind]]
        duplicates = [self._duplicate(kind, key, plugin) for key in taken]
        if name in taken:
            return duplicates
        for key in (name, *aliases):
            if key not in taken:
                self.owners[kind][key] = plugin
        self.items[kind][name] = item
        for alias in aliases:
            if alias not in taken:
                self.aliases[kind][alias] = name
        return duplicates

    def _duplicate(self, kind: str, key: str, plugin: str) -> DuplicateRegistrationError:
        owner = self.owners[kind][key]
        who = (
            f"twice by plugin '{plugin}'"
            if owner == plugin
            else f"by both plugin '{owner}' and plugin '{plugin}'"
        )
        return DuplicateRegistrationError(
            f"{SINGULAR[kind]} '{key}' is registered {who}; the first registration "
            f"('{owner}') is used. Uninstall one of them, or limit the plugins that load with "
            f"{PLUGINS_ENV}=name1,name2"
        )

    def get(self, kind: str, name: str) -> Any:
        """The item registered under ``name`` (or one of its aliases); KeyError if none."""
        name = self.aliases[kind].get(name, name)
        return self.items[kind][name]

    def names(self, kind: str) -> list[str]:
        return sorted(self.items[kind])

    def registered_by(self, plugin: str) -> dict[str, list[str]]:
        """What one plugin registered, per kind (aliases excluded)."""
        return {
            kind: sorted(
                n for n, p in self.owners[kind].items() if p == plugin and n in self.items[kind]
            )
            for kind in KINDS
        }


def _selected_entry_points(failures: list[PluginFailure] | None = None) -> list[Any]:
    """Entry points of the ``medfm_robust`` group, limited by MEDFM_ROBUST_PLUGINS when it is set.

    A name in MEDFM_ROBUST_PLUGINS that no installed plugin declares is a failure (a typo would
    otherwise load nothing, silently). The same entry point seen twice (one distribution found on
    two paths) is kept once.
    """
    found: list[Any] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if not any((ep.name, ep.value) == (seen.name, seen.value) for seen in found):
            found.append(ep)
    wanted = os.environ.get(PLUGINS_ENV)
    if wanted is None:
        return found
    names = [n.strip() for n in wanted.split(",") if n.strip()]
    declared = sorted({ep.name for ep in found})
    for name in names:
        if name not in declared and failures is not None:
            close = difflib.get_close_matches(name, declared, n=3)
            hint = (
                f"did you mean {', '.join(map(repr, close))}?"
                if close
                else f"installed: {', '.join(declared) or 'none'}"
            )
            failures.append(
                PluginFailure(
                    name,
                    "selection",
                    f"{PLUGINS_ENV} names '{name}', which no installed plugin declares "
                    f"({hint}); nothing is loaded for it",
                )
            )
    return [ep for ep in found if ep.name in names]


def _source(ep: Any) -> str:
    """Where an entry point comes from: its distribution (when known) and its module."""
    dist = getattr(ep, "dist", None)
    name = getattr(dist, "name", None) or (dist.metadata["Name"] if dist is not None else None)
    return f"'{ep.value}' of distribution '{name}'" if name else f"'{ep.value}'"


def _plugin_manager(
    failures: list[PluginFailure], builtins: Iterable[str] = BUILTIN_PLUGINS
) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for module_name in builtins:
        # Our own modules import plainly: a broken installation is an error, never a missing name.
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise BuiltinImportError(
                f"medfm-robust is not installed completely: its module '{module_name}' cannot be "
                f"imported ({_describe(exc)}); reinstall it (pip install --force-reinstall "
                "medfm-robust-plugin) or install what is missing"
            ) from exc
        pm.register(module, name=module_name)
    loaded: dict[str, Any] = {}  # entry-point name -> the entry point loaded under it
    for ep in _selected_entry_points(failures):
        if ep.name in loaded:
            first = loaded[ep.name]
            failures.append(
                PluginFailure(
                    ep.name,
                    "registration",
                    f"two plugins declare the entry-point name '{ep.name}': {_source(first)} "
                    f"(loaded) and {_source(ep)} (not loaded); rename one in its pyproject.toml "
                    "([project.entry-points.medfm_robust]) or uninstall one of them",
                )
            )
            continue
        try:
            plugin = ep.load()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit at import included: the plugin fails, not us
            failures.append(PluginFailure(ep.name, "import", _describe(exc)))
            continue
        try:
            pm.register(plugin, name=ep.name)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # e.g. a hookimpl with a wrong signature
            failures.append(PluginFailure(ep.name, "registration", _describe(exc)))
            continue
        loaded[ep.name] = ep
    return pm


class BuiltinImportError(MedFMRobustError, ImportError):
    """One of the package's own modules cannot be imported (a dependency is missing or broken)."""


def _describe(exc: BaseException) -> str:
    """One line: the exception's type and the first line of its message (pluggy's own errors
    append a dump of every registered module, which says nothing to a user)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if len(text) > 500:
        text = text[:500] + " ..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# What an item of each kind must have, checked when a plugin registers it: a typo'd or half-built
# object is that plugin's failure at load, not an AttributeError in the middle of a run.
KIND_MEMBERS: dict[str, tuple[str, ...]] = {
    "corruptions": ("name", "family", "severity_params", "function"),
    "datasets": ("name", "load"),
    "tasks": ("name", "kind", "datasets", "metrics", "load", "conditions_for"),
    "models": ("name", "kind", "build"),
    "metrics": ("name", "kinds", "score", "summarize"),
    "suites": ("name", "modality", "corruptions"),
    "hosts": ("name", "tasks", "reads", "read_records"),
    "regions": ("name", "kind", "find"),
}


def _missing_members(kind: str, item: Any) -> list[str]:
    return [member for member in KIND_MEMBERS[kind] if not hasattr(item, member)]


def _register_callback(registry: Registry, kind: str, plugin: str, hook_name: str):
    def register(item: Any, name: str | None = None, aliases: Iterable[str] = ()) -> None:
        if kind == "corruptions":
            from .corruptions.spec import Corruption

            if not isinstance(item, Corruption):
                raise PluginError(
                    f"plugin '{plugin}' registered {item!r}, which is not a corruption; "
                    "decorate the function with @medfm_robust_plugin.corruption(...)"
                )
            if item.plugin is None:
                object.__setattr__(item, "plugin", plugin)
        if kind == "hosts" and getattr(item, "plugin", False) is None:
            item.plugin = plugin  # hosts (hosts.base.Host) name the plugin that registered them
        missing = _missing_members(kind, item)
        if missing:
            raise PluginError(
                f"plugin '{plugin}' registered {item!r} as a {SINGULAR[kind]}, but it has no "
                f"{', '.join(missing)}; a {SINGULAR[kind]} has {', '.join(KIND_MEMBERS[kind])}"
            )
        key = name or getattr(item, "name", None)
        if not key:
            raise PluginError(
                f"plugin '{plugin}' registered a {SINGULAR[kind]} without a name; pass name=..."
            )
        for duplicate in registry.add(kind, key, item, plugin, tuple(aliases)):
            registry.failures.append(PluginFailure(plugin, hook_name, _describe(duplicate)))

    return register


def build_registry() -> Registry:
    """Load every plugin and collect what its hooks register."""
    registry = Registry()
    pm = _plugin_manager(registry.failures)
    registry.plugins = [name for name, _ in pm.list_name_plugin()]
    for kind, hook_name in KINDS.items():
        hook = getattr(pm.hook, hook_name)
        for impl in hook.get_hookimpls():  # registration order: built-ins first, so they win
            register = _register_callback(registry, kind, impl.plugin_name, hook_name)
            try:
                impl.function(register=register)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:
                registry.failures.append(PluginFailure(impl.plugin_name, hook_name, _describe(exc)))
    _check_cards(registry)
    return registry


def add_commands(cli: Any) -> list[PluginFailure]:
    """Let every plugin add its commands to ``cli`` (the click group), built-in plugins first.

    A plugin whose hook raises, or that would replace a command already there, is a failure of
    that plugin (returned): the command already there stays, and every other plugin's commands
    are added.
    """
    failures: list[PluginFailure] = []
    pm = _plugin_manager(failures, BUILTIN_COMMAND_PLUGINS)
    owners = dict.fromkeys(cli.commands, "medfm-robust")
    for impl in pm.hook.register_commands.get_hookimpls():  # registration order: built-ins first
        before = dict(cli.commands)
        try:
            impl.function(cli=cli)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            failures.append(PluginFailure(impl.plugin_name, "register_commands", _describe(exc)))
        for name, command in before.items():
            if cli.commands.get(name) is not command:
                cli.commands[name] = command
                failures.append(
                    PluginFailure(
                        impl.plugin_name,
                        "register_commands",
                        f"command '{name}' belongs to '{owners[name]}' already; the plugin's "
                        "command is not added (give it another name)",
                    )
                )
        for name in cli.commands:
            owners.setdefault(name, impl.plugin_name)
    return failures


def _check_cards(registry: Registry) -> None:
    """Drop task cards that name a suite, corruption, metric or dataset nothing registered.

    The card's plugin gets a failure naming the card and what is missing, and ``get_task`` raises
    that message: a misspelt suite never runs a task clean-only.
    """
    for name in list(registry.items["tasks"]):
        card = registry.items["tasks"][name]
        problems = card_problems(card, registry)
        if problems:
            message = f"task '{name}' names {'; '.join(problems)}"
            registry.invalid["tasks"][name] = message
            del registry.items["tasks"][name]
            plugin = registry.owners["tasks"].get(name, "?")
            registry.failures.append(PluginFailure(plugin, "register_tasks", message))


def card_problems(card: Any, registry: Registry) -> list[str]:
    """What a task card names that the registry does not have (empty when the card is whole)."""

    def unknown(kind: str, names: Iterable[str]) -> list[str]:
        known = set(registry.items[kind]) | set(registry.aliases[kind])
        return sorted({n for n in names if n not in known})

    suites = card.suites
    named_suites = (
        list(suites.values())
        if isinstance(suites, dict)
        else []
        if suites == "by_modality"
        else [suites]
    )
    checks = [
        ("suites", "suite", named_suites),
        ("corruptions", "corruption", card.corruptions or ()),
        ("metrics", "metric", card.metrics),
        ("datasets", "dataset", [ref.name for ref in card.datasets]),
    ]
    problems = []
    for kind, what, names in checks:
        known = sorted(registry.items[kind])
        for name in unknown(kind, names):
            close = difflib.get_close_matches(name, known, n=3)
            hint = (
                f"did you mean {', '.join(map(repr, close))}?"
                if close
                else f"none of the {len(known)} registered {what}s is close"
            )
            problems.append(f"unknown {what} '{name}' ({hint})")
    return problems


_lock = threading.Lock()
_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, built on first use."""
    global _registry
    with _lock:
        if _registry is None:
            _registry = build_registry()
        return _registry


def loaded_registry() -> Registry | None:
    """The registry if this process has built it already, else None (nothing is loaded)."""
    with _lock:
        return _registry


def reset_registry() -> None:
    """Forget the loaded plugins, so that the next use loads them again (tests, notebooks)."""
    global _registry
    with _lock:
        _registry = None
