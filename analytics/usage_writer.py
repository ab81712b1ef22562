"""Writing usage records into the database: serialised payloads in, UsageRecord rows out.

On PostgreSQL a batch is COPYed into a per-session temporary table and moved across with
INSERT ... SELECT ... ON CONFLICT (request_id) DO NOTHING, so a replay is harmless; SQLite uses
bulk_create(ignore_conflicts=True). Bad rows never block good ones: a batch the database refuses
is split in halves down to the rows it refuses, which go to the DeadLetterUsage table (admin,
alert). Each insert also marks its hours in PendingRollup, so a late row reaches the roll-ups.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from operator import itemgetter
from typing import Any

import orjson
from django.contrib.auth import get_user_model
from django.db import DataError, IntegrityError, connection, connections, models, transaction
from django.utils import timezone

from analytics import metrics
from analytics.models import DeadLetterUsage, PendingRollup, UsageRecord
from analytics.rollups import floor_hour
from analytics.usage_bounds import bound_usage_values, usage_fields
from llm.json_codec import decode_json
from organizations.database import with_live_connection
from organizations.models import ApiKey, Organization

logger = logging.getLogger(__name__)

STAGING_TABLE = "usage_record_staging"
# A record as written: every column's value by attribute name, bounded to fit (usage_bounds).
# Plain dicts, not model instances: building a UsageRecord cost more than the rest of its write.
Row = dict[str, Any]
# What a row (not the database) can be refused for; anything else (connection lost) propagates
# and the entries stay unacknowledged for the next flush.
ROW_ERRORS = (IntegrityError, DataError, ValueError, TypeError, OverflowError, KeyError)


def serialise_usage(record: Mapping[str, Any]) -> str:
    """The queued form of a record: JSON of its bounded field values (ids for relations, Decimal
    as text). Raises ValueError for unknown fields or a missing required one."""
    return dump_usage(bound_usage_values(dict(record)))


def dump_usage(values: dict[str, Any]) -> str:
    """JSON of a record's values as they are: for a row bounded only if it is ever written (the
    row held beside a reservation, which the sweeper serialises again)."""
    try:  # orjson writes times as ISO 8601 itself
        return orjson.dumps(values, default=_decimal_as_text).decode()
    except TypeError:  # orjson refuses a lone UTF-16 surrogate; the standard encoder escapes it
        encoded = {k: _as_json_value(v) for k, v in values.items()}
        return json.dumps(encoded, separators=(",", ":"))


def _decimal_as_text(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _as_json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _to_row(raw: str | bytes) -> Row:
    data = decode_json(raw)  # reported_usage may hold an upstream's integer beyond 64 bits
    if not isinstance(data, dict):
        raise ValueError("a usage record is a JSON object")
    constants, makers = _column_defaults()
    row = constants | bound_usage_values(data)
    for name, make in makers:
        if name not in row:
            row[name] = make()
    return row


@cache
def _column_defaults() -> tuple[dict[str, Any], tuple[tuple[str, Callable[[], Any]], ...]]:
    """What each column takes when a record leaves it out, as a model instance would: a
    constant, or made for each row (created_at's timezone.now)."""
    fields = usage_fields().items()
    made = {name for name, f in fields if f.has_default() and callable(f.default)}
    constants = {name: f.get_default() for name, f in fields if name not in made}
    makers = tuple((name, f.default) for name, f in fields if name in made)
    return constants, makers


def _insert(rows: list[Row]) -> None:
    hours = {floor_hour(row["created_at"]) for row in rows}
    with transaction.atomic():
        if connection.vendor == "postgresql":
            _copy_rows(rows)
        else:
            records = [UsageRecord(**row) for row in rows]
            UsageRecord.objects.bulk_create(records, ignore_conflicts=True, batch_size=500)
        PendingRollup.objects.bulk_create(
            [PendingRollup(hour=hour, token=uuid.uuid4().hex) for hour in sorted(hours)],
            update_conflicts=True,
            unique_fields=["hour"],
            update_fields=["token"],
        )


def _copy_rows(rows: list[Row]) -> None:
    """COPY the rows into a per-session staging table, then move them across in one statement
    that skips request ids already written (COPY itself cannot skip a conflict). A row the
    table refuses raises here, as it would from an INSERT: the caller splits the batch."""
    db = connections[UsageRecord.objects.db]
    values_of = itemgetter(*usage_fields())
    adapters = [
        (column, adapter)
        for column, field in enumerate(usage_fields().values())
        if (adapter := _copy_adapter(field, db))
    ]
    table = UsageRecord._meta.db_table
    columns = ", ".join(db.ops.quote_name(f.column) for f in usage_fields().values())
    create = f"CREATE TEMP TABLE IF NOT EXISTS {STAGING_TABLE} ON COMMIT DELETE ROWS AS SELECT"
    move = f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {STAGING_TABLE}"  # noqa: S608
    with db.cursor() as cursor, db.wrap_database_errors:
        # Same column types, no constraints; emptied at every commit or rollback.
        cursor.execute(f"{create} {columns} FROM {table} WITH NO DATA")
        with cursor.cursor.copy(f"COPY {STAGING_TABLE} ({columns}) FROM STDIN") as copy:
            for row in rows:
                values = list(values_of(row))
                for column, adapt in adapters:
                    values[column] = adapt(values[column])
                copy.write_row(values)
        cursor.execute(f"{move} ON CONFLICT (request_id) DO NOTHING")
        cursor.execute(f"DELETE FROM {STAGING_TABLE}")  # noqa: S608 (a caller's longer transaction)


def _copy_adapter(field: models.Field, db: Any) -> Callable[[Any], Any] | None:
    """How a bounded value is written by COPY: as it is (psycopg adapts text, numbers, booleans,
    Decimal), JSON as its text, times through the field (a naive one is made aware)."""
    if isinstance(field, models.JSONField):
        return lambda value: None if value is None else json.dumps(value, cls=field.encoder)
    if isinstance(field, models.DateTimeField):
        return lambda value: field.get_db_prep_save(value, db)
    return None


def _insert_all(rows: list[Row]) -> None:
    """Insert the rows; the ones the database refuses are split off down to single rows."""
    try:
        _insert(rows)
        return
    except ROW_ERRORS:
        if len(rows) == 1:
            _insert_alone(rows[0])
            return
    middle = len(rows) // 2
    _insert_all(rows[:middle])
    _insert_all(rows[middle:])


def _insert_alone(row: Row) -> None:
    if not Organization.objects.filter(pk=row["organization_id"]).exists():
        # Its organisation is gone, and with it (CASCADE) every usage row it had.
        logger.warning("Usage record %s of a deleted organisation not written", row["request_id"])
        return
    # The key or user was deleted since (the row would have been SET_NULL): keep the row.
    if row["api_key_id"] and not ApiKey.objects.filter(pk=row["api_key_id"]).exists():
        row["api_key_id"] = None
    if row["user_id"] and not get_user_model().objects.filter(pk=row["user_id"]).exists():
        row["user_id"] = None
    try:
        _insert([row])
    except ROW_ERRORS as error:
        payload = json.dumps(row, default=str)
        dead_letter(payload, error, row["request_id"], row["organization_id"])


def dead_letter(payload: str | bytes, error: BaseException, request_id="", org_id=None) -> None:
    if isinstance(payload, bytes):
        payload = payload.decode(errors="replace")
    logger.error("Usage record %.64s refused (%s): kept as a dead letter", request_id, error)
    DeadLetterUsage.objects.create(
        request_id=str(request_id or "")[:64],
        organization_id=org_id if isinstance(org_id, int) else None,
        payload=payload,
        error=f"{type(error).__name__}: {error}"[:2000],
    )
    metrics.record_usage_dead_letter()


def retry_dead_letters(letters) -> tuple[int, int]:
    """Write dead letters again (after the cause was fixed); returns (written, still refused)."""
    written = failed = 0
    for letter in letters:
        try:
            row = _to_row(letter.payload)
            _insert([row])
        except ROW_ERRORS as error:
            letter.error = f"{type(error).__name__}: {error}"[:2000]
            letter.save(update_fields=["error"])
            failed += 1
            continue
        letter.written_at = timezone.now()
        letter.save(update_fields=["written_at"])
        written += 1
    return written, failed


@with_live_connection
def is_recorded(request_id: str) -> bool:
    """Whether the request already has its usage row (the request id is unique)."""
    return UsageRecord.objects.filter(request_id=request_id).exists()


@with_live_connection
def write_usage_payloads(payloads: list[str] | list[bytes]) -> int:
    """Insert queued records; replays are no-ops. Returns how many records were handled (written,
    or kept as dead letters)."""
    rows = []
    for raw in payloads:
        try:
            rows.append(_to_row(raw))
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            dead_letter(raw, error)
    if rows:
        _insert_all(rows)
    return len(payloads)
