"""Every corruption module offers its corruptions one way: a ``CORRUPTIONS`` tuple that its
``register_corruptions`` hook (made by ``registers``) registers, in that order."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import medfm_robust_plugin.corruptions as corruptions_package
from medfm_robust_plugin.corruptions.registering import registers
from medfm_robust_plugin.corruptions.spec import Corruption, corruption
from medfm_robust_plugin.plugins import BUILTIN_PLUGINS

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(
        corruptions_package.__path__, prefix=f"{corruptions_package.__name__}."
    )
)


def _defined_in(module) -> list[Corruption]:
    return [
        value
        for value in vars(module).values()
        if isinstance(value, Corruption) and value.function.__module__ == module.__name__
    ]


@pytest.mark.parametrize("module_name", MODULES)
def test_a_module_lists_every_corruption_it_defines(module_name):
    module = importlib.import_module(module_name)
    defined = _defined_in(module)
    if defined:
        assert list(module.CORRUPTIONS) == defined, "CORRUPTIONS must list them in file order"


@pytest.mark.parametrize(
    "plugin", [name for name in BUILTIN_PLUGINS if name.startswith(corruptions_package.__name__)]
)
def test_a_builtin_family_registers_exactly_its_list(plugin):
    module = importlib.import_module(plugin)
    registered = []
    module.register_corruptions(register=registered.append)
    assert registered == list(module.CORRUPTIONS) and registered


def test_registers_makes_a_hook_that_registers_in_order():
    @corruption("demo_invert", family="demo", severity_params=[0.2, 0.4, 0.6, 0.8, 1.0])
    def demo_invert(image, amount, rng):
        return image * (1 - amount) + (1 - image) * amount

    @corruption("demo_dim", family="demo", severity_params=[0.9, 0.8, 0.7, 0.6, 0.5])
    def demo_dim(image, factor, rng):
        return image * factor

    hook = registers((demo_dim, demo_invert))
    seen = []
    hook(register=seen.append)
    assert [c.name for c in seen] == ["demo_dim", "demo_invert"]
    assert hook.__name__ == "register_corruptions"
