"""The public API's views. Each reads as the pipeline's table of contents."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time

from django.http import HttpResponse, JsonResponse, StreamingHttpResponse

from llm import failover
from llm.api import pipeline, settlement
from llm.api.call import Call
from llm.api.catalog_views import openai_model, openai_model_list
from llm.api.errors import OPENAI, ApiError, database_unavailable, from_gateway_error
from llm.api.headers import set_headers
from llm.api.parsing import load_json, parse_chat, parse_generate
from llm.api.responses import ChunkWriter, chat_completion, money
from llm.api.unknown_routes import allow_methods
from llm.errors import GatewayError
from llm.outcome import Ending, Outcome
from llm.providers.sse import Backlog, upstream_backlog
from llm.structured import complete_structured
from llm.types import ChatResult, StreamEventType
from organizations.database import DATABASE_ERRORS

MAX_REPAIRS = 2  # structured output: repair turns after the first answer
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

logger = logging.getLogger(__name__)


def api_view(endpoint: str, error_shape: str = OPENAI):
    """A POST endpoint of the pipeline: every error, expected or not, becomes one JSON answer
    (in the surface's error shape), and every way out (a client that hangs up included) settles
    one outcome."""

    def decorate(handle):
        @allow_methods("POST")
        @functools.wraps(handle)
        async def view(request) -> HttpResponse:
            call = pipeline.begin(request, endpoint, error_shape)
            try:
                return await handle(call, request)
            except GatewayError as error:
                return pipeline.respond_error(call, from_gateway_error(error), error)
            except ApiError as error:
                return pipeline.respond_error(call, error, error)
            except asyncio.CancelledError:
                settlement.settle(call, pipeline.client_gone(call))
                raise
            except DATABASE_ERRORS as exc:
                logger.warning("Database unavailable in %s (request %s)", endpoint, call.request_id)
                return pipeline.respond_error(call, database_unavailable(), exc)
            except Exception as exc:
                logger.exception("Unexpected error in %s (request %s)", endpoint, call.request_id)
                error = ApiError(
                    500, "Internal error; the request was not billed.", code="internal"
                )
                return pipeline.respond_error(call, error, exc)

        return view

    return decorate


async def complete_chat(call: Call) -> tuple[ChatResult, Outcome]:
    """Answer from the cache, or call the provider (with failover) and fill the cache."""
    result = await pipeline.lookup_cache(call)
    if result is not None:
        return result, pipeline.served_from_cache(call, result)
    result, info = await failover.complete(
        call.plan,
        call.parsed.request,
        deadline=pipeline.deadline(),
        policy=pipeline.retry_policy(),
        route=pipeline.new_route(call),
    )
    await pipeline.store_cache(call, result)
    return result, pipeline.served(call, (info.charge,))


@api_view("chat.completions")
async def chat_completions(call: Call, request) -> HttpResponse:
    await pipeline.authenticate_call(call, request)
    call.parsed = parse_chat(load_json(request))
    await pipeline.route(call)
    await pipeline.admit(call)
    if call.parsed.request.stream:
        return await stream_chat(call, chunk_writer(call))
    result, outcome = await complete_chat(call)
    body = chat_completion(
        result,
        outcome.usage,
        outcome.cost,
        completion_id=f"chatcmpl-{call.request_id[4:]}",
        created=int(time.time()),
        model=result.model or call.parsed.model,
    )
    return pipeline.respond_json(call, outcome, body)


def chunk_writer(call: Call):
    """The chat-completions wire format for a stream, given the model that serves it."""
    return lambda model: ChunkWriter(
        completion_id=f"chatcmpl-{call.request_id[4:]}",
        created=int(time.time()),
        model=model,
        include_usage=call.parsed.include_usage,
    )


async def stream_chat(call: Call, make_writer) -> HttpResponse:
    """Open the upstream stream (failing over until the first event), then relay it as SSE in
    the surface's wire format: make_writer(served model) gives the writer (see ChunkWriter)."""
    call.stream = True
    stream = failover.stream(
        call.plan, call.parsed.request, deadline=pipeline.deadline(), policy=pipeline.retry_policy()
    )
    call.route = stream.route
    backlog = Backlog()  # counted by the upstream's reader from its first line on
    upstream_backlog.set(backlog)
    await stream.open()  # failover happens here; errors still become JSON answers
    writer = make_writer(stream.route.served_model or call.parsed.model)
    response = StreamingHttpResponse(
        relay(call, stream, writer, backlog), content_type="text/event-stream"
    )
    set_headers(response, pipeline.response_headers(call) | STREAM_HEADERS)
    return response


async def relay(call: Call, stream, writer: ChunkWriter, backlog: Backlog):
    """Yield SSE lines; every way out (end, upstream cut, client gone) settles one outcome.

    The lines of events that arrived together leave together: while the upstream's reader still
    holds received lines, or once the upstream has sent everything (`backlog`), the next event
    needs no waiting, so its line joins this one's and the client gets one write instead of
    several (each write to a socket costs the gateway more than building the line).

    An end, clean or cut upstream, settles before the last lines are written: a client that
    closes the connection the moment it reads [DONE] or the error (the openai SDK does) cannot
    turn it into a hang-up."""
    error_class = message = ""
    lines: list[bytes] = []
    try:
        if opening := writer.opening():
            lines.append(opening)
        async for event in stream:
            if event.type is StreamEventType.ERROR:
                error_class = f"upstream_{event.error.kind}" if event.error else "upstream"
                message = event.error.message if event.error else "the upstream stream broke"
                break
            if line := writer.event(event):
                lines.append(line)
            if lines and not (backlog.lines or backlog.ended):
                yield b"".join(lines)
                lines.clear()
        await stream.aclose()
        outcome = pipeline.stream_ended(call, error_class=error_class)
        settlement.settle(call, outcome)
        if error_class:
            lines.append(writer.error(message, error_class, stream.route.served_provider))
        if closing := writer.closing(outcome.usage, outcome.cost):
            lines.append(closing)
        if lines:
            yield b"".join(lines)
    except (asyncio.CancelledError, GeneratorExit):
        # The client (or our stop) went away: close the upstream, bill what it produced.
        if not call.settled:
            await _close_quietly(stream)
            ending = Ending.STOPPING if settlement.is_stopping() else Ending.CLIENT_GONE
            settlement.settle(call, pipeline.stream_ended(call, ending=ending))
        raise


async def _close_quietly(stream) -> None:
    # Closing a broken upstream must not mask why we are closing it.
    with contextlib.suppress(BaseException):
        await asyncio.shield(stream.aclose())


@allow_methods("GET")
async def list_models(request) -> HttpResponse:
    call = pipeline.begin(request, "models")
    try:
        await pipeline.authenticate_call(call, request)
    except ApiError as error:
        return error.response({"X-Request-ID": call.request_id})
    return JsonResponse(openai_model_list(call.caller), headers={"X-Request-ID": call.request_id})


@allow_methods("GET")
async def retrieve_model(request, model_id: str) -> HttpResponse:
    """One model or alias this organisation may use, as in the list; 404 otherwise."""
    call = pipeline.begin(request, "models")
    headers = {"X-Request-ID": call.request_id}
    try:
        await pipeline.authenticate_call(call, request)
    except ApiError as error:
        return error.response(headers)
    model = openai_model(call.caller, model_id)
    if model is None:
        message = f"The model '{model_id}' does not exist or is not available to you."
        error = ApiError(404, message, param="model", code="model_not_found")
        return error.response(headers)
    return JsonResponse(model, headers=headers)


@api_view("generate")
async def generate(call: Call, request) -> HttpResponse:
    await pipeline.authenticate_call(call, request)
    call.parsed = parse_generate(load_json(request))
    await pipeline.route(call)
    await pipeline.admit(call)
    result, outcome = await complete_chat(call)
    return pipeline.respond_json(call, outcome, generate_body(call, result, outcome))


@api_view("generate-structured")
async def generate_structured(call: Call, request) -> HttpResponse:
    await pipeline.authenticate_call(call, request)
    call.parsed = parse_generate(load_json(request), structured=True)
    await pipeline.route(call, frozenset({"chat", "structured"}))
    await pipeline.admit(call, attempts=MAX_REPAIRS + 1)
    structured = await complete_structured(
        call.plan,
        call.parsed.request,
        call.parsed.extra["schema"],
        deadline=pipeline.deadline(),
        policy=pipeline.retry_policy(),
        name=call.parsed.extra.get("schema_name") or "response",
        max_repairs=MAX_REPAIRS,
        paid=call.paid,
    )
    call.route = structured.route
    outcome = pipeline.served(call, structured.charges)
    body = {**generate_body(call, structured.result, outcome), "data": structured.value}
    return pipeline.respond_json(call, outcome, body)


def generate_body(call: Call, result: ChatResult, outcome: Outcome) -> dict:
    usage = outcome.usage
    return {
        "request_id": call.request_id,
        "text": result.text,
        "provider": result.provider,
        "model": result.model,
        "requested_model": call.parsed.model,
        "finish_reason": result.finish_reason,
        "usage": {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
            "estimated": usage.estimated,
        },
        "cost": money(outcome.cost),
        "cached": outcome.cache_hit,
        "latency_ms": round(call.elapsed_ms, 2),
        "attempts": len(call.route.providers_tried()) if call.route else 0,
    }
