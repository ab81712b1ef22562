"""Exact-match response cache, scoped per organisation.

The pipeline asks `should_cache(body, headers, endpoint)`; if yes it builds the key with
`build_cache_key(org_id, endpoint, body)`, tries `get_cached_response(key)` before routing and
calls `store_cached_response(key, response)` after a successful provider answer.

The key is the SHA-256 of the canonical JSON of the request minus what cannot change the answer
(stream, user, metadata, the cache flag), so any new parameter splits the cache rather than
serving a wrong answer. On by default for deterministic requests (temperature 0, embeddings) or
when the body says `"cache": true`; `"cache": false` or `Cache-Control: no-cache`/`no-store` opt
out. Redis when configured, else a bounded in-process LRU; a failing Redis is a miss, never an
error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from django.conf import settings

from gateway_project.redis_client import REDIS_ERRORS, count_unavailable, get_redis

logger = logging.getLogger(__name__)

_IGNORED_FIELDS = frozenset({"stream", "stream_options", "user", "metadata", "cache"})
_DETERMINISTIC_ENDPOINTS = frozenset({"embeddings"})


@dataclass
class CachedResponse:
    """The normalised result of a provider call, as the pipeline replays it."""

    text: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str = "stop"
    usage: dict[str, int] = field(default_factory=dict)
    provider: str = ""
    model: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. embeddings' vectors

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str) -> CachedResponse:
        return cls(**json.loads(raw))


class _LruCache:
    """A bounded, expiring map for processes without Redis."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[str, tuple[float, str]] = OrderedDict()

    def get(self, key: str) -> str | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            if item[0] <= time.time():
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return item[1]

    def set(self, key: str, value: str, ttl: int) -> None:
        with self._lock:
            self._items[key] = (time.time() + ttl, value)
            self._items.move_to_end(key)
            while len(self._items) > settings.GATEWAY_CACHE_MAX_ENTRIES:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_local = _LruCache()


def clear_in_process_cache() -> None:
    _local.clear()


def _header(headers: Mapping[str, str] | None, name: str) -> str:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value
    return ""


def should_cache(
    body: Mapping[str, Any],
    headers: Mapping[str, str] | None = None,
    endpoint: str = "chat.completions",
) -> bool:
    """Whether this request may be answered from, and stored in, the cache."""
    if not settings.GATEWAY_CACHE_ENABLED:
        return False
    directives = {d.strip().lower() for d in _header(headers, "cache-control").split(",")}
    if directives & {"no-cache", "no-store"}:
        return False
    flag = body.get("cache")
    if isinstance(flag, bool):
        return flag
    if endpoint in _DETERMINISTIC_ENDPOINTS:
        return True
    temperature = body.get("temperature")
    return isinstance(temperature, int | float) and temperature == 0


def _normalise(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)  # 0.0 and 0 ask the same thing
    if isinstance(value, Mapping):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalise(v) for v in value]
    return value


def build_cache_key(org_id: int, endpoint: str, body: Mapping[str, Any]) -> str:
    """The organisation's key for this request: same org + same request = same key."""
    request = {k: v for k, v in body.items() if k not in _IGNORED_FIELDS and v is not None}
    canonical = json.dumps(
        {"endpoint": endpoint, "request": _normalise(request)},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return f"gw:cache:{org_id}:{digest}"


async def get_cached_response(key: str) -> CachedResponse | None:
    client = get_redis()
    try:
        raw = _local.get(key) if client is None else await client.get(key)
    except REDIS_ERRORS as exc:
        logger.warning("Redis unavailable for the response cache (%s): miss", type(exc).__name__)
        count_unavailable("response_cache", "miss")
        return None
    if raw is None:
        return None
    try:
        return CachedResponse.from_json(raw)
    except (ValueError, TypeError):
        logger.warning("Unreadable cache entry %s: miss", key)
        return None


async def store_cached_response(
    key: str, response: CachedResponse, ttl_seconds: int | None = None
) -> None:
    ttl = ttl_seconds or settings.GATEWAY_CACHE_TTL_SECONDS
    client = get_redis()
    if client is None:
        _local.set(key, response.to_json(), ttl)
        return
    try:
        await client.set(key, response.to_json(), ex=ttl)
    except REDIS_ERRORS as exc:
        logger.warning(
            "Redis unavailable for the response cache (%s): not stored", type(exc).__name__
        )
        count_unavailable("response_cache", "not_stored")
