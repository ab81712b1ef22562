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

from django.conf import settings
from django.db import DatabaseError

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_cache: dict[str, Any] = {}
_loaded_at: float | None = None


def forget_cached_plans() -> None:
    global _loaded_at
    with _lock:
        _loaded_at = None


def cached_plans(load: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The copy while it is fresh, else what `load()` reads now (kept for next time)."""
    global _cache, _loaded_at
    now = time.monotonic()
    ttl = settings.GATEWAY_PLAN_CACHE_SECONDS
    if _loaded_at is not None and now - _loaded_at < ttl:
        return _cache
    with _lock:
        if _loaded_at is not None and now - _loaded_at < ttl:
            return _cache
        try:
            _cache = load()
        except DatabaseError:
            # Keep serving the last good copy (or Free) rather than failing the request.
            logger.warning("plans could not be read; using the cached copy", exc_info=True)
            return _cache
        _loaded_at = now
        return _cache
