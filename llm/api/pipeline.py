"""The request pipeline of the public API, a step each:

authenticate -> parse -> route -> admit (rate limits + quota reservation) -> cache -> call the
provider (failover) -> respond -> settle.

Every step is a small function over a `Call`, the request's running record. However the call
ends, the view builds one immutable Outcome (llm/outcome.py, through the builders below) and
hands it to `settlement.settle(call, outcome)`: the only writer of the quota settlement, the
usage record, the request log line and the metrics.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.http import HttpResponse

from analytics.logs import new_request_id
from llm.api import governance, settlement
from llm.api.auth import authenticate
from llm.api.call import Call
from llm.api.errors import OPENAI, ApiError, bad_request, from_gateway_error
from llm.api.headers import set_headers
from llm.api.responses import money
from llm.catalog import ModelEntry
from llm.charges import Charge
from llm.costs import compute_cost, request_options, worst_case_cost
from llm.errors import GatewayError, GatewayTimeoutError
from llm.json_codec import encode_json
from llm.outcome import BillingReason, Ending, Outcome, outcome
from llm.retry_policy import RetryPolicy
from llm.route_info import RouteInfo
from llm.routing import needs_for
from llm.runtime import plan_route
from llm.tokens import estimate_messages_tokens, prompt_upper_bound
from llm.types import ChatResult, Usage

DEFAULT_MAX_OUTPUT = 4096  # the worst case reserved when neither request nor catalogue bounds it


def begin(request, endpoint: str, error_shape: str = OPENAI) -> Call:
    """The request's id is bound before the view runs (analytics.request_ids.bind_request_id, by
    the API's handler or the site's middleware). Ours keys the usage record, so it is unique even
    when a client reuses its own id."""
    directives = {
        part.strip().lower() for part in request.headers.get("Cache-Control", "").split(",")
    }
    no_store = "no-store" in directives
    client_request_id = request.client_request_id
    return Call(
        endpoint=endpoint,
        request_id=new_request_id() if client_request_id else request.request_id,
        client_request_id=client_request_id,
        cache_opt_out=no_store or "no-cache" in directives,
        no_store=no_store,
        error_shape=error_shape,
    )


async def authenticate_call(call: Call, request) -> None:
    call.caller = await authenticate(request)


def model_entry(call: Call) -> ModelEntry:
    return call.plan.candidates[0].model


async def route(call: Call, needs: frozenset[str] | None = None) -> None:
    request = call.parsed.request
    try:
        call.plan = await plan_route(
            call.parsed.model,
            needs=needs or needs_for(request),
            allowed=call.caller.limits.allowed_models,
            request=request,
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


def cap_output(call: Call) -> None:
    """Without max_tokens from the client, send the cap we reserve for: the reservation is then a
    real bound on what the provider can produce (and bill)."""
    request = call.parsed.request
    if request.max_tokens is not None:
        return
    prompt = estimate_messages_tokens(request.messages)
    request.max_tokens = min(
        max(min(model.max_output_tokens or DEFAULT_MAX_OUTPUT, DEFAULT_MAX_OUTPUT), 1)
        if model.context_window - prompt >= DEFAULT_MAX_OUTPUT
        else max(model.context_window - prompt, 1)
        for model in (candidate.model for candidate in call.plan.candidates)
    )


def worst_case(call: Call, output_tokens: int | None = None) -> tuple[int, Decimal]:
    """Tokens and cost to reserve: the prompt's upper bound (UTF-8 bytes, at most the context
    window) plus the output cap sent upstream, in the dearest token class at the dearest
    candidate's price, service tier and request fees included."""
    request = call.parsed.request
    bound = prompt_upper_bound(request.messages, request.tools, request.response_format)
    options = request_options(request)
    output = (request.max_tokens or 0) if output_tokens is None else output_tokens
    costs, most_tokens = [], 0
    for candidate in call.plan.candidates:
        model = candidate.model
        prompt = min(bound, model.context_window)
        costs.append(worst_case_cost(model.price_at(call.created_at), prompt, output, options))
        most_tokens = max(most_tokens, prompt + output)
    return most_tokens, max(costs, default=Decimal(0))


async def admit(call: Call, output_tokens: int | None = None, attempts: int = 1) -> None:
    if output_tokens is None:
        cap_output(call)
    tokens, cost = worst_case(call, output_tokens)
    call.admission = await governance.admit(
        call.caller, tokens * attempts, cost * attempts, held_usage_row(call)
    )


def held_usage_row(call: Call) -> dict[str, Any]:
    """The row this call gets if its process dies before it settles: held beside the reservation,
    written by the sweeper with outcome `interrupted` (billing/sweeper.py). Its bill: the prompt
    as estimated, at the first candidate's price; no output."""
    caller, request = call.caller, call.parsed.request
    prompt = estimate_messages_tokens(request.messages)
    candidates = call.plan.candidates if call.plan else []
    price = candidates[0].model.price_at(call.created_at) if candidates else None
    return {
        "organization_id": caller.organization.pk,
        "api_key_id": caller.key.pk,
        "user_id": caller.key.created_by_id,
        "request_id": call.request_id,
        "client_request_id": call.client_request_id,
        "created_at": call.created_at,
        "endpoint": call.endpoint,
        "requested_model": call.parsed.model,
        "input_tokens": prompt,
        "input_estimated": True,
        "cost": compute_cost(price, Usage(input_tokens=prompt)) if price else Decimal(0),
        "price_version": price.version if price else "",
        "stream": call.stream,
        "status": 500,
    }


async def lookup_cache(call: Call) -> ChatResult | None:
    if not governance.is_cacheable(call.endpoint, call.parsed, call.cache_opt_out):
        return None
    cached = await governance.cache_get(call.caller.organization.pk, call.endpoint, call.parsed)
    call.cache_status = "HIT" if cached is not None else "MISS"
    return cached


async def store_cache(call: Call, result: ChatResult) -> None:
    if call.cache_status == "MISS" and not call.no_store:
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


def new_route(call: Call) -> RouteInfo:
    """The route the core fills in as it goes, so every way out can see its attempts."""
    call.route = RouteInfo.for_plan(call.plan)
    return call.route


# --- outcomes: one per way out --------------------------------------------------------------


def served(call: Call, charges: tuple[Charge, ...]) -> Outcome:
    estimated = any(charge.usage.estimated for charge in charges)
    reason = BillingReason.ESTIMATED if estimated else BillingReason.REPORTED
    result = outcome(Ending.SERVED, reason, route=call.route, charges=charges)
    call.cost = result.cost
    return result


def served_from_cache(call: Call, result: ChatResult) -> Outcome:
    # A hit costs the user nothing upstream: no tokens charged, no cost.
    call.route = RouteInfo(
        requested=call.parsed.model,
        alias=call.plan.alias,
        reason="cache hit",
        candidates=[],
        served_provider=result.provider,
        served_model=result.model,
        upstream_model=result.model,
    )
    call.cost = Decimal(0)
    return outcome(Ending.SERVED, BillingReason.CACHE_HIT, route=call.route, cache_hit=True)


def stream_ended(call: Call, *, error_class: str = "", ending: Ending | None = None) -> Outcome:
    """A stream ended: cleanly, cut by the upstream, or by the client (or our stop) going away.
    The core's charge has the reported counts and flags whatever it had to estimate."""
    route = call.route
    charges = (route.charge,) if route is not None and route.charge is not None else ()
    if ending in (Ending.CLIENT_GONE, Ending.STOPPING):
        reason = BillingReason(ending.value)
        status = 499
        error_class = "client_disconnected" if ending is Ending.CLIENT_GONE else "gateway_stopping"
    elif error_class:
        ending, reason, status = Ending.UPSTREAM_CUT, BillingReason.UPSTREAM_CUT, 502
    else:
        ending, reason, status = Ending.SERVED, BillingReason.REPORTED, 200
        if any(charge.usage.estimated for charge in charges):
            reason = BillingReason.ESTIMATED
    result = outcome(
        ending, reason, status=status, error_class=error_class, route=route, charges=charges
    )
    call.cost = result.cost
    return result


def failed(call: Call, error: ApiError, cause: BaseException | None = None) -> Outcome:
    """An error answer. Paid upstream answers before it (structured output) are still billed;
    a deadline that passed after dispatch bills what the provider did (see settle)."""
    route = getattr(cause, "route", None) or call.route
    call.route = route
    charges = tuple(getattr(cause, "charges", ()))
    error_class = error.code or f"http_{error.status}"
    if isinstance(cause, GatewayTimeoutError) and route is not None and route.in_flight:
        return outcome(
            Ending.DEADLINE,
            BillingReason.DEADLINE_ESTIMATED,
            status=error.status,
            error_class=error_class,
            route=route,
            charges=charges,
        )
    if charges:
        reason = BillingReason.REPAIR_FAILED
    elif cause is not None and not isinstance(cause, GatewayError | ApiError):
        reason = BillingReason.INTERNAL_ERROR
    elif route is not None and route.attempts:
        reason = BillingReason.UPSTREAM_ERROR
    else:
        reason = BillingReason.NOT_DISPATCHED
    return outcome(
        Ending.FAILED,
        reason,
        status=error.status,
        error_class=error_class,
        route=route,
        charges=charges,
    )


def client_gone(call: Call) -> Outcome:
    """The client went away before a non-streamed answer: the attempt in flight may still
    answer (settle waits for it a little); its usage is billed as reported, else estimated."""
    ending = Ending.STOPPING if settlement.is_stopping() else Ending.CLIENT_GONE
    return outcome(
        ending,
        BillingReason(ending.value),
        status=499,
        error_class="client_disconnected" if ending is Ending.CLIENT_GONE else "gateway_stopping",
        route=call.route,
        charges=tuple(call.paid),
    )


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
    if not call.stream and call.cost is not None:
        headers["X-Gateway-Cost"] = money(call.cost)
    headers["X-Gateway-Overhead-Ms"] = f"{call.overhead_ms:.2f}"
    return headers


def respond_json(
    call: Call, result: Outcome, body: dict[str, Any], status: int = 200
) -> HttpResponse:
    """The answer; settling runs alongside it, off the response's path."""
    settlement.settle(call, result)
    response = HttpResponse(encode_json(body), status=status, content_type="application/json")
    set_headers(response, response_headers(call))
    return response


def respond_error(call: Call, error: ApiError, cause: BaseException | None = None) -> HttpResponse:
    result = failed(call, error, cause)
    # After a deadline the provider may still bill: the cost is known only once settled.
    call.cost = None if result.ending is Ending.DEADLINE else result.cost
    settlement.settle(call, result)
    return error.response(response_headers(call), call.error_shape)
