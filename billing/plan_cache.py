"""This process's copy of the plans' limits: kept GATEWAY_PLAN_CACHE_SECONDS, dropped when a Plan
is saved or deleted. billing/limits.py fills and reads it, billing/models.py drops it; it imports
neither, so neither imports the other.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from cachetools import TTLCache
from django.conf import settings
from django.db import DatabaseError

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_copy: TTLCache[str, dict[str, Any]] = TTLCache(
    1, ttl=settings.GATEWAY_PLAN_CACHE_SECONDS, timer=time.monotonic
)
_last_read: dict[str, Any] = {}  # served while the table cannot be read


def forget_cached_plans() -> None:
    with _lock:
        _copy.clear()


def cached_plans(load: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The copy while it is fresh, else what `load()` reads now (kept for next time)."""
    global _last_read
    with _lock:
        plans = _copy.get("plans")
        if plans is not None:
            return plans
        try:
            plans = load()
        except DatabaseError:
            # Keep serving the last good copy (or Free) rather than failing the request.
            logger.warning("plans could not be read; using the cached copy", exc_info=True)
            return _last_read
        _copy["plans"] = _last_read = plans
        return plans
