"""The Redis connection packs commands with hiredis exactly as redis-py's own packer does."""

from __future__ import annotations

import pytest
from redis.connection import Encoder, PythonRespSerializer
from redis.exceptions import DataError

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
