"""MedFM-Robust: how medical foundation models hold up under clinical image corruptions.

    >>> from medfm_robust_plugin import corrupt
    >>> noisy = corrupt(ct_slice, "gaussian_noise", severity=3, seed=0)

Heavy libraries (torch, transformers, the host harnesses) are imported only where used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    CorruptionOutputError,
    DuplicateRegistrationError,
    ImageReadError,
    InvalidImageError,
    ItemTimeoutError,
    MedFMRobustError,
    OutputDirBusyError,
    PluginError,
    SeverityError,
    UnknownCorruptionError,
)
from .hookspecs import hookimpl

__version__ = "0.1.0"

_LAZY = {
    "corruption": ".corruptions.spec",
    "Corruption": ".corruptions.spec",
    "corrupt": ".engine",
    "corrupt_batch": ".engine",
    "get_corruption": ".engine",
    "list_corruptions": ".engine",
    "sample_seed": ".engine",
    "load_image": ".image",
    "save_image": ".image",
    "MedicalImage": ".image",
    "get_registry": ".plugins",
}

__all__ = [
    "__version__",
    "hookimpl",
    "CorruptionOutputError",
    "DuplicateRegistrationError",
    "ImageReadError",
    "InvalidImageError",
    "ItemTimeoutError",
    "MedFMRobustError",
    "OutputDirBusyError",
    "PluginError",
    "SeverityError",
    "UnknownCorruptionError",
    "Corruption",
    "MedicalImage",
    "corrupt",
    "corrupt_batch",
    "corruption",
    "get_corruption",
    "get_registry",
    "list_corruptions",
    "load_image",
    "sample_seed",
    "save_image",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'medfm_robust_plugin' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # pragma: no cover
    from .corruptions.spec import Corruption, corruption
    from .engine import corrupt, corrupt_batch, get_corruption, list_corruptions, sample_seed
    from .image import MedicalImage, load_image, save_image
    from .plugins import get_registry
