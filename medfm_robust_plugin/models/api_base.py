"""What every API vision-language model shares: a thread pool over the items of a call, the
response cache, bounded retries, and token/cost accounting.

A provider (``api.py``) only says how one request is sent and how its errors read; everything here
is provider-neutral and imports no SDK. The parts live by concern: ``api_prices`` (list prices),
``api_images`` (PNG encoding), ``api_cache`` (the response cache), ``api_retry`` (failures,
backoff, retry budget, circuit breaker) and ``api_usage`` (running totals).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..redaction import redact as redact_secrets
from ..redaction import register_secret
from .api_cache import ResponseCache, cache_key, default_cache_dir, normalise_endpoint
from .api_images import encode_png, image_list, image_size
from .api_prices import PRICES_AS_OF, cost_usd, price_for
from .api_retry import (
    SERVER_LEVEL_STATUSES,
    APIFailure,
    CircuitBreaker,
    EmptyAnswer,
    RetryBudget,
    RetryPolicy,
)
from .api_usage import APIUsage, text_tokens
from .base import (
    Capabilities,
    Generation,
    GenerationError,
    ModelError,
    ModelUnavailableError,
    VLMItem,
)

logger = logging.getLogger(__name__)


def redact(text: str, secret: str | None = None) -> str:
    """``text`` without ``secret`` or any other key this process knows (``[redacted]`` instead)."""
    return redact_secrets(text, [secret])


@dataclass
class _Request:
    key: str
    images_png: list[bytes]
    prompt: str
    system: str | None
    settings: dict[str, Any] = field(default_factory=dict)


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def option_bool(value: Any, option: str = "option", model: str = "the model") -> bool:
    """A true/false option as given on a command line (true/false, yes/no, on/off, 1/0)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ModelError(f"model '{model}': option {option} must be true or false, got {value!r}")


def option_number(
    value: Any,
    option: str,
    model: str,
    *,
    integer: bool = False,
    minimum: float = 0.0,
    above: bool = False,
    unit: str = "",
) -> Any:
    """A numeric option, or one clear error naming the option and the model."""
    kind = "a whole number" if integer else "a number"
    bound = f"{'above' if above else 'at least'} {minimum:g}"
    what = f"{kind}{' of ' + unit if unit else ''} {bound}"
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
        if integer:
            if number != int(number):
                raise ValueError
            number = int(number)
    except (TypeError, ValueError, OverflowError):
        raise ModelError(
            f"model '{model}': option {option} must be {what}, got {value!r}"
        ) from None
    if number != number or number < minimum or (above and number == minimum):
        raise ModelError(f"model '{model}': option {option} must be {what}, got {value!r}")
    return number


DEFAULT_TIMEOUT = 120.0  # seconds for one request (an answer of 512 tokens takes well under that)
DEFAULT_CONNECT_TIMEOUT = 10.0  # seconds to open a connection, within the timeout
DEFAULT_MAX_RETRIES = 5
DEFAULT_RETRY_BUDGET = 100
MIN_CONSECUTIVE_FAILURES = 8  # default breaker: max(8, 2 x concurrency) failed requests in a row


class APIVisionLanguageModel:
    """A vision-language model behind an HTTP API; subclasses send one request and read errors.

    Subclasses set ``provider`` and implement ``_send`` (one request -> text, input tokens, output
    tokens), ``_read_failure`` (an SDK exception -> ``APIFailure`` or None for a bug) and
    ``image_tokens`` (an estimate for ``estimate``); ``_settings`` adds provider options that
    change answers, so that they enter the cache key.

    Failures are bounded three ways: each item gets ``max_retries`` retries; the whole run (this
    object) gets ``retry_budget`` retries, earned back slowly by answers; and after
    ``max_consecutive_failures`` failed requests in a row the circuit breaker opens, every further
    call raises ``ModelUnavailableError`` at once, and a run stops with that message.
    """

    provider = "api"

    def __init__(
        self,
        model_id: str,
        *,
        endpoint: str,
        concurrency: Any = 4,
        timeout: Any = DEFAULT_TIMEOUT,
        max_retries: Any = DEFAULT_MAX_RETRIES,
        retry_delay: Any = 1.0,
        retry_budget: Any = DEFAULT_RETRY_BUDGET,
        max_consecutive_failures: Any = None,
        cache: Any = True,
        cache_dir: str | os.PathLike[str] | None = None,
        share_cache_across_endpoints: Any = False,
        system: str | None = None,
        api_key: str | None = None,
    ) -> None:
        if not model_id:
            raise ModelError(f"name the model: '{self.provider}:<model id>'")
        self.model_id = model_id
        self.name = name = f"{self.provider}:{model_id}"
        self.endpoint = normalise_endpoint(endpoint)
        self.concurrency = option_number(concurrency, "concurrency", name, integer=True, minimum=1)
        self.timeout = option_number(
            timeout, "timeout", name, minimum=0, above=True, unit="seconds"
        )
        self.retry = RetryPolicy(
            max_retries=option_number(max_retries, "max_retries", name, integer=True),
            base_delay=option_number(retry_delay, "retry_delay", name, unit="seconds"),
        )
        self.retry_budget = RetryBudget(
            option_number(retry_budget, "retry_budget", name, integer=True)
        )
        if max_consecutive_failures is None:
            max_consecutive_failures = max(MIN_CONSECUTIVE_FAILURES, 2 * self.concurrency)
        self.breaker = CircuitBreaker(
            option_number(max_consecutive_failures, "max_consecutive_failures", name, integer=True)
        )
        self.share_cache_across_endpoints = option_bool(
            share_cache_across_endpoints, "share_cache_across_endpoints", name
        )
        self.default_system = system
        self.cache = (
            ResponseCache(cache_dir if cache_dir is not None else default_cache_dir())
            if option_bool(cache, "cache", name)
            else None
        )
        self.capabilities = Capabilities(
            multi_image=True, system_prompt=True, max_batch=self.concurrency
        )
        self.usage = APIUsage()
        self._usage_lock = threading.Lock()
        self._secret = api_key  # used only to scrub text; never stored elsewhere or shown
        register_secret(api_key)  # so that logs of this process scrub it too
        self.key_env = "the API key variable"  # set by a provider: the variable's name, for hints
        self.endpoint_source = "option base_url"  # set by a provider: where the endpoint came from
        self.estimate_only = False  # set by a provider built for estimates only (no key needed)
        if price_for(model_id) is None:
            logger.info(
                "%s has no list price in medfm_robust_plugin.models.api_prices.PRICES; "
                "its calls are counted as $0",
                self.name,
            )

    def describe_endpoint(self) -> str:
        """Where requests go and why, without secrets: ``http://127.0.0.1:8000/v1 (from
        OPENAI_API_BASE)``."""
        source = self.endpoint_source
        return f"{self.endpoint} ({'the provider default' if source == 'default' else 'from ' + source})"

    def __repr__(self) -> str:
        cache = self.cache.root if self.cache else None
        return f"<{type(self).__name__} {self.name} concurrency={self.concurrency} cache={cache}>"

    # -- provider hooks -------------------------------------------------------------------------

    def _send(
        self,
        images_png: list[bytes],
        prompt: str,
        system: str | None,
        settings: dict[str, Any],
    ) -> tuple[str, int | None, int | None]:
        """One request -> (text, input tokens, output tokens); ``EmptyAnswer`` for a reply
        without text."""
        raise NotImplementedError

    def _read_failure(self, exc: BaseException) -> APIFailure | None:
        raise NotImplementedError

    def _settings(self, max_new_tokens: int, temperature: float) -> dict[str, Any]:
        return {"max_tokens": int(max_new_tokens), "temperature": float(temperature)}

    def image_tokens(self, width: int, height: int) -> int:
        raise NotImplementedError

    # -- public ---------------------------------------------------------------------------------

    def generate(
        self,
        items: Sequence[VLMItem],
        *,
        max_new_tokens: int = 512,
        temperature: float = 0.0,
        system: str | None = None,
    ) -> list[Generation]:
        """Answer each (images, prompt) item, ``concurrency`` at a time; results in item order.

        Answers found in the response cache make no call (``cached=True``, cost 0). Every item is
        tried, each with its own retries; if some fail, a ``GenerationError`` is raised whose
        ``outcomes`` hold each item's answer or error (the answers are cached too). When the
        server keeps failing, ``ModelUnavailableError`` is raised instead and nothing more is
        sent by this object.
        """
        if self.estimate_only:
            raise ModelError(
                f"model '{self.name}' was built for estimates only (estimate_only=True) and calls "
                "nothing; build it without that option to call it"
            )
        if self.breaker.is_open:
            raise self._unavailable([None] * len(items))
        system = system if system is not None else self.default_system
        settings = self._settings(max_new_tokens, temperature)
        requests = [self._request(item, system, settings) for item in items]
        results: dict[str, Generation | Exception | None] = {}
        pending: dict[str, _Request] = {}
        for request in requests:
            if request.key in results or request.key in pending:
                continue
            hit = self._cached(request.key)
            if hit is not None:
                self._count(hit)
                results[request.key] = hit
            else:
                pending[request.key] = request
        results.update(self._call_all(list(pending.values())))
        outcomes: list[Generation | Exception | None] = []
        seen: set[str] = set()
        for request in requests:
            outcome = results[request.key]
            if isinstance(outcome, Generation) and request.key in seen:
                # a repeat within this call is answered once
                outcome = Generation(
                    outcome.text, outcome.input_tokens, outcome.output_tokens, cached=True
                )
                self._count(outcome)
            seen.add(request.key)
            outcomes.append(outcome)
        if self.breaker.is_open:
            raise self._unavailable(outcomes)
        failures = [o for o in outcomes if not isinstance(o, Generation)]
        if failures:
            first = failures[0]
            message = (
                str(first)
                if len(outcomes) == 1
                else (f"{len(failures)} of {len(outcomes)} items failed; the first: {first}")
            )
            raise GenerationError(message, outcomes) from first
        return outcomes  # type: ignore[return-value]

    def estimate(
        self,
        items: Sequence[VLMItem],
        max_new_tokens: int = 512,
        *,
        system: str | None = None,
        temperature: float = 0.0,
        check_cache: bool = False,
    ) -> dict[str, Any]:
        """A rough token and cost bound for answering ``items`` (for a dry run); sends nothing.

        Input tokens come from the text length (~4 characters per token) and the provider's image
        token rule; output is bounded by ``max_new_tokens`` per call, so ``output_tokens`` and
        ``cost_usd`` are upper bounds (``cost_usd`` is None for a model without a list price).
        With ``check_cache`` the items already answered are left out (this PNG-encodes every
        image).
        """
        system = system if system is not None else self.default_system
        settings = self._settings(max_new_tokens, temperature)
        calls = input_tokens = 0
        for images, prompt in items:
            if check_cache and self._cached(self._request((images, prompt), system, settings).key):
                continue
            calls += 1
            input_tokens += text_tokens(prompt) + text_tokens(system)
            input_tokens += sum(self.image_tokens(*image_size(i)) for i in image_list(images))
        output_tokens = calls * int(max_new_tokens)
        return {
            "items": len(items),
            "calls": calls,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cost_usd": cost_usd(self.model_id, input_tokens, output_tokens),
            "prices_as_of": PRICES_AS_OF,
        }

    # -- internals ------------------------------------------------------------------------------

    def _request(self, item: VLMItem, system: str | None, settings: dict[str, Any]) -> _Request:
        images, prompt = item
        pngs = [encode_png(image) for image in image_list(images)]
        hashes = [hashlib.sha256(png).hexdigest() for png in pngs]
        endpoint = None if self.share_cache_across_endpoints else self.endpoint
        key = cache_key(self.provider, self.model_id, system, prompt, hashes, settings, endpoint)
        return _Request(key, pngs, prompt, system, settings)

    def _cached(self, key: str) -> Generation | None:
        if self.cache is None:
            return None
        record = self.cache.get(key)
        if record is None or not str(record["text"]).strip():
            return None  # an empty answer was never an answer (older caches may hold one)
        return Generation(
            text=redact(str(record["text"]), self._secret),
            input_tokens=record.get("input_tokens"),
            output_tokens=record.get("output_tokens"),
            cached=True,
        )

    def _call_all(self, pending: list[_Request]) -> dict[str, Generation | Exception | None]:
        if not pending:
            return {}
        if len(pending) == 1 or self.concurrency == 1:
            return {request.key: self._outcome(request) for request in pending}
        with ThreadPoolExecutor(
            max_workers=min(self.concurrency, len(pending)), thread_name_prefix=self.name
        ) as pool:
            futures = {request.key: pool.submit(self._outcome, request) for request in pending}
        return {key: future.result() for key, future in futures.items()}

    def _outcome(self, request: _Request) -> Generation | Exception | None:
        """The answer, the error, or None when the open breaker kept the request from being sent."""
        try:
            return self._call(request)
        except _NotSent:
            return None
        except Exception as exc:
            return exc

    def _call(self, request: _Request) -> Generation:
        start = time.monotonic()
        text, n_in, n_out = self._with_retries(request)
        text = redact(text, self._secret)  # a server that echoes the key gets it nowhere
        seconds = time.monotonic() - start
        cost = cost_usd(self.model_id, n_in, n_out)
        generation = Generation(
            text=text,
            input_tokens=n_in,
            output_tokens=n_out,
            cost_usd=cost or 0.0,
            seconds=seconds,
        )
        if self.cache is not None:
            self.cache.put(
                request.key,
                {
                    "text": text,
                    "input_tokens": n_in,
                    "output_tokens": n_out,
                    "provider": self.provider,
                    "model": self.model_id,
                    "endpoint": None if self.share_cache_across_endpoints else self.endpoint,
                    "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                },
            )
        self._count(generation, priced=cost is not None)
        return generation

    def _count(self, generation: Generation, priced: bool = True) -> None:
        with self._usage_lock:
            if generation.cached:
                self.usage.cached += 1
                return
            self.usage.calls += 1
            self.usage.input_tokens += generation.input_tokens or 0
            self.usage.output_tokens += generation.output_tokens or 0
            self.usage.cost_usd += generation.cost_usd
            self.usage.unpriced_calls += 0 if priced else 1

    def _with_retries(self, request: _Request) -> tuple[str, int | None, int | None]:
        retry = 0
        failure: APIFailure | None = None
        while True:
            if self.breaker.is_open:
                if failure is None:
                    raise _NotSent
                raise self._error(failure, retry, stopped=True)
            try:
                text, n_in, n_out = self._send(
                    request.images_png, request.prompt, request.system, request.settings
                )
                if not text or not text.strip():
                    raise EmptyAnswer("the reply had no text", n_in, n_out)
            except EmptyAnswer as exc:
                self.breaker.answered()
                self._count_billed(exc.input_tokens, exc.output_tokens)
                retried_empty = failure is not None and failure.empty
                failure = APIFailure(None, f"empty answer: {exc}", empty=True)
                if retried_empty or retry >= self.retry.max_retries:
                    raise self._error(failure, retry) from None
            except Exception as exc:
                failure = self._read_failure(exc)
                if failure is None:
                    raise
                if self.breaker.failed(failure):
                    raise self._error(failure, retry) from None
                if not failure.retryable or retry >= self.retry.max_retries:
                    raise self._error(failure, retry) from None
                if (
                    failure.retry_after is not None
                    and failure.retry_after > self.retry.max_retry_after
                ):
                    raise self._error(failure, retry, asked=failure.retry_after) from None
            else:
                self.breaker.answered()
                self.retry_budget.earn()
                return text, n_in, n_out
            if not self.retry_budget.take():
                raise self._error(failure, retry, budget_spent=True)
            retry += 1
            wait_s = (
                failure.retry_after
                if failure.retry_after is not None
                else self.retry.backoff(retry)
            )
            logger.warning(
                "%s: %s; retry %d of %d in %.1f s",
                self.name,
                self._describe(failure),
                retry,
                self.retry.max_retries,
                wait_s,
            )
            self.breaker.wait(wait_s)

    def _count_billed(self, n_in: int | None, n_out: int | None) -> None:
        """A reply that was billed but gave no answer (an empty one) still counts as a call."""
        cost = cost_usd(self.model_id, n_in, n_out)
        self._count(Generation("", n_in, n_out, cost_usd=cost or 0.0), priced=cost is not None)

    def _describe(self, failure: APIFailure) -> str:
        if failure.empty:
            what = "no answer"
        else:
            what = f"HTTP {failure.status}" if failure.status is not None else "network error"
        message = redact(failure.message, self._secret).strip()
        return f"{what} ({message[:300]})" if message else what

    def _hint(self, failure: APIFailure) -> str | None:
        return {
            401: f"check the key in {self.key_env} (option api_key_env names another variable)",
            403: "the key has no access to this model or endpoint",
            404: f"check the model id and the base_url ({self.endpoint})",
            429: "rate limit or quota: lower concurrency or wait",
        }.get(failure.status or 0)

    def _error(
        self,
        failure: APIFailure,
        retries: int,
        asked: float | None = None,
        budget_spent: bool = False,
        stopped: bool = False,
    ) -> ModelError:
        hint = self._hint(failure)
        if asked is not None:
            advice = f"the server asks to wait {asked:.0f} s (a spent quota?); try again later"
        elif stopped:
            advice = "not retried: the run stopped because the server keeps failing"
        elif budget_spent:
            advice = (
                f"not retried: this run's retry budget ({self.retry_budget.size} retries) is "
                "spent because the server fails too often; lower concurrency or raise "
                "retry_budget, and rerun later to fill in the failed items"
            )
        elif failure.empty:
            advice = (
                "the model gave no text, twice; the item is recorded as failed"
                if retries
                else "the model gave no text; the item is recorded as failed"
            )
        elif hint is not None:
            advice = hint
        elif failure.retryable:
            advice = f"gave up after {retries} retries; try again later (answers so far are cached)"
        else:
            advice = "the request cannot succeed as sent"
        return ModelError(
            f"model '{self.name}' failed at {self.endpoint}: {self._describe(failure)}; {advice}"
        )

    def _unavailable(self, outcomes: Sequence[Any]) -> ModelUnavailableError:
        breaker = self.breaker
        last = breaker.last
        if last is not None and last.status in SERVER_LEVEL_STATUSES:
            advice = f"{self._hint(last)}; then rerun"
        else:
            advice = (
                "check that the server is up and answering; if its answers are only slow, raise "
                f"the timeout (now {self.timeout:g} s: --model-option timeout=SECONDS); then rerun"
            )
        what = self._describe(last) if last is not None else "unknown failure"
        return ModelUnavailableError(
            f"model '{self.name}' stopped: {breaker.streak} requests in a row to {self.endpoint} "
            f"failed (the last: {what}); {advice} the same command to resume: finished items "
            "are kept and answered requests come from the response cache",
            outcomes,
        )


class _NotSent(Exception):
    """The breaker opened before this request was sent."""
