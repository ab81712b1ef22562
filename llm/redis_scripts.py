"""Lua scripts run by EVALSHA, the scripts of concurrent callers sent together.

Admission runs one script when a request arrives and one when it settles. A process serving
many requests at once makes many such calls in the same turn of its event loop; each call of
its own costs a pooled connection, a write, a wake-up and a read, which redis-py does in Python
at about four times the CPU of one more command in a pipeline (bench/README.md). So the calls
made in one turn of the loop leave together, in one pipeline (not a transaction: each script is
atomic by itself), at the start of the next; a lone call goes as a plain EVALSHA.

On a Redis server the batches go over a pooled connection the batcher keeps (a `Lane`), without
a checkout from the pool and the library's pipeline object per batch (about half of the
client's CPU per script, bench/README.md). A batch is written as soon as it is made, while
earlier ones may still await their replies; Redis answers in order, and one reader hands each
batch its own.

A caller that need not hear back at once (settlement: its client has its answer already) may
let its call linger: it then leaves with the next call that does not, or after `linger` seconds
if none comes. At one request at a time, a request's settlement and the next one's admission
then share one round trip instead of making one each.

A script Redis does not know yet (NoScriptError: a restarted or flushed Redis) is sent again with
EVAL, which caches it. An error of the whole round trip (Redis unreachable, a timeout) is every
caller's error, raised as it would be without batching.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import redis
import redis.asyncio

from llm.redis_clients import HiredisPackedConnection

# What a script's effect needs if its caller is cancelled before the reply: the script still
# runs (it may already be on its way), and this gets its reply, to undo what nobody will see.
Orphaned = Callable[[Any], None]
Call = tuple[str, str, Sequence[Any], Sequence[Any], asyncio.Future, Orphaned | None]


class ScriptBatch:
    """The calls one client's callers made in the current turn of the loop."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self.client = client
        self.pending: list[Call] = []
        self.sending: set[asyncio.Task] = set()
        self.taker: asyncio.Task | None = None  # the task that will send what is pending
        self.timer: asyncio.TimerHandle | None = None  # sends lingering calls if none came
        self.lane: Lane | None = None
        self.opening = asyncio.Lock()  # one lane is opened at a time
        pool = client.connection_pool
        # A lane keeps one of the pool's connections: only where others remain for the rest.
        self.lanes = issubclass(getattr(pool, "connection_class", object), HiredisPackedConnection)
        self.lanes = self.lanes and getattr(pool, "max_connections", 0) > 1

    def run(
        self,
        lua: str,
        sha: str,
        keys: Sequence[Any],
        args: Sequence[Any],
        orphaned: Orphaned | None = None,
        linger: float = 0.0,
    ) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.pending.append((lua, sha, keys, args, future, orphaned))
        if not linger:
            self._take(loop)
        elif self.timer is None and not self._taking():
            self.timer = loop.call_later(linger, self._take, loop)
        return future

    def _taking(self) -> bool:
        # done: cancelled before it took its batch
        return self.taker is not None and not self.taker.done()

    def _take(self, loop: asyncio.AbstractEventLoop) -> None:
        """Have what is pending sent: lingering calls go with it, so their timer is done."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if not self._taking():
            # The turn's first call starts the task that sends the batch: its first step runs
            # after everything already queued in the loop, so every caller of this turn has
            # queued its call by then (one turn sooner than a callback that made the task).
            self.taker = task = loop.create_task(self._execute())
            self.sending.add(task)
            task.add_done_callback(self.sending.discard)

    async def _execute(self) -> None:
        batch, self.pending, self.taker = self.pending, [], None
        try:
            replies = await self._replies(batch)
        except BaseException as exc:  # the round trip failed: every caller hears why
            for *_, future, _ in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (lua, _, keys, args, future, orphaned), reply in zip(batch, replies, strict=True):
            if isinstance(reply, redis.exceptions.NoScriptError):
                try:
                    reply = await self.client.eval(lua, len(keys), *keys, *args)
                except Exception as exc:
                    reply = exc
            if future.done():  # its caller was cancelled meanwhile
                if orphaned is not None and not isinstance(reply, BaseException):
                    orphaned(reply)
                continue
            if isinstance(reply, BaseException):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def _replies(self, batch: list[Call]) -> list[Any]:
        if self.lanes:
            lane = await self._lane()
            calls = [("EVALSHA", sha, len(keys), *keys, *args) for _, sha, keys, args, *_ in batch]
            return await lane.exchange(calls)
        if len(batch) == 1:
            _, sha, keys, args, *_ = batch[0]
            try:
                return [await self.client.evalsha(sha, len(keys), *keys, *args)]
            except redis.exceptions.ResponseError as exc:  # the script's own error, or NOSCRIPT
                return [exc]
        pipe = self.client.pipeline(transaction=False)
        for _, sha, keys, args, *_ in batch:
            pipe.evalsha(sha, len(keys), *keys, *args)
        return await pipe.execute(raise_on_error=False)

    async def _lane(self) -> Lane:
        lane = self.lane
        if lane is None or not lane.usable():
            async with self.opening:
                lane = self.lane
                if lane is None or not lane.usable():
                    if lane is not None:
                        await lane.retire()
                    pool = self.client.connection_pool
                    lane = self.lane = Lane(pool, await pool.get_connection())
        return lane


class Lane:
    """A pooled connection held by one ScriptBatch, on which batches are written back to back.

    One reader task reads the replies, in the order the batches were written, while any are
    awaited: the replies of every batch that arrived in one read are handed out in one step.
    If reading fails (an error, a timeout) the replies still on the way could be taken for later
    batches', so the lane is retired: its connection is closed, every batch still waiting
    fails, and the connection goes back to the pool once none is left and its reader is done."""

    def __init__(self, pool: redis.asyncio.ConnectionPool, connection: HiredisPackedConnection):
        self.pool, self.connection = pool, connection
        self.waiting: deque[tuple[int, asyncio.Future]] = deque()  # (replies, their future)
        self.reader: asyncio.Task | None = None
        self.retired = self.given_back = False

    def usable(self) -> bool:
        return not self.retired and self.connection.is_connected

    async def retire(self) -> None:
        self.retired = True
        # Given back only once nothing reads from it: the pool may open it again for others.
        if not self.waiting and self.reader is None and not self.given_back:
            self.given_back = True
            await self.pool.release(self.connection)

    async def exchange(self, commands: list[tuple]) -> list[Any]:
        """Each command's reply, or its error (a ResponseError instance), in order."""
        if self.retired:
            raise redis.exceptions.ConnectionError("Redis connection lost")
        connection, loop = self.connection, asyncio.get_running_loop()
        replies = loop.create_future()
        # Queued and written in one step of the loop (the connection writes before it first
        # waits, and waits only for a full buffer, under the socket timeout), so the queue's
        # order is the order of the replies.
        self.waiting.append((len(commands), replies))
        try:
            await connection.send_packed_command(
                [part for command in commands for part in connection.pack_command(*command)],
                check_health=False,
            )
        except BaseException as exc:
            await self._fail(exc)
            if replies.done() and not replies.cancelled():
                replies.exception()  # this caller hears `exc` itself
            raise
        if self.reader is None:
            self.reader = loop.create_task(self._read())
        return await replies

    async def _read(self) -> None:
        connection = self.connection
        try:
            while self.waiting:
                count, future = self.waiting[0]
                replies: list[Any] = []
                # One deadline (the socket timeout) for a batch's replies, not a timer per reply.
                try:
                    async with asyncio.timeout(connection.socket_timeout):
                        for _ in range(count):
                            try:
                                replies.append(await connection.read_response(timeout=math.inf))
                            except redis.exceptions.ResponseError as exc:
                                replies.append(exc)
                except TimeoutError:  # the read was cancelled, and its connection closed
                    raise redis.exceptions.TimeoutError("Timeout reading from Redis") from None
                self.waiting.popleft()
                if not future.done():  # not given up by a cancelled sender
                    future.set_result(replies)
        except BaseException as exc:
            await self._fail(exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            self.reader = None
            if self.retired:
                await self.retire()

    async def _fail(self, exc: BaseException) -> None:
        self.retired = True
        waiting, self.waiting = list(self.waiting), deque()
        for position, (_, future) in enumerate(waiting):
            if not future.done():
                lost = redis.exceptions.ConnectionError("Redis connection lost before the reply")
                future.set_exception(exc if position == 0 and isinstance(exc, Exception) else lost)
        await self.connection.disconnect(nowait=True)
        await self.retire()


_batches: weakref.WeakKeyDictionary[redis.asyncio.Redis, ScriptBatch] = weakref.WeakKeyDictionary()


async def run_script(
    client: redis.asyncio.Redis,
    lua: str,
    sha: str,
    keys: Sequence[Any],
    args: Sequence[Any],
    orphaned: Orphaned | None = None,
    linger: float = 0.0,
) -> Any:
    """EVALSHA `sha` (the SHA-1 of `lua`) on `client`, in the turn's batch; its reply. If the
    caller is cancelled before the reply, `orphaned` gets it (see Orphaned). With `linger`
    (seconds), the call may wait that long for another to leave with."""
    batch = _batches.get(client)
    if batch is None:
        batch = _batches[client] = ScriptBatch(client)
    reply = batch.run(lua, sha, keys, args, orphaned, linger)
    try:
        return await reply
    except asyncio.CancelledError:
        # Cancelled as its reply came in (the reply was set, the caller not resumed yet): it never
        # sees the reply. (Cancelled before, the reply goes to `orphaned` when it comes.)
        answered = reply.done() and not reply.cancelled() and reply.exception() is None
        if orphaned is not None and answered:
            orphaned(reply.result())
        raise
