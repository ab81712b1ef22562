"""Lua scripts run by EVALSHA, the scripts of concurrent callers sent together.

Admission runs one script when a request arrives and one when it settles. A process serving
many requests at once makes many such calls in the same turn of its event loop; each call of
its own costs a pooled connection, a write, a wake-up and a read, which redis-py does in Python
at about four times the CPU of one more command in a pipeline (bench/README.md). So the calls
made in one turn of the loop leave together, in one pipeline (not a transaction: each script is
atomic by itself), at the start of the next; a lone call goes as a plain EVALSHA.

A script Redis does not know yet (NoScriptError: a restarted or flushed Redis) is sent again with
EVAL, which caches it. An error of the whole round trip (Redis unreachable, a timeout) is every
caller's error, raised as it would be without batching.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio

Call = tuple[str, str, Sequence[Any], Sequence[Any], asyncio.Future]


class ScriptBatch:
    """The calls one client's callers made in the current turn of the loop."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self.client = client
        self.pending: list[Call] = []
        self.sending: set[asyncio.Task] = set()
        self.taker: asyncio.Task | None = None  # the task that will send what is pending

    def run(self, lua: str, sha: str, keys: Sequence[Any], args: Sequence[Any]) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        if self.taker is None or self.taker.done():  # done: cancelled before it took its batch
            # The turn's first call starts the task that sends the batch: its first step runs
            # after everything already queued in the loop, so every caller of this turn has
            # queued its call by then (one turn sooner than a callback that made the task).
            self.taker = task = loop.create_task(self._execute())
            self.sending.add(task)
            task.add_done_callback(self.sending.discard)
        future = loop.create_future()
        self.pending.append((lua, sha, keys, args, future))
        return future

    async def _execute(self) -> None:
        batch, self.pending, self.taker = self.pending, [], None
        try:
            replies = await self._replies(batch)
        except BaseException as exc:  # the round trip failed: every caller hears why
            for *_, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (lua, _, keys, args, future), reply in zip(batch, replies, strict=True):
            if isinstance(reply, redis.exceptions.NoScriptError):
                try:
                    reply = await self.client.eval(lua, len(keys), *keys, *args)
                except Exception as exc:
                    reply = exc
            if future.done():
                continue  # its caller was cancelled meanwhile
            if isinstance(reply, BaseException):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def _replies(self, batch: list[Call]) -> list[Any]:
        if len(batch) == 1:
            _, sha, keys, args, _ = batch[0]
            try:
                return [await self.client.evalsha(sha, len(keys), *keys, *args)]
            except redis.exceptions.ResponseError as exc:  # the script's own error, or NOSCRIPT
                return [exc]
        pipe = self.client.pipeline(transaction=False)
        for _, sha, keys, args, _ in batch:
            pipe.evalsha(sha, len(keys), *keys, *args)
        return await pipe.execute(raise_on_error=False)


_batches: weakref.WeakKeyDictionary[redis.asyncio.Redis, ScriptBatch] = weakref.WeakKeyDictionary()


async def run_script(
    client: redis.asyncio.Redis, lua: str, sha: str, keys: Sequence[Any], args: Sequence[Any]
) -> Any:
    """EVALSHA `sha` (the SHA-1 of `lua`) on `client`, in the turn's batch; its reply."""
    batch = _batches.get(client)
    if batch is None:
        batch = _batches[client] = ScriptBatch(client)
    return await batch.run(lua, sha, keys, args)
