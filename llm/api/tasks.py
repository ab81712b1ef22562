"""Celery tasks of the llm app (here at the edge: the core knows nothing of Celery)."""

from __future__ import annotations

import asyncio

from celery import shared_task


async def _probe_idle_providers() -> dict[str, bool]:
    from llm.catalog import get_catalog
    from llm.health import HealthStore, probe_idle_providers
    from llm.http import build_client, set_client
    from llm.redis_clients import close_redis, get_redis

    # A fresh event loop per run: its own Redis and HTTP clients, closed at the end.
    client = build_client()
    set_client(client)
    try:
        health = HealthStore(get_redis())
        return await probe_idle_providers(get_catalog(), health)
    finally:
        set_client(None)
        await client.aclose()
        await close_redis()


@shared_task(soft_time_limit=60, time_limit=90)
def probe_idle_providers() -> dict[str, bool]:
    """Beat: ask idle providers for their model list (free) so their health stays known."""
    return asyncio.run(_probe_idle_providers())
