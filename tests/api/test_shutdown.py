"""A graceful stop (ASGI lifespan shutdown) settles pending calls and writes buffered usage."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from analytics.models import UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)


async def test_lifespan_shutdown_writes_every_pending_usage_record(org, settings):
    from gateway_project.asgi import application
    from llm.api import settlement

    settings.REDIS_URL = ""  # the embedded store's stream: what a stop could lose
    settings.GATEWAY_USAGE_FLUSH_SECONDS = 3600  # no periodic flush would save us
    from analytics.recording import enqueue_usage
    from analytics.usage_writer import serialise_usage

    request_ids = [f"req_{uuid.uuid4().hex}" for _ in range(3)]
    for request_id in request_ids[:2]:
        await enqueue_usage(
            serialise_usage(
                {
                    "organization_id": org.pk,
                    "request_id": request_id,
                    "endpoint": "chat.completions",
                    "status": 200,
                }
            )
        )

    async def slow_settle():
        await asyncio.sleep(0.05)
        await enqueue_usage(
            serialise_usage(
                {
                    "organization_id": org.pk,
                    "request_id": request_ids[2],
                    "endpoint": "chat.completions",
                    "status": 200,
                }
            )
        )

    task = asyncio.get_running_loop().create_task(slow_settle())
    settlement._background.add(task)
    task.add_done_callback(settlement._background.discard)

    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent = []

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message["type"])

    await application({"type": "lifespan"}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    stored = await asyncio.to_thread(
        lambda: set(UsageRecord.objects.values_list("request_id", flat=True))
    )
    assert stored == set(request_ids)
