"""Scripts of concurrent callers leave in one pipelined round trip (llm/redis_scripts.py)."""

from __future__ import annotations

import asyncio
import hashlib
import socket

import fakeredis
import hiredis
import pytest
import redis
import redis.asyncio

from llm import redis_clients
from llm.redis_clients import HiredisPackedConnection
from llm.redis_scripts import _batches, run_script
from tests.stores import use_redis

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


async def test_a_lingering_call_leaves_with_the_next_call_that_does_not_linger():
    """Settlement lingers: the next admission of the process takes it along in its round trip."""
    client = CountingRedis()
    await client.script_load(DOUBLE)
    lingering = asyncio.ensure_future(
        run_script(client, DOUBLE, sha(DOUBLE), ["k"], [1], linger=60)
    )
    for _ in range(5):
        await asyncio.sleep(0)
    assert (client.pipelines, client.evalshas) == (0, 0)  # still waiting for company
    assert await run_script(client, DOUBLE, sha(DOUBLE), ["k"], [2]) == 4
    assert await asyncio.wait_for(lingering, 5) == 2
    assert (client.pipelines, client.evalshas) == (1, 0)  # one round trip for both


async def test_a_lone_lingering_call_leaves_once_its_linger_is_over():
    client = CountingRedis()
    await client.script_load(DOUBLE)
    loop = asyncio.get_running_loop()
    began = loop.time()
    assert await run_script(client, DOUBLE, sha(DOUBLE), ["k"], [3], linger=0.05) == 6
    assert loop.time() - began >= 0.04
    assert (client.pipelines, client.evalshas) == (0, 1)


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


async def test_a_cancelled_callers_script_still_runs_and_its_reply_goes_to_orphaned():
    """The script was on its way when its caller went: whoever must undo its effect hears of it;
    the callers still waiting get their own replies, and nothing is heard for them."""
    client = CountingRedis()
    await client.script_load(DOUBLE)
    heard: list[tuple[int, object]] = []
    calls = [
        asyncio.ensure_future(
            run_script(
                client, DOUBLE, sha(DOUBLE), ["k"], [n], lambda reply, n=n: heard.append((n, reply))
            )
        )
        for n in range(3)
    ]
    await asyncio.sleep(0)  # queued
    calls[1].cancel()
    done = await asyncio.gather(*calls, return_exceptions=True)
    assert done[0] == 0 and done[2] == 4
    assert heard == [(1, 2)]


async def test_a_caller_cancelled_as_its_reply_came_in_hands_the_reply_to_orphaned():
    """The reply was set, but the caller was cancelled before it resumed: it never sees it."""
    heard: list[object] = []
    caller: asyncio.Future | None = None

    class CancelledOnReply(CountingRedis):
        async def evalsha(self, *args):
            reply = await super().evalsha(*args)
            asyncio.get_running_loop().call_soon(caller.cancel)  # runs before the caller resumes
            return reply

    client = CancelledOnReply()
    await client.script_load(DOUBLE)
    caller = asyncio.ensure_future(
        run_script(client, DOUBLE, sha(DOUBLE), ["k"], [5], heard.append)
    )
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert heard == [10]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("connection_class", [redis.asyncio.Connection, HiredisPackedConnection])
@pytest.mark.parametrize("callers", [1, 4])
async def test_an_unreachable_redis_is_every_callers_error(callers, connection_class):
    pool = redis.asyncio.ConnectionPool(
        port=closed_port(), socket_connect_timeout=1, connection_class=connection_class
    )
    client = redis.asyncio.Redis.from_pool(pool)
    replies = await asyncio.gather(
        *(run_script(client, DOUBLE, sha(DOUBLE), ["k"], [n]) for n in range(callers)),
        return_exceptions=True,
    )
    assert all(isinstance(reply, redis.exceptions.ConnectionError) for reply in replies)
    await client.aclose()


class HeldRedis:
    """A stand-in Redis server that answers EVALSHA with the script's first argument, but only
    once the test lets it (`answer`), so a test decides when replies arrive. Anything else (the
    client's handshake) gets +OK at once."""

    def __init__(self) -> None:
        self.connections = 0
        self.received: list[list[bytes]] = []
        self.held: list[tuple[asyncio.StreamWriter, bytes]] = []
        self.at_once = False

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        parser = hiredis.Reader()
        while data := await reader.read(65536):
            parser.feed(data)
            while (command := parser.gets()) is not False:
                if command[0].upper() != b"EVALSHA":
                    writer.write(b"+OK\r\n")
                    continue
                self.received.append(command)
                argument = command[3 + int(command[2])]
                self.held.append((writer, b"$%d\r\n%s\r\n" % (len(argument), argument)))
                if self.at_once:
                    self.answer()

    def answer(self) -> None:
        for writer, reply in self.held:
            if not writer.is_closing():
                writer.write(reply)
        self.held.clear()


@pytest.fixture
async def held_redis():
    fake = HeldRedis()
    server = await asyncio.start_server(fake.serve, "127.0.0.1", 0)
    pool = redis.asyncio.BlockingConnectionPool(
        host="127.0.0.1",
        port=server.sockets[0].getsockname()[1],
        connection_class=HiredisPackedConnection,
        socket_timeout=0.3,
        decode_responses=True,
        max_connections=2,
        timeout=1,
    )
    client = redis.asyncio.Redis.from_pool(pool)
    yield fake, client
    await client.aclose()
    server.close()


async def received(fake: HeldRedis, count: int) -> None:
    async with asyncio.timeout(5):
        while len(fake.received) < count:
            await asyncio.sleep(0.005)


async def test_a_batch_is_written_while_the_one_before_awaits_its_replies(held_redis):
    fake, client = held_redis
    first = [asyncio.ensure_future(run_script(client, "", "f" * 40, [], [a])) for a in "ab"]
    await received(fake, 2)  # the first batch is out, its replies held
    second = asyncio.ensure_future(run_script(client, "", "f" * 40, [], ["c"]))
    await received(fake, 3)  # the second went out too, on the same connection
    assert fake.connections == 1
    fake.answer()  # the three replies arrive together: each batch reads its own, in order
    assert await asyncio.wait_for(asyncio.gather(*first, second), 5) == ["a", "b", "c"]


async def test_a_call_lingering_while_a_batch_awaits_its_replies_leaves_after_its_linger(
    held_redis,
):
    fake, client = held_redis
    first = asyncio.ensure_future(run_script(client, "", "f" * 40, [], ["a"]))
    await received(fake, 1)  # out, its reply held
    lingering = asyncio.ensure_future(run_script(client, "", "f" * 40, [], ["b"], linger=0.02))
    await received(fake, 2)  # no call came to go with: it left by itself
    fake.answer()
    assert await asyncio.wait_for(asyncio.gather(first, lingering), 5) == ["a", "b"]


async def test_a_timed_out_batch_fails_those_written_after_it_and_the_next_reconnects(held_redis):
    fake, client = held_redis
    first = asyncio.ensure_future(run_script(client, "", "f" * 40, [], ["a"]))
    await received(fake, 1)
    second = asyncio.ensure_future(run_script(client, "", "f" * 40, [], ["b"]))
    await received(fake, 2)
    failed = await asyncio.gather(first, second, return_exceptions=True)
    assert isinstance(failed[0], redis.exceptions.TimeoutError)  # no reply within the timeout
    # Its replies could still come and be taken for the second's: the second fails as well.
    assert isinstance(failed[1], redis.exceptions.ConnectionError)
    fake.at_once = True
    fake.answer()  # late replies, to a connection that is closed: nobody reads them
    assert await run_script(client, "", "f" * 40, [], ["c"]) == "c"
    assert fake.connections == 2
    # The dropped connection went back to the pool: both of its two connections can be had.
    spare = await client.connection_pool.get_connection()
    await client.connection_pool.release(spare)


async def test_batches_on_a_real_redis_share_one_connection(settings, monkeypatch):
    use_redis(settings)
    client = redis_clients.get_redis()
    pool = client.connection_pool
    checkouts = []
    checkout = pool.get_connection

    async def counted(*args, **kwargs):
        checkouts.append(1)
        return await checkout(*args, **kwargs)

    monkeypatch.setattr(pool, "get_connection", counted)
    try:
        await client.script_load(DOUBLE)
        calls = []
        for turn in range(6):  # a batch of turn + 1 calls each turn, not waiting for replies
            calls += [
                asyncio.ensure_future(
                    run_script(client, DOUBLE, sha(DOUBLE), ["k"], [10 * turn + n])
                )
                for n in range(turn + 1)
            ]
            await asyncio.sleep(0)
        replies = await asyncio.gather(*calls)
        assert replies == [2 * (10 * turn + n) for turn in range(6) for n in range(turn + 1)]
        assert len(checkouts) == 2  # script_load's, then the scripts' own connection
    finally:
        await redis_clients.close_redis()
