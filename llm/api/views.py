"""The public API's views. Each reads as the pipeline's table of contents."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from decimal import Decimal

from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from gateway_project.database import DATABASE_ERRORS
from llm import failover
from llm.api import pipeline
from llm.api.catalog_views import openai_model_list
from llm.api.errors import ApiError, database_unavailable, from_gateway_error
from llm.api.parsing import load_json, parse_chat, parse_generate
from llm.api.pipeline import Call
from llm.api.responses import ChunkWriter, chat_completion, money
from llm.errors import GatewayError
from llm.structured import complete_structured
from llm.types import StreamEventType, Usage

logger = logging.getLogger(__name__)


def api_view(endpoint: str):
    """A POST endpoint of the pipeline: every error, expected or not, becomes one JSON answer,
    and the call is settled and recorded on every way out."""

    def decorate(handle):
        @csrf_exempt
        @require_POST
        @functools.wraps(handle)
        async def view(request) -> HttpResponse:
            call = pipeline.begin(request, endpoint)
            try:
                return await handle(call, request)
            except GatewayError as error:
                call.route = error.route or call.route
                if isinstance(getattr(error, "usage", None), Usage):
                    # Structured output that never validated: every attempt is still paid for.
                    call.usage, call.cost = error.usage, error.cost or Decimal(0)
                return await pipeline.respond_error(call, from_gateway_error(error))
            except ApiError as error:
                return await pipeline.respond_error(call, error)
            except DATABASE_ERRORS:
                logger.warning("Database unavailable in %s (request %s)", endpoint, call.request_id)
                call.usage, call.cost = Usage(), Decimal(0)
                return await pipeline.respond_error(call, database_unavailable())
            except Exception:
                logger.exception("Unexpected error in %s (request %s)", endpoint, call.request_id)
                error = ApiError(
                    500, "Internal error; the request was not billed.", code="internal"
                )
                call.usage, call.cost = Usage(), Decimal(0)
                return await pipeline.respond_error(call, error)

        return view

    return decorate


async def complete_chat(call: Call):
    """Answer from the cache, or call the provider (with failover) and fill the cache."""
    result = await pipeline.lookup_cache(call)
    if result is not None:
        pipeline.served_from_cache(call, result)
        return result
    result, info = await failover.complete(
        call.plan, call.parsed.request, deadline=pipeline.deadline(), policy=pipeline.retry_policy()
    )
    pipeline.served(call, result, info)
    await pipeline.store_cache(call, result)
    return result


@api_view("chat.completions")
async def chat_completions(call: Call, request) -> HttpResponse:
    await pipeline.authenticate_call(call, request)
    call.parsed = parse_chat(load_json(request))
    await pipeline.route(call)
    await pipeline.admit(call)
    if call.parsed.request.stream:
        return await stream_chat(call)
    result = await complete_chat(call)
    body = chat_completion(
        result,
        completion_id=f"chatcmpl-{call.request_id[4:]}",
        created=int(time.time()),
        model=result.model or call.parsed.model,
    )
    if call.cache_status == "HIT":
        body["usage"] = {**body["usage"], "cost": "0"}
    return pipeline.respond_json(call, body)


async def stream_chat(call: Call) -> HttpResponse:
    """Open the upstream stream (failing over until the first event), then relay it as SSE."""
    call.stream = True
    stream = failover.stream(
        call.plan, call.parsed.request, deadline=pipeline.deadline(), policy=pipeline.retry_policy()
    )
    call.route = stream.route
    await stream.open()  # failover happens here; errors still become JSON answers
    call.ttft_ms = stream.route.ttft_ms
    writer = ChunkWriter(
        completion_id=f"chatcmpl-{call.request_id[4:]}",
        created=int(time.time()),
        model=stream.route.served_model or call.parsed.model,
    )
    response = StreamingHttpResponse(relay(call, stream, writer), content_type="text/event-stream")
    for name, value in pipeline.response_headers(call).items():
        response[name] = value
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


async def relay(call: Call, stream, writer: ChunkWriter):
    """Yield SSE lines; on every way out (end, upstream cut, client gone) settle and record."""
    text: list[str] = []
    try:
        async for event in stream:
            if event.type is StreamEventType.DELTA:
                text.append(event.text)
            elif event.type is StreamEventType.ERROR:
                call.status = 502
                call.error_class = f"upstream_{event.error.kind}" if event.error else "upstream"
                message = event.error.message if event.error else "the upstream stream broke"
                yield writer.error(message, call.error_class, stream.route.served_provider)
                break
            line = writer.event(event)
            if line:
                yield line
        await stream.aclose()
        pipeline.streamed(call, stream.route, "".join(text))
        if call.parsed.include_usage:
            yield writer.usage(call.usage, call.cost)
        yield writer.done()
        await pipeline.finish(call)
    except (asyncio.CancelledError, GeneratorExit):
        # The client went away: close the upstream, charge what it produced until now.
        call.client_disconnected, call.status, call.error_class = True, 499, "client_disconnected"
        await _close_quietly(stream)
        pipeline.streamed(call, stream.route, "".join(text))
        pipeline.finish_in_background(call)
        raise


async def _close_quietly(stream) -> None:
    # Closing a broken upstream must not mask why we are closing it.
    with contextlib.suppress(BaseException):
        await asyncio.shield(stream.aclose())


@require_GET
async def list_models(request) -> HttpResponse:
    call = pipeline.begin(request, "models")
    try:
        await pipeline.authenticate_call(call, request)
    except ApiError as error:
        return error.response({"X-Request-ID": call.request_id})
    return JsonResponse(openai_model_list(call.caller), headers={"X-Request-ID": call.request_id})


@api_view("generate")
async def generate(call: Call, request) -> HttpResponse:
    await pipeline.authenticate_call(call, request)
    call.parsed = parse_generate(load_json(request))
    await pipeline.route(call)
    await pipeline.admit(call)
    result = await complete_chat(call)
    return pipeline.respond_json(call, generate_body(call, result))


@api_view("generate-structured")
async def generate_structured(call: Call, request) -> HttpResponse:
    await pipeline.authenticate_call(call, request)
    call.parsed = parse_generate(load_json(request), structured=True)
    await pipeline.route(call, frozenset({"chat", "structured"}))
    await pipeline.admit(call)
    outcome = await complete_structured(
        call.plan,
        call.parsed.request,
        call.parsed.extra["schema"],
        deadline=pipeline.deadline(),
        policy=pipeline.retry_policy(),
        name=call.parsed.extra.get("schema_name") or "response",
    )
    pipeline.served(call, outcome.result, outcome.route)
    return pipeline.respond_json(
        call, {**generate_body(call, outcome.result), "data": outcome.value}
    )


def generate_body(call: Call, result) -> dict:
    return {
        "request_id": call.request_id,
        "text": result.text,
        "provider": result.provider,
        "model": result.model,
        "requested_model": call.parsed.model,
        "finish_reason": result.finish_reason,
        "usage": {
            "input_tokens": call.usage.input_tokens,
            "output_tokens": call.usage.output_tokens,
            "total_tokens": call.usage.total_tokens,
            "estimated": call.usage.estimated,
        },
        "cost": money(call.cost),
        "cached": call.cache_status == "HIT",
        "latency_ms": round(call.elapsed_ms, 2),
        "attempts": len(call.route.providers_tried()) if call.route else 0,
    }
