"""Clients: bounded bursts and loops of chat requests over httpx, each with its own request id.

Every request carries `X-Request-ID`, which the gateway stores on its usage record; the suite
counts rows by it afterwards.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

MODEL = "rel-chat"
PROMPT = [{"role": "user", "content": "Say hello in three words."}]


@dataclass
class Outcome:
    request_id: str
    status: int | None = None  # None: no HTTP answer at all (refused, reset, timed out)
    started: float = field(default_factory=time.monotonic)
    latency: float = 0.0
    error: str = ""  # transport error class, or the error event of a stream
    done: bool = False  # a stream that reached `data: [DONE]`
    body: str = ""
    size: int = 0  # bytes of the answer's body (a stream: of its data lines)
    headers: dict = field(default_factory=dict)

    @property
    def answered(self) -> bool:
        return self.status is not None

    @property
    def is_5xx(self) -> bool:
        return self.status is not None and self.status >= 500


def new_id(tag: str) -> str:
    return f"rel-{tag}-{uuid.uuid4().hex[:16]}"


def chat_body(stream: bool = False, max_tokens: int = 20, **extra) -> dict:
    body = {"model": MODEL, "messages": PROMPT, "max_tokens": max_tokens, "temperature": 0.7}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return body | extra


async def chat(
    client: httpx.AsyncClient,
    base_url: str,
    key: str,
    tag: str,
    *,
    stream: bool = False,
    timeout: float = 30.0,
    disconnect_after_chunks: int | None = None,
    body: dict | None = None,
    model: str = MODEL,
) -> Outcome:
    """One request; never raises. A stream is read to its end (or cut after N data lines)."""
    outcome = Outcome(new_id(tag))
    headers = {"Authorization": f"Bearer {key}", "X-Request-ID": outcome.request_id}
    payload = body or chat_body(stream=stream, model=model)
    try:
        async with asyncio.timeout(timeout):
            if not stream:
                response = await client.post(
                    f"{base_url}/v1/chat/completions", json=payload, headers=headers
                )
                outcome.status, outcome.body = response.status_code, response.text[:300]
                outcome.size = len(response.content)
                outcome.headers = dict(response.headers)
            else:
                await read_stream(
                    client, base_url, payload, headers, outcome, disconnect_after_chunks
                )
    except (TimeoutError, httpx.HTTPError) as error:
        outcome.error = outcome.error or type(error).__name__
    outcome.latency = time.monotonic() - outcome.started
    return outcome


async def read_stream(client, base_url, payload, headers, outcome, disconnect_after) -> None:
    url = f"{base_url}/v1/chat/completions"
    async with client.stream("POST", url, json=payload, headers=headers) as response:
        outcome.status, outcome.headers = response.status_code, dict(response.headers)
        if response.status_code != 200:
            outcome.body = (await response.aread()).decode(errors="replace")[:300]
            return
        seen = 0
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            seen += 1
            outcome.size += len(line)
            data = line[5:].strip()
            if data == "[DONE]":
                outcome.done = True
            elif '"error"' in data[:20]:
                outcome.error = "error_event"
                outcome.body = data[:300]
            if disconnect_after is not None and seen >= disconnect_after:
                outcome.error = "client_disconnected"
                return


async def burst(count: int, call: Callable[[int], Awaitable[Outcome]], clients: int) -> list:
    """`count` calls with at most `clients` in flight."""
    gate = asyncio.Semaphore(clients)

    async def one(index: int) -> Outcome:
        async with gate:
            return await call(index)

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def loop_for(
    seconds: float, clients: int, call: Callable[[int], Awaitable[Outcome]], cap: int = 5000
) -> list[Outcome]:
    """`clients` loops sending one request after another for `seconds` (at most `cap` in all)."""
    stop_at = time.monotonic() + seconds
    outcomes: list[Outcome] = []

    async def client_loop(index: int) -> None:
        while time.monotonic() < stop_at and len(outcomes) < cap:
            outcomes.append(await call(index))
            await asyncio.sleep(0.05)  # a client's think time

    await asyncio.gather(*(client_loop(i) for i in range(clients)))
    return outcomes


def p99_ms(outcomes: list[Outcome]) -> float | None:
    latencies = sorted(o.latency for o in outcomes)
    if not latencies:
        return None
    return round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1000, 1)


def statuses(outcomes: list[Outcome]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for outcome in outcomes:
        key = str(outcome.status) if outcome.status is not None else outcome.error or "none"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def new_client(clients: int = 50) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=clients + 10, max_keepalive_connections=clients)
    return httpx.AsyncClient(timeout=httpx.Timeout(60.0), limits=limits)
