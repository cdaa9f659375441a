"""The response cache of the API models: one JSON file per request key, so that a rerun never
pays for an answer twice."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..atomic_files import write_atomic
from ..resources import cache_dir

logger = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``$MEDFM_ROBUST_CACHE/responses``, else ``$XDG_CACHE_HOME`` or ``~/.cache``, + ``medfm-robust/responses``."""
    return cache_dir("responses")


def normalise_endpoint(url: str) -> str:
    """An endpoint as the cache key sees it: scheme, host, port and path; host and scheme lowercased,
    default ports and a trailing slash dropped, no credentials, query or fragment.

    ``HTTP://LocalHost:80/v1/`` and ``http://localhost/v1`` are one endpoint.
    """
    from urllib.parse import urlsplit

    parts = urlsplit(url.strip())
    scheme = (parts.scheme or "https").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    host = (parts.hostname or "").lower()
    if ":" in host:  # an IPv6 address goes back in brackets
        host = f"[{host}]"
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    path = parts.path.rstrip("/")
    return f"{scheme}://{host}{path}"


def cache_key(
    provider: str,
    model: str,
    system: str | None,
    prompt: str,
    image_hashes: Sequence[str],
    settings: Mapping[str, Any],
    endpoint: str | None = None,
) -> str:
    """sha256 of everything that decides an answer (never the API key, never the image bytes).

    ``endpoint`` (a normalised base URL) keeps the answers of one model id served by two servers
    apart; None gives the key that every endpoint shares, which is also the key of caches written
    before endpoints were part of it.
    """
    payload: dict[str, Any] = {
        "version": 1,
        "provider": provider,
        "model": model,
        "system": system,
        "prompt": prompt,
        "images": list(image_hashes),
        "settings": dict(sorted(settings.items())),
    }
    if endpoint is not None:
        payload["version"] = 2
        payload["endpoint"] = endpoint
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """One JSON file per request key under ``root/<key[:2]>/<key>.json``: answer text and tokens.

    The key includes the endpoint, so that one model id served by two servers (two quantisations,
    vLLM and Ollama, a proxy) never shares answers, unless a model is built with
    ``share_cache_across_endpoints=true`` (which also reads caches written before the endpoint was
    part of the key).

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
        data = json.dumps(dict(record), ensure_ascii=False).encode("utf-8")
        write_atomic(self.path(key), data, prefix=f".{key[:8]}-", suffix=".tmp")
