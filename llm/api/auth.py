"""Step 1 of the pipeline: bearer API key -> key, organisation and plan limits.

The lookup is cached in process memory for GATEWAY_API_KEY_CACHE_SECONDS, so the hot path costs no
database query. Revocations and suspensions are published through Redis
(organizations/revocations.py) and every process drops the entry when told; while a process is
not listening (no subscription yet, Redis away), it trusts a cached entry for one second only.
Keys are accepted only in headers: one in the query string is refused, as it ends up in logs.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from cachetools import TLRUCache
from django.conf import settings

from billing.limits import PlanLimits, limits_for_plan
from llm.api.errors import ApiError, database_unavailable
from llm.redis_clients import REDIS_ERRORS, count_unavailable, get_redis, uses_real_redis
from organizations.api_keys import KEY_PREFIX, find_api_key, touch_api_key
from organizations.database import DATABASE_ERRORS, with_live_connection
from organizations.models import ApiKey, Organization
from organizations.revocations import channel_for, listen_locally


@dataclass(frozen=True)
class Caller:
    key: ApiKey
    organization: Organization
    limits: PlanLimits


MAX_CACHED = 50_000


def _expires_at(_digest: str, entry: tuple[float, Caller | None], now: float) -> float:
    return now + entry[0]


# key digest -> (seconds to trust it, the caller or None for an unknown key). Revocations are
# told from other threads (organizations/revocations.py), hence the lock.
_cache: TLRUCache[str, tuple[float, Caller | None]] = TLRUCache(
    MAX_CACHED, ttu=_expires_at, timer=time.monotonic
)
_cache_lock = threading.Lock()
_touching: set[asyncio.Task] = set()
UNHEARD_CACHE_SECONDS = 1.0  # how long a cached lookup is trusted while not listening
_listening = False
QUERY_KEY_NAMES = frozenset({"api_key", "api-key", "apikey", "key", "token", "access_token"})


def bearer_token(request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    # Anthropic-style clients send the key this way.
    return request.headers.get("X-Api-Key") or None


@with_live_connection  # a worker thread outside any request: its connection may have died
def _load_caller(raw_key: str) -> Caller | None:
    key = find_api_key(raw_key)
    if key is None:
        return None
    return Caller(key, key.organization, limits_for_plan(key.organization.plan))


def cache_seconds() -> float:
    if _listening or not uses_real_redis():  # without one, this is the only process: told at once
        return float(settings.GATEWAY_API_KEY_CACHE_SECONDS)
    return min(UNHEARD_CACHE_SECONDS, settings.GATEWAY_API_KEY_CACHE_SECONDS)


def refuse_key_in_query(request) -> None:
    """A secret in a URL is written to every access log and proxy on its way: refused."""
    named = QUERY_KEY_NAMES.intersection(name.lower() for name in request.GET)
    if named or any(value.startswith(KEY_PREFIX) for value in request.GET.values()):
        raise ApiError(
            400,
            "Send the API key in the Authorization header, never in the URL; "
            "a key that was sent in a URL should be rotated.",
            code="api_key_in_query",
        )


async def authenticate(request) -> Caller:
    refuse_key_in_query(request)
    raw_key = bearer_token(request)
    if not raw_key:
        raise ApiError(
            401, "Missing API key: send 'Authorization: Bearer gw-...'.", code="missing_api_key"
        )
    digest = hashlib.sha256(raw_key.encode()).hexdigest()
    with _cache_lock:
        cached = _cache.get(digest)
    if cached is not None:
        caller = cached[1]
    else:
        try:
            caller = await sync_to_async(_load_caller, thread_sensitive=False)(raw_key)
        except DATABASE_ERRORS:
            raise database_unavailable() from None
        with _cache_lock:
            _cache[digest] = (cache_seconds(), caller)
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
    """Drop the cache (tests, and whenever revocations may have been missed)."""
    with _cache_lock:
        _cache.clear()


def forget(message: str) -> None:
    """Drop what a revocation message names: "key:<id>" or "org:<id>"."""
    kind, _, ident = message.partition(":")
    if not ident.isdigit():
        return
    field = {"key": "pk", "org": "organization_id"}.get(kind)
    if field is None:
        return
    with _cache_lock:
        for digest, (_, caller) in list(_cache.items()):
            if caller is not None and getattr(caller.key, field) == int(ident):
                _cache.pop(digest, None)


listen_locally(forget)


async def listen_for_revocations() -> None:
    """Runs for the life of the server process (started at ASGI start-up)."""
    global _listening
    redis = get_redis()
    while True:
        try:
            async with redis.pubsub() as pubsub:
                await pubsub.subscribe(channel_for(redis))
                forget_cached_keys()  # whatever was published while we were not listening
                _listening = True
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
                    if message is not None:
                        forget(str(message["data"]))
        except REDIS_ERRORS:
            _listening = False
            count_unavailable("key_revocation", "cache_ttl_1s")
            await asyncio.sleep(1.0)
        except asyncio.CancelledError:
            _listening = False
            raise
