"""Bulk loads into PostgreSQL without per-row index and foreign-key upkeep (the seed of millions
of usage records): the table's secondary indexes and foreign keys come off for the load and are
rebuilt once after it, a sort per index and one anti-join per foreign key instead of millions of
index inserts and row-by-row checks. Run it inside a transaction: DDL is transactional there, so
a failed load leaves the table as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

# Secondary indexes: not the primary key, not backing a constraint (unique keeps its index, so
# duplicates are still refused during the load).
INDEXES_SQL = """
    SELECT c.relname, pg_get_indexdef(c.oid)
    FROM pg_index AS x JOIN pg_class AS c ON c.oid = x.indexrelid
    WHERE x.indrelid = %s::regclass AND NOT x.indisprimary
      AND NOT EXISTS (SELECT 1 FROM pg_constraint AS k WHERE k.conindid = x.indexrelid)
    ORDER BY c.relname
"""
FOREIGN_KEYS_SQL = """
    SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
    WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY conname
"""


@contextmanager
def indexes_off(table: str, maintenance_work_mem: str = "1GB") -> Iterator[None]:
    """Drop `table`'s secondary indexes and foreign keys, yield, then recreate them as they were."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(INDEXES_SQL, [table])
        indexes = cursor.fetchall()
        cursor.execute(FOREIGN_KEYS_SQL, [table])
        foreign_keys = cursor.fetchall()
        # A foreign key cannot be dropped while rows of this transaction await their deferred
        # checks (organisations and keys made just before the load): run those checks now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for name, _ in foreign_keys:
            cursor.execute(f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(name)}")
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {quote(name)}")
    yield
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL maintenance_work_mem = %s", [maintenance_work_mem])
        for _, definition in indexes:
            cursor.execute(definition)
        for name, definition in foreign_keys:
            cursor.execute(f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(name)} {definition}")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")  # Django's foreign keys start deferred
