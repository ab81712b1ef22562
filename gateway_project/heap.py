"""The garbage collector of a serving process.

CPython's defaults (a young collection every 700 net allocations of container objects) suit a
script, not a server holding dozens of requests at once: the objects of the requests in flight
are alive whenever the collector runs, so they are promoted, die old, and are found only by full
collections, each of which walks every object the process ever imported (Django, the catalogue:
about 170,000). Under load a worker spent about 0.2 ms a request in collections, most of it in
full collections of about 140 ms each, roughly once a second, that every request in flight waited
out (bench/README.md, "Garbage collection").

So from the lifespan's start-up to its shutdown the process freezes what start-up made (never
walked again) and collects the young generation every 10,000 net allocations, more than its
requests in flight hold: cycles are still collected, just rarely. Shutdown undoes both.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000

_saved: tuple[int, ...] | None = None


def tune_for_serving() -> None:
    global _saved
    if _saved is None:
        _saved = gc.get_threshold()
    gc.collect()  # start-up's own garbage is freed, not frozen
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *_saved[1:])


def restore_defaults() -> None:
    global _saved
    if _saved is None:
        return
    gc.unfreeze()
    gc.set_threshold(*_saved)
    _saved = None
