"""Every dialect the registry names is importable and implements the protocol."""

from __future__ import annotations

import inspect

import httpx
import pytest

from llm.providers import DIALECT_MODULES, get_dialect
from llm.types import ChatRequest, ProviderConfig


@pytest.mark.parametrize("name", sorted(DIALECT_MODULES))
def test_each_registered_dialect_answers_to_its_name_with_the_four_calls(name: str) -> None:
    dialect = get_dialect(name)

    assert dialect.name == name
    assert inspect.iscoroutinefunction(dialect.chat)
    assert inspect.iscoroutinefunction(dialect.embed)
    assert inspect.iscoroutinefunction(dialect.list_models)


@pytest.mark.parametrize("name", sorted(DIALECT_MODULES))
async def test_each_dialects_stream_is_an_async_iterator_that_sends_nothing_until_read(name):
    """`stream` hands back its events' iterator (an async generator, or run_stream's); nothing
    reaches the upstream before the first event is asked for."""
    sent: list[httpx.Request] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(500)

    provider = ProviderConfig(id=name, name=name, dialect=name, base_url="http://x.invalid/v1")
    request = ChatRequest(model="m", messages=[{"role": "user", "content": "hi"}], max_tokens=8)
    async with httpx.AsyncClient(transport=httpx.MockTransport(upstream)) as client:
        events = get_dialect(name).stream(client, provider, request)
        assert hasattr(events, "__anext__") and hasattr(events, "aclose")
        await events.aclose()
    assert sent == []
