"""The idle watch of a stream: only time spent waiting on the upstream counts, one wait that
lasts the idle time is ended, and a cancellation from elsewhere is never mistaken for it."""

from __future__ import annotations

import asyncio
import time

import pytest

from llm.retry_policy import IdleWatch

STALLED = "stalled"


async def watched(watch: IdleWatch, awaitable):
    """One wait on the upstream, as ChatStream waits: the watch's cancellation is a stall."""
    watch.waiting()
    try:
        return await awaitable
    except asyncio.CancelledError:
        if not watch.expired():
            raise
        return STALLED
    finally:
        watch.done_waiting()


async def test_a_wait_that_lasts_the_idle_time_is_ended():
    watch = IdleWatch(0.05)
    started = time.monotonic()
    assert await watched(watch, asyncio.sleep(30, "event")) == STALLED
    watch.close()
    assert time.monotonic() - started < 10


async def test_time_away_from_the_upstream_does_not_count():
    """A slow client (time between waits) never ends the stream: each wait is short, though
    together with the time between them they last several idle times."""
    watch = IdleWatch(0.1)
    results = []
    for _ in range(4):
        results.append(await watched(watch, asyncio.sleep(0.03, "event")))
        await asyncio.sleep(0.12)  # writing to a slow client
    watch.close()
    assert results == ["event"] * 4


async def test_waits_are_timed_each_from_their_own_start():
    """The watch's one timer is re-armed for the wait in progress when it fires early."""
    watch = IdleWatch(0.1)
    assert await watched(watch, asyncio.sleep(0.06, "first")) == "first"
    assert await watched(watch, asyncio.sleep(0.07, "second")) == "second"  # 0.13 s in all
    assert await watched(watch, asyncio.sleep(30, "third")) == STALLED
    watch.close()


async def test_a_cancellation_from_elsewhere_stays_a_cancellation():
    watch = IdleWatch(30)
    task = asyncio.create_task(watched(watch, asyncio.sleep(30)))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    watch.close()


async def test_a_cancellation_that_comes_with_the_watch_s_stays_a_cancellation():
    watch = IdleWatch(0.05)

    async def cancelled_too():
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            asyncio.current_task().cancel()  # the client hung up in the same moment
            raise

    with pytest.raises(asyncio.CancelledError):
        await asyncio.create_task(watched(watch, cancelled_too()))
    watch.close()


async def test_without_an_idle_time_no_wait_is_ended_and_no_timer_is_armed():
    watch = IdleWatch(None)
    assert await watched(watch, asyncio.sleep(0.05, "event")) == "event"
    assert watch._timer is None


async def test_a_closed_watch_cancels_nothing():
    watch = IdleWatch(0.05)
    assert await watched(watch, asyncio.sleep(0, "event")) == "event"
    watch.close()
    watch._since = 0.0  # even if it were left mid-wait, no timer is left to fire
    assert await asyncio.sleep(0.1, "quiet") == "quiet"
