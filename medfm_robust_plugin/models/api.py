"""Vision-language models behind HTTP APIs: OpenAI chat completions (and any server that speaks
it: vLLM, Ollama, LM Studio serving LLaVA-Med or MedGemma) and Google's Gemini API.

    load_model("gpt-4o")                                       # openai:gpt-4o, key from OPENAI_API_KEY
    load_model("openai:llava-med", base_url="http://localhost:8000/v1")   # a local vLLM server
    load_model("gemini-2.5-flash", concurrency=8)              # key from GEMINI_API_KEY / GOOGLE_API_KEY

Where they connect:
- OpenAI: option ``base_url``, else ``$OPENAI_BASE_URL`` (the SDK's variable), else
  ``$OPENAI_API_BASE`` (VLMEvalKit's), else api.openai.com. Either spelling may be the ``/v1``
  base or the full chat-completions URL (``.../v1/chat/completions``, as VLMEvalKit and lm-eval
  write it): both are one endpoint. The key is read from the variable named by ``api_key_env``
  (default ``OPENAI_API_KEY``); a server that needs none gets the placeholder ``EMPTY``.
- Gemini: option ``base_url``, else ``$GEMINI_BASE_URL``, else ``$GOOGLE_GEMINI_BASE_URL`` (which
  google-genai also reads), else generativelanguage.googleapis.com. The key is read from
  ``api_key_env`` if given, else ``GEMINI_API_KEY``, else ``GOOGLE_API_KEY``.

Keys come only from the environment and are never logged, cached, or shown in errors or reprs;
a server that echoes the key in an answer gets ``[redacted]`` written instead.
Both providers share one implementation of caching, retries, concurrency and cost accounting
(``api_base.APIVisionLanguageModel``); the SDKs' own retries are switched off so that ours are
the only ones.

Defaults: 120 s per request (10 s of it to connect, OpenAI); 5 retries per item with backoff from
1 s; 100 retries per run; the run stops after max(8, 2 x concurrency) failed requests in a row
(about 4 minutes against a server that accepts connections and never answers).
"""

from __future__ import annotations

import base64
import logging
import math
import os
from typing import Any

from ..hookspecs import hookimpl
from .api_base import DEFAULT_CONNECT_TIMEOUT, APIVisionLanguageModel, option_number
from .api_retry import APIFailure, EmptyAnswer, parse_retry_after
from .base import ModelError, ModelSpec

logger = logging.getLogger(__name__)

NO_KEY_PLACEHOLDER = "EMPTY"  # what keyless OpenAI-compatible servers (vLLM, Ollama) expect
OPENAI_DEFAULT_URL = "https://api.openai.com/v1"
GEMINI_DEFAULT_URL = "https://generativelanguage.googleapis.com"

COMMON_OPTIONS = {
    "concurrency": "requests in flight at once within one generate() call (default 4)",
    "timeout": "seconds allowed for one request (default 120; connecting may take 10 of them)",
    "max_retries": "retries per item on 429, 5xx and network errors, with backoff honouring Retry-After (default 5)",
    "retry_delay": "seconds before the first retry when the server names no time; doubles each retry (default 1)",
    "retry_budget": "retries allowed in one run across all items; each answer earns back 0.1 (default 100)",
    "max_consecutive_failures": "stop the run after this many failed requests in a row: timeouts, network errors, 5xx, 429, 401/403/404 (default max(8, 2 x concurrency); 0: never)",
    "cache_dir": "response cache folder (default $MEDFM_ROBUST_CACHE/responses or ~/.cache/medfm-robust/responses)",
    "cache": "false to neither read nor write the response cache",
    "share_cache_across_endpoints": "true to share cached answers between servers of one model id, and to read caches written before the endpoint was part of the key (default false)",
    "system": "system prompt used when generate() is given none",
}


def _is_network_error(exc: BaseException) -> bool:
    """Connection, timeout and protocol errors of httpx/requests, which a retry may cure."""
    if isinstance(exc, (OSError, TimeoutError)):
        return True
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"TransportError", "TimeoutException", "RequestException"})


class OpenAIChatModel(APIVisionLanguageModel):
    """A model behind OpenAI's chat completions API; images go as base64 PNG ``image_url`` parts."""

    provider = "openai"

    def __init__(
        self,
        model_id: str,
        *,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        image_detail: str | None = None,
        api_key: Any = None,
        estimate_only: bool = False,
        **common: Any,
    ) -> None:
        import openai

        name = f"openai:{model_id}"
        _refuse_key_option(name, api_key, api_key_env)
        key = os.environ.get(api_key_env) or None
        base_url, source = _first_url(base_url, OPENAI_URL_VARIABLES)
        base_url = openai_base_url(_checked_url(name, base_url, source))
        if key is None and base_url is None and not estimate_only:
            raise ModelError(
                f"model '{name}' needs an API key: set {api_key_env} in the environment "
                "(or, for a local OpenAI-compatible server, set OPENAI_BASE_URL or pass "
                "base_url=...)"
            )
        if image_detail not in (None, "auto", "low", "high"):
            raise ModelError(
                f"model '{name}': option image_detail must be auto, low or high; got {image_detail!r}"
            )
        super().__init__(model_id, endpoint=base_url or OPENAI_DEFAULT_URL, api_key=key, **common)
        self.endpoint_source = source
        self.estimate_only = bool(estimate_only)
        self.key_env = api_key_env
        self.base_url = base_url
        self.image_detail = image_detail
        self._client = openai.OpenAI(
            api_key=key or NO_KEY_PLACEHOLDER,
            base_url=base_url,
            timeout=openai.Timeout(
                self.timeout, connect=min(self.timeout, DEFAULT_CONNECT_TIMEOUT)
            ),
            max_retries=0,  # our retries only
        )

    def _settings(self, max_new_tokens: int, temperature: float) -> dict[str, Any]:
        settings = super()._settings(max_new_tokens, temperature)
        if self.image_detail is not None:
            settings["image_detail"] = self.image_detail
        return settings

    def _send(
        self, images_png: list[bytes], prompt: str, system: str | None, settings: dict[str, Any]
    ) -> tuple[str, int | None, int | None]:
        content: list[dict[str, Any]] = []
        for png in images_png:
            image_url = {"url": "data:image/png;base64," + base64.b64encode(png).decode("ascii")}
            if "image_detail" in settings:
                image_url["detail"] = settings["image_detail"]
            content.append({"type": "image_url", "image_url": image_url})
        content.append({"type": "text", "text": prompt})
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": content})
        response = self._client.chat.completions.create(
            model=self.model_id,
            messages=messages,
            temperature=settings["temperature"],
            max_tokens=settings["max_tokens"],
        )
        usage = response.usage
        n_in, n_out = (usage.prompt_tokens, usage.completion_tokens) if usage else (None, None)
        if not response.choices:
            raise EmptyAnswer("the reply had no choices", n_in, n_out)
        choice = response.choices[0]
        message = choice.message
        text = message.content or getattr(message, "refusal", None) or ""
        if not text.strip():
            reason = getattr(choice, "finish_reason", None)
            hint = " (the token limit ran out: raise max_new_tokens)" if reason == "length" else ""
            raise EmptyAnswer(
                f"content {'null' if message.content is None else 'empty'}, "
                f"finish reason {reason}{hint}",
                n_in,
                n_out,
            )
        return text, n_in, n_out

    def _read_failure(self, exc: BaseException) -> APIFailure | None:
        import openai

        if isinstance(exc, openai.APIStatusError):
            message = str(getattr(exc, "message", "") or exc)
            message = message.removeprefix(f"Error code: {exc.status_code} - ")
            return APIFailure(exc.status_code, message, parse_retry_after(exc.response.headers))
        if isinstance(exc, openai.APIConnectionError):  # includes timeouts
            return APIFailure(None, f"{type(exc).__name__}: {exc}")
        return None

    def image_tokens(self, width: int, height: int) -> int:
        """OpenAI's published rule: fit in 2048 px, shortest side to 768 px, 512 px tiles."""
        base, per_tile = (2833, 5667) if "mini" in self.model_id else (85, 170)
        if self.image_detail == "low":
            return base
        scale = min(1.0, 2048 / max(width, height))
        width, height = width * scale, height * scale
        scale = min(1.0, 768 / min(width, height))
        tiles = math.ceil(width * scale / 512) * math.ceil(height * scale / 512)
        return base + per_tile * tiles


class GeminiModel(APIVisionLanguageModel):
    """A model behind Google's Gemini API (through google-genai); images go as inline PNG parts."""

    provider = "gemini"

    def __init__(
        self,
        model_id: str,
        *,
        base_url: str | None = None,
        api_key_env: str | None = None,
        thinking_budget: Any = None,
        api_key: Any = None,
        estimate_only: bool = False,
        **common: Any,
    ) -> None:
        from google import genai
        from google.genai import types

        name = f"gemini:{model_id}"
        names = [api_key_env] if api_key_env else ["GEMINI_API_KEY", "GOOGLE_API_KEY"]
        _refuse_key_option(name, api_key, " or ".join(names))
        key = next((os.environ[n] for n in names if os.environ.get(n)), None)
        base_url, source = _first_url(base_url, GEMINI_URL_VARIABLES)
        base_url = _checked_url(name, base_url, source)
        if key is None and base_url is None and not estimate_only:
            raise ModelError(
                f"model '{name}' needs an API key: set {' or '.join(names)} in the environment"
            )
        super().__init__(model_id, endpoint=base_url or GEMINI_DEFAULT_URL, api_key=key, **common)
        self.endpoint_source = source
        self.estimate_only = bool(estimate_only)
        self.key_env = " or ".join(names)
        self.base_url = base_url
        self.thinking_budget = (
            None
            if thinking_budget is None
            else option_number(thinking_budget, "thinking_budget", name, integer=True)
        )
        self._types = types
        self._client = genai.Client(
            api_key=key or NO_KEY_PLACEHOLDER,
            vertexai=False,
            http_options=types.HttpOptions(
                base_url=base_url,
                timeout=int(self.timeout * 1000),  # milliseconds
                retry_options=types.HttpRetryOptions(attempts=1),  # our retries only
            ),
        )

    def _settings(self, max_new_tokens: int, temperature: float) -> dict[str, Any]:
        settings = super()._settings(max_new_tokens, temperature)
        if self.thinking_budget is not None:
            settings["thinking_budget"] = self.thinking_budget
        return settings

    def _send(
        self, images_png: list[bytes], prompt: str, system: str | None, settings: dict[str, Any]
    ) -> tuple[str, int | None, int | None]:
        types = self._types
        parts = [types.Part.from_bytes(data=png, mime_type="image/png") for png in images_png]
        parts.append(types.Part.from_text(text=prompt))
        thinking = settings.get("thinking_budget")
        config = types.GenerateContentConfig(
            temperature=settings["temperature"],
            max_output_tokens=settings["max_tokens"],
            system_instruction=system or None,
            thinking_config=None
            if thinking is None
            else types.ThinkingConfig(thinking_budget=thinking),
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )
        response = self._client.models.generate_content(
            model=self.model_id,
            contents=[types.Content(role="user", parts=parts)],
            config=config,
        )
        usage = response.usage_metadata
        n_in = n_out = None
        if usage is not None:
            # Thinking tokens are billed as output.
            n_in = usage.prompt_token_count
            n_out = (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)
        return self._answer_text(response, n_in, n_out), n_in, n_out

    def _answer_text(self, response: Any, n_in: int | None, n_out: int | None) -> str:
        candidates = response.candidates or []
        content = candidates[0].content if candidates else None
        parts = (content.parts if content is not None else None) or []
        text = "".join(p.text for p in parts if p.text and not p.thought)
        if not text.strip():
            reason = candidates[0].finish_reason if candidates else None
            blocked = getattr(response.prompt_feedback, "block_reason", None)
            hint = (
                " (thinking used the token budget: raise max_new_tokens or set thinking_budget=0)"
            )
            raise EmptyAnswer(
                f"no text in the reply, finish reason {reason}"
                + (f", prompt blocked: {blocked}" if blocked else "")
                + (hint if str(reason).endswith("MAX_TOKENS") else ""),
                n_in,
                n_out,
            )
        return text

    def _read_failure(self, exc: BaseException) -> APIFailure | None:
        from google.genai import errors

        if isinstance(exc, errors.APIError):
            headers = getattr(exc.response, "headers", None)
            retry_after = parse_retry_after(headers)
            if retry_after is None:
                retry_after = _retry_info_delay(exc.details)
            return APIFailure(exc.code, str(exc.message or exc.status or ""), retry_after)
        if _is_network_error(exc):
            return APIFailure(None, f"{type(exc).__name__}: {exc}")
        return None

    def image_tokens(self, width: int, height: int) -> int:
        """Gemini's published rule: 258 tokens up to 384 x 384 px, else 258 per 768 px tile."""
        if width <= 384 and height <= 384:
            return 258
        return 258 * math.ceil(width / 768) * math.ceil(height / 768)


def _refuse_key_option(model: str, api_key: Any, variable: str) -> None:
    """Keys never travel as options (they would land in run configs and shell history)."""
    if api_key is not None:
        raise ModelError(
            f"model '{model}': keys are read from the environment only, not from an option; "
            f"set {variable} (or name another variable with api_key_env=...)"
        )


OPENAI_URL_VARIABLES = ("OPENAI_BASE_URL", "OPENAI_API_BASE")  # the SDK's, then VLMEvalKit's
GEMINI_URL_VARIABLES = ("GEMINI_BASE_URL", "GOOGLE_GEMINI_BASE_URL")
CHAT_COMPLETIONS = "/chat/completions"


def openai_base_url(url: str | None) -> str | None:
    """The ``/v1`` base the OpenAI SDK wants, from either spelling of an endpoint: VLMEvalKit's
    ``OPENAI_API_BASE`` and lm-eval's ``base_url`` name the full ``.../v1/chat/completions`` URL."""
    if url is None:
        return None
    url = url.strip().rstrip("/")
    return url[: -len(CHAT_COMPLETIONS)] if url.endswith(CHAT_COMPLETIONS) else url


def _first_url(option: str | None, variables: tuple[str, ...]) -> tuple[str | None, str]:
    """(URL, where it came from): the ``base_url`` option, else the first variable set, else
    (None, "default")."""
    if option:
        return option, "option base_url"
    for variable in variables:
        if os.environ.get(variable, "").strip():
            return os.environ[variable].strip(), variable
    return None, "default"


def _checked_url(model: str, url: str | None, source: str = "option base_url") -> str | None:
    if url is None:
        return None
    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
        what = source if source.startswith("option") else f"${source}"
        raise ModelError(f"model '{model}': {what} must be an http:// or https:// URL, got {url!r}")
    return url


def _retry_info_delay(details: Any) -> float | None:
    """``retryDelay`` ("37s") of a google.rpc.RetryInfo in a Gemini error body, if any."""
    error = details.get("error", details) if isinstance(details, dict) else None
    for item in (error or {}).get("details", []) or []:
        delay = item.get("retryDelay") if isinstance(item, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return max(0.0, float(delay[:-1]))
            except ValueError:
                return None
    return None


OPENAI_OPTIONS = {
    "base_url": "OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 or its .../v1/chat/completions URL (default $OPENAI_BASE_URL, $OPENAI_API_BASE or api.openai.com)",
    "api_key_env": "environment variable holding the key (default OPENAI_API_KEY)",
    "image_detail": "auto, low or high (OpenAI's image detail; default: the server's)",
    **COMMON_OPTIONS,
}
GEMINI_OPTIONS = {
    "base_url": "API endpoint (default $GEMINI_BASE_URL, $GOOGLE_GEMINI_BASE_URL or generativelanguage.googleapis.com)",
    "api_key_env": "environment variable holding the key (default GEMINI_API_KEY, then GOOGLE_API_KEY)",
    "thinking_budget": "thinking tokens allowed (0 turns thinking off on 2.5 Flash); they count in max_new_tokens",
    **COMMON_OPTIONS,
}


def _named(spec: ModelSpec, model_id: str, description: str) -> ModelSpec:
    """A ready-made "<provider>:<model id>" entry built by the provider's factory."""
    return ModelSpec(
        name=f"{spec.name}:{model_id}",
        kind=spec.kind,
        factory=spec.factory,
        description=description,
        default_id=model_id,
        extra=spec.extra,
        options=spec.options,
    )


@hookimpl
def register_models(register):
    openai_spec = ModelSpec(
        name="openai",
        kind="vlm",
        factory=OpenAIChatModel,
        description="OpenAI chat completions, or any OpenAI-compatible server (vLLM, Ollama): openai:<model>",
        prefix=True,
        extra="api",
        options=OPENAI_OPTIONS,
    )
    gemini_spec = ModelSpec(
        name="gemini",
        kind="vlm",
        factory=GeminiModel,
        description="Google Gemini API through google-genai: gemini:<model>",
        prefix=True,
        extra="api",
        options=GEMINI_OPTIONS,
    )
    register(openai_spec)
    register(gemini_spec)
    # Aliases point at full names; the full names are registered so that the aliases resolve.
    for spec, model_id, description in (
        (openai_spec, "gpt-4o", "GPT-4o (OpenAI), as evaluated in the paper"),
        (openai_spec, "gpt-4o-mini", "GPT-4o mini (OpenAI), as evaluated in the paper"),
        (gemini_spec, "gemini-2.5-flash", "Gemini 2.5 Flash (Google), as evaluated in the paper"),
        (gemini_spec, "gemini-2.5-pro", "Gemini 2.5 Pro (Google)"),
    ):
        register(_named(spec, model_id, description), aliases=[model_id])
