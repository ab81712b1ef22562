"""Moments for tests, always relative to the real clock: a test frozen at a fixed date breaks the
day the calendar passes it. Pick "day 16 of next month", not "2026-03-16"."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta


def start_of_next_minute() -> datetime:
    now = datetime.now(UTC)
    return now.replace(second=0, microsecond=0) + timedelta(minutes=1)


def month_start(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month_start(moment: datetime) -> datetime:
    start = month_start(moment)
    return (start + timedelta(days=32)).replace(day=1)


def next_month(day: int, hour: int = 0, minute: int = 0) -> datetime:
    """Day `day` of next month (UTC) at hour:minute."""
    return next_month_start(datetime.now(UTC)).replace(day=day, hour=hour, minute=minute)


def days_in_month(moment: datetime) -> int:
    return calendar.monthrange(moment.year, moment.month)[1]
