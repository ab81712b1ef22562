"""Scripts of concurrent callers leave in one pipelined round trip (llm/redis_scripts.py)."""

from __future__ import annotations

import asyncio
import hashlib
import socket

import fakeredis
import pytest
import redis
import redis.asyncio

from llm.redis_scripts import _batches, run_script

DOUBLE = "return tonumber(ARGV[1]) * 2"
REFUSE = "if ARGV[1] == 'bad' then return redis.error_reply('refused') end return ARGV[1]"


def sha(lua: str) -> str:
    return hashlib.sha1(lua.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1


class CountingRedis(fakeredis.FakeAsyncRedis):
    """The embedded store's client (fakeredis with lupa), counting round trips."""

    def __init__(self, **kwargs) -> None:
        super().__init__(server=fakeredis.FakeServer(), decode_responses=True, **kwargs)
        self.pipelines = self.evalshas = 0

    def pipeline(self, *args, **kwargs):
        self.pipelines += 1
        return super().pipeline(*args, **kwargs)

    async def evalsha(self, *args):
        self.evalshas += 1
        return await super().evalsha(*args)


async def test_the_calls_of_one_turn_share_one_round_trip():
    client = CountingRedis()
    await client.script_load(DOUBLE)
    replies = await asyncio.gather(
        *(run_script(client, DOUBLE, sha(DOUBLE), ["k"], [n]) for n in range(20))
    )
    assert replies == [2 * n for n in range(20)]
    assert (client.pipelines, client.evalshas) == (1, 0)


async def test_a_lone_call_is_a_plain_evalsha():
    client = CountingRedis()
    await client.script_load(DOUBLE)
    assert await run_script(client, DOUBLE, sha(DOUBLE), ["k"], [21]) == 42
    assert (client.pipelines, client.evalshas) == (0, 1)


async def test_a_call_leaves_in_the_next_turn_of_the_loop():
    """No turn is spent between the call and its round trip (at low load, each is latency)."""
    client = CountingRedis()
    await client.script_load(DOUBLE)
    reply = asyncio.ensure_future(run_script(client, DOUBLE, sha(DOUBLE), ["k"], [4]))
    await asyncio.sleep(0)  # the caller's turn: it queues its call
    await asyncio.sleep(0)  # the next: the batch is sent
    assert client.evalshas == 1
    assert await reply == 8


async def test_a_batch_whose_sender_was_cancelled_before_it_began_goes_with_the_next():
    client = CountingRedis()
    await client.script_load(DOUBLE)
    first = asyncio.ensure_future(run_script(client, DOUBLE, sha(DOUBLE), ["k"], [1]))
    await asyncio.sleep(0)  # the call is queued, its sender not yet started
    for sender in _batches[client].sending:
        sender.cancel()
    second = run_script(client, DOUBLE, sha(DOUBLE), ["k"], [2])
    assert await asyncio.wait_for(asyncio.gather(first, second), 5) == [2, 4]


@pytest.mark.parametrize("callers", [1, 5])
async def test_a_script_redis_does_not_know_is_sent_with_eval(callers):
    client = CountingRedis()  # nothing loaded: NOSCRIPT
    replies = await asyncio.gather(
        *(run_script(client, DOUBLE, sha(DOUBLE), ["k"], [n]) for n in range(callers))
    )
    assert replies == [2 * n for n in range(callers)]
    assert await client.script_exists(sha(DOUBLE)) == [True]


async def test_one_scripts_error_is_its_callers_alone():
    client = CountingRedis()
    await client.script_load(REFUSE)
    replies = await asyncio.gather(
        *(run_script(client, REFUSE, sha(REFUSE), ["k"], [arg]) for arg in ("a", "bad", "c")),
        return_exceptions=True,
    )
    assert replies[0] == "a" and replies[2] == "c"
    assert isinstance(replies[1], redis.exceptions.ResponseError)
    assert "refused" in str(replies[1])


async def test_a_cancelled_caller_leaves_the_others_their_replies():
    client = CountingRedis()
    await client.script_load(DOUBLE)
    calls = [
        asyncio.ensure_future(run_script(client, DOUBLE, sha(DOUBLE), ["k"], [n])) for n in range(3)
    ]
    await asyncio.sleep(0)  # queued
    calls[1].cancel()
    done = await asyncio.gather(*calls, return_exceptions=True)
    assert done[0] == 0 and done[2] == 4
    assert isinstance(done[1], asyncio.CancelledError)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("callers", [1, 4])
async def test_an_unreachable_redis_is_every_callers_error(callers):
    client = redis.asyncio.Redis(port=closed_port(), socket_connect_timeout=1)
    replies = await asyncio.gather(
        *(run_script(client, DOUBLE, sha(DOUBLE), ["k"], [n]) for n in range(callers)),
        return_exceptions=True,
    )
    assert all(isinstance(reply, redis.exceptions.ConnectionError) for reply in replies)
    await client.aclose()
