"""What every API vision-language model shares: images as PNG, a response cache on disk, retries
with backoff that honour ``Retry-After``, a thread pool over the items of a call, and token/cost
accounting against a price table.

A provider (``api.py``) only says how one request is sent and how its errors read; everything here
is provider-neutral and imports no SDK.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import math
import os
import random
import re
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .base import Capabilities, Generation, ImageInput, ModelError, VLMItem

logger = logging.getLogger(__name__)

# ----------------------------------------------------------------------------------------------
# Prices
# ----------------------------------------------------------------------------------------------

PRICES_AS_OF = "2025-07"  # when the list prices below were read from the providers' pricing pages


@dataclass(frozen=True)
class Price:
    """List price in USD per 1M tokens; ``long_*`` apply when a prompt exceeds ``long_context``."""

    input: float
    output: float
    long_context: int | None = None
    long_input: float | None = None
    long_output: float | None = None


# Standard (non-batch, non-cached-input) list prices, USD per 1M tokens, as published by OpenAI
# (openai.com/api/pricing) and Google (ai.google.dev/gemini-api/docs/pricing) in PRICES_AS_OF.
# Prices change: check the providers' pages before budgeting a run. Gemini output includes
# thinking tokens. A dated snapshot (gpt-4o-2024-08-06, gemini-2.5-flash-001) takes its family's
# price unless it has its own row.
PRICES: dict[str, Price] = {
    "gpt-4o": Price(input=2.50, output=10.00),
    "gpt-4o-2024-05-13": Price(input=5.00, output=15.00),
    "gpt-4o-mini": Price(input=0.15, output=0.60),
    "gemini-2.5-flash": Price(input=0.30, output=2.50),
    "gemini-2.5-flash-lite": Price(input=0.10, output=0.40),
    "gemini-2.5-pro": Price(
        input=1.25, output=10.00, long_context=200_000, long_input=2.50, long_output=15.00
    ),
}

_SNAPSHOT_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{3}|latest)$")


def price_for(model: str) -> Price | None:
    """The list price of ``model`` (a dated snapshot falls back to its family), or None."""
    model = model.removeprefix("models/")
    if model in PRICES:
        return PRICES[model]
    family = _SNAPSHOT_SUFFIX.sub("", model)
    return PRICES.get(family)


def cost_usd(model: str, input_tokens: int | None, output_tokens: int | None) -> float | None:
    """What one call cost at list price; None when the model has no price in ``PRICES``."""
    price = price_for(model)
    if price is None:
        return None
    n_in, n_out = input_tokens or 0, output_tokens or 0
    per_in, per_out = price.input, price.output
    if price.long_context is not None and n_in > price.long_context:
        per_in, per_out = price.long_input or per_in, price.long_output or per_out
    return (n_in * per_in + n_out * per_out) / 1_000_000


# ----------------------------------------------------------------------------------------------
# Images
# ----------------------------------------------------------------------------------------------


def as_rgb_uint8(image: ImageInput) -> np.ndarray:
    """An H x W x 3 uint8 array from a PIL image or a uint8 array (gray is repeated, alpha dropped)."""
    if hasattr(image, "convert") and hasattr(image, "size"):  # PIL, without importing it
        return np.asarray(image.convert("RGB"))
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ModelError(
            f"API models take uint8 images (H x W x 3, 0-255); got dtype {array.dtype}. "
            "Convert with medfm_robust_plugin.image before calling the model."
        )
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4) or min(array.shape[:2]) < 1:
        raise ModelError(f"API models take H x W x 3 images; got shape {array.shape}")
    if array.shape[2] == 1:
        return np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array[..., :3])


def encode_png(image: ImageInput) -> bytes:
    """Lossless PNG bytes of an RGB image (what the APIs receive and what the cache key hashes)."""
    import cv2

    rgb = as_rgb_uint8(image)
    ok, buffer = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise ModelError(f"could not PNG-encode an image of shape {rgb.shape}")
    return buffer.tobytes()


def image_list(images: Any) -> list[ImageInput]:
    """The images of an item: a sequence of images, or one image given alone."""
    if isinstance(images, np.ndarray) or hasattr(images, "convert"):
        return [images]
    return list(images)


def image_size(image: ImageInput) -> tuple[int, int]:
    """(width, height) without encoding anything."""
    if hasattr(image, "size") and not isinstance(image, np.ndarray):
        width, height = image.size
        return int(width), int(height)
    shape = np.shape(image)
    return int(shape[1]), int(shape[0])


# ----------------------------------------------------------------------------------------------
# Response cache
# ----------------------------------------------------------------------------------------------

CACHE_ENV = "MEDFM_ROBUST_CACHE"


def default_cache_dir() -> Path:
    """``$MEDFM_ROBUST_CACHE/responses``, else ``$XDG_CACHE_HOME`` or ``~/.cache``, + ``medfm-robust/responses``."""
    root = os.environ.get(CACHE_ENV)
    if root:
        return Path(root).expanduser() / "responses"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "medfm-robust" / "responses"


def cache_key(
    provider: str,
    model: str,
    system: str | None,
    prompt: str,
    image_hashes: Sequence[str],
    settings: Mapping[str, Any],
) -> str:
    """sha256 of everything that decides an answer (never the API key, never the image bytes)."""
    payload = {
        "version": 1,
        "provider": provider,
        "model": model,
        "system": system,
        "prompt": prompt,
        "images": list(image_hashes),
        "settings": dict(sorted(settings.items())),
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """One JSON file per request key under ``root/<key[:2]>/<key>.json``: answer text and tokens.

    The key leaves out the endpoint: one model id served by two servers shares answers, so give
    servers that differ (two quantisations of one model, say) their own ``cache_dir``.

    Files are written to a temporary name and renamed into place, so a reader in any process sees
    either nothing or a whole record; two processes writing one key write the same answer.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        path = self.path(key)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            logger.warning("ignoring unreadable cached response %s (%s)", path, exc)
            return None
        return record if isinstance(record, dict) and "text" in record else None

    def put(self, key: str, record: Mapping[str, Any]) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key[:8]}-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(dict(record), handle, ensure_ascii=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


# ----------------------------------------------------------------------------------------------
# Retries
# ----------------------------------------------------------------------------------------------

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

    @property
    def retryable(self) -> bool:
        return self.status is None or is_retryable_status(self.status)


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


def redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "[redacted]") if secret else text


# ----------------------------------------------------------------------------------------------
# Usage
# ----------------------------------------------------------------------------------------------


@dataclass
class APIUsage(Mapping[str, Any]):
    """Running totals of one model object: calls made, answers from the cache, tokens, dollars.

    Read as attributes (``model.usage.cost_usd``) or as a mapping (``model.usage["cost_usd"]``).
    """

    calls: int = 0
    cached: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_calls: int = 0  # calls of a model that has no row in PRICES (counted as $0)

    def __getitem__(self, key: str) -> Any:
        if key not in self.__dataclass_fields__:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.__dataclass_fields__)

    def __len__(self) -> int:
        return len(self.__dataclass_fields__)


def text_tokens(text: str | None) -> int:
    """About four characters per token (English and most tokenizers)."""
    return math.ceil(len(text or "") / 4)


# ----------------------------------------------------------------------------------------------
# The shared model
# ----------------------------------------------------------------------------------------------


@dataclass
class _Request:
    key: str
    images_png: list[bytes]
    prompt: str
    system: str | None
    settings: dict[str, Any] = field(default_factory=dict)


def option_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("0", "false", "no", "off", "")
    return bool(value)


class APIVisionLanguageModel:
    """A vision-language model behind an HTTP API; subclasses send one request and read errors.

    Subclasses set ``provider`` and implement ``_send`` (one request -> text, input tokens, output
    tokens), ``_read_failure`` (an SDK exception -> ``APIFailure`` or None for a bug) and
    ``image_tokens`` (an estimate for ``estimate``); ``_settings`` adds provider options that
    change answers, so that they enter the cache key.
    """

    provider = "api"

    def __init__(
        self,
        model_id: str,
        *,
        concurrency: int = 4,
        timeout: float = 120.0,
        max_retries: int = 5,
        retry_delay: float = 1.0,
        cache: bool | str = True,
        cache_dir: str | os.PathLike[str] | None = None,
        system: str | None = None,
        api_key: str | None = None,
    ) -> None:
        if not model_id:
            raise ModelError(f"name the model: '{self.provider}:<model id>'")
        self.model_id = model_id
        self.name = f"{self.provider}:{model_id}"
        self.concurrency = max(1, int(concurrency))
        self.timeout = float(timeout)
        self.retry = RetryPolicy(
            max_retries=max(0, int(max_retries)), base_delay=max(0.0, float(retry_delay))
        )
        self.default_system = system
        self.cache = (
            ResponseCache(cache_dir if cache_dir is not None else default_cache_dir())
            if option_bool(cache)
            else None
        )
        self.capabilities = Capabilities(
            multi_image=True, system_prompt=True, max_batch=self.concurrency
        )
        self.usage = APIUsage()
        self._usage_lock = threading.Lock()
        self._secret = api_key  # used only to scrub messages; never stored elsewhere or shown
        self.key_env = "the API key variable"  # set by a provider: the variable's name, for hints
        if price_for(model_id) is None:
            logger.info(
                "%s has no list price in medfm_robust_plugin.models.api_support.PRICES; "
                "its calls are counted as $0",
                self.name,
            )

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

        Answers found in the response cache make no call (``cached=True``, cost 0). If an item
        fails, the items already running finish (and are cached), the rest are not sent, and the
        first failure is raised as a ``ModelError``.
        """
        system = system if system is not None else self.default_system
        settings = self._settings(max_new_tokens, temperature)
        requests = [self._request(item, system, settings) for item in items]
        results: dict[str, Generation] = {}
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
        generations, seen = [], set()
        for request in requests:
            generation = results[request.key]
            if request.key in seen:  # a repeat within this call is answered once
                generation = Generation(
                    generation.text, generation.input_tokens, generation.output_tokens, cached=True
                )
                self._count(generation)
            seen.add(request.key)
            generations.append(generation)
        return generations

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
        key = cache_key(self.provider, self.model_id, system, prompt, hashes, settings)
        return _Request(key, pngs, prompt, system, settings)

    def _cached(self, key: str) -> Generation | None:
        if self.cache is None:
            return None
        record = self.cache.get(key)
        if record is None:
            return None
        generation = Generation(
            text=record["text"],
            input_tokens=record.get("input_tokens"),
            output_tokens=record.get("output_tokens"),
            cached=True,
        )
        return generation

    def _call_all(self, pending: list[_Request]) -> dict[str, Generation]:
        if not pending:
            return {}
        if len(pending) == 1 or self.concurrency == 1:
            return {request.key: self._call(request) for request in pending}
        with ThreadPoolExecutor(
            max_workers=min(self.concurrency, len(pending)), thread_name_prefix=self.name
        ) as pool:
            futures = {pool.submit(self._call, request): request.key for request in pending}
            done, not_done = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [f for f in done if f.exception() is not None]
            if failed:
                for future in not_done:
                    future.cancel()
                raise failed[0].exception()  # type: ignore[misc]
            return {key: future.result() for future, key in futures.items()}

    def _call(self, request: _Request) -> Generation:
        start = time.monotonic()
        text, n_in, n_out = self._with_retries(request)
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
        while True:
            try:
                return self._send(
                    request.images_png, request.prompt, request.system, request.settings
                )
            except Exception as exc:
                failure = self._read_failure(exc)
                if failure is None:
                    raise
                if not failure.retryable or retry >= self.retry.max_retries:
                    raise self._error(failure, retry) from None
                if (
                    failure.retry_after is not None
                    and failure.retry_after > self.retry.max_retry_after
                ):
                    raise self._error(failure, retry, asked=failure.retry_after) from None
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
                time.sleep(wait_s)

    def _describe(self, failure: APIFailure) -> str:
        what = f"HTTP {failure.status}" if failure.status is not None else "network error"
        message = redact(failure.message, self._secret).strip()
        return f"{what} ({message[:300]})" if message else what

    def _error(self, failure: APIFailure, retries: int, asked: float | None = None) -> ModelError:
        hints = {
            401: f"check the key in {self.key_env} (option api_key_env names another variable)",
            403: "the key has no access to this model or endpoint",
            404: "check the model id and the base_url",
            429: "rate limit or quota: lower concurrency or wait",
        }
        if asked is not None:
            advice = f"the server asks to wait {asked:.0f} s (a spent quota?); try again later"
        elif failure.status is not None and failure.status in hints:
            advice = hints[failure.status]
        elif failure.retryable:
            advice = f"gave up after {retries} retries; try again later (answers so far are cached)"
        else:
            advice = "the request cannot succeed as sent"
        return ModelError(f"model '{self.name}' failed: {self._describe(failure)}; {advice}")
