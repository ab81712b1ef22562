"""The request pipeline of the public API, a step each:

authenticate -> parse -> route -> admit (rate limits + quota reservation) -> cache -> call the
provider (failover) -> respond -> settle and record usage.

Every step is a small function over a `Call`, the request's running record. `finish` runs on
every way out (success, error, client disconnect) and is the only place usage is settled and
recorded, so no request is billed twice or lost.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.http import HttpResponse

from gateway_project.redis_client import get_redis
from llm.api import governance
from llm.api.auth import Caller, authenticate
from llm.api.errors import ApiError, bad_request, from_gateway_error
from llm.api.observe import observe_call
from llm.api.parsing import ParsedChat
from llm.api.responses import money
from llm.catalog import ModelEntry, get_catalog
from llm.circuit import CircuitPolicy
from llm.costs import compute_cost
from llm.errors import GatewayError
from llm.failover import SKIPPED, RetryPolicy, RouteInfo
from llm.health import HealthPolicy
from llm.routing import RoutePlan, needs_for
from llm.runtime import configure_runtime, is_runtime_configured, plan_route
from llm.tokens import estimate_messages_tokens, estimate_tokens
from llm.types import ChatResult, Usage

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
# Request ids: a random prefix per process plus a counter, unique without a syscall per request.
_ID_PREFIX = secrets.token_hex(8)
_id_counter = itertools.count(1)
DEFAULT_MAX_OUTPUT = 4096  # the worst case reserved when neither request nor catalogue bounds it
_background: set[asyncio.Task] = set()


@dataclass
class Call:
    """One API request as it moves through the pipeline."""

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
    usage: Usage = field(default_factory=Usage)
    cost: Decimal = Decimal(0)
    price_version: str = ""
    status: int = 200
    error_class: str = ""
    cache_status: str = "BYPASS"
    stream: bool = False
    ttft_ms: float | None = None
    client_disconnected: bool = False
    cache_opt_out: bool = False  # Cache-Control: no-cache
    finished: bool = False

    @property
    def elapsed_ms(self) -> float:
        return (time.monotonic() - self.started) * 1000

    @property
    def upstream_ms(self) -> float:
        return self.route.upstream_ms if self.route is not None else 0.0

    @property
    def overhead_ms(self) -> float:
        return max(self.elapsed_ms - self.upstream_ms, 0.0)


def begin(request, endpoint: str) -> Call:
    sent = request.headers.get("X-Request-ID", "")
    no_cache = "no-cache" in request.headers.get("Cache-Control", "").lower()
    return Call(
        endpoint=endpoint,
        request_id=f"req_{_ID_PREFIX}{next(_id_counter):016x}",
        client_request_id=sent if REQUEST_ID.match(sent) else "",
        cache_opt_out=no_cache,
    )


async def authenticate_call(call: Call, request) -> None:
    call.caller = await authenticate(request)


def model_entry(call: Call) -> ModelEntry:
    return call.plan.candidates[0].model


def ensure_runtime() -> None:
    """Share health and circuit state through Redis when it is configured (once per process)."""
    if not is_runtime_configured():
        configure_runtime(
            get_redis(),
            health_policy=HealthPolicy(flush_interval=1.0),
            circuit_policy=CircuitPolicy(sync_interval=1.0),
        )


async def route(call: Call, needs: frozenset[str] | None = None) -> None:
    ensure_runtime()
    request = call.parsed.request
    try:
        call.plan = await plan_route(
            call.parsed.model,
            needs=needs or needs_for(request),
            allowed=call.caller.limits.allowed_models,
        )
    except GatewayError as error:
        raise from_gateway_error(error) from None
    check_window(call)


def check_window(call: Call) -> None:
    """max_tokens must fit the model: its output cap and its context window minus the prompt."""
    request, model = call.parsed.request, model_entry(call)
    if request.max_tokens is None:
        return
    prompt = estimate_messages_tokens(request.messages)
    cap = model.max_output_tokens or model.context_window
    if request.max_tokens > cap or prompt + request.max_tokens > model.context_window:
        raise bad_request(
            f"'max_tokens' {request.max_tokens} is beyond {model.id}'s window "
            f"(context {model.context_window} tokens, output up to {cap}, prompt ~{prompt}).",
            "max_tokens",
        )


def worst_case(call: Call, output_tokens: int | None = None) -> tuple[int, Decimal]:
    """Tokens and cost to reserve: prompt + max output, at the dearest candidate's price."""
    request = call.parsed.request
    prompt = estimate_messages_tokens(request.messages)
    costs, most_tokens = [], 0
    for candidate in call.plan.candidates:
        model = candidate.model
        output = output_tokens
        if output is None:
            output = request.max_tokens or min(
                model.max_output_tokens or DEFAULT_MAX_OUTPUT, DEFAULT_MAX_OUTPUT
            )
        usage = Usage(input_tokens=prompt, output_tokens=output)
        costs.append(compute_cost(model.price_at(call.created_at), usage))
        most_tokens = max(most_tokens, usage.total_tokens)
    return most_tokens, max(costs, default=Decimal(0))


async def admit(call: Call, output_tokens: int | None = None) -> None:
    tokens, cost = worst_case(call, output_tokens)
    call.admission = await governance.admit(call.caller, tokens, cost)


async def lookup_cache(call: Call) -> ChatResult | None:
    if not governance.is_cacheable(call.endpoint, call.parsed, call.cache_opt_out):
        return None
    cached = await governance.cache_get(call.caller.organization.pk, call.endpoint, call.parsed)
    call.cache_status = "HIT" if cached is not None else "MISS"
    return cached


async def store_cache(call: Call, result: ChatResult) -> None:
    if call.cache_status == "MISS":
        await governance.cache_put(call.caller.organization.pk, call.endpoint, call.parsed, result)


def deadline() -> float:
    return float(settings.GATEWAY_REQUEST_DEADLINE_SECONDS)


def retry_policy() -> RetryPolicy:
    return RetryPolicy(
        attempts_per_candidate=settings.GATEWAY_RETRY_ATTEMPTS_PER_CANDIDATE,
        max_attempts=settings.GATEWAY_RETRY_MAX_ATTEMPTS,
        base_backoff=settings.GATEWAY_RETRY_BACKOFF_SECONDS,
        first_byte_timeout=settings.GATEWAY_FIRST_BYTE_TIMEOUT_SECONDS or None,
        idle_timeout=settings.GATEWAY_STREAM_IDLE_TIMEOUT_SECONDS or None,
    )


def served(call: Call, result: ChatResult, info: RouteInfo) -> None:
    call.route = info
    call.usage, call.cost = result.usage, result.cost or Decimal(0)
    call.price_version = info.price_version or ""


def served_from_cache(call: Call, result: ChatResult) -> None:
    # A hit costs the user nothing upstream: no tokens charged, no cost.
    call.usage, call.cost = Usage(), Decimal(0)
    call.route = RouteInfo(
        requested=call.parsed.model,
        alias=call.plan.alias,
        reason="cache hit",
        candidates=[],
        served_provider=result.provider,
        served_model=result.model,
        upstream_model=result.model,
    )


def streamed(call: Call, info: RouteInfo, text: str) -> None:
    """A stream ended (cleanly, cut, or by the client): charge what the upstream produced."""
    call.route = info
    usage = info.usage
    call.usage = usage if usage and usage.total_tokens else estimated_usage_so_far(call, text)
    call.cost = cost_of(call)


def failed(call: Call, error: ApiError) -> None:
    call.status = error.status
    call.error_class = error.code or f"http_{error.status}"


def estimated_usage_so_far(call: Call, text: str) -> Usage:
    """What the upstream produced before a disconnect, when it never said: estimated."""
    return Usage(
        input_tokens=estimate_messages_tokens(call.parsed.request.messages),
        output_tokens=estimate_tokens(text),
        estimated=True,
    )


async def finish(call: Call) -> None:
    """Settle the reservation and record usage: exactly once per call, on every way out."""
    if call.finished or call.caller is None:
        return
    call.finished = True
    if call.route is not None and call.route.served_provider and call.cost == 0:
        call.cost = cost_of(call)
    await governance.settle(call.admission, call.usage, call.cost, dispatched=was_dispatched(call))
    observe_call(call)
    await governance.record(usage_record(call))


def was_dispatched(call: Call) -> bool:
    """Did any provider get the request (then its usage is charged, even zero)?"""
    route = call.route
    return route is not None and (
        route.served_provider is not None
        or any(a.error_kind not in SKIPPED for a in route.attempts)
    )


def cost_of(call: Call) -> Decimal:
    if call.cache_status == "HIT" or not call.usage.total_tokens:
        return Decimal(0)
    catalog = get_catalog()
    model = catalog.models.get(call.route.served_model or "")
    if model is None:
        return Decimal(0)
    price = model.price_at(call.created_at)
    call.price_version = price.version
    return compute_cost(price, call.usage)


def finish_in_background(call: Call) -> None:
    """Settle and record without holding up the response (or after the client went away).

    The work is a few Redis round trips; server shutdown waits for it (drain_background)."""
    task = asyncio.get_running_loop().create_task(finish(call))
    _background.add(task)
    task.add_done_callback(_background.discard)


async def drain_background() -> None:
    """Wait for every pending settle-and-record (graceful shutdown)."""
    while _background:
        await asyncio.gather(*list(_background), return_exceptions=True)


def usage_record(call: Call) -> dict[str, Any]:
    caller, route = call.caller, call.route
    return {
        "organization_id": caller.organization.pk,
        "api_key_id": caller.key.pk,
        "user_id": caller.key.created_by_id,
        "request_id": call.request_id,
        "client_request_id": call.client_request_id,
        "created_at": call.created_at.isoformat(),
        "endpoint": call.endpoint,
        "requested_model": call.parsed.model if call.parsed else "",
        "provider": (route.served_provider or "") if route else "",
        "upstream_model": (route.upstream_model or route.served_model or "") if route else "",
        "input_tokens": call.usage.input_tokens,
        "output_tokens": call.usage.output_tokens,
        "cached_input_tokens": call.usage.cached_input_tokens,
        "tokens_estimated": call.usage.estimated,
        "cost": str(call.cost),
        "price_version": call.price_version,
        "latency_ms": round(call.elapsed_ms),
        "ttft_ms": round(call.ttft_ms) if call.ttft_ms is not None else None,
        "upstream_ms": round(call.upstream_ms),
        "status": call.status,
        "error_class": call.error_class,
        "attempts": len(route.providers_tried()) if route else 0,
        "cache_hit": call.cache_status == "HIT",
        "stream": call.stream,
        "client_disconnected": call.client_disconnected,
    }


def response_headers(call: Call) -> dict[str, str]:
    headers = {
        "X-Request-ID": call.client_request_id or call.request_id,
        "X-Gateway-Cache": call.cache_status,
    }
    if call.plan is not None:
        headers.update(call.plan.headers())
    if call.route is not None:
        headers.update(call.route.headers())
    if call.admission is not None:
        headers.update(governance.rate_limit_headers(call.admission))
    if not call.stream:
        headers["X-Gateway-Cost"] = money(call.cost)
    headers["X-Gateway-Overhead-Ms"] = f"{call.overhead_ms:.2f}"
    return headers


def respond_json(call: Call, body: dict[str, Any], status: int = 200) -> HttpResponse:
    """The answer; settling and recording run alongside it, off the response's path."""
    finish_in_background(call)
    response = HttpResponse(json.dumps(body), status=status, content_type="application/json")
    for name, value in response_headers(call).items():
        response[name] = value
    return response


async def respond_error(call: Call, error: ApiError) -> HttpResponse:
    failed(call, error)
    await finish(call)
    return error.response(response_headers(call))
