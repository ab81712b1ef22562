"""The Redis connection packs commands with hiredis exactly as redis-py's own packer does."""

from __future__ import annotations

import asyncio

import pytest
from redis.connection import Encoder, PythonRespSerializer
from redis.exceptions import DataError
from redis.exceptions import TimeoutError as RedisTimeoutError

from llm import redis_clients
from llm.redis_clients import HiredisPackedConnection
from tests.stores import use_redis

COMMANDS = [
    ("EVALSHA", "ab" * 20, 2, "gw:{o:1}:m", "gw:{o:1}:res", "", 900.0, -1, 12345678901, "é"),
    ("SCRIPT LOAD", "return 1"),  # a command name of two words
    (b"CLIENT SETNAME", b"gw"),
    ("SET", b"k", bytearray(b"v"), "PX", 1500),
    ("HSET", "k", memoryview(b"field"), 0.25),
]
# redis-py's pure-Python packing, with the encoder its connections use.
LIBRARY = PythonRespSerializer(6000, Encoder("utf-8", "strict", False).encode)
CONNECTION = HiredisPackedConnection.__new__(HiredisPackedConnection)  # packing needs no socket


@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: str(args[0]))
def test_a_command_is_packed_as_the_library_packs_it(args):
    expected = b"".join(bytes(part) for part in LIBRARY.pack(*args))
    assert b"".join(CONNECTION.pack_command(*args)) == expected


def test_an_argument_redis_cannot_take_is_refused_as_the_library_refuses_it():
    with pytest.raises(DataError):
        CONNECTION.pack_command("SET", "k", None)


async def test_a_two_word_command_reaches_redis_as_two_words(settings):
    use_redis(settings)
    client = redis_clients.get_redis()
    try:
        sha = await client.script_load("return ARGV[1]")  # SCRIPT LOAD
        assert await client.evalsha(sha, 0, "é") == "é"
    finally:
        await redis_clients.close_redis()


async def test_a_command_the_socket_takes_is_sent_without_the_librarys_timed_write(
    settings, monkeypatch
):
    use_redis(settings)
    timed = []
    library_write = HiredisPackedConnection._send_packed_command

    async def counted(self, command):  # the write redis-py runs under wait_for
        timed.append(command)
        await library_write(self, command)

    monkeypatch.setattr(HiredisPackedConnection, "_send_packed_command", counted)
    client = redis_clients.get_redis()
    try:
        await client.ping()  # connected: later commands take the direct write
        timed.clear()
        await client.set("gw-test:direct-write", "é")
        assert await client.get("gw-test:direct-write") == "é"
        async with client.pipeline(transaction=False) as pipe:
            pipe.incr("gw-test:direct-write-n").incr("gw-test:direct-write-n")
            assert await pipe.execute() == [1, 2]
        assert timed == []
    finally:
        await client.delete("gw-test:direct-write", "gw-test:direct-write-n")
        await redis_clients.close_redis()


async def test_a_write_redis_does_not_read_times_out_and_drops_the_connection():
    """A peer that stops reading: the socket's buffer fills, the rest waits under the timeout."""
    accepted: list[asyncio.StreamWriter] = []

    async def never_read(reader, writer):
        accepted.append(writer)

    server = await asyncio.start_server(never_read, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    connection = HiredisPackedConnection(host="127.0.0.1", port=port, socket_timeout=0.3)
    connection._reader, connection._writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        with pytest.raises(RedisTimeoutError, match="Timeout writing to socket"):
            await connection.send_packed_command(
                connection.pack_command("SET", "k", b"x" * (64 << 20))
            )
        assert not connection.is_connected
    finally:
        await connection.disconnect()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
