"""How the API models fail and retry: failures read from a provider, Retry-After, backoff with
jitter, a retry budget per run and a circuit breaker that stops a run against a dead server."""

from __future__ import annotations

import email.utils
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

# Statuses that a repeat cannot fix: bad request, bad key, no access, no such model, invalid body.
FATAL_STATUSES = frozenset({400, 401, 403, 404, 422})


def is_retryable_status(status: int) -> bool:
    return status in (408, 409, 429) or status >= 500


@dataclass(frozen=True)
class APIFailure:
    """How a provider's exception reads: HTTP status (None for a network error) and server hints."""

    status: int | None
    message: str
    retry_after: float | None = None
    empty: bool = False  # an answer came, without text

    @property
    def retryable(self) -> bool:
        return not self.empty and (self.status is None or is_retryable_status(self.status))


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    if not headers:
        return None
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    if "retry-after-ms" in lowered:
        try:
            return max(0.0, float(lowered["retry-after-ms"]) / 1000)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and jitter; a server's Retry-After wins."""

    max_retries: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0
    max_retry_after: float = 300.0  # a longer requested wait means a spent quota: fail instead

    def backoff(self, retry: int) -> float:
        """Wait before retry number ``retry`` (1-based) when the server names no time."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (retry - 1))
        return ceiling * random.uniform(0.5, 1.0)  # jitter spreads the threads of one run


class RetryBudget:
    """The retries one run may spend across all its items, so that a server failing most requests
    cannot multiply them: each retry takes one, each answer received earns back a tenth of one (up
    to the full budget), so that a long run with a few failures here and there never runs out."""

    EARNED_PER_ANSWER = 0.1

    def __init__(self, size: int) -> None:
        self.size = size
        self._left = float(size)
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self._left < 1:
                return False
            self._left -= 1
            return True

    def earn(self) -> None:
        with self._lock:
            self._left = min(float(self.size), self._left + self.EARNED_PER_ANSWER)

    @property
    def left(self) -> float:
        return self._left


# Failures that say the server (or our key for it) is not working, rather than that one request
# was bad: they count towards the circuit breaker.
SERVER_LEVEL_STATUSES = frozenset({401, 403, 404})


class CircuitBreaker:
    """Opens after ``threshold`` requests in a row fail with a timeout, a network error, a 5xx, a
    429 or a refused key / unknown model (401, 403, 404); any answer closes the streak. Once open
    it stays open: nothing more is sent and the run stops (0 turns the breaker off)."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.streak = 0
        self.last: APIFailure | None = None
        self._open = threading.Event()
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return self._open.is_set()

    def answered(self) -> None:
        with self._lock:
            self.streak = 0

    def failed(self, failure: APIFailure) -> bool:
        """Count one failed request; True when this one opened the breaker."""
        if not (failure.retryable or failure.status in SERVER_LEVEL_STATUSES):
            self.answered()  # the server answered; the request was at fault
            return False
        with self._lock:
            self.streak += 1
            self.last = failure
            if self.threshold and self.streak >= self.threshold and not self._open.is_set():
                self._open.set()
                return True
        return False

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the breaker opens meanwhile."""
        self._open.wait(seconds)


class EmptyAnswer(Exception):
    """A reply without answer text (OpenAI ``content: null``, a Gemini reply with no text part);
    carries the tokens it was billed for."""

    def __init__(
        self, reason: str, input_tokens: int | None = None, output_tokens: int | None = None
    ) -> None:
        super().__init__(reason)
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
