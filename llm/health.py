"""Passive health from real traffic, per provider and per model.

Every upstream attempt adds to counters in time buckets (bucket_seconds wide, kept for
window_seconds): calls, errors, 429s, latency and time-to-first-token sums. Readers weight each
bucket by 0.5 ** (age / half_life), which makes every figure an exponentially weighted moving
average over time (EWMA) that forgets old incidents smoothly. Counters only ever grow by atomic
HINCRBYFLOAT, so all processes share one view through Redis without locks; readers refresh a
local snapshot at most every sync_interval seconds, so the hot path reads memory only.

States (documented thresholds, HealthPolicy):
  not_configured  the provider has no key / is not enabled
  down            weighted error rate >= 50% over at least min_samples calls, or no recent
                  traffic and the last idle probe failed
  degraded        error rate >= 10%, or 429 share >= 20%
  healthy         otherwise (including "no traffic yet")
Idle providers (no traffic for idle_after seconds) are probed with the dialect's free
list_models call by probe_idle_providers(), meant for a periodic task.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from llm.http import get_client
from llm.providers import get_dialect
from llm.sharedstate import Clock, SharedState
from llm.types import ErrorKind, ProviderError

if TYPE_CHECKING:
    from llm.catalog import Catalog

log = logging.getLogger(__name__)


class HealthState(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    DOWN = "down"
    NOT_CONFIGURED = "not_configured"


@dataclass(frozen=True)
class HealthPolicy:
    bucket_seconds: float = 10.0
    window_seconds: float = 300.0
    half_life: float = 60.0
    sync_interval: float = 2.0
    # Write-behind: add up this process's counts and send them at most this often (0: at once).
    # The gateway's hot path uses 1 s; it trades a second of staleness for a Redis round trip
    # per request.
    flush_interval: float = 0.0
    min_samples: float = 3.0
    down_error_rate: float = 0.5
    degraded_error_rate: float = 0.1
    degraded_rate_limited: float = 0.2


@dataclass(frozen=True)
class Stats:
    samples: float  # time-weighted number of calls
    error_rate: float
    rate_limited_rate: float
    latency_ms: float | None  # successful calls only
    ttft_ms: float | None
    last_seen: float  # clock time of the latest bucket with traffic


_METRICS = ("n", "err", "rl", "lat", "lat_n", "ttft", "ttft_n")


class HealthStore:
    def __init__(
        self,
        redis: Any = None,
        *,
        state: SharedState | None = None,
        clock: Clock = time.time,
        policy: HealthPolicy | None = None,
        prefix: str = "gw:health:",
    ) -> None:
        self.store = state or SharedState(redis, clock=clock)
        self.policy = policy or HealthPolicy()
        self._clock = clock
        self._prefix = prefix
        self._snapshot: dict[tuple[str, str], Stats] = {}
        self._probes: dict[str, tuple[float, bool]] = {}
        self._synced_at = -math.inf
        self._providers: set[str] = set()
        self._pending: dict[int, dict[str, float]] = {}
        self._flushed_at = -math.inf

    def now(self) -> float:
        return self._clock()

    # --- writing ---------------------------------------------------------------------------

    async def record(
        self,
        provider: str,
        model: str | None,
        *,
        ok: bool,
        latency_ms: float | None = None,
        ttft_ms: float | None = None,
        error_kind: ErrorKind | None = None,
    ) -> None:
        """Count one upstream attempt for the provider and (when given) the model."""
        self._providers.add(provider)
        values = {"n": 1.0, "err": 0.0 if ok else 1.0}
        if error_kind is ErrorKind.RATE_LIMITED:
            values["rl"] = 1.0
        if ok and latency_ms is not None:
            values.update(lat=float(latency_ms), lat_n=1.0)
        if ttft_ms is not None:
            values.update(ttft=float(ttft_ms), ttft_n=1.0)
        fields = {f"p|{provider}|{k}": v for k, v in values.items()}
        if model is not None:
            fields.update({f"m|{model}|{k}": v for k, v in values.items()})
        bucket = int(self._clock() // self.policy.bucket_seconds)
        pending = self._pending.setdefault(bucket, {})
        for name, value in fields.items():
            pending[name] = pending.get(name, 0.0) + value
        if self._clock() - self._flushed_at >= self.policy.flush_interval:
            await self.flush()

    async def flush(self) -> None:
        """Send the counts added up since the last flush."""
        pending, self._pending = self._pending, {}
        self._flushed_at = self._clock()
        for bucket, fields in pending.items():
            await self.store.hincr(
                f"{self._prefix}b:{bucket}", fields, self.policy.window_seconds * 2
            )

    async def record_probe(self, provider: str, *, ok: bool) -> None:
        self._providers.add(provider)
        self._probes[provider] = (self._clock(), ok)
        value = f"{self._clock()!r}|{int(ok)}"
        await self.store.set(
            f"{self._prefix}probe:{provider}", value, self.policy.window_seconds * 4
        )

    # --- reading ---------------------------------------------------------------------------

    async def refresh(self, *, force: bool = False) -> None:
        """Rebuild the local snapshot from the shared counters (at most every sync_interval)."""
        now = self._clock()
        if not force and now - self._synced_at < self.policy.sync_interval:
            return
        self._synced_at = now
        width = self.policy.bucket_seconds
        newest = int(now // width)
        indexes = list(range(newest - int(self.policy.window_seconds // width), newest + 1))
        buckets = await self.store.hgetall_many([f"{self._prefix}b:{i}" for i in indexes])
        sums: dict[tuple[str, str], dict[str, float]] = {}
        seen: dict[tuple[str, str], float] = {}
        for index, bucket in zip(indexes, buckets, strict=True):
            weight = 0.5 ** (max(0.0, now - (index + 0.5) * width) / self.policy.half_life)
            for name, value in bucket.items():
                scope, subject, metric = (
                    name.rsplit("|", 2) if name.count("|") >= 2 else ("", "", "")
                )
                if metric not in _METRICS:
                    continue
                key = (scope, subject)
                acc = sums.setdefault(key, dict.fromkeys(_METRICS, 0.0))
                acc[metric] += weight * value
                seen[key] = max(seen.get(key, 0.0), (index + 1) * width)
        self._snapshot = {key: _stats(acc, seen[key]) for key, acc in sums.items()}
        self._providers.update(subject for scope, subject in sums if scope == "p")
        await self._refresh_probes()

    async def _refresh_probes(self) -> None:
        ids = sorted(self._providers)
        for provider, raw in zip(
            ids, await self.store.get_many([f"{self._prefix}probe:{p}" for p in ids]), strict=True
        ):
            if raw:
                at, ok = raw.split("|")
                self._probes[provider] = (float(at), ok == "1")

    def model_stats(self, model: str) -> Stats | None:
        return self._snapshot.get(("m", model))

    def provider_stats(self, provider: str) -> Stats | None:
        return self._snapshot.get(("p", provider))

    def latency_ms(self, model: str) -> float | None:
        stats = self.model_stats(model)
        return stats.latency_ms if stats else None

    def last_activity(self, provider: str) -> float | None:
        """Latest traffic or probe time seen for the provider."""
        stats = self.provider_stats(provider)
        times = [stats.last_seen] if stats else []
        if provider in self._probes:
            times.append(self._probes[provider][0])
        return max(times) if times else None

    def state(self, provider: str, *, configured: bool = True) -> HealthState:
        if not configured:
            return HealthState.NOT_CONFIGURED
        return self._judge(self.provider_stats(provider), self._probes.get(provider))

    def model_state(self, model: str, *, configured: bool = True) -> HealthState:
        if not configured:
            return HealthState.NOT_CONFIGURED
        return self._judge(self.model_stats(model), None)

    def _judge(self, stats: Stats | None, probe: tuple[float, bool] | None) -> HealthState:
        p = self.policy
        if stats is None or stats.samples < p.min_samples:
            if probe is not None and not probe[1]:
                return HealthState.DOWN
            return HealthState.HEALTHY
        if stats.error_rate >= p.down_error_rate:
            return HealthState.DOWN
        if (
            stats.error_rate >= p.degraded_error_rate
            or stats.rate_limited_rate >= p.degraded_rate_limited
        ):
            return HealthState.DEGRADED
        return HealthState.HEALTHY

    def report(self, catalog: Catalog) -> dict[str, Any]:
        """Plain data for a health endpoint: state and figures per provider and per model."""

        def figures(stats: Stats | None) -> dict[str, Any]:
            if stats is None:
                return {}
            return {
                "samples": round(stats.samples, 2),
                "error_rate": round(stats.error_rate, 4),
                "rate_limited_rate": round(stats.rate_limited_rate, 4),
                "latency_ms": None if stats.latency_ms is None else round(stats.latency_ms, 1),
                "ttft_ms": None if stats.ttft_ms is None else round(stats.ttft_ms, 1),
            }

        return {
            "providers": {
                pid: {"state": self.state(pid, configured=catalog.is_configured(pid))}
                | figures(self.provider_stats(pid))
                for pid in catalog.providers
            },
            "models": {
                mid: {"state": self.model_state(mid, configured=catalog.is_configured(m.provider))}
                | figures(self.model_stats(mid))
                for mid, m in catalog.models.items()
            },
        }


def _stats(acc: dict[str, float], last_seen: float) -> Stats:
    n = acc["n"]
    return Stats(
        samples=n,
        error_rate=acc["err"] / n if n else 0.0,
        rate_limited_rate=acc["rl"] / n if n else 0.0,
        latency_ms=acc["lat"] / acc["lat_n"] if acc["lat_n"] else None,
        ttft_ms=acc["ttft"] / acc["ttft_n"] if acc["ttft_n"] else None,
        last_seen=last_seen,
    )


async def probe_idle_providers(
    catalog: Catalog,
    health: HealthStore,
    *,
    idle_after: float = 300.0,
    timeout: float = 10.0,
    providers: Iterable[str] | None = None,
) -> dict[str, bool]:
    """Probe configured providers with no traffic for idle_after seconds; returns {id: ok}.

    Only the dialect's free list_models call is used, so a probe never costs money; busy
    providers are never probed (their real traffic already says how they are).
    """
    await health.refresh(force=True)
    now = health.now()
    chosen = [
        pid
        for pid in (providers if providers is not None else catalog.providers)
        if catalog.is_configured(pid)
        and (health.last_activity(pid) is None or now - health.last_activity(pid) >= idle_after)
    ]

    async def probe(pid: str) -> tuple[str, bool]:
        provider = catalog.provider(pid)
        try:
            await asyncio.wait_for(
                get_dialect(provider.dialect).list_models(get_client(), provider), timeout
            )
            ok = True
        except (ProviderError, TimeoutError, OSError) as exc:
            log.info("idle probe of %s failed: %r", pid, exc)
            ok = False
        await health.record_probe(pid, ok=ok)
        return pid, ok

    return dict(await asyncio.gather(*(probe(pid) for pid in chosen)))
