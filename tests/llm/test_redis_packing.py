"""The Redis connection packs commands with hiredis exactly as redis-py's own packer does."""

from __future__ import annotations

import pytest
from redis.connection import PythonRespSerializer
from redis.exceptions import DataError

from llm.redis_clients import HiredisPackedConnection
from tests.stores import use_redis

COMMANDS = [
    ("EVALSHA", "ab" * 20, 2, "gw:{o:1}:m", "gw:{o:1}:res", "", 900.0, -1, 12345678901, "é"),
    ("SCRIPT LOAD", "return 1"),  # a command name of two words
    (b"CLIENT SETNAME", b"gw"),
    ("SET", b"k", bytearray(b"v"), "PX", 1500),
    ("HSET", "k", memoryview(b"field"), 0.25),
]


def python_packed(args: tuple) -> bytes:
    serializer = PythonRespSerializer(buffer_cutoff=6000, encode=lambda v: _encode(v))
    return b"".join(serializer.pack(*args))


def _encode(value) -> bytes:
    if isinstance(value, (bytes, memoryview, bytearray)):
        return bytes(value)
    if isinstance(value, float):
        return repr(value).encode()
    return str(value).encode()


@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: str(args[0]))
def test_a_command_is_packed_as_the_library_packs_it(args):
    packed = HiredisPackedConnection.pack_command(
        HiredisPackedConnection.__new__(HiredisPackedConnection), *args
    )
    assert b"".join(packed) == python_packed(args)


def test_an_argument_redis_cannot_take_is_refused_as_the_library_refuses_it():
    connection = HiredisPackedConnection.__new__(HiredisPackedConnection)
    with pytest.raises(DataError):
        connection.pack_command("SET", "k", None)


async def test_a_two_word_command_reaches_redis_as_two_words(settings):
    use_redis(settings)
    from llm import redis_clients

    client = redis_clients.get_redis()
    try:
        sha = await client.script_load("return ARGV[1]")
        assert await client.evalsha(sha, 0, "é") == "é"
    finally:
        await redis_clients.close_redis()
