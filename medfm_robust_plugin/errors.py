"""Errors raised by MedFM-Robust. Each message says what went wrong, for which input, and what to do."""

from __future__ import annotations


class MedFMRobustError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidImageError(MedFMRobustError, ValueError):
    """An image that cannot be corrupted: empty, NaN, wrong shape or dtype, too large."""


class ImageReadError(MedFMRobustError, OSError):
    """A file that could not be read as an image."""


class UnknownCorruptionError(MedFMRobustError, KeyError):
    """A corruption name that no loaded plugin registered."""

    def __str__(self) -> str:  # KeyError would otherwise wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class SeverityError(MedFMRobustError, ValueError):
    """A severity outside 1-5 or a strength outside [0, 1]."""


class SuiteError(MedFMRobustError, ValueError):
    """A suite file that cannot be used as written, or an unknown suite."""


class TaskError(MedFMRobustError, ValueError):
    """A task card that cannot be used as written, or an unknown task."""


class MetricError(MedFMRobustError, ValueError):
    """A metric that cannot score what it was given, or an unknown metric."""


class ModelError(MedFMRobustError):
    """A model that cannot be built or called as asked, or an unknown model."""


class PluginError(MedFMRobustError):
    """A plugin broke a registration rule (for example two plugins registering one name)."""


class DuplicateRegistrationError(PluginError):
    """Two plugins registered the same name for the same kind of thing."""


class CorruptionOutputError(MedFMRobustError, ValueError):
    """A corruption returned an unusable image: NaN or inf, another shape, values out of range."""


class ItemTimeoutError(MedFMRobustError, TimeoutError):
    """One item (a corrupted view or a model call) ran past the per-item time limit."""


class OutputDirBusyError(MedFMRobustError):
    """Another process is writing into the same output directory."""


class HostError(MedFMRobustError, ValueError):
    """An unknown host, or a host asked for something its harness does not offer."""


def describe_source(source: object | None) -> str:
    """How an input is named in error messages: a sample id, a path, or a generic label."""
    if source is None or source == "":
        return "input image"
    return f"'{source}'"
