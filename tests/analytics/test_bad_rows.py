"""Bad rows never block good ones: values are bounded, refused rows become dead letters."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from analytics import alerts
from analytics.models import Alert, AlertKind, DeadLetterUsage, UsageRecord
from analytics.usage_bounds import bound_usage_values
from analytics.usage_writer import retry_dead_letters, serialise_usage, write_usage_payloads

pytestmark = pytest.mark.django_db(transaction=True)

POSITIVE_INT_MAX = 2_147_483_647


def usage(org, n, **fields):
    return {
        "request_id": f"bad-{n}",
        "organization_id": org.id,
        "endpoint": "chat.completions",
        "requested_model": "gpt-4o-mini",
        "status": 200,
        "input_tokens": 10,
        "output_tokens": 5,
        "cost": Decimal("0.0001"),
        "created_at": timezone.now() - timedelta(minutes=1),
        **fields,
    }


def test_a_huge_model_name_and_huge_token_counts_are_bounded_not_refused(org):
    batch = [
        usage(org, 1),
        usage(org, 2, requested_model="m" * 100_000, input_tokens=10**15, cost=Decimal(10**15)),
        usage(org, 3),
    ]

    assert write_usage_payloads([serialise_usage(r) for r in batch]) == 3

    assert UsageRecord.objects.count() == 3
    odd = UsageRecord.objects.get(request_id="bad-2")
    assert odd.requested_model == "m" * 100
    assert odd.input_tokens == POSITIVE_INT_MAX
    assert odd.cost == Decimal("9999999999")
    assert not DeadLetterUsage.objects.exists()


def test_columns_added_later_are_bounded_by_the_same_rules():
    # Every field is bounded by its type, not by a list of names.
    values = bound_usage_values(
        {
            "request_id": "x" * 65,
            "organization_id": "7",
            "endpoint": "e",
            "status": 70_000,
            "latency_ms": -5,
            "client_request_id": "a\x00b",
        }
    )
    assert values["request_id"] == "x" * 64
    assert values["status"] == 32_767
    assert values["latency_ms"] == 0
    assert values["client_request_id"] == "ab"
    assert values["organization_id"] == 7


def drop_poison_trigger():
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("DROP TRIGGER IF EXISTS refuse_poison ON analytics_usagerecord")
            cursor.execute("DROP FUNCTION IF EXISTS refuse_poison()")
        else:
            cursor.execute("DROP TRIGGER IF EXISTS refuse_poison")


@pytest.fixture
def database_refuses_poison():
    """A trigger that makes the database itself refuse rows whose endpoint is "poison"."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN "
                "IF NEW.endpoint = 'poison' THEN RAISE EXCEPTION 'refused' "
                "USING ERRCODE = 'check_violation'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                "CREATE TRIGGER refuse_poison BEFORE INSERT ON analytics_usagerecord "
                "FOR EACH ROW EXECUTE FUNCTION refuse_poison()"
            )
        else:
            cursor.execute(
                "CREATE TRIGGER refuse_poison BEFORE INSERT ON analytics_usagerecord "
                "WHEN NEW.endpoint = 'poison' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
    yield
    drop_poison_trigger()


def test_a_row_the_database_refuses_becomes_a_dead_letter_and_the_rest_are_written(
    org, database_refuses_poison
):
    batch = [usage(org, n) for n in range(20)]
    batch[7]["endpoint"] = "poison"

    assert write_usage_payloads([serialise_usage(r) for r in batch]) == 20

    assert UsageRecord.objects.count() == 19
    letter = DeadLetterUsage.objects.get()
    assert letter.request_id == "bad-7"
    assert letter.organization_id == org.id
    assert "refused" in letter.error


def test_dead_letters_raise_an_alert_and_are_written_by_a_retry_once_fixed(
    org, database_refuses_poison
):
    write_usage_payloads([serialise_usage(usage(org, 1, endpoint="poison"))])

    alerts.evaluate_alerts()
    assert Alert.objects.get(kind=AlertKind.USAGE_DEAD_LETTER).is_open
    assert retry_dead_letters(DeadLetterUsage.objects.all()) == (0, 1)

    drop_poison_trigger()  # the cause is fixed
    assert retry_dead_letters(DeadLetterUsage.objects.all()) == (1, 0)

    assert UsageRecord.objects.filter(request_id="bad-1").exists()
    alerts.evaluate_alerts()
    assert not Alert.objects.get(kind=AlertKind.USAGE_DEAD_LETTER).is_open


def test_columns_a_record_leaves_out_take_the_defaults_a_model_instance_would(org):
    before = timezone.now()
    payload = serialise_usage(
        {"request_id": "bare-1", "organization_id": org.id, "endpoint": "embeddings", "status": 200}
    )

    assert write_usage_payloads([payload]) == 1

    row = UsageRecord.objects.get(request_id="bare-1")
    model = UsageRecord(organization=org, request_id="bare-1", endpoint="embeddings", status=200)
    for field in UsageRecord._meta.concrete_fields:
        if field.attname not in ("id", "created_at"):
            assert getattr(row, field.attname) == getattr(model, field.attname), field.attname
    assert before <= row.created_at <= timezone.now()
    assert row.reported_usage is None and row.cost == 0 and row.client_request_id == ""


def test_a_reported_count_beyond_64_bits_is_kept_as_the_integer_it_was(org):
    huge = 2**70 + 1  # an upstream's reported count; a float would lose its last digits
    payload = serialise_usage({**usage(org, "huge"), "reported_usage": {"input_tokens": huge}})

    assert write_usage_payloads([payload]) == 1

    assert UsageRecord.objects.get(request_id="bad-huge").reported_usage == {"input_tokens": huge}
