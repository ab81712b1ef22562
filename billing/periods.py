"""The one definition of a billing period: the calendar month in UTC, for every plan.

Paid plans too: admission keeps its monthly meters per calendar month, plans promise their
allowance "a month", and the overage reported to Stripe's meter carries each hour's timestamp,
so Stripe bills it in whichever invoice period holds that hour. Usage within a period is
`analytics.rollups.usage_totals(org, start, end)`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone


def period_containing(moment: datetime) -> tuple[datetime, datetime]:
    """[first instant of the month, first instant of the next month), in UTC."""
    start = moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if start.month == 12:
        return start, start.replace(year=start.year + 1, month=1)
    return start, start.replace(month=start.month + 1)


def current_period(now: datetime | None = None) -> tuple[datetime, datetime]:
    return period_containing(now or timezone.now())
