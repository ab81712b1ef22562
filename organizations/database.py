"""Database connections outside a request: a dead one is replaced and the work retried once.

Django checks its connections when a request starts and ends (with CONN_HEALTH_CHECKS, before
reusing one). Code that runs elsewhere (the worker threads of the async API, the usage flusher,
Celery tasks) gets no such check, and would keep using a connection that died with a database
restart until the process restarts.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.db import InterfaceError, OperationalError, connection

P = ParamSpec("P")
T = TypeVar("T")

# What a database that went away (or is away) raises through Django.
DATABASE_ERRORS = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 5  # told to API clients while the database is away


def with_live_connection(work: Callable[P, T]) -> Callable[P, T]:
    """Run work; if the database connection turns out dead, retry once on a new one. Only for
    work that is safe to repeat (reads, idempotent writes), and never inside a caller's
    transaction (that transaction is lost with its connection: the caller decides)."""

    @functools.wraps(work)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return work(*args, **kwargs)
        except DATABASE_ERRORS:
            if connection.in_atomic_block:
                raise
            connection.close()
            return work(*args, **kwargs)

    return run
