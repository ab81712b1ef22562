"""The endpoints coding agents speak: Anthropic's Messages (Claude Code) and OpenAI's Responses
(Codex CLI). Each is the chat pipeline with another wire format at both ends: the translators
live in anthropic_messages.py / anthropic_replies.py and openai_responses.py /
openai_response_objects.py (request / answer), the steps in pipeline.py and views.py.
"""

from __future__ import annotations

from django.http import HttpResponse, JsonResponse

from llm.api import (
    anthropic_messages,
    anthropic_replies,
    openai_response_objects,
    openai_responses,
    pipeline,
)
from llm.api.call import Call
from llm.api.errors import ANTHROPIC, ApiError
from llm.api.parsing import load_json
from llm.api.unknown_routes import allow_methods
from llm.api.views import api_view, complete_chat, stream_chat
from llm.tokens import estimate_messages_tokens


@api_view("messages", ANTHROPIC)
async def messages(call: Call, request) -> HttpResponse:
    await pipeline.authenticate_call(call, request)
    call.parsed = anthropic_messages.parse_messages(load_json(request))
    await pipeline.route(call)
    await pipeline.admit(call)
    if call.parsed.request.stream:
        return await stream_chat(call, lambda model: message_stream_writer(call, model))
    result, outcome = await complete_chat(call)
    body = anthropic_replies.message_body(
        result, outcome.usage, request_id=call.request_id, model=result.model or call.parsed.model
    )
    return pipeline.respond_json(call, outcome, body)


def message_stream_writer(call: Call, model: str) -> anthropic_replies.MessageStreamWriter:
    return anthropic_replies.MessageStreamWriter(
        request_id=call.request_id,
        model=model,
        input_tokens=estimate_messages_tokens(call.parsed.request.messages),
    )


@allow_methods("POST")
async def count_tokens(request) -> HttpResponse:
    """An estimate of the prompt's tokens; it calls no provider, so it is neither limited nor
    billed, and leaves no usage record."""
    call = pipeline.begin(request, "messages.count_tokens", ANTHROPIC)
    try:
        await pipeline.authenticate_call(call, request)
        call.parsed = anthropic_messages.parse_count_tokens(load_json(request))
        await pipeline.route(call)  # 404 for an unknown model, 403 for one the plan excludes
    except ApiError as error:
        return error.response({"X-Request-ID": call.request_id}, ANTHROPIC)
    tokens = anthropic_messages.count_input_tokens(call.parsed)
    return JsonResponse({"input_tokens": tokens}, headers={"X-Request-ID": call.request_id})


@api_view("responses")
async def responses(call: Call, request) -> HttpResponse:
    await pipeline.authenticate_call(call, request)
    call.parsed = openai_responses.parse_responses(load_json(request))
    await pipeline.route(call)
    await pipeline.admit(call)
    if call.parsed.request.stream:
        return await stream_chat(
            call,
            lambda model: openai_response_objects.ResponseStreamWriter(response_shape(call, model)),
        )
    result, outcome = await complete_chat(call)
    shape = response_shape(call, result.model or call.parsed.model)
    body = openai_response_objects.response_body(shape, result, outcome.usage)
    return pipeline.respond_json(call, outcome, body)


def response_shape(call: Call, model: str) -> openai_response_objects.ResponseShape:
    return openai_response_objects.ResponseShape(call.parsed.body, call.request_id, model)
