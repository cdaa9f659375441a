"""Fake OpenAI-compatible and Gemini servers on 127.0.0.1 that record every request they receive.

Each server runs in a thread on a free port of 127.0.0.1 (never another address) and answers like the
real API closely enough for the official SDKs (``openai``, ``google-genai``) and the host harnesses
that speak the same protocol. Use them as context managers or as pytest fixtures::

    with FakeOpenAIServer(reply="B") as server:
        model = load_model("gpt-4o", base_url=server.base_url, cache_dir=tmp_path)
        model.generate([([image], "Which letter?")])
        assert server.requests[0].json["temperature"] == 0

    # in a test module: from .fake_api_servers import fake_gemini_server_fixture  # noqa: F401
    def test_something(fake_gemini_server):
        fake_gemini_server.fail_next(429, headers={"Retry-After": "0.2"})

A test scripts failures with ``fail_next`` (served first, in order) or ``fail_always``, slows
every answer with ``delay``, makes the server accept requests and never answer with ``hang``, and
chooses the answer text and the reported token usage with ``reply`` and ``usage``. A ``reply`` of
None is an answer without text (OpenAI ``content: null``, a Gemini candidate without parts);
``echo_key`` is a reply that repeats the API key the request carried, as a careless proxy might.
"""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest
from PIL import Image

LOOPBACK = "127.0.0.1"


@dataclass
class RecordedRequest:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float  # time.monotonic()

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class ScriptedFailure:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None


Reply = str | None | Callable[["RecordedRequest"], str | None]
Usage = tuple[int, int] | Callable[["RecordedRequest", str], tuple[int, int]]


def decode_png(data: str | bytes) -> np.ndarray:
    """The uint8 array inside a base64 PNG (a ``data:`` URL or bare, standard or URL-safe base64)."""
    if isinstance(data, bytes):
        data = data.decode("ascii")
    if data.startswith("data:"):
        data = data.split(",", 1)[1]
    # google-genai sends URL-safe base64; the Gemini API, like this server, takes both alphabets.
    raw = base64.b64decode(data.replace("-", "+").replace("_", "/"), validate=True)
    with Image.open(io.BytesIO(raw)) as image:
        image.load()
        return np.asarray(image)


class FakeAPIServer:
    """A threaded HTTP server on 127.0.0.1 that records requests and answers in one API's format."""

    api_name = "fake"

    def __init__(
        self,
        reply: Reply = "A",
        usage: Usage | None = None,
        delay: float = 0.0,
    ) -> None:
        self.reply = reply
        self.usage = usage
        self.delay = delay
        self.hang = False  # accept every request and never answer it
        self.requests: list[RecordedRequest] = []
        self._failures: list[ScriptedFailure] = []
        self._always: ScriptedFailure | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- scripting --------------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` requests with ``status`` (after any failures already queued)."""
        with self._lock:
            self._failures.extend(
                ScriptedFailure(status, dict(headers or {}), body) for _ in range(times)
            )

    def fail_always(self, status: int | None, headers: dict[str, str] | None = None) -> None:
        """Answer every request with ``status`` from now on (after queued ones); None stops it."""
        with self._lock:
            self._always = None if status is None else ScriptedFailure(status, dict(headers or {}))

    def clear(self) -> None:
        """Forget the requests seen so far and any failures still queued."""
        with self._lock:
            self.requests.clear()
            self._failures.clear()
            self._always = None

    def api_requests(self) -> list[RecordedRequest]:
        """The requests that asked for a generation (not model listings)."""
        with self._lock:
            return [r for r in self.requests if r.method == "POST"]

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> FakeAPIServer:
        self._stopping.clear()
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = _QuietServer((LOOPBACK, 0), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},  # so that stop() returns at once
            name=f"fake-{self.api_name}-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # hung answers end
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeAPIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "start the server first"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def base_url(self) -> str:
        """What a client takes as its base URL."""
        return self.url

    # -- answering ------------------------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> ScriptedFailure | None:
        with self._lock:
            self.requests.append(request)
            return self._failures.pop(0) if self._failures else self._always

    def _reply_text(self, request: RecordedRequest) -> str | None:
        return self.reply(request) if callable(self.reply) else self.reply

    def key(self, request: RecordedRequest) -> str | None:
        """The API key a request carried."""
        raise NotImplementedError

    def _usage(self, request: RecordedRequest, text: str | None) -> tuple[int, int]:
        if callable(self.usage):
            return self.usage(request, text or "")
        if self.usage is not None:
            return self.usage
        n_images = len(self.images(request))
        return 10 + 100 * n_images, max(1, len((text or "").split()))

    def handle(self, request: RecordedRequest) -> tuple[int, dict[str, str], Any]:
        """Status, headers and JSON body for a request that is not a scripted failure."""
        raise NotImplementedError

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        raise NotImplementedError

    def images(self, request: RecordedRequest) -> list[np.ndarray]:
        """The images a generation request carried, decoded."""
        raise NotImplementedError


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (a timeout test) closes the socket mid-answer: not an error here."""


class _Handler(BaseHTTPRequestHandler):
    fake: FakeAPIServer

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        self._serve(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._serve(self.rfile.read(length))

    def _serve(self, body: bytes) -> None:
        request = RecordedRequest(
            method=self.command,
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            received_at=time.monotonic(),
        )
        failure = self.fake._record(request)
        if self.fake.hang:
            self.fake._stopping.wait()  # the connection stays open, unanswered, until stop()
            return
        if self.fake.delay:
            time.sleep(self.fake.delay)
        if failure is not None:
            payload = failure.body or self.fake.error_body(failure.status, "scripted failure")
            self._send(failure.status, failure.headers, payload)
            return
        try:
            status, headers, payload = self.fake.handle(request)
        except Exception as exc:  # a broken test reply should show up as a server error
            status, headers, payload = 500, {}, self.fake.error_body(500, repr(exc))
        self._send(status, headers, payload)

    def _send(self, status: int, headers: dict[str, str], payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


class FakeOpenAIServer(FakeAPIServer):
    """``POST <base>/chat/completions`` and ``GET <base>/models`` in OpenAI's format.

    ``base_url`` ends in ``/v1`` as an OpenAI client expects; any path ending in
    ``/chat/completions`` is answered, so clients that add the ``/v1`` themselves work too.
    """

    api_name = "openai"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def handle(self, request: RecordedRequest) -> tuple[int, dict[str, str], Any]:
        path = request.path.split("?", 1)[0]
        if request.method == "GET" and path.rstrip("/").endswith("/models"):
            return 200, {}, {"object": "list", "data": [{"id": "fake", "object": "model"}]}
        if request.method != "POST" or not path.endswith("/chat/completions"):
            return 404, {}, self.error_body(404, f"no route {request.method} {path}")
        body = request.json
        text = self._reply_text(request)
        prompt_tokens, completion_tokens = self._usage(request, text)
        return (
            200,
            {},
            {
                "id": f"chatcmpl-fake-{len(self.requests)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "fake"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop" if text is not None else "length",
                        "logprobs": None,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
        )

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        return {"error": {"message": message, "type": "fake_error", "code": status}}

    def key(self, request: RecordedRequest) -> str | None:
        auth = request.headers.get("authorization", "")
        return auth.removeprefix("Bearer ") or None

    @staticmethod
    def _parts(request: RecordedRequest) -> Iterator[dict[str, Any]]:
        for message in (request.json or {}).get("messages", []):
            content = message.get("content")
            if isinstance(content, list):
                yield from content

    def images(self, request: RecordedRequest) -> list[np.ndarray]:
        return [
            decode_png(part["image_url"]["url"])
            for part in self._parts(request)
            if part.get("type") == "image_url"
        ]

    def prompt(self, request: RecordedRequest) -> str:
        """The user text of a request (its text parts joined)."""
        texts = []
        for message in (request.json or {}).get("messages", []):
            if message.get("role") != "user":
                continue
            content = message.get("content")
            if isinstance(content, str):
                texts.append(content)
            else:
                texts += [p["text"] for p in content if p.get("type") == "text"]
        return "\n".join(texts)

    def system(self, request: RecordedRequest) -> str | None:
        for message in (request.json or {}).get("messages", []):
            if message.get("role") in ("system", "developer"):
                content = message["content"]
                return content if isinstance(content, str) else content[0]["text"]
        return None


_GEMINI_ROUTE = re.compile(r"/(v1beta|v1|v1alpha)/models/([^:/]+):generateContent$")


class FakeGeminiServer(FakeAPIServer):
    """``POST /v1beta/models/<model>:generateContent`` in the Gemini API's format."""

    api_name = "gemini"

    def handle(self, request: RecordedRequest) -> tuple[int, dict[str, str], Any]:
        path = request.path.split("?", 1)[0]
        match = _GEMINI_ROUTE.search(path)
        if request.method != "POST" or match is None:
            return 404, {}, self.error_body(404, f"no route {request.method} {path}")
        text = self._reply_text(request)
        prompt_tokens, completion_tokens = self._usage(request, text)
        return (
            200,
            {},
            {
                "candidates": [
                    {
                        "content": {"role": "model", "parts": [{"text": text}]}
                        if text is not None
                        else {"role": "model"},
                        "finishReason": "STOP" if text is not None else "MAX_TOKENS",
                        "index": 0,
                    }
                ],
                "usageMetadata": {
                    "promptTokenCount": prompt_tokens,
                    "candidatesTokenCount": completion_tokens,
                    "totalTokenCount": prompt_tokens + completion_tokens,
                },
                "modelVersion": match.group(2),
            },
        )

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        statuses = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED"}
        statuses |= {404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL"}
        statuses |= {503: "UNAVAILABLE"}
        return {
            "error": {"code": status, "message": message, "status": statuses.get(status, "UNKNOWN")}
        }

    def key(self, request: RecordedRequest) -> str | None:
        return request.headers.get("x-goog-api-key")

    @staticmethod
    def _parts(request: RecordedRequest) -> Iterator[dict[str, Any]]:
        for content in (request.json or {}).get("contents", []):
            yield from content.get("parts", [])

    def images(self, request: RecordedRequest) -> list[np.ndarray]:
        found = []
        for part in self._parts(request):
            inline = part.get("inlineData") or part.get("inline_data")
            if inline is not None:
                found.append(decode_png(inline["data"]))
        return found

    def prompt(self, request: RecordedRequest) -> str:
        return "\n".join(p["text"] for p in self._parts(request) if "text" in p)

    def system(self, request: RecordedRequest) -> str | None:
        body = request.json or {}
        instruction = body.get("systemInstruction") or body.get("system_instruction")
        if instruction is None:
            return None
        return "\n".join(p["text"] for p in instruction.get("parts", []) if "text" in p)

    def config(self, request: RecordedRequest) -> dict[str, Any]:
        """The generation settings a request carried (temperature, maxOutputTokens, ...)."""
        body = request.json or {}
        return body.get("generationConfig") or body.get("generation_config") or {}


def echo_key(server: FakeAPIServer) -> Callable[[RecordedRequest], str]:
    """A reply that repeats the key each request carried."""
    return lambda request: f"Your key {server.key(request)} is valid. The answer is B."


@pytest.fixture(name="fake_openai_server")
def fake_openai_server_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAIServer]:
    """A running fake OpenAI server; requests to it bypass any configured proxy."""
    monkeypatch.setenv("NO_PROXY", LOOPBACK)
    monkeypatch.setenv("no_proxy", LOOPBACK)
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture(name="fake_gemini_server")
def fake_gemini_server_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGeminiServer]:
    """A running fake Gemini server; requests to it bypass any configured proxy."""
    monkeypatch.setenv("NO_PROXY", LOOPBACK)
    monkeypatch.setenv("no_proxy", LOOPBACK)
    with FakeGeminiServer() as server:
        yield server
