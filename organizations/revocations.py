"""Telling every server process that an API key stopped working.

Each process caches key lookups (llm/api/auth.py). A revocation is published on a Redis channel
once its transaction commits; every process listens and drops the key at once. A process that is
not listening (Redis away, or not yet subscribed) trusts its cache for at most a second instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction

from llm.redis_clients import REDIS_ERRORS, count_unavailable, get_sync_redis

logger = logging.getLogger(__name__)
_local: list[Callable[[str], None]] = []  # this process's own caches, told at once


def listen_locally(forget: Callable[[str], None]) -> None:
    _local.append(forget)


def channel_for(client) -> str:
    """Pub/sub ignores database numbers: the channel names the database to keep them apart."""
    return f"gw:{client.connection_pool.connection_kwargs.get('db', 0)}:api-keys:revoked"


def announce_key_revoked(key_id: int) -> None:
    """After commit, tell every process to forget this key."""
    transaction.on_commit(lambda: publish(f"key:{key_id}"))


def announce_organization_changed(org_id: int) -> None:
    """Suspension, plan change: every process re-reads the organisation's keys."""
    transaction.on_commit(lambda: publish(f"org:{org_id}"))


def publish(message: str) -> None:
    for forget in _local:
        forget(message)
    client = get_sync_redis()
    try:
        client.publish(channel_for(client), message)
    except REDIS_ERRORS:
        count_unavailable("key_revocation", "cache_ttl_1s")
        logger.warning("could not publish %s; other processes notice within a second", message)
