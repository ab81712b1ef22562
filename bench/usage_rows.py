"""The gateway's usage ledger seen from outside: rows in PostgreSQL and entries still queued.

Every admitted request must end in exactly one usage row. The driver counts the rows before and
after each gateway run, once the queue is drained (Celery beat flushes the Redis stream every few
seconds), and sets the count against the requests wrk sent.

Runs in the gateway's interpreter (BENCH_PYTHON), which has psycopg and redis.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

QUEUE_KEY = "gw:usage:stream"  # analytics.recording.STREAM_KEY
HELD_PATTERN = "gw:inflight:*"  # billing.inflight.held_key: each process's held rows
# Drained: the queue is empty and the count has not moved for QUIET_SECONDS, longer than a beat
# interval (which also covers a process that queues its rows a little after the run: with 2 s,
# a loaded stream run once had rows reach the table after it was counted). Entries still queued
# always mean waiting: on a loaded machine a beat flush may come much later than its 5 s
# interval. When the queue cannot be read, a count unchanged for STABLE_SECONDS is final.
STABLE_SECONDS = 6.0
QUIET_SECONDS = 6.0


@dataclass
class Count:
    rows: int
    cut: int  # rows of requests whose client went away (wrk stops with requests in flight)
    dead_letters: int
    queued: int | None  # entries left in the Redis stream, None if it cannot be read
    held: int | None  # usage rows held beside reservations (requests in flight), None: unread


class UsageLedger:
    """One connection to each store; its PostgreSQL backend is left out of the DB CPU column."""

    def __init__(self, database_url: str, redis_url: str) -> None:
        import psycopg
        import redis

        self.db = psycopg.connect(database_url, autocommit=True)
        self.redis = redis.Redis.from_url(redis_url)
        self.backend_pid = self.db.execute("SELECT pg_backend_pid()").fetchone()[0]

    def count(self) -> Count:
        rows, cut = self.db.execute(
            "SELECT count(*), count(*) FILTER (WHERE client_disconnected)"
            " FROM analytics_usagerecord"
        ).fetchone()
        dead = self.db.execute("SELECT count(*) FROM analytics_deadletterusage").fetchone()[0]
        try:
            queued = int(self.redis.xlen(QUEUE_KEY))
        except Exception:  # noqa: BLE001 - a missing or renamed queue only weakens the wait
            queued = None
        try:
            held = sum(int(self.redis.hlen(key)) for key in self.redis.scan_iter(HELD_PATTERN))
        except Exception:  # noqa: BLE001 - unread: the check is skipped, not failed
            held = None
        return Count(rows, cut, dead, queued, held)

    def settle(self, on_poll, timeout: float = 180.0) -> tuple[Count, bool]:
        """Wait until the queue is empty and the row count holds still; return (count, drained).

        on_poll runs at every poll (the driver keeps sampling CPU: the flush is the gateway's
        work too)."""
        deadline = time.monotonic() + timeout
        last = self.count()
        stable_since = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.5)
            on_poll()
            now = self.count()
            if (now.rows, now.dead_letters) != (last.rows, last.dead_letters):
                stable_since = time.monotonic()
            else:
                quiet = time.monotonic() - stable_since
                if now.queued == 0 and quiet >= QUIET_SECONDS:
                    return now, True
                if now.queued is None and quiet >= STABLE_SECONDS:
                    return now, True
            last = now
        return last, False

    def close(self) -> None:
        self.db.close()
        self.redis.close()
