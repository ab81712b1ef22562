from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Count, Sum

from analytics.models import Frequency, UsageRecord, UsageRollup
from analytics.rollups import get_fill_end

pytestmark = pytest.mark.django_db


def test_seeding_writes_records_and_rolls_them_up(org, api_key, other_org):
    call_command("seed_usage", org.slug, records=300, days=3, batch=100)
    rows = UsageRecord.objects.filter(organization=org)
    assert rows.count() == 300
    assert not UsageRecord.objects.filter(organization=other_org).exists()
    assert set(rows.values_list("api_key_id", flat=True)) == {api_key[0].pk}
    mark = get_fill_end()
    for frequency in (Frequency.HOUR, Frequency.DAY):
        rolled = UsageRollup.objects.filter(organization=org, frequency=frequency)
        # Every hour before the roll-up mark is in the roll-ups; later records are read raw.
        assert rolled.aggregate(n=Sum("requests"))["n"] == rows.filter(created_at__lt=mark).count()
    assert rows.filter(created_at__lt=mark).count() > 250


def test_seeding_an_unknown_organisation_says_so(db):
    with pytest.raises(CommandError, match="No organization with slug 'nope'"):
        call_command("seed_usage", "nope", records=1)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="made by PostgreSQL itself")
def test_seeding_in_the_database_spreads_rows_over_organisations(org, api_key):
    call_command("seed_usage", org.slug, rows=2_000, orgs=5, hot_share=0.5, days=2)
    per_org = dict(
        UsageRecord.objects.values_list("organization_id").annotate(n=Count("id")).order_by()
    )
    assert sum(per_org.values()) == 2_000 and len(per_org) == 5
    assert 800 < per_org[org.pk] < 1_200  # the named organisation's share
    own_keys = set(UsageRecord.objects.filter(organization=org).values_list("api_key", flat=True))
    assert own_keys == {api_key[0].pk}
    mark = get_fill_end()
    rolled = UsageRollup.objects.filter(frequency=Frequency.DAY).aggregate(n=Sum("requests"))
    assert rolled["n"] == UsageRecord.objects.filter(created_at__lt=mark).count() > 1_800


@pytest.mark.skipif(connection.vendor == "postgresql", reason="the embedded database")
def test_seeding_rows_in_the_database_needs_postgresql(org):
    with pytest.raises(CommandError, match="--rows needs PostgreSQL"):
        call_command("seed_usage", org.slug, rows=10)


def _usage_table_constraints() -> dict[str, tuple]:
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, UsageRecord._meta.db_table)
    return {
        name: (tuple(info["columns"]), info["index"], info["unique"], info["foreign_key"])
        for name, info in found.items()
    }


@pytest.mark.skipif(connection.vendor != "postgresql", reason="made by PostgreSQL itself")
def test_seeding_in_the_database_puts_back_every_index_and_foreign_key(org, api_key):
    before = _usage_table_constraints()
    call_command("seed_usage", org.slug, rows=500, orgs=2, days=1, no_rollup=True)
    assert _usage_table_constraints() == before
    assert any(fk for _, _, _, fk in before.values())  # the comparison covers foreign keys
    assert UsageRecord.objects.count() == 500


@pytest.mark.skipif(connection.vendor != "postgresql", reason="made by PostgreSQL itself")
def test_a_failed_seed_leaves_the_table_as_it_was(org, api_key, monkeypatch):
    from analytics.management.commands import seed_usage

    before = _usage_table_constraints()

    def broken(*args):
        sql, params = real(*args)
        return sql + " RETURNING no_such_column", params

    real = seed_usage._generate_sql
    monkeypatch.setattr(seed_usage, "_generate_sql", broken)
    with pytest.raises(Exception, match="no_such_column"):
        call_command("seed_usage", org.slug, rows=100, orgs=2, days=1, no_rollup=True)
    assert _usage_table_constraints() == before
    assert not UsageRecord.objects.exists()
