"""imagecorruptions 1.1.2, the ImageNet-C reference, made to run on current numpy/scikit-image.

It also imports pkg_resources, gone from current setuptools; a one-function stand-in covers it.
Three of its corruptions crash there (glass_blur and gaussian_blur pass ``multichannel=`` to
skimage's gaussian, fog uses ``np.float_``); the shim translates both only while a reference call
runs. The reference draws from numpy's global random state, so each call seeds it first.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
from pathlib import Path

import numpy as np

AVAILABLE = importlib.util.find_spec("imagecorruptions") is not None


def _provide_pkg_resources() -> None:
    """imagecorruptions imports ``resource_filename`` from pkg_resources, which setuptools 81+
    no longer ships; give it the one function it uses, backed by importlib.resources."""
    if importlib.util.find_spec("pkg_resources") is not None:
        return
    import sys
    import types

    module = types.ModuleType("pkg_resources")

    def resource_filename(module_name: str, resource: str) -> str:
        origin = importlib.util.find_spec(module_name).origin  # a module's file: use its folder
        return str(Path(origin).parent / resource)

    module.resource_filename = resource_filename
    # pytest's monkeypatch.syspath_prepend calls this when pkg_resources is imported
    module.fixup_namespace_packages = lambda *args, **kwargs: None
    sys.modules["pkg_resources"] = module


if AVAILABLE:
    _provide_pkg_resources()

# Corruptions of the reference that draw no random numbers: ours must match them pixel for pixel.
DETERMINISTIC = (
    "defocus_blur",
    "zoom_blur",
    "brightness",
    "contrast",
    "saturate",
    "pixelate",
    "jpeg_compression",
    "gaussian_blur",
)


@contextlib.contextmanager
def _shimmed():
    import imagecorruptions.corruptions as ic
    import skimage.filters

    original_gaussian = ic.gaussian

    @functools.wraps(skimage.filters.gaussian)
    def gaussian(image, *args, multichannel=None, **kwargs):
        if multichannel:
            kwargs["channel_axis"] = -1
        return skimage.filters.gaussian(image, *args, **kwargs)

    had_float = "float_" in np.__dict__
    ic.gaussian = gaussian
    np.float_ = np.float64
    try:
        yield
    finally:
        ic.gaussian = original_gaussian
        if not had_float:
            del np.float_


def reference_names() -> list[str]:
    from imagecorruptions import get_corruption_names

    return list(get_corruption_names("all"))


def reference_corrupt(image: np.ndarray, name: str, severity: int, seed: int = 0) -> np.ndarray:
    """The reference's output for a uint8 RGB image, as uint8."""
    from imagecorruptions import corrupt

    with _shimmed():
        np.random.seed(seed)
        out = corrupt(image, corruption_name=name, severity=severity)
    return np.clip(np.asarray(out), 0, 255).astype(np.uint8)
