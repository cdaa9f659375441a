"""API vision-language models against fake OpenAI and Gemini servers on 127.0.0.1.

What the servers receive (pixels, settings), retries and their waits, the response cache across
model objects and processes, concurrency, cost accounting, and that the API key never leaks.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import textwrap
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from medfm_robust_plugin.models import ModelError, VisionLanguageModel, load_model, resolve
from medfm_robust_plugin.models.api_prices import PRICES, cost_usd, price_for
from medfm_robust_plugin.models.api_retry import parse_retry_after

from .fake_api_servers import (
    LOOPBACK,
    FakeAPIServer,
    FakeGeminiServer,
    FakeOpenAIServer,
    echo_key,
    fake_gemini_server_fixture,  # noqa: F401  (the fake_gemini_server fixture)
    fake_openai_server_fixture,  # noqa: F401  (the fake_openai_server fixture)
)

REPO = Path(__file__).resolve().parents[1]
OPENAI_KEY = "sk-test-SECRET-1234"
GEMINI_KEY = "AIza-test-SECRET-5678"
ENV_VARS = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_API_BASE",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GEMINI_BASE_URL",
    "GOOGLE_GEMINI_BASE_URL",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "MEDFM_ROBUST_CACHE",
)


@pytest.fixture(autouse=True)
def _api_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the fake keys; no endpoint or cache taken from the developer's environment."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("GEMINI_API_KEY", GEMINI_KEY)
    monkeypatch.setenv("NO_PROXY", LOOPBACK)
    monkeypatch.setenv("no_proxy", LOOPBACK)


@dataclass
class Provider:
    """One API under test: its fake server and how to build a model that talks to it."""

    name: str
    model_name: str
    server: FakeAPIServer
    cache_dir: Path

    def load(self, **options: Any) -> Any:
        options.setdefault("cache_dir", self.cache_dir)
        url = self.server.base_url
        return load_model(self.model_name, base_url=url, **options)

    def settings(self, request: Any) -> dict[str, Any]:
        """Temperature and token limit as the request carried them, in one vocabulary."""
        if self.name == "openai":
            return {
                "temperature": request.json["temperature"],
                "max_tokens": request.json["max_tokens"],
            }
        config = self.server.config(request)
        return {"temperature": config["temperature"], "max_tokens": config["maxOutputTokens"]}


@pytest.fixture(params=["openai", "gemini"])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Provider:
    server = FakeOpenAIServer() if request.param == "openai" else FakeGeminiServer()
    server.start()
    request.addfinalizer(server.stop)
    model_name = "gpt-4o" if request.param == "openai" else "gemini:gemini-2.5-flash"
    return Provider(request.param, model_name, server, tmp_path / "responses")


def image(seed: int, height: int = 24, width: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


# --------------------------------------------------------------------------- what arrives


def test_images_prompt_and_settings_arrive_exactly(api: Provider) -> None:
    model = api.load()
    first, second = image(1), image(2, 17, 41)
    [answer] = model.generate(
        [([first, second], "Which image shows a lesion?")],
        max_new_tokens=33,
        system="You are a radiologist.",
    )
    assert answer.text == "A" and not answer.cached
    [request] = api.server.api_requests()
    received = api.server.images(request)
    assert len(received) == 2
    np.testing.assert_array_equal(received[0], first)
    np.testing.assert_array_equal(received[1], second)
    assert api.server.prompt(request) == "Which image shows a lesion?"
    assert api.server.system(request) == "You are a radiologist."
    assert api.settings(request) == {"temperature": 0, "max_tokens": 33}


def test_key_goes_in_the_providers_header(api: Provider) -> None:
    api.load().generate([([image(0)], "q")])
    headers = api.server.api_requests()[0].headers
    if api.name == "openai":
        assert headers["authorization"] == f"Bearer {OPENAI_KEY}"
    else:
        assert headers["x-goog-api-key"] == GEMINI_KEY


def test_pil_and_gray_images_arrive_as_the_same_rgb_pixels(
    fake_openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    model = load_model("gpt-4o", base_url=fake_openai_server.base_url, cache_dir=tmp_path)
    rgb = image(3)
    gray = rgb[..., 0]
    model.generate([([Image.fromarray(rgb), gray], "q")])
    received = fake_openai_server.images(fake_openai_server.api_requests()[0])
    np.testing.assert_array_equal(received[0], rgb)
    np.testing.assert_array_equal(received[1], np.repeat(gray[..., None], 3, axis=2))


def test_float_images_are_refused_with_a_clear_error(fake_openai_server, tmp_path) -> None:
    model = load_model("gpt-4o", base_url=fake_openai_server.base_url, cache_dir=tmp_path)
    with pytest.raises(ModelError, match="uint8"):
        model.generate([([np.zeros((8, 8, 3), np.float32)], "q")])
    assert fake_openai_server.api_requests() == []


def test_gemini_thinking_budget_is_sent(fake_gemini_server: FakeGeminiServer, tmp_path) -> None:
    model = load_model(
        "gemini-2.5-flash", base_url=fake_gemini_server.url, cache_dir=tmp_path, thinking_budget=0
    )
    model.generate([([image(0)], "q")])
    config = fake_gemini_server.config(fake_gemini_server.api_requests()[0])
    thinking = config["thinkingConfig"]  # google-genai writes this one field in snake case
    assert thinking.get("thinkingBudget", thinking.get("thinking_budget")) == 0


def test_openai_image_detail_is_sent(fake_openai_server: FakeOpenAIServer, tmp_path) -> None:
    model = load_model(
        "gpt-4o", base_url=fake_openai_server.base_url, cache_dir=tmp_path, image_detail="low"
    )
    model.generate([([image(0)], "q")])
    [part] = [
        p
        for p in fake_openai_server._parts(fake_openai_server.api_requests()[0])
        if p["type"] == "image_url"
    ]
    assert part["image_url"]["detail"] == "low"


# --------------------------------------------------------------------------- retries


def test_a_slow_answer_times_out_and_is_retried(api: Provider) -> None:
    api.server.delay = 0.6
    model = api.load(timeout=0.2, max_retries=1, retry_delay=0.01)
    start = time.monotonic()
    with pytest.raises(ModelError, match="network error"):
        model.generate([([image(0)], "q")])
    assert len(api.server.api_requests()) == 2
    assert time.monotonic() - start < 1.0


def test_429_waits_as_long_as_retry_after_says(api: Provider) -> None:
    api.server.fail_next(429, headers={"Retry-After": "0.3"})
    model = api.load(retry_delay=0.01)
    [answer] = model.generate([([image(0)], "q")])
    assert answer.text == "A"
    first, second = api.server.api_requests()
    assert second.received_at - first.received_at >= 0.3
    assert model.usage.calls == 1


def test_500_is_retried_with_backoff(api: Provider) -> None:
    api.server.fail_next(500)
    api.server.fail_next(503)
    [answer] = api.load(retry_delay=0.01).generate([([image(0)], "q")])
    assert answer.text == "A"
    assert len(api.server.api_requests()) == 3


def test_retries_are_bounded(api: Provider) -> None:
    api.server.fail_next(503, times=10)
    with pytest.raises(ModelError, match=r"HTTP 503.*gave up after 2 retries"):
        api.load(max_retries=2, retry_delay=0.01).generate([([image(0)], "q")])
    assert len(api.server.api_requests()) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_requests_that_cannot_succeed_are_not_retried(api: Provider, status: int) -> None:
    api.server.fail_next(status, times=3)
    model = api.load(retry_delay=0.01)
    with pytest.raises(ModelError) as raised:
        model.generate([([image(0)], "q")])
    assert len(api.server.api_requests()) == 1
    message = str(raised.value)
    assert model.name in message and f"HTTP {status}" in message
    assert OPENAI_KEY not in message and GEMINI_KEY not in message


def test_a_spent_quota_fails_at_once_instead_of_waiting(api: Provider) -> None:
    api.server.fail_next(429, headers={"Retry-After": "86400"})
    with pytest.raises(ModelError, match="asks to wait 86400 s"):
        api.load().generate([([image(0)], "q")])
    assert len(api.server.api_requests()) == 1


def test_retry_after_forms() -> None:
    assert parse_retry_after({"Retry-After": "2"}) == 2.0
    assert parse_retry_after({"retry-after": "0.25"}) == 0.25
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    future = time.time() + 30
    http_date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(future))
    assert 27 <= parse_retry_after({"Retry-After": http_date}) <= 31
    assert parse_retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None


def test_gemini_retry_info_in_the_error_body_is_honoured(
    fake_gemini_server: FakeGeminiServer, tmp_path: Path
) -> None:
    body = {
        "error": {
            "code": 429,
            "status": "RESOURCE_EXHAUSTED",
            "message": "quota",
            "details": [
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.3s"}
            ],
        }
    }
    fake_gemini_server.fail_next(429, body=body)
    model = load_model(
        "gemini-2.5-flash", base_url=fake_gemini_server.url, cache_dir=tmp_path, retry_delay=0.01
    )
    model.generate([([image(0)], "q")])
    first, second = fake_gemini_server.api_requests()
    assert second.received_at - first.received_at >= 0.3


# --------------------------------------------------------------------------- cache


def test_cache_serves_a_new_model_object_without_a_call(api: Provider) -> None:
    items = [([image(0)], "What is shown?"), ([image(1)], "What is shown?")]
    first = api.load().generate(items)
    again_model = api.load()
    again = again_model.generate(items)
    assert len(api.server.api_requests()) == 2
    assert [g.text for g in again] == [g.text for g in first]
    assert all(g.cached and g.cost_usd == 0 for g in again)
    assert again[0].input_tokens == first[0].input_tokens
    assert again_model.usage.calls == 0 and again_model.usage.cached == 2


def test_any_change_to_the_request_makes_a_new_call(api: Provider) -> None:
    model = api.load()
    base = image(0)
    nudged = base.copy()
    nudged[3, 4, 1] ^= 1
    model.generate([([base], "q")])
    model.generate([([base], "q")])
    assert len(api.server.api_requests()) == 1
    model.generate([([base], "q2")])
    model.generate([([nudged], "q")])
    model.generate([([base], "q")], max_new_tokens=7)
    model.generate([([base], "q")], temperature=0.5)
    model.generate([([base], "q")], system="Be brief.")
    assert len(api.server.api_requests()) == 6


def test_cache_survives_a_new_process(
    fake_openai_server: FakeOpenAIServer, fake_gemini_server: FakeGeminiServer, tmp_path: Path
) -> None:
    servers = {"gpt-4o": fake_openai_server, "gemini-2.5-flash": fake_gemini_server}
    items = [([image(5)], "Is there a fracture?")]
    texts = {}
    for name, server in servers.items():
        fake_openai_server.reply = "no fracture"
        model = load_model(name, base_url=server.base_url, cache_dir=tmp_path)
        texts[name] = model.generate(items)[0].text
    script = textwrap.dedent(
        f"""
        import json, numpy as np
        from medfm_robust_plugin.models import load_model
        pixels = np.random.default_rng(5).integers(0, 256, (24, 32, 3), dtype=np.uint8)
        for name, url in { ({n: s.base_url for n, s in servers.items()})!r}.items():
            model = load_model(name, base_url=url, cache_dir={str(tmp_path)!r})
            [g] = model.generate([([pixels], "Is there a fracture?")])
            print(json.dumps({{"model": name, "text": g.text, "cached": g.cached, "cost": g.cost_usd}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line) for line in done.stdout.strip().splitlines()]
    assert answers == [
        {"model": name, "text": texts[name], "cached": True, "cost": 0.0} for name in servers
    ]
    assert [len(s.api_requests()) for s in servers.values()] == [1, 1]


def test_repeats_within_one_call_are_sent_once(api: Provider) -> None:
    model = api.load()
    item = ([image(0)], "q")
    answers = model.generate([item, item, item])
    assert len(api.server.api_requests()) == 1
    assert [g.cached for g in answers] == [False, True, True]


def test_answers_finished_before_a_failure_are_kept(
    fake_openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    def reply(request):
        if "broken" in fake_openai_server.prompt(request):
            raise ValueError("this prompt breaks the server")
        return "fine"

    fake_openai_server.reply = reply
    model = load_model(
        "gpt-4o",
        base_url=fake_openai_server.base_url,
        cache_dir=tmp_path,
        concurrency=1,
        max_retries=0,
    )
    items = [([image(0)], "good"), ([image(1)], "broken")]
    with pytest.raises(ModelError, match="HTTP 500"):
        model.generate(items)
    fake_openai_server.reply = "fine"
    answers = model.generate(items)
    assert [g.cached for g in answers] == [True, False]
    assert len(fake_openai_server.api_requests()) == 3


def test_cache_can_be_switched_off(api: Provider) -> None:
    model = api.load(cache=False)
    model.generate([([image(0)], "q")])
    model.generate([([image(0)], "q")])
    assert len(api.server.api_requests()) == 2
    assert not api.cache_dir.exists()


def test_cache_dir_defaults_under_medfm_robust_cache(
    fake_openai_server: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDFM_ROBUST_CACHE", str(tmp_path / "cache-root"))
    model = load_model("gpt-4o", base_url=fake_openai_server.base_url)
    model.generate([([image(0)], "q")])
    stored = list((tmp_path / "cache-root" / "responses").rglob("*.json"))
    assert len(stored) == 1
    record = json.loads(stored[0].read_text())
    assert record["text"] == "A" and record["model"] == "gpt-4o"
    assert "prompt" not in record and "images" not in record


# --------------------------------------------------------------------------- secrets


def test_the_key_appears_nowhere(
    api: Provider, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = OPENAI_KEY if api.name == "openai" else GEMINI_KEY
    caplog.set_level(logging.DEBUG)
    model = api.load(retry_delay=0.01)
    texts = [repr(model), str(model.__dict__.get("name"))]
    api.server.fail_next(500)
    model.generate([([image(0)], "q")])
    model.generate([([image(0)], "q")])  # from the cache
    # A server that echoes the key in its error, as some proxies do.
    api.server.fail_next(401, body=api.server.error_body(401, f"Incorrect API key: {key}"))
    with pytest.raises(ModelError) as raised:
        model.generate([([image(1)], "q")])
    texts += [str(raised.value), repr(raised.value)]
    texts += traceback.format_exception(raised.type, raised.value, raised.tb)
    assert "[redacted]" in str(raised.value)
    texts += [caplog.text, *(r.getMessage() for r in caplog.records)]
    assert not [t for t in texts if key in t]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".json" for p in files)
    assert not [p for p in files if key.encode() in p.read_bytes()]


# --------------------------------------------------------------------------- concurrency


def test_concurrent_requests_keep_item_order(api: Provider) -> None:
    api.server.delay = 0.3
    api.server.reply = lambda request: api.server.prompt(request).upper()
    model = api.load(concurrency=4)
    assert model.capabilities.max_batch == 4 and model.capabilities.multi_image
    items = [([image(i)], f"item {i}") for i in range(8)]
    start = time.monotonic()
    answers = model.generate(items)
    elapsed = time.monotonic() - start
    assert [g.text for g in answers] == [f"ITEM {i}" for i in range(8)]
    assert elapsed < 8 * 0.3 / 2, f"8 requests at concurrency 4 took {elapsed:.2f} s"


# --------------------------------------------------------------------------- cost


@pytest.mark.parametrize(
    ("model_name", "price_key"),
    [
        ("gpt-4o", "gpt-4o"),
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("gemini-2.5-flash", "gemini-2.5-flash"),
    ],
)
def test_usage_adds_up_and_costs_list_price(
    model_name: str, price_key: str, tmp_path: Path
) -> None:
    server_class = FakeGeminiServer if model_name.startswith("gemini") else FakeOpenAIServer
    with server_class(usage=(1200, 300)) as server:
        model = load_model(model_name, base_url=server.base_url, cache_dir=tmp_path)
        answers = model.generate([([image(i)], "q") for i in range(3)])
        model.generate([([image(0)], "q")])  # cached: free
    price = PRICES[price_key]
    one_call = (1200 * price.input + 300 * price.output) / 1e6
    assert [g.input_tokens for g in answers] == [1200] * 3
    assert [g.output_tokens for g in answers] == [300] * 3
    assert all(g.cost_usd == pytest.approx(one_call) for g in answers)
    usage = model.usage
    assert (usage.calls, usage.cached, usage.input_tokens, usage.output_tokens) == (3, 1, 3600, 900)
    assert usage.cost_usd == pytest.approx(3 * one_call)
    assert usage["cost_usd"] == usage.cost_usd and dict(usage)["calls"] == 3


def test_unknown_models_cost_nothing_and_are_counted(fake_openai_server, tmp_path) -> None:
    model = load_model(
        "openai:llava-med-v1.5", base_url=fake_openai_server.base_url, cache_dir=tmp_path
    )
    [answer] = model.generate([([image(0)], "q")])
    assert answer.cost_usd == 0.0 and answer.input_tokens is not None
    assert model.usage.unpriced_calls == 1 and model.usage.cost_usd == 0.0


def test_price_table() -> None:
    assert price_for("gpt-4o-2024-08-06") == PRICES["gpt-4o"]
    assert price_for("gpt-4o-mini-2024-07-18") == PRICES["gpt-4o-mini"]
    assert price_for("models/gemini-2.5-flash") == PRICES["gemini-2.5-flash"]
    assert price_for("gemini-2.5-flash-lite") != PRICES["gemini-2.5-flash"]
    assert price_for("gpt-4o-audio-preview") is None and cost_usd("llava", 10, 10) is None
    pro = PRICES["gemini-2.5-pro"]
    assert cost_usd("gemini-2.5-pro", 1000, 0) == pytest.approx(1000 * pro.input / 1e6)
    assert cost_usd("gemini-2.5-pro", 300_000, 0) == pytest.approx(300_000 * pro.long_input / 1e6)


def test_estimate_bounds_a_dry_run(api: Provider) -> None:
    model = api.load()
    items = [([image(i, 512, 512)], "Describe the finding in one word.") for i in range(4)]
    guess = model.estimate(items, max_new_tokens=16)
    assert guess["items"] == 4 and guess["calls"] == 4
    assert guess["output_tokens"] == 64
    per_image = 85 + 170 if api.name == "openai" else 258
    assert guess["input_tokens"] == 4 * (per_image + 9)
    assert 0 < guess["cost_usd"] < 0.05
    model.generate(items[:1], max_new_tokens=16)
    assert model.estimate(items, max_new_tokens=16, check_cache=True)["calls"] == 3
    assert len(api.server.api_requests()) == 1 and model.usage.cached == 0


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("name", "spec_name", "model_id"),
    [
        ("gpt-4o", "openai", "gpt-4o"),
        ("gpt-4o-mini", "openai", "gpt-4o-mini"),
        ("openai:gpt-4o", "openai", "gpt-4o"),
        ("openai:medgemma-4b-it", "openai", "medgemma-4b-it"),
        ("gemini-2.5-flash", "gemini", "gemini-2.5-flash"),
        ("gemini-2.5-pro", "gemini", "gemini-2.5-pro"),
        ("gemini:gemini-2.5-flash", "gemini", "gemini-2.5-flash"),
    ],
)
def test_names_resolve_to_models(
    name: str, spec_name: str, model_id: str, fake_openai_server, fake_gemini_server, tmp_path
) -> None:
    spec, _ = resolve(name)
    assert spec.kind == "vlm" and spec.extra == "api"
    server = fake_openai_server if spec_name == "openai" else fake_gemini_server
    model = load_model(name, base_url=server.base_url, cache_dir=tmp_path)
    assert isinstance(model, VisionLanguageModel)
    assert model.name == f"{spec_name}:{model_id}" and model.model_id == model_id


def test_a_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("GEMINI_API_KEY")
    with pytest.raises(ModelError, match="OPENAI_API_KEY"):
        load_model("gpt-4o")
    with pytest.raises(ModelError, match="MY_VLLM_KEY"):
        load_model("openai:gpt-4o", api_key_env="MY_VLLM_KEY")
    with pytest.raises(ModelError, match="GEMINI_API_KEY or GOOGLE_API_KEY"):
        load_model("gemini-2.5-flash")


def test_a_local_server_needs_no_key(
    fake_openai_server: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai_server.base_url)
    model = load_model("openai:llava-med", cache_dir=tmp_path)
    assert model.generate([([image(0)], "q")])[0].text == "A"


def test_api_key_env_names_another_variable(fake_openai_server, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("VLLM_KEY", "local-token")
    model = load_model(
        "openai:medgemma",
        base_url=fake_openai_server.base_url,
        api_key_env="VLLM_KEY",
        cache_dir=tmp_path,
    )
    model.generate([([image(0)], "q")])
    assert fake_openai_server.api_requests()[0].headers["authorization"] == "Bearer local-token"


def test_registering_imports_no_sdk() -> None:
    script = (
        "import sys\n"
        "from medfm_robust_plugin.models import resolve\n"
        "resolve('gpt-4o'); resolve('gemini-2.5-flash')\n"
        "print(sorted(m for m in ('openai', 'google.genai', 'httpx2') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# --------------------------------------------------------------------------- retry budgets, breaker


def mini_run(tmp_path: Path, model_options: dict[str, Any], out: str = "runs") -> Any:
    """A native run of ten items (five Mini VQA samples, clean and one noise level) with gpt-4o."""
    from medfm_robust_plugin.runner import Run, RunConfig

    config = RunConfig(
        task="MedFMRobust-Mini-VQA",
        model="gpt-4o",
        out=str(tmp_path / out),
        limit=5,
        corruptions=["gaussian_noise"],
        severities=[1],
        model_options=model_options,
    )
    return Run(config)


def records_of(job: Any) -> list[dict[str, Any]]:
    from medfm_robust_plugin.runner import read_records

    return list(read_records(job.run_dir))


def test_a_failing_batch_is_not_resent_with_full_budgets(
    fake_openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    fake_openai_server.fail_always(500)
    options = {"max_retries": 1, "retry_delay": 0.01, "max_consecutive_failures": 0}
    job = mini_run(tmp_path, options)
    model = load_model(
        "gpt-4o", base_url=fake_openai_server.base_url, cache_dir=tmp_path, **options
    )
    result = job.execute(model)
    # ten items, each sent once and retried once; never resent one by one after its batch failed
    assert len(fake_openai_server.api_requests()) == 20
    records = records_of(job)
    assert len(records) == result.failed == 10 and result.written == 0
    assert all(
        "HTTP 500" in r["error"] and "gave up after 1 retries" in r["error"] for r in records
    )


def test_a_failing_item_in_a_batch_fails_alone(
    fake_openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    # the third request of the run fails for good (max_retries=0); the other nine are answered
    calls = []

    def flaky(request: Any) -> str:
        calls.append(request)
        if len(calls) == 3:
            raise ValueError("broken item")
        return "A"

    fake_openai_server.reply = flaky
    options = {"max_retries": 0, "concurrency": 1}
    job = mini_run(tmp_path, options)
    model = load_model(
        "gpt-4o", base_url=fake_openai_server.base_url, cache_dir=tmp_path, **options
    )
    result = job.execute(model)
    assert len(fake_openai_server.api_requests()) == 10
    assert (result.written, result.failed) == (9, 1)
    answered = [r for r in records_of(job) if r["error"] is None]
    # answers of a batch that had a failure keep their own cost, not a cache hit's zero
    assert all(r["cached"] is False and r["cost_usd"] > 0 for r in answered)


def test_the_run_retry_budget_bounds_all_retries(api: Provider) -> None:
    api.server.fail_always(503)
    model = api.load(
        max_retries=5, retry_delay=0.001, retry_budget=3, max_consecutive_failures=0, concurrency=1
    )
    with pytest.raises(ModelError) as raised:
        model.generate([([image(i)], "q") for i in range(10)])
    assert len(api.server.api_requests()) == 10 + 3
    outcomes = raised.value.outcomes
    assert len(outcomes) == 10 and all(isinstance(o, ModelError) for o in outcomes)
    # the first item spends the budget on its retries; the other nine are tried once each
    assert all("retry budget (3 retries) is spent" in str(o) for o in outcomes)


def test_answers_earn_back_the_retry_budget(api: Provider) -> None:
    # every ninth request fails once: 40 items need 4 retries, one more than the budget of 3,
    # and the eight answers between two failures earn most of a retry back
    seen = []

    def sometimes(request: Any) -> str:
        seen.append(request)
        if len(seen) % 9 == 0:
            raise ValueError("a hiccup")
        return "A"

    api.server.reply = sometimes
    model = api.load(retry_delay=0.001, retry_budget=3, concurrency=1)
    answers = model.generate([([image(i)], "q") for i in range(40)])
    assert [a.text for a in answers] == ["A"] * 40
    assert len(api.server.api_requests()) == 44


def test_the_breaker_stops_a_run_and_a_rerun_resumes(
    fake_openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    from medfm_robust_plugin.models import ModelUnavailableError

    answered = []

    def then_broken(request: Any) -> str:
        if len(answered) >= 4:
            raise ValueError("the server broke")
        answered.append(request)
        return "A"

    fake_openai_server.reply = then_broken
    options = {"max_retries": 1, "retry_delay": 0.01, "concurrency": 2}
    job = mini_run(tmp_path, options)
    model = load_model(
        "gpt-4o", base_url=fake_openai_server.base_url, cache_dir=tmp_path, **options
    )
    with pytest.raises(ModelUnavailableError) as raised:
        job.execute(model)
    message = str(raised.value)
    assert fake_openai_server.base_url in message
    assert "HTTP 500" in message and "rerun the same command" in message
    # four answers, then max(8, 2 x concurrency) failed requests (and at most the one still in
    # flight beside the eighth), then nothing more
    failed_in_a_row = int(re.search(r"stopped: (\d+) requests in a row", message).group(1))
    assert failed_in_a_row in (8, 9)
    sent = len(fake_openai_server.api_requests())
    assert sent == 4 + failed_in_a_row
    records = records_of(job)
    assert sum(r["error"] is None for r in records) == 4
    assert len(records) < 10  # the items after the stop were neither sent nor recorded
    with pytest.raises(ModelUnavailableError):
        model.generate([([image(0)], "q")])  # an open breaker sends nothing more
    assert len(fake_openai_server.api_requests()) == sent

    fake_openai_server.reply = "B"
    fresh = load_model(
        "gpt-4o", base_url=fake_openai_server.base_url, cache_dir=tmp_path, **options
    )
    result = mini_run(tmp_path, options).execute(fresh)
    assert result.skipped_done == 4 and result.written == 6 and result.failed == 0
    # the four answered items were not asked again
    assert len(fake_openai_server.api_requests()) == sent + 6


def test_a_server_that_never_answers_trips_the_breaker_in_seconds(api: Provider) -> None:
    from medfm_robust_plugin.models import ModelUnavailableError

    api.server.hang = True
    model = api.load(timeout=0.3, retry_delay=0.01, concurrency=2)
    start = time.monotonic()
    with pytest.raises(ModelUnavailableError) as raised:
        model.generate([([image(i)], "q") for i in range(4)])
    elapsed = time.monotonic() - start
    # defaults otherwise: 4 items x 6 tries; the breaker stops after max(8, 2 x 2) = 8 timeouts
    assert len(api.server.api_requests()) == 8
    assert elapsed < 4 * 0.3 + 2, f"took {elapsed:.1f} s"
    message = str(raised.value)
    assert "network error" in message and "raise the timeout (now 0.3 s" in message


def test_a_refused_key_stops_the_run_with_the_key_hint(api: Provider) -> None:
    from medfm_robust_plugin.models import ModelUnavailableError

    api.server.fail_always(401)
    model = api.load(concurrency=1, max_consecutive_failures=3)
    with pytest.raises(ModelUnavailableError) as raised:
        model.generate([([image(i)], "q") for i in range(10)])
    assert len(api.server.api_requests()) == 3  # 401 is never retried; three in a row stop it
    key_variable = "OPENAI_API_KEY" if api.name == "openai" else "GEMINI_API_KEY"
    assert f"check the key in {key_variable}" in str(raised.value)


def test_failures_between_answers_do_not_trip_the_breaker(api: Provider) -> None:
    seen = []

    def every_other(request: Any) -> str:
        seen.append(request)
        if len(seen) % 2:
            raise ValueError("a hiccup")
        return "A"

    api.server.reply = every_other
    model = api.load(retry_delay=0.001, concurrency=1, max_consecutive_failures=2)
    answers = model.generate([([image(i)], "q") for i in range(6)])
    assert [a.text for a in answers] == ["A"] * 6
    assert len(api.server.api_requests()) == 12 and not model.breaker.is_open


def test_the_command_stops_with_one_line_and_keeps_finished_items(
    fake_openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    fake_openai_server.fail_always(503)
    env = {
        **os.environ,
        "OPENAI_BASE_URL": fake_openai_server.base_url,
        "MEDFM_ROBUST_CACHE": str(tmp_path / "cache"),
        "COLUMNS": "200",
    }
    args = ["run", "--task", "MedFMRobust-Mini-VQA", "--model", "gpt-4o", "--limit", "5"]
    args += ["--corruptions", "gaussian_noise", "--severities", "1", "--out", str(tmp_path / "o")]
    args += ["--model-option", "retry_delay=0.01", "--model-option", "max_retries=1"]
    done = subprocess.run(
        [sys.executable, "-m", "medfm_robust_plugin", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    errors = [x for x in done.stderr.splitlines() if x.startswith("Error")]
    assert len(errors) == 1 and done.stderr.strip().endswith(errors[0])
    assert "HTTP 503" in errors[0] and "rerun the same command" in errors[0]
    # max(8, 2 x 4) failed requests in a row, plus those still in flight beside the eighth
    failed_in_a_row = int(re.search(r"stopped: (\d+) requests in a row", errors[0]).group(1))
    assert 8 <= failed_in_a_row <= 8 + 3
    assert len(fake_openai_server.api_requests()) == failed_in_a_row


# --------------------------------------------------------------------------- answers without text


def test_an_answer_without_text_is_retried_once_then_fails_uncached(api: Provider) -> None:
    api.server.reply = None  # OpenAI: content null; Gemini: a candidate without parts
    model = api.load(retry_delay=0.001)
    with pytest.raises(ModelError) as raised:
        model.generate([([image(0)], "q")])
    assert len(api.server.api_requests()) == 2  # once more, although max_retries is 5
    message = str(raised.value)
    assert "no answer" in message and "gave no text, twice" in message
    reason = "content null, finish reason length" if api.name == "openai" else "MAX_TOKENS"
    assert reason in message
    assert not list(api.cache_dir.rglob("*.json"))  # nothing cached as an answer
    assert model.usage.calls == 2  # both replies were billed
    api.server.reply = "B"
    [answer] = model.generate([([image(0)], "q")])
    assert answer.text == "B" and not answer.cached


def test_an_answer_without_text_then_with_text_is_kept(api: Provider) -> None:
    replies = iter([None, "C"])
    api.server.reply = lambda request: next(replies)
    [answer] = api.load(retry_delay=0.001).generate([([image(0)], "q")])
    assert answer.text == "C" and len(api.server.api_requests()) == 2


def test_an_empty_answer_cached_by_an_older_version_is_not_served(api: Provider) -> None:
    model = api.load()
    request = model._request(([image(0)], "q"), None, model._settings(512, 0.0))
    model.cache.put(request.key, {"text": "", "input_tokens": 1, "output_tokens": 0})
    [answer] = model.generate([([image(0)], "q")])
    assert answer.text == "A" and not answer.cached
    assert len(api.server.api_requests()) == 1


# --------------------------------------------------------------------------- keys in answers


def test_a_key_echoed_in_an_answer_is_redacted_in_answers_and_cache(api: Provider) -> None:
    key = OPENAI_KEY if api.name == "openai" else GEMINI_KEY
    api.server.reply = echo_key(api.server)
    model = api.load()
    [answer] = model.generate([([image(0)], "q")])
    assert api.server.key(api.server.api_requests()[0]) == key  # the server did echo it
    assert key not in answer.text and "[redacted]" in answer.text
    assert answer.text.endswith("The answer is B.")
    [stored] = list(api.cache_dir.rglob("*.json"))
    assert key not in stored.read_text() and "[redacted]" in stored.read_text()
    [again] = api.load().generate([([image(0)], "q")])
    assert again.cached and again.text == answer.text


def test_a_key_echoed_in_an_answer_reaches_no_record_or_report(
    fake_openai_server: FakeOpenAIServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from medfm_robust_plugin.report import build_report

    caplog.set_level(logging.DEBUG)
    fake_openai_server.reply = echo_key(fake_openai_server)
    fake_openai_server.fail_next(500, body={"error": {"message": f"bad key {OPENAI_KEY}"}})
    options = {"retry_delay": 0.001}
    job = mini_run(tmp_path, options)
    model = load_model(
        "gpt-4o", base_url=fake_openai_server.base_url, cache_dir=tmp_path, **options
    )
    job.execute(model)
    records = records_of(job)
    assert len(records) == 10 and all("[redacted]" in r["prediction"] for r in records)
    paths = build_report([job.run_dir], tmp_path / "report", thumbnails=False)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".jsonl" for p in written) and paths.files
    assert not [p for p in written if OPENAI_KEY.encode() in p.read_bytes()]
    assert OPENAI_KEY not in caplog.text and "[redacted]" in caplog.text


def test_redaction_of_known_keys_and_key_shapes(monkeypatch: pytest.MonkeyPatch) -> None:
    from medfm_robust_plugin.redaction import redact, register_secret

    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-0123456789")
    monkeypatch.setenv("SOME_SETTING", "not-a-secret-value")
    register_secret("a-key-from-elsewhere")
    text = (
        f"{OPENAI_KEY} {GEMINI_KEY} tok-0123456789 a-key-from-elsewhere not-a-secret-value "
        "sk-proj-abcdefgh12345678 AIzaSyA1234567890abcdefghijklmnopqrstu"
    )
    answer = redact(text)
    assert answer.split() == ["[redacted]"] * 4 + ["not-a-secret-value"] + text.split()[5:]
    logged = redact(text, patterns=True)
    assert logged.split() == ["[redacted]"] * 4 + ["not-a-secret-value"] + ["[redacted]"] * 2


# --------------------------------------------------------------------------- endpoints in the cache


def test_two_servers_of_one_model_name_keep_their_own_answers(tmp_path: Path) -> None:
    with (
        FakeOpenAIServer(reply="from vLLM") as vllm,
        FakeOpenAIServer(reply="from Ollama") as ollama,
    ):
        item = [([image(0)], "q")]
        first = load_model("openai:medgemma", base_url=vllm.base_url, cache_dir=tmp_path)
        second = load_model("openai:medgemma", base_url=ollama.base_url, cache_dir=tmp_path)
        assert first.generate(item)[0].text == "from vLLM"
        assert second.generate(item)[0].text == "from Ollama"
        assert len(vllm.api_requests()) == len(ollama.api_requests()) == 1
        # asked for, one cache serves both endpoints
        shared = load_model(
            "openai:medgemma",
            base_url=ollama.base_url,
            cache_dir=tmp_path / "shared",
            share_cache_across_endpoints="true",
        )
        shared.generate(item)
        again = load_model(
            "openai:medgemma",
            base_url=vllm.base_url,
            cache_dir=tmp_path / "shared",
            share_cache_across_endpoints=True,
        ).generate(item)[0]
        assert again.cached and again.text == "from Ollama"
        assert len(vllm.api_requests()) == 1 and len(ollama.api_requests()) == 2


def test_spellings_of_one_endpoint_share_the_cache(
    fake_openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    port = fake_openai_server.port
    for url in (f"http://127.0.0.1:{port}/v1", f"HTTP://127.0.0.1:{port}/v1/"):
        model = load_model("openai:medgemma", base_url=url, cache_dir=tmp_path)
        model.generate([([image(0)], "q")])
    assert len(fake_openai_server.api_requests()) == 1
    assert model.endpoint == f"http://127.0.0.1:{port}/v1"


def test_endpoint_normalisation() -> None:
    from medfm_robust_plugin.models.api_cache import normalise_endpoint

    assert normalise_endpoint("HTTPS://API.OpenAI.com:443/v1/") == "https://api.openai.com/v1"
    assert normalise_endpoint("http://LocalHost:80/v1") == "http://localhost/v1"
    assert normalise_endpoint("http://localhost:8000/v1?x=1#f") == "http://localhost:8000/v1"
    assert normalise_endpoint("http://user:pw@host:8000/") == "http://host:8000"
    assert normalise_endpoint("http://[::1]:8000/v1") == "http://[::1]:8000/v1"
    assert normalise_endpoint("http://host/V1") != normalise_endpoint("http://host/v1")


def test_caches_written_without_the_endpoint_are_read_only_when_shared(
    fake_openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    from medfm_robust_plugin.models.api_cache import ResponseCache, cache_key

    model = load_model("gpt-4o", base_url=fake_openai_server.base_url, cache_dir=tmp_path)
    png = model._request(([image(0)], "q"), None, {}).images_png[0]
    import hashlib

    old_key = cache_key(
        "openai", "gpt-4o", None, "q", [hashlib.sha256(png).hexdigest()], model._settings(512, 0.0)
    )
    ResponseCache(tmp_path).put(old_key, {"text": "an old answer"})
    [fresh] = model.generate([([image(0)], "q")])
    assert fresh.text == "A" and len(fake_openai_server.api_requests()) == 1
    shared = load_model(
        "gpt-4o",
        base_url=fake_openai_server.base_url,
        cache_dir=tmp_path,
        share_cache_across_endpoints="yes",
    )
    [old] = shared.generate([([image(0)], "q")])
    assert old.text == "an old answer" and old.cached
    assert len(fake_openai_server.api_requests()) == 1


# --------------------------------------------------------------------------- model options


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"foo": 1}, "model 'openai:gpt-4o' has no option 'foo'; its options: api_key_env,"),
        ({"timout": 5}, "has no option 'timout'; did you mean timeout?"),
        ({"timeout": "abc"}, "option timeout must be a number of seconds above 0, got 'abc'"),
        ({"timeout": 0}, "option timeout must be a number of seconds above 0, got 0"),
        ({"concurrency": 2.5}, "option concurrency must be a whole number at least 1, got 2.5"),
        ({"max_retries": -1}, "option max_retries must be a whole number at least 0, got -1"),
        ({"cache": "maybe"}, "option cache must be true or false, got 'maybe'"),
        ({"base_url": "localhost:8000"}, "option base_url must be an http:// or https:// URL"),
        ({"api_key": "sk-x"}, "keys are read from the environment only"),
    ],
)
def test_bad_model_options_are_named(options: dict[str, Any], expected: str) -> None:
    with pytest.raises(ModelError) as raised:
        load_model("gpt-4o", **options)
    assert expected in str(raised.value) and "openai:gpt-4o" in str(raised.value)


def test_bad_options_of_gemini_and_local_models_are_named() -> None:
    with pytest.raises(ModelError, match=r"'gemini:gemini-2.5-flash'.*thinking_budget.*'lots'"):
        load_model("gemini-2.5-flash", thinking_budget="lots")
    with pytest.raises(ModelError, match="model 'baseline:majority' has no option 'foo'"):
        load_model("baseline:majority", foo=1)


def test_the_command_names_a_bad_model_option_in_one_line(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "medfm_robust_plugin", "run", "--task", "MedFMRobust-Mini-VQA"]
    base += ["--model", "gpt-4o", "--limit", "1", "--out", str(tmp_path)]
    for option, expected in (
        ("foo=1", "Error: model 'openai:gpt-4o' has no option 'foo'"),
        ("timeout=abc", "Error: model 'openai:gpt-4o': option timeout must be a number"),
    ):
        done = subprocess.run(
            [*base, "--model-option", option],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=120,
            env={**os.environ, "COLUMNS": "200"},
        )
        assert done.returncode != 0 and "Traceback" not in done.stderr
        assert done.stderr.strip().splitlines() == [done.stderr.strip()]
        assert done.stderr.startswith(expected), done.stderr


# --------------------------------------------------------------------------- where a run connects


@pytest.mark.parametrize(
    ("variable", "suffix"),
    [
        ("OPENAI_API_BASE", "/chat/completions"),  # VLMEvalKit's spelling: the full URL
        ("OPENAI_BASE_URL", ""),  # the SDK's: the /v1 base
        ("OPENAI_BASE_URL", "/chat/completions/"),
    ],
)
def test_both_spellings_of_the_openai_endpoint_reach_the_same_url(
    variable: str,
    suffix: str,
    fake_openai_server: FakeOpenAIServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(variable, fake_openai_server.base_url + suffix)
    model = load_model("gpt-4o", cache_dir=tmp_path)
    assert model.endpoint == fake_openai_server.base_url
    assert model.describe_endpoint() == f"{fake_openai_server.base_url} (from {variable})"
    assert model.generate([([image(0)], "q")])[0].text == "A"
    (request,) = fake_openai_server.api_requests()
    assert request.path == "/v1/chat/completions"  # not .../chat/completions/chat/completions


def test_the_base_url_option_wins_and_may_be_the_full_url(
    fake_openai_server: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_BASE", "http://127.0.0.1:9/v1/chat/completions")
    url = fake_openai_server.base_url + "/chat/completions"
    model = load_model("gpt-4o", base_url=url, cache_dir=tmp_path)
    assert model.describe_endpoint() == f"{fake_openai_server.base_url} (from option base_url)"
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai_server.base_url)
    model = load_model("gpt-4o", cache_dir=tmp_path)  # the SDK's variable before VLMEvalKit's
    assert model.describe_endpoint().endswith("(from OPENAI_BASE_URL)")
    monkeypatch.setenv("OPENAI_API_BASE", "127.0.0.1:9/v1")
    monkeypatch.delenv("OPENAI_BASE_URL")
    with pytest.raises(ModelError, match=r"\$OPENAI_API_BASE must be an http:// or https:// URL"):
        load_model("gpt-4o")


def run_command(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    return subprocess.run(
        [sys.executable, "-m", "medfm_robust_plugin", *args],
        capture_output=True,
        text=True,
        env={**environment, "COLUMNS": "200", **env},
        cwd=REPO,
        timeout=120,
    )


MINI_RUN = ["run", "--task", "MedFMRobust-Mini-VQA", "--model", "gpt-4o", "--limit", "1"]
MINI_RUN += ["--corruptions", "gaussian_noise", "--severities", "1", "--workers", "0"]


def test_the_command_names_its_endpoint_and_fails_when_every_item_failed(
    fake_openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    # as the README sets it up for VLMEvalKit: the full chat-completions URL in OPENAI_API_BASE
    env = {
        "OPENAI_API_KEY": OPENAI_KEY,
        "OPENAI_API_BASE": fake_openai_server.base_url + "/chat/completions",
        "MEDFM_ROBUST_CACHE": str(tmp_path / "cache"),
    }
    done = run_command([*MINI_RUN, "--out", str(tmp_path / "ok")], env)
    assert done.returncode == 0, done.stderr
    assert f"openai:gpt-4o calls {fake_openai_server.base_url} (from OPENAI_API_BASE)" in (
        done.stderr
    )
    assert "2 records written" in done.stdout
    assert OPENAI_KEY not in done.stdout + done.stderr
    assert {r.path for r in fake_openai_server.api_requests()} == {"/v1/chat/completions"}

    fake_openai_server.fail_always(400)  # every request refused: every item fails
    env["MEDFM_ROBUST_CACHE"] = str(tmp_path / "empty-cache")
    done = run_command([*MINI_RUN, "--out", str(tmp_path / "refused")], env)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "0 records written, 0 already done, 2 failed" in done.stdout
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("Error: every item of this run failed (2); the first:")
    assert f"failed at {fake_openai_server.base_url}: HTTP 400" in error
    assert "rerun the same command" in error


def test_a_dry_run_needs_no_key_and_calls_nothing(
    fake_openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    done = run_command([*MINI_RUN, "--out", str(tmp_path), "--dry-run"], {})
    assert done.returncode == 0, done.stderr
    assert "1 samples, 2 conditions, 2 model calls to make" in done.stdout
    assert "estimated cost: $" in done.stdout
    assert "openai:gpt-4o would call https://api.openai.com/v1 (the provider default)" in (
        done.stderr
    )
    env = {"OPENAI_API_BASE": fake_openai_server.base_url + "/chat/completions"}
    done = run_command([*MINI_RUN, "--out", str(tmp_path), "--dry-run"], env)
    assert done.returncode == 0, done.stderr
    assert f"would call {fake_openai_server.base_url} (from OPENAI_API_BASE)" in done.stderr
    assert not fake_openai_server.requests and not (tmp_path / "MedFMRobust-Mini-VQA").exists()
    # a model built for estimates refuses to call
    model = load_model("gpt-4o", estimate_only=True, cache_dir=tmp_path)
    with pytest.raises(ModelError, match="built for estimates only"):
        model.generate([([image(0)], "q")])


def test_a_run_resumes_when_only_how_it_runs_changes_and_aliases_share_it(
    fake_openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    env = {
        "OPENAI_API_KEY": OPENAI_KEY,
        "OPENAI_BASE_URL": fake_openai_server.base_url,
        "MEDFM_ROBUST_CACHE": str(tmp_path / "cache"),
    }
    out = ["--out", str(tmp_path / "runs")]
    done = run_command([*MINI_RUN, *out, "--concurrency", "8"], env)
    assert done.returncode == 0 and "2 records written" in done.stdout, done.stderr
    run_dir = tmp_path / "runs" / "MedFMRobust-Mini-VQA" / "openai_gpt-4o"
    assert [p.name for p in run_dir.parent.iterdir()] == ["openai_gpt-4o"]
    # lower concurrency after a rate limit, longer timeouts, other retries: the same run resumes;
    # openai:gpt-4o is gpt-4o, so it finds the same folder
    calmer = [*MINI_RUN, *out, "--concurrency", "4", "--model-option", "timeout=300"]
    calmer += ["--model-option", "max_retries=8", "--model-option", "retry_delay=2"]
    calmer[calmer.index("gpt-4o")] = "openai:gpt-4o"
    done = run_command(calmer, env)
    assert done.returncode == 0, done.stderr
    assert "0 records written, 2 already done, 0 failed" in done.stdout
    assert [p.name for p in run_dir.parent.iterdir()] == ["openai_gpt-4o"]
    records = [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]
    assert {r["model"] for r in records} == {"openai:gpt-4o"}
    # an option that changes answers is still a different run
    done = run_command([*MINI_RUN, *out, "--model-option", "system=Answer in one word."], env)
    assert done.returncode == 1 and "changed: model_options" in done.stderr


def test_a_run_recorded_with_run_options_in_its_identity_still_resumes(
    fake_openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    # config.json of an older version held concurrency in the run's identity
    job = mini_run(tmp_path, {"concurrency": 8})
    model = load_model("gpt-4o", base_url=fake_openai_server.base_url, cache_dir=tmp_path)
    job.execute(model)
    config = json.loads((job.run_dir / "config.json").read_text())
    config["fingerprint"]["model_options"] = {"concurrency": 8}
    (job.run_dir / "config.json").write_text(json.dumps(config))
    again = mini_run(tmp_path, {"concurrency": 2, "base_url": fake_openai_server.base_url})
    assert again.execute(model).skipped_done == 10
