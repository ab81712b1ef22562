"""Fill an organisation with synthetic usage records (for the dashboard bench and demos), then
roll them up like the Celery beat task would."""

from __future__ import annotations

import random
import time
from datetime import timedelta
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils import timezone

from analytics.models import UsageRecord
from analytics.rollups import floor_hour, get_fill_end, roll_up_usage, roll_up_window
from organizations.models import ApiKey, Organization

# (requested model, provider, upstream model, input $/Mtok, output $/Mtok)
MODELS = [
    ("gpt-4o-mini", "openai", "gpt-4o-mini-2024-07-18", "0.15", "0.60"),
    ("claude-3-5-haiku", "anthropic", "claude-3-5-haiku-20241022", "0.80", "4.00"),
    ("llama-3.1-8b", "groq", "llama-3.1-8b-instant", "0.05", "0.08"),
    ("gemini-1.5-flash", "gemini", "gemini-1.5-flash", "0.075", "0.30"),
    ("fast", "groq", "llama-3.1-8b-instant", "0.05", "0.08"),
]
ERRORS = [(429, "rate_limit_exceeded"), (502, "upstream_error"), (400, "invalid_request")]
MILLION = Decimal(1_000_000)


class Command(BaseCommand):
    help = "Bulk-create synthetic usage records for an organisation and roll them up."

    def add_arguments(self, parser) -> None:
        parser.add_argument("org_slug")
        parser.add_argument("--records", type=int, default=100_000)
        parser.add_argument("--days", type=int, default=30)
        parser.add_argument("--batch", type=int, default=5_000)
        parser.add_argument("--seed", type=int, default=1)

    def handle(self, org_slug, records, days, batch, seed, **options) -> None:
        org = Organization.objects.filter(slug=org_slug).first()
        if org is None:
            raise CommandError(f"No organization with slug {org_slug!r}.")
        keys = list(ApiKey.objects.for_org(org).values_list("pk", flat=True)) or [None]
        rng = random.Random(seed)  # noqa: S311 (synthetic data, not secrets)
        now = timezone.now()
        span = days * 86400
        prefix = f"seed-{org.pk}-{int(now.timestamp())}"
        started = time.monotonic()
        for first in range(0, records, batch):
            rows = [
                _record(org, rng, keys, now - timedelta(seconds=rng.random() * span), prefix, n)
                for n in range(first, min(first + batch, records))
            ]
            UsageRecord.objects.bulk_create(rows, batch_size=batch)
        seeded = time.monotonic()
        if connection.vendor == "postgresql":  # fresh statistics, as autovacuum would make
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {UsageRecord._meta.db_table}")
        _roll_up(now - timedelta(seconds=span), now, days)
        self.stdout.write(
            f"{records} records in {seeded - started:.1f} s; "
            f"rolled up in {time.monotonic() - seeded:.1f} s."
        )


def _roll_up(start, now, days: int) -> None:
    """Hours already behind the roll-up mark are rebuilt; the mark then moves up to now."""
    fill_end = get_fill_end()
    if fill_end is not None and fill_end > start:
        roll_up_window(floor_hour(start), fill_end)
    roll_up_usage(now, max_hours=24 * (days + 2))


def _record(org, rng, keys, at, prefix: str, n: int) -> UsageRecord:
    model, provider, upstream, input_price, output_price = rng.choice(MODELS)
    status, error_class = 200, ""
    if rng.random() < 0.04:
        status, error_class = rng.choice(ERRORS)
    served = status == 200
    input_tokens = rng.randint(20, 2_000) if served else 0
    output_tokens = rng.randint(5, 800) if served else 0
    cost = (input_tokens * Decimal(input_price) + output_tokens * Decimal(output_price)) / MILLION
    latency = int(rng.lognormvariate(6.2, 0.6))
    return UsageRecord(
        organization=org,
        api_key_id=rng.choice(keys),
        request_id=f"{prefix}-{n}",
        created_at=at,
        endpoint="chat.completions",
        requested_model=model,
        provider=provider if status != 429 else "",
        upstream_model=upstream if status != 429 else "",
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost=cost.quantize(Decimal("0.00000001")),
        latency_ms=latency,
        upstream_ms=max(latency - 5, 0),
        status=status,
        error_class=error_class,
        attempts=1 if status != 429 else 0,
        cache_hit=served and rng.random() < 0.1,
    )
