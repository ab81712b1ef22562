"""What the database says an organisation (and one key) used this month.

Admission control starts a month's counters from this when they are not in Redis yet (a new
month, or a flushed Redis), so quotas survive a Redis restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from asgiref.sync import sync_to_async
from django.db.models import Count, Q, Sum

from analytics.models import UsageRecord


@dataclass(frozen=True)
class MonthUsage:
    requests: int
    tokens: int
    cost: Decimal
    key_cost: Decimal


def month_usage_sync(org_id: int, key_id: int | None, month_start: datetime) -> MonthUsage:
    rows = UsageRecord.objects.filter(organization_id=org_id, created_at__gte=month_start)
    # Requests that reached a provider or the cache count; refused and invalid ones do not.
    rows = rows.filter(Q(cache_hit=True) | ~Q(provider=""))
    totals = rows.aggregate(
        requests=Count("id"),
        input=Sum("input_tokens"),
        output=Sum("output_tokens"),
        cost=Sum("cost"),
        key_cost=Sum("cost", filter=Q(api_key_id=key_id)),
    )
    return MonthUsage(
        requests=totals["requests"] or 0,
        tokens=(totals["input"] or 0) + (totals["output"] or 0),
        cost=totals["cost"] or Decimal(0),
        key_cost=totals["key_cost"] or Decimal(0),
    )


async def month_usage(org_id: int, key_id: int | None, month_start: datetime) -> MonthUsage:
    return await sync_to_async(month_usage_sync, thread_sensitive=False)(
        org_id, key_id, month_start
    )
