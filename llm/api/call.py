"""One API request's running record, `Call`: what the pipeline's steps fill in, and what
settlement and observation read once the outcome is known."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from llm.api.auth import Caller
from llm.api.errors import OPENAI
from llm.api.parsing import ParsedChat
from llm.charges import Charge
from llm.route_info import RouteInfo
from llm.routing import RoutePlan


@dataclass
class Call:
    """One API request as it moves through the pipeline (its outcome is built at the end)."""

    endpoint: str
    request_id: str  # ours, unique: the usage record's key
    client_request_id: str = ""  # X-Request-ID as the client sent it, echoed back
    started: float = field(default_factory=time.monotonic)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    caller: Caller | None = None
    parsed: ParsedChat | None = None
    plan: RoutePlan | None = None
    route: RouteInfo | None = None
    admission: Any = None
    cache_status: str = "BYPASS"
    stream: bool = False
    cache_opt_out: bool = False  # Cache-Control: no-cache (do not answer from the cache)
    no_store: bool = False  # Cache-Control: no-store (keep nothing: no cache entry, no prompt)
    error_shape: str = OPENAI  # the surface's error body: OpenAI's, or Anthropic's
    cost: Decimal | None = None  # shown in X-Gateway-Cost once the outcome is known
    paid: list[Charge] = field(default_factory=list)  # answers paid so far (structured output)
    settled: bool = False

    @property
    def elapsed_ms(self) -> float:
        return (time.monotonic() - self.started) * 1000

    @property
    def upstream_ms(self) -> float:
        return self.route.upstream_ms if self.route is not None else 0.0

    @property
    def overhead_ms(self) -> float:
        return max(self.elapsed_ms - self.upstream_ms, 0.0)
