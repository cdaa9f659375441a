"""Keeping API keys out of everything the package writes: answers, records, caches, reports, logs.

Keys come from the environment only (``OPENAI_API_KEY``, ``GEMINI_API_KEY``, ...). ``redact``
replaces the keys this process knows - every environment variable named like a key, and every key
an API model was built with - by ``[redacted]``; with ``patterns=True`` it also replaces text that
looks like a key (``sk-...``, ``AIza...``, ``hf_...``), which is what logs get.

``install_log_redaction`` puts ``KeyRedactingFilter`` on the root logger, on a host's loggers and
on their handlers, and scrubs every log record as it is made, so that a host's own log lines
(VLMEvalKit's "API Key: sk-...") never reach its log files.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterable

REDACTED = "[redacted]"

# Environment variables whose values are secrets: OPENAI_API_KEY, GOOGLE_API_KEY, HF_TOKEN, ...
_SECRET_VARIABLE = re.compile(r"(^|_)(API_?KEY|KEY|TOKEN|SECRET|SECRET_KEY|ACCESS_KEY)$", re.I)
_MIN_SECRET_LENGTH = 6  # shorter values ("EMPTY", "1") would blot out ordinary words

# Text that looks like a provider's key, whoever's it is: OpenAI / Anthropic / DeepSeek (sk-...),
# Google (AIza...), Hugging Face (hf_...).
KEY_PATTERN = re.compile(r"\b(?:sk-[A-Za-z0-9_-]{8,}|AIza[0-9A-Za-z_-]{20,}|hf_[A-Za-z0-9]{20,})")

_registered: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember a key that this process uses, so that every later ``redact`` removes it."""
    if value and value.strip():
        with _lock:
            _registered.add(value)


def known_secrets() -> list[str]:
    """The keys this process knows (longest first, so that a key containing another goes whole)."""
    found = {
        value
        for name, value in os.environ.items()
        if _SECRET_VARIABLE.search(name) and len(value) >= _MIN_SECRET_LENGTH
    }
    with _lock:
        found |= _registered
    return sorted(found, key=len, reverse=True)


def redact(text: str, extra: Iterable[str | None] = (), *, patterns: bool = False) -> str:
    """``text`` with every known key (and ``extra`` ones) replaced by ``[redacted]``.

    ``patterns`` also replaces anything shaped like a key (for logs; answers keep such text unless
    it is a key this process knows).
    """
    if not text:
        return text
    secrets = {s for s in extra if s} | set(known_secrets())
    for secret in sorted(secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    if patterns:
        text = KEY_PATTERN.sub(REDACTED, text)
    return text


class KeyRedactingFilter(logging.Filter):
    """Rewrites a log record's message (and its traceback text) with keys redacted; drops nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        scrub_record(record)
        return True


def scrub_record(record: logging.LogRecord) -> None:
    if getattr(record, "_medfm_redacted", False):
        return
    try:
        message = record.getMessage()
    except Exception:  # a record whose arguments do not fit its format: leave it to logging
        return
    cleaned = redact(message, patterns=True)
    if cleaned != message:
        record.msg, record.args = cleaned, None
    if record.exc_info and not record.exc_text:
        text = logging.Formatter().formatException(record.exc_info)
        cleaned = redact(text, patterns=True)
        if cleaned != text:
            record.exc_text = cleaned
    if record.stack_info:
        record.stack_info = redact(record.stack_info, patterns=True)
    record._medfm_redacted = True


_FILTER = KeyRedactingFilter()
_installed_factory: list[object] = []


def install_log_redaction(logger_names: Iterable[str] = ()) -> KeyRedactingFilter:
    """Redact keys in every log record of this process from now on; safe to call again.

    The filter goes on the root logger, on each named logger and on every existing logger below
    it, and on all their handlers; a record factory also scrubs each record as it is made, so that
    loggers and handlers created later (VLMEvalKit sets up its log file only once it runs) are
    covered too.
    """
    names = list(logger_names)
    loggers: list[logging.Logger] = [logging.getLogger()]
    loggers += [logging.getLogger(name) for name in names]
    for existing in list(logging.root.manager.loggerDict):
        if any(existing == n or existing.startswith(n + ".") for n in names):
            logger = logging.getLogger(existing)
            if logger not in loggers:
                loggers.append(logger)
    for logger in loggers:
        _add_filter(logger)
        for handler in logger.handlers:
            _add_filter(handler)
    with _lock:
        if not _installed_factory:
            previous = logging.getLogRecordFactory()

            def scrubbing_factory(*args: object, **kwargs: object) -> logging.LogRecord:
                record = previous(*args, **kwargs)
                scrub_record(record)
                return record

            logging.setLogRecordFactory(scrubbing_factory)
            _installed_factory[:] = [previous, scrubbing_factory]
    return _FILTER


def uninstall_log_redaction() -> None:
    """Undo ``install_log_redaction``: the record factory and the filters go."""
    with _lock:
        if _installed_factory:
            previous, ours = _installed_factory
            if logging.getLogRecordFactory() is ours:  # never drop a factory set after ours
                logging.setLogRecordFactory(previous)  # type: ignore[arg-type]
            _installed_factory.clear()
    for logger in [logging.getLogger(), *logging.root.manager.loggerDict.values()]:
        if isinstance(logger, logging.Logger):
            logger.removeFilter(_FILTER)
            for handler in logger.handlers:
                handler.removeFilter(_FILTER)


def _add_filter(target: logging.Filterer) -> None:
    if _FILTER not in target.filters:
        target.addFilter(_FILTER)
