"""Exact-match response cache, scoped per organisation.

The pipeline asks `should_cache(body, headers, endpoint)`; if yes it builds the key with
`build_cache_key(org_id, endpoint, body)`, tries `get_cached_response(key)` before routing and
calls `store_cached_response(key, response)` after a successful provider answer.

The key is the SHA-256 of the canonical JSON of the request minus what cannot change the answer
(stream, user, metadata, the cache flag), so any new parameter splits the cache rather than
serving a wrong answer. On by default for deterministic requests (temperature 0, embeddings) or
when the body says `"cache": true`; `"cache": false` or `Cache-Control: no-cache`/`no-store` opt
out. Entries live in Redis (llm/redis_clients.py: the embedded store without REDIS_URL) for
GATEWAY_CACHE_TTL_SECONDS; a failing Redis is a miss, never an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from django.conf import settings

from llm.json_codec import decode_json
from llm.redis_clients import REDIS_ERRORS, count_unavailable, get_redis

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
        return cls(**decode_json(raw))


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
    try:
        raw = await get_redis().get(key)
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
    try:
        await get_redis().set(key, response.to_json(), ex=ttl)
    except REDIS_ERRORS as exc:
        logger.warning(
            "Redis unavailable for the response cache (%s): not stored", type(exc).__name__
        )
        count_unavailable("response_cache", "not_stored")
