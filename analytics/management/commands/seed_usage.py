"""Fill an organisation with synthetic usage records (for the dashboard bench and demos), then
roll them up like the Celery beat task would.

    manage.py seed_usage <org> --records 100000            # one organisation, bulk inserts
    manage.py seed_usage [<org>] --rows 10000000 --orgs 1000   # PostgreSQL: generate_series

With `--rows` the records are made by the database itself (INSERT ... SELECT over
generate_series, a million rows a statement) across `--orgs` organisations ("seed-org-<n>", made
if missing, two API keys each); the named organisation, if any, is one of them and gets
`--hot-share` of the rows (its own keys), the others share the rest evenly, each using two of the
models. The load is one transaction with the usage table's secondary indexes and foreign keys off
(`analytics.bulk_load`): the table is locked until they are rebuilt.
"""

from __future__ import annotations

import random
import secrets
import time
from datetime import timedelta
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from analytics.bulk_load import indexes_off
from analytics.models import UsageRecord
from analytics.rollups import floor_hour, get_fill_end, roll_up_usage, roll_up_window
from analytics.usage_bounds import usage_fields
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
        parser.add_argument("org_slug", nargs="?")
        parser.add_argument("--records", type=int, default=100_000)
        parser.add_argument("--rows", type=int, help="PostgreSQL: rows made in the database")
        parser.add_argument("--orgs", type=int, default=1, help="with --rows")
        parser.add_argument("--hot-share", type=float, default=0.1, help="with --rows and <org>")
        parser.add_argument("--no-rollup", action="store_true")
        parser.add_argument("--days", type=int, default=30)
        parser.add_argument("--batch", type=int, default=5_000)
        parser.add_argument("--seed", type=int, default=1)

    def handle(self, org_slug, records, days, batch, seed, **options) -> None:
        org = Organization.objects.filter(slug=org_slug).first() if org_slug else None
        if org_slug and org is None:
            raise CommandError(f"No organization with slug {org_slug!r}.")
        if options["rows"]:
            if connection.vendor != "postgresql":
                raise CommandError("--rows needs PostgreSQL; use --records.")
            self._seed_in_database(org, options["rows"], options["orgs"], days, options)
            return
        if org is None:
            raise CommandError("Name the organisation to seed.")
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
        if not options["no_rollup"]:
            _roll_up(now - timedelta(seconds=span), now, days)
        self.stdout.write(
            f"{records} records in {seeded - started:.1f} s; "
            f"rolled up in {time.monotonic() - seeded:.1f} s."
        )

    def _seed_in_database(self, hot_org, rows: int, orgs: int, days: int, options) -> None:
        now = timezone.now()
        span = days * 86400
        tenants = _seed_orgs(orgs - (1 if hot_org else 0))
        if hot_org is not None:
            tenants.insert(0, hot_org)
        keys = _seed_keys(tenants)
        hot_share = 0.0
        if hot_org is not None:
            hot_share = options["hot_share"] if len(tenants) > 1 else 1.0
        prefix = f"seed-{int(now.timestamp())}"
        started = time.monotonic()
        # One transaction: the secondary indexes and foreign keys are rebuilt once at the end
        # (the table is locked meanwhile), and a failed seed leaves the table as it was.
        with transaction.atomic(), indexes_off(UsageRecord._meta.db_table):
            for first in range(1, rows + 1, SQL_CHUNK):
                last = min(first + SQL_CHUNK - 1, rows)
                with connection.cursor() as cursor:
                    cursor.execute(
                        *_generate_sql(
                            tenants, keys, hot_share, (first, last, rows), now, span, prefix
                        )
                    )
                self.stdout.write(f"{last:,} rows ({time.monotonic() - started:.0f} s)")
            loaded = time.monotonic()
        self.stdout.write(f"indexes and foreign keys rebuilt in {time.monotonic() - loaded:.0f} s")
        seeded = time.monotonic()
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {UsageRecord._meta.db_table}")
        if not options["no_rollup"]:
            _roll_up(now - timedelta(seconds=span), now, days)
        self.stdout.write(
            f"{rows} records across {len(tenants)} organisations in {seeded - started:.1f} s; "
            f"rolled up in {time.monotonic() - seeded:.1f} s."
        )


SQL_CHUNK = 1_000_000


def _seed_orgs(count: int) -> list[Organization]:
    slugs = [f"seed-org-{n}" for n in range(count)]
    Organization.objects.bulk_create(
        [Organization(name=f"Seed org {n}", slug=slug) for n, slug in enumerate(slugs)],
        ignore_conflicts=True,
    )
    by_slug = Organization.objects.filter(slug__in=slugs).in_bulk(field_name="slug")
    return [by_slug[slug] for slug in slugs]


def _seed_keys(tenants: list[Organization]) -> list[int]:
    """Two key ids per organisation, in the organisation's order: its own keys, or two made."""
    have: dict[int, list[int]] = {}
    for org_id, key_id in (
        ApiKey.objects.filter(organization__in=tenants)
        .order_by("pk")
        .values_list("organization_id", "pk")
    ):
        have.setdefault(org_id, []).append(key_id)
    missing = [
        ApiKey(organization=org, name=f"seed {n}", public_id=secrets.token_hex(8), secret_hash="")
        for org in tenants
        if org.pk not in have
        for n in range(2)
    ]
    for key in ApiKey.objects.bulk_create(missing):
        have.setdefault(key.organization_id, []).append(key.pk)
    return [have[org.pk][n % len(have[org.pk])] for org in tenants for n in range(2)]


def _generate_sql(tenants, keys, hot_share, series, now, span, prefix):
    """One INSERT ... SELECT over generate_series(first, last): the same shapes as `_record`.

    Row g belongs to the first (hot) organisation with probability hot_share, else to one of the
    others in turn; every random draw is made once per row in the inner query (OFFSET 0 keeps it
    there). Rows come in time order, the way a live ledger grows.
    """
    first, last, rows = series
    hot_rows = hot_share > 0
    fields = usage_fields()
    others = len(tenants) - (1 if hot_rows else 0)
    org_index = "0"
    if others:
        org_index = f"{1 if hot_rows else 0} + mod(g, {others})"
        if hot_rows:
            org_index = f"CASE WHEN r_org < %(hot_share)s THEN 0 ELSE {org_index} END"
    # The hot organisation uses every model; the others two each (by their position).
    every_model = f"floor(r_model * {len(MODELS)})::int"
    two_models = f"mod(oi + floor(r_model * 2)::int, {len(MODELS)})"
    model_index = (
        f"CASE WHEN oi = 0 THEN {every_model} ELSE {two_models} END" if hot_rows else two_models
    )
    served = "r_error >= 0.04"
    routed = f"{served} OR r_which <> 0"  # a 429 never reached a provider
    computed = {
        "organization_id": "(%(orgs)s::bigint[])[oi + 1]",
        "api_key_id": "(%(keys)s::bigint[])[oi * 2 + 1 + floor(r_key * 2)::int]",
        "request_id": "%(prefix)s || '-' || lpad(g::text, 10, '0')",
        # In the order of g: the indexes on time and id grow at their ends, as in production.
        "created_at": (
            "%(now)s::timestamptz - make_interval(secs => (1 - (g - r_time) / %(rows)s) * %(span)s)"
        ),
        "endpoint": "'chat.completions'",
        "requested_model": "(%(models)s::text[])[mi + 1]",
        "provider": f"CASE WHEN {routed} THEN (%(providers)s::text[])[mi + 1] ELSE '' END",
        "upstream_model": f"CASE WHEN {routed} THEN (%(upstreams)s::text[])[mi + 1] ELSE '' END",
        "input_tokens": f"CASE WHEN {served} THEN 20 + floor(r_in * 1981)::int ELSE 0 END",
        "output_tokens": f"CASE WHEN {served} THEN 5 + floor(r_out * 796)::int ELSE 0 END",
        "cost": (
            f"CASE WHEN {served} THEN round(("
            "(20 + floor(r_in * 1981))::numeric * (%(in_prices)s::numeric[])[mi + 1]"
            " + (5 + floor(r_out * 796))::numeric * (%(out_prices)s::numeric[])[mi + 1])"
            " / 1000000, 8)"
            " ELSE 0 END"
        ),
        "latency_ms": "latency",
        "upstream_ms": "greatest(latency - 5, 0)",
        "status": f"CASE WHEN {served} THEN 200 ELSE (%(statuses)s::int[])[r_which + 1] END",
        "error_class": f"CASE WHEN {served} THEN '' ELSE (%(classes)s::text[])[r_which + 1] END",
        "attempts": f"CASE WHEN {routed} THEN 1 ELSE 0 END",
        "cache_hit": f"{served} AND r_cache < 0.1",
    }
    columns, values, params = [], [], {}
    for name, field in fields.items():
        columns.append(connection.ops.quote_name(field.column))
        if name in computed:
            values.append(computed[name])
        elif field.null:
            values.append("NULL")
        else:
            params[f"d_{name}"] = field.get_db_prep_save(field.get_default(), connection)
            values.append(f"%(d_{name})s")
    params.update(
        orgs=[t.pk for t in tenants],
        keys=keys,
        prefix=prefix,
        now=now,
        span=span,
        models=[m[0] for m in MODELS],
        providers=[m[1] for m in MODELS],
        upstreams=[m[2] for m in MODELS],
        in_prices=[m[3] for m in MODELS],
        out_prices=[m[4] for m in MODELS],
        statuses=[status for status, _ in ERRORS],
        classes=[error_class for _, error_class in ERRORS],
        first=first,
        last=last,
        rows=rows,
        hot_share=hot_share,
    )
    # Table and column names come from the model, values are parameters.
    sql = f"""
        INSERT INTO {UsageRecord._meta.db_table} ({", ".join(columns)})
        SELECT {", ".join(values)}
        FROM (
            SELECT *, {model_index} AS mi
            FROM (
            SELECT *, {org_index} AS oi
            FROM (
                SELECT g, random() AS r_org, random() AS r_model, random() AS r_key,
                       random() AS r_time, random() AS r_error,
                       floor(random() * {len(ERRORS)})::int AS r_which,
                       random() AS r_in, random() AS r_out, random() AS r_cache,
                       exp(6.2 + 0.6 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()))::int
                           AS latency
                FROM generate_series(%(first)s, %(last)s) AS g
                OFFSET 0
            ) AS draws
            ) AS placed
        ) AS rows
    """  # noqa: S608
    return sql, params


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
