"""What a corruption is: a pure function of (image, parameter, rng) with its severity table.

The split follows MONAI/TorchIO: the table (or a continuous strength) chooses the parameter, the
rng supplies every random draw, and the function only applies them. The same seed therefore gives
the same artifact pattern at every strength, which is what makes SSIM calibration converge.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..errors import SeverityError

Domain = Literal["unit", "physical"]
Channels = Literal["any", "rgb", "gray"]
CorruptionFunction = Callable[[np.ndarray, Any, np.random.Generator], Any]

NUM_SEVERITIES = 5


@dataclass(frozen=True)
class ImageContext:
    """What is known about the image beyond its pixels, for corruptions that need physics.

    A corruption function receives it when it declares a fourth parameter named ``context``.
    ``pixel_spacing`` is (row, column) spacing in mm when known; ``units`` is ``"HU"`` when the
    values are Hounsfield units by the file's own word (DICOM rescale of a CT) or the caller's;
    ``window`` is the presentation window (the values shown black and white, see
    ``presentation``); ``meta`` holds what the file said (DICOM modality, rescale, photometric).
    """

    modality: str | None = None
    pixel_spacing: tuple[float, float] | None = None
    units: str | None = None
    window: tuple[float, float] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Corruption:
    """A registered corruption: apply it with ``corrupt(image, spec_or_name, severity, seed)``."""

    name: str
    function: CorruptionFunction
    family: str
    severity_params: tuple[Any, ...]
    modalities: tuple[str, ...] = ()
    domain: Domain = "unit"
    channels: Channels = "any"
    param_range: tuple[Any, Any] | None = None
    description: str = ""
    reference: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)
    accepts_uint8: bool = False  # takes plain 8-bit images as uint8 (0-255) as well as float [0, 1]
    plugin: str | None = None
    wants_context: bool = False  # the function takes a fourth argument, ``context: ImageContext``

    def __post_init__(self) -> None:
        if len(self.severity_params) != NUM_SEVERITIES:
            raise ValueError(
                f"corruption '{self.name}': severity_params needs {NUM_SEVERITIES} entries, "
                f"got {len(self.severity_params)}"
            )
        if self.domain not in ("unit", "physical"):
            raise ValueError(f"corruption '{self.name}': domain must be 'unit' or 'physical'")
        if self.channels not in ("any", "rgb", "gray"):
            raise ValueError(f"corruption '{self.name}': channels must be 'any', 'rgb' or 'gray'")

    def applies_to(self, modality: str | None) -> bool:
        """True when the corruption is meant for ``modality`` (an empty list means every modality)."""
        return modality is None or not self.modalities or modality in self.modalities

    @property
    def strength_ends(self) -> tuple[Any, Any]:
        """The parameters at strength 0 and 1: ``param_range``, else the table's mildest and
        strongest entries."""
        return self.param_range or (self.severity_params[0], self.severity_params[-1])

    def param_for(self, severity: float | None = None, strength: float | None = None) -> Any:
        """The parameter at an integer or fractional severity (1-5), or at a strength in [0, 1]."""
        if strength is not None:
            if isinstance(strength, bool) or not 0.0 <= float(strength) <= 1.0:
                raise SeverityError(
                    f"corruption '{self.name}': strength {strength!r} must lie in [0, 1]"
                )
            lo, hi = self.strength_ends
            return _interpolate(lo, hi, float(strength), self.name)
        if severity is None or isinstance(severity, bool):
            raise SeverityError(f"corruption '{self.name}': severity {severity!r} must be 1-5")
        try:
            level = float(severity)
        except (TypeError, ValueError):
            raise SeverityError(
                f"corruption '{self.name}': severity {severity!r} must be 1-5"
            ) from None
        if not 1.0 <= level <= NUM_SEVERITIES:
            raise SeverityError(
                f"corruption '{self.name}': severity {severity!r} is outside 1-5; "
                "use 1 (mildest) to 5 (strongest), or strength= in [0, 1]"
            )
        index = int(np.floor(level)) - 1
        fraction = level - (index + 1)
        if fraction == 0.0:
            return self.severity_params[index]
        return _interpolate(
            self.severity_params[index], self.severity_params[index + 1], fraction, self.name
        )

    def __repr__(self) -> str:
        return f"<Corruption {self.name} family={self.family} plugin={self.plugin}>"


def _interpolate(lo: Any, hi: Any, t: float, name: str) -> Any:
    if isinstance(lo, (tuple, list)):
        if not isinstance(hi, (tuple, list)) or len(lo) != len(hi):
            raise SeverityError(
                f"corruption '{name}': table entries differ in shape; use integer severities"
            )
        return tuple(_interpolate(a, b, t, name) for a, b in zip(lo, hi))
    if isinstance(lo, (bool, str)) or not isinstance(lo, (int, float, np.number)):
        if lo == hi:
            return lo
        raise SeverityError(
            f"corruption '{name}': its parameters cannot be interpolated; use integer severities"
        )
    value = float(lo) + (float(hi) - float(lo)) * t
    if isinstance(lo, (int, np.integer)) and isinstance(hi, (int, np.integer)):
        return int(round(value))
    return value


def corruption(
    name: str,
    *,
    family: str,
    severity_params: Sequence[Any],
    modalities: Sequence[str] = (),
    domain: Domain = "unit",
    channels: Channels = "any",
    param_range: tuple[Any, Any] | None = None,
    reference: str = "",
    tags: Sequence[str] = (),
    accepts_uint8: bool = False,
) -> Callable[[CorruptionFunction], Corruption]:
    """Declare a corruption. The decorated function gets ``(image, param, rng)``.

    ``image`` is float32 H x W x C: for ``domain="unit"`` the presented image in [0, 1] (what the
    model sees: CT through its window, MR through robust percentiles, photographs as they are),
    for ``domain="physical"`` the image's own values (HU, MR magnitude, raw detector counts). It
    returns an array of the same shape (optionally with a dict of the random draws worth
    recording). A function with a fourth parameter named ``context`` also receives the
    ``ImageContext`` (pixel spacing, units, window, file metadata). ``severity_params`` holds the five table values.
    ``param_range`` gives the parameters at strength 0 and 1 when they reach beyond the table.
    ``accepts_uint8=True`` says the function also takes a plain 8-bit image as uint8 0-255 (and may
    return uint8), so that inherently 8-bit operations (JPEG, PIL resampling) skip two conversions.
    """

    def decorate(function: CorruptionFunction) -> Corruption:
        doc = inspect.getdoc(function) or ""
        wants_context = "context" in inspect.signature(function).parameters
        return Corruption(
            name=name,
            function=function,
            family=family,
            severity_params=tuple(severity_params),
            modalities=tuple(modalities),
            domain=domain,
            channels=channels,
            param_range=param_range,
            description=doc,
            reference=reference,
            tags=tuple(tags),
            accepts_uint8=accepts_uint8,
            wants_context=wants_context,
        )

    return decorate
