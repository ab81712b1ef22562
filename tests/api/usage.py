"""Usage records are settled alongside the response; tests wait for them to land."""

from __future__ import annotations

import time

from analytics.models import UsageRecord
from analytics.recording import flush_pending_usage


def wait_for_usage(count: int, timeout: float = 5.0) -> list[UsageRecord]:
    """The usage records, oldest first, once at least `count` have been written."""
    deadline = time.monotonic() + timeout
    while True:
        flush_pending_usage()
        rows = list(UsageRecord.objects.order_by("created_at", "id"))
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.02)
