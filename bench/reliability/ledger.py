"""Counting usage records by the request ids the clients sent: lost and duplicated rows.

A request owes exactly one row when the gateway admitted it: any answer but 401 and the 5xx that
come before authentication could finish (500, 503). A stream cut after its headers still owes one.
Rows arrive through the usage queue and Celery beat, so `audit` waits for them: a row still
missing 75 s after the load ended counts as lost.
"""

from __future__ import annotations

import time

import psycopg
from load import Outcome

TABLE = "analytics_usagerecord"


def owes_row(outcome: Outcome) -> bool:
    status = outcome.status
    if status is None:
        return False
    return status in (502, 504) or (status < 500 and status != 401)


def count_rows(pg_url: str, request_ids: list[str]) -> dict[str, int]:
    if not request_ids:
        return {}
    sql = (
        f"SELECT client_request_id, count(*) FROM {TABLE} "  # noqa: S608 - constant table name
        "WHERE client_request_id = ANY(%s) GROUP BY 1"
    )
    with psycopg.connect(pg_url, connect_timeout=5) as conn:
        return dict(conn.execute(sql, (request_ids,)).fetchall())


def wait_for_rows(pg_url: str, request_ids: list[str], owed: int, timeout: float = 75) -> dict:
    """Poll until every owed row is there, or `timeout` seconds have passed. The default outlasts
    the usage flush's 60 s lock, which a flush cut short by a Redis fault leaves held: rows that
    arrive that late are late, not lost."""
    deadline = time.monotonic() + timeout
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        try:
            counts = count_rows(pg_url, request_ids)
        except psycopg.Error:
            counts = {}
        if sum(counts.values()) >= owed:
            time.sleep(1.5)  # one more beat: a duplicate would show now
            return count_rows(pg_url, request_ids)
        time.sleep(1)
    return counts


def audit(pg_url: str, outcomes: list[Outcome], timeout: float = 75) -> dict:
    owed = [o.request_id for o in outcomes if owes_row(o)]
    every = [o.request_id for o in outcomes]
    began = time.monotonic()
    counts = wait_for_rows(pg_url, every, len(owed), timeout)
    return {
        "sent": len(outcomes),
        "owed_rows": len(owed),
        "rows": sum(counts.values()),
        "lost": sum(1 for rid in owed if counts.get(rid, 0) == 0),
        "duplicated": sum(1 for n in counts.values() if n > 1),
        "rows_waited_s": round(time.monotonic() - began, 1),
    }


def query(pg_url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(pg_url, connect_timeout=5) as conn:
        return conn.execute(sql, params).fetchall()


def usage_extremes(pg_url: str, request_ids: list[str]) -> dict:
    """The largest token counts and cost recorded for these requests."""
    sql = (
        f"SELECT max(input_tokens), max(output_tokens), max(cost) FROM {TABLE} "  # noqa: S608
        "WHERE client_request_id = ANY(%s)"
    )
    row = query(pg_url, sql, (request_ids,))[0]
    return {"max_input_tokens": row[0], "max_output_tokens": row[1], "max_cost": str(row[2])}
