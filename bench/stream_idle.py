"""CPU of a stream's idle timeout: asyncio.timeout around every wait against one IdleWatch.

Reads a 13-event stream (the bench upstream's length) from an async generator, on uvloop, three
ways: with no timeout, with `asyncio.timeout` entered and left around every wait (what
ChatStream did), and with one `llm.retry_policy.IdleWatch` for the whole stream (what it does).
Prints the CPU microseconds per stream of each, the median of --rounds rounds, the ways taking
turns round by round so a busy machine skews them alike.

    .venv/bin/python bench/stream_idle.py
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llm.retry_policy import IdleWatch  # noqa: E402  (the repository is on the path: a script)

EVENTS = 13
IDLE_SECONDS = 300  # never reached: what is measured is the arming, not the firing


async def upstream():
    for event in range(EVENTS):
        await asyncio.sleep(0)  # each event is a wait, as a read from the network is
        yield event


async def bare() -> None:
    events = upstream()
    while await anext(events, None) is not None:
        pass


async def timeout_per_event() -> None:
    events = upstream()
    while True:
        async with asyncio.timeout(IDLE_SECONDS):
            event = await anext(events, None)
        if event is None:
            return


async def one_watch() -> None:
    events, watch = upstream(), IdleWatch(IDLE_SECONDS)
    try:
        while True:
            watch.waiting()
            try:
                event = await anext(events, None)
            except asyncio.CancelledError:
                if not watch.expired():
                    raise
                return
            watch.done_waiting()
            if event is None:
                return
    finally:
        watch.close()


async def measure(rounds: int, streams: int) -> None:
    ways = (bare, timeout_per_event, one_watch)
    samples: dict[str, list[float]] = {way.__name__: [] for way in ways}
    for turn in range(rounds):
        for way in ways if turn % 2 == 0 else ways[::-1]:
            began = time.process_time()
            for _ in range(streams):
                await way()
            samples[way.__name__].append((time.process_time() - began) / streams * 1e6)
    for name, cpu in samples.items():
        print(f"{name:18} {statistics.median(cpu):6.1f} µs CPU per stream of {EVENTS} events")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--streams", type=int, default=10000, help="streams per way and round")
    args = parser.parse_args()
    uvloop.run(measure(args.rounds, args.streams))


if __name__ == "__main__":
    main()
