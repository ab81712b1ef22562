"""Step 1 of the pipeline: bearer API key -> key, organisation and plan limits.

The lookup is cached in process memory for GATEWAY_API_KEY_CACHE_SECONDS, so the hot path costs no
database query; a revoked key or a suspended organisation takes effect within that time.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections

from billing.limits import PlanLimits, limits_for_plan
from llm.api.errors import ApiError
from organizations.api_keys import find_api_key, touch_api_key
from organizations.models import ApiKey, Organization


@dataclass(frozen=True)
class Caller:
    key: ApiKey
    organization: Organization
    limits: PlanLimits


_cache: dict[str, tuple[float, Caller | None]] = {}
_touching: set[asyncio.Task] = set()
MAX_CACHED = 50_000


def bearer_token(request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    # Anthropic-style clients send the key this way.
    return request.headers.get("X-Api-Key") or None


def _load_caller(raw_key: str) -> Caller | None:
    # Runs in a worker thread outside any request: drop a connection that went stale first.
    close_old_connections()
    key = find_api_key(raw_key)
    if key is None:
        return None
    return Caller(key, key.organization, limits_for_plan(key.organization.plan))


async def authenticate(request) -> Caller:
    raw_key = bearer_token(request)
    if not raw_key:
        raise ApiError(
            401, "Missing API key: send 'Authorization: Bearer gw-...'.", code="missing_api_key"
        )
    digest = hashlib.sha256(raw_key.encode()).hexdigest()
    now = time.monotonic()
    cached = _cache.get(digest)
    if cached is not None and cached[0] > now:
        caller = cached[1]
    else:
        caller = await sync_to_async(_load_caller, thread_sensitive=False)(raw_key)
        if len(_cache) >= MAX_CACHED:
            _cache.clear()
        _cache[digest] = (now + settings.GATEWAY_API_KEY_CACHE_SECONDS, caller)
    if caller is None:
        raise ApiError(401, "Invalid, revoked or expired API key.", code="invalid_api_key")
    if caller.key.is_expired:
        raise ApiError(401, "This API key has expired.", code="invalid_api_key")
    if caller.organization.is_suspended:
        raise ApiError(403, "This organization is suspended.", code="organization_suspended")
    _touch_later(caller.key)
    return caller


def _touch_later(key: ApiKey) -> None:
    """Record last use off the response path, at most about once a minute per key."""
    last = key.last_used_at
    if last is not None and time.time() - last.timestamp() < 60:
        return
    task = asyncio.get_running_loop().create_task(
        sync_to_async(touch_api_key, thread_sensitive=False)(key)
    )
    _touching.add(task)
    task.add_done_callback(_touching.discard)


def forget_cached_keys() -> None:
    """Drop the cache (tests, and after a key is revoked in this process)."""
    _cache.clear()
