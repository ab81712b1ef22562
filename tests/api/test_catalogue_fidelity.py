"""Every chat model of the shipped catalogue, through the official openai SDK and the live gateway,
against strict fakes of every provider: each request either succeeds or gets the gateway's own
clear 400 (never a provider's refusal passed through).

Also every refused cell of the README's translation matrix, as the 400 a client sees.
"""

from __future__ import annotations

import json

import jsonschema
import openai
import pytest

from analytics.recording import flush_pending_usage
from llm import params
from llm.api.auth import forget_cached_keys
from llm.catalog import load_catalog, set_catalog
from llm.http import set_client
from llm.runtime import configure_runtime
from llm.types import ChatRequest
from tests.api.conftest import _close_shared_client
from tests.llm.strict import StrictUpstreams
from tests.llm.test_provider_fidelity import KEYS, STRICT_TOOL

pytestmark = pytest.mark.django_db(transaction=True)

ENVIRON = KEYS | {"GATEWAY_DEMO_PROVIDER": "1"}
CATALOG = load_catalog(environ=ENVIRON)
CHAT_MODELS = sorted(m.id for m in CATALOG.models.values() if "chat" in m.capabilities)
GATEWAY_400_CODES = {"unsupported_capability", "unsupported_parameter"}
QUESTION = [
    {"role": "system", "content": "Answer in one sentence."},
    {"role": "user", "content": "What is the capital of France?"},
]
ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    "required": ["city", "country"],
    "additionalProperties": False,
}
PIXEL = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8"
    "z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture
def strict(gateway_server, transactional_db, settings, org, plans):
    """The gateway serves the shipped catalogue; every provider is a strict fake."""
    org.plan = "enterprise"  # room for every model's requests in one minute
    org.save(update_fields=["plan"])
    upstreams = StrictUpstreams()
    set_catalog(CATALOG)
    configure_runtime(None)
    set_client(upstreams.client())
    settings.GATEWAY_RETRY_BACKOFF_SECONDS = 0.0
    forget_cached_keys()
    yield upstreams
    gateway_server.call(_close_shared_client())
    flush_pending_usage()
    forget_cached_keys()


@pytest.fixture
def client(gateway_server, strict, key):
    sdk = openai.OpenAI(base_url=f"{gateway_server.url}/v1", api_key=key, max_retries=0)
    yield sdk
    sdk.close()


def expect_success(model_id: str, need: str | None, request: ChatRequest) -> bool:
    """What the catalogue promises for this model: capable, and no parameter refused."""
    model = CATALOG.models[model_id]
    if need and need not in model.capabilities:
        return False
    return params.decide(model.params, request, model_id).refused is None


def gateway_400(error: openai.BadRequestError, model: str, strict: StrictUpstreams) -> None:
    assert error.status_code == 400
    assert error.code in GATEWAY_400_CODES, error.body
    assert model in error.message
    assert strict.requests == []  # decided by the gateway: no provider was asked


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_every_chat_model_answers_or_gives_the_gateways_own_400(client, strict, model) -> None:
    # 1. A plain request.
    reply = client.chat.completions.create(model=model, messages=QUESTION, max_completion_tokens=64)
    assert reply.choices[0].message.content
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0

    # 2. A stream with usage.
    chunks = list(
        client.chat.completions.create(
            model=model,
            messages=QUESTION,
            max_completion_tokens=64,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens > 0

    # 3. A forced strict tool call.
    strict.requests.clear()
    forced = {"type": "function", "function": {"name": "get_weather"}}
    tool_request = ChatRequest(model=model, messages=QUESTION, tools=[STRICT_TOOL])
    tool_request.tool_choice = forced
    if expect_success(model, "tools", tool_request):
        reply = client.chat.completions.create(
            model=model, messages=QUESTION, tools=[STRICT_TOOL], tool_choice=forced
        )
        [call] = reply.choices[0].message.tool_calls
        assert call.function.name == "get_weather"
        arguments = json.loads(call.function.arguments)
        jsonschema.validate(arguments, STRICT_TOOL["function"]["parameters"])
    else:
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(
                model=model, messages=QUESTION, tools=[STRICT_TOOL], tool_choice=forced
            )
        gateway_400(caught.value, model, strict)

    # 4. A json_schema (strict) response.
    strict.requests.clear()
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "answer", "strict": True, "schema": ANSWER_SCHEMA},
    }
    schema_request = ChatRequest(model=model, messages=QUESTION, response_format=response_format)
    if expect_success(model, "structured", schema_request):
        reply = client.chat.completions.create(
            model=model, messages=QUESTION, response_format=response_format
        )
        jsonschema.validate(json.loads(reply.choices[0].message.content), ANSWER_SCHEMA)
    else:
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(
                model=model, messages=QUESTION, response_format=response_format
            )
        gateway_400(caught.value, model, strict)

    # 5. An image part.
    strict.requests.clear()
    seeing = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What colour is this pixel?"},
                {"type": "image_url", "image_url": {"url": PIXEL}},
            ],
        }
    ]
    if expect_success(model, "vision", ChatRequest(model=model, messages=seeing)):
        reply = client.chat.completions.create(model=model, messages=seeing)
        assert reply.choices[0].message.content
    else:
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model=model, messages=seeing)
        gateway_400(caught.value, model, strict)


# --- the refused cells of the translation matrix, as a client sees them ------------------------

REFUSED = [
    # (model, extra request fields, parameter named in the 400)
    ("gpt-5", {"stop": ["\n"]}, "stop"),
    ("gpt-5", {"logprobs": True}, "logprobs"),
    ("claude-sonnet-4-5", {"seed": 7}, "seed"),
    ("claude-sonnet-4-5", {"logprobs": True}, "logprobs"),
    ("claude-sonnet-4-5", {"reasoning_effort": "low"}, "reasoning_effort"),
    ("claude-sonnet-4-5", {"temperature": 1.5}, "temperature"),
    ("gemini-2.5-flash", {"logprobs": True}, "logprobs"),
    ("gemini-2.5-flash", {"parallel_tool_calls": False, "tools": [STRICT_TOOL]}, None),
    ("groq/llama-3.3-70b-versatile", {"logprobs": True}, "logprobs"),
    ("groq/llama-3.3-70b-versatile", {"logit_bias": {"1": 1}}, "logit_bias"),
    ("together/llama-3.3-70b-instruct-turbo", {"logprobs": True}, "logprobs"),
    ("mistral-small-2506", {"logprobs": True}, "logprobs"),
    ("mistral-small-2506", {"reasoning_effort": "low"}, "reasoning_effort"),
    ("command-a-03-2025", {"logprobs": True}, "logprobs"),
    ("ollama/llama3.2", {"tool_choice": "required", "tools": [STRICT_TOOL]}, "tool_choice"),
    ("sonar", {"top_p": 0.5}, "top_p"),
    ("sonar", {"stop": ["\n"]}, "stop"),
    ("deepseek-chat", {"seed": 7}, "seed"),
    ("deepseek-reasoner", {"logprobs": True}, "logprobs"),
    ("gpt-4o-mini", {"reasoning_effort": "low"}, "reasoning_effort"),
    ("gpt-4o-mini", {"n": 2}, "n"),
    ("openrouter/gpt-5-mini", {"stop": ["\n"]}, "stop"),
    ("command-a-03-2025", {"parallel_tool_calls": False, "tools": [STRICT_TOOL]}, None),
    ("command-a-03-2025", {"reasoning_effort": "low"}, "reasoning_effort"),
    ("ollama/llama3.2", {"parallel_tool_calls": False, "tools": [STRICT_TOOL]}, None),
    ("ollama/llama3.2", {"logprobs": True}, "logprobs"),
    ("ollama/llama3.2", {"reasoning_effort": "low"}, "reasoning_effort"),
    ("together/gpt-oss-120b", {"parallel_tool_calls": True, "tools": [STRICT_TOOL]}, None),
    ("huggingface/gpt-oss-120b", {"parallel_tool_calls": True, "tools": [STRICT_TOOL]}, None),
    ("deepseek-chat", {"parallel_tool_calls": True, "tools": [STRICT_TOOL]}, None),
    ("sonar", {"seed": 7}, "seed"),
    ("sonar", {"logprobs": True}, "logprobs"),
    ("sonar", {"reasoning_effort": "low"}, "reasoning_effort"),
    ("sonar", {"parallel_tool_calls": True}, None),
]


@pytest.mark.parametrize(
    ("model", "fields", "param"), REFUSED, ids=[f"{m}-{p or 'parallel'}" for m, _f, p in REFUSED]
)
def test_a_refused_matrix_cell_is_the_gateways_400_naming_the_parameter(
    client, strict, model, fields, param
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=model, messages=QUESTION, **fields)

    error = caught.value
    assert error.status_code == 400
    assert error.body["param"] == (param or "parallel_tool_calls")
    assert error.body["type"] == "invalid_request_error"
    if param != "n":
        assert error.code == "unsupported_parameter" and model in error.message
    assert strict.requests == []


MISSING_CAPABILITY = [
    # (model, request fields): the model lacks the capability in the catalogue
    ("sonar", {"response_format": {"type": "json_object"}}),
    ("huggingface/llama-3.3-70b-instruct", {"response_format": {"type": "json_object"}}),
    ("claude-sonnet-5-5", {"response_format": {"type": "json_object"}}),
    ("sonar", {"tools": [STRICT_TOOL]}),
    ("deepseek-reasoner", {"tools": [STRICT_TOOL]}),
]


@pytest.mark.parametrize(("model", "fields"), MISSING_CAPABILITY)
def test_a_missing_capability_is_the_gateways_400_naming_the_model(client, strict, model, fields):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=model, messages=QUESTION, **fields)

    gateway_400(caught.value, model, strict)
    assert caught.value.code == "unsupported_capability"


def test_temperature_zero_on_gpt5_is_dropped_and_said_in_a_header(client, strict) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-5-mini", messages=QUESTION, temperature=0
    )

    assert raw.parse().choices[0].message.content
    assert raw.headers["x-gateway-params-dropped"].startswith("temperature (")
    [(_provider, _path, sent)] = strict.requests
    assert "temperature" not in sent


def test_an_alias_skips_candidates_that_refuse_and_says_which_in_a_header(client, strict):
    raw = client.chat.completions.with_raw_response.create(
        model="open-weights", messages=QUESTION, logprobs=True, top_logprobs=2
    )

    assert raw.parse().choices[0].message.content
    assert raw.headers["x-gateway-provider"] == "huggingface"
    skipped = raw.headers["x-gateway-route-skipped"]
    assert "groq/llama-3.1-8b-instant (refuses logprobs)" in skipped
    assert "together/llama-3.3-70b-instruct-turbo (refuses logprobs)" in skipped
    assert "ollama/llama3.2 (refuses logprobs)" in skipped
    [(provider, _path, sent)] = strict.requests
    assert (provider, sent["logprobs"], sent["top_logprobs"]) == ("huggingface", True, 2)


def test_logprobs_come_back_where_the_provider_gives_them(client, strict) -> None:
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=QUESTION, logprobs=True, top_logprobs=1
    )
    assert reply.choices[0].logprobs.content[0].token == "Paris"

    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=QUESTION, logprobs=True, stream=True
        )
    )
    tokens = [
        c.choices[0].logprobs.content[0].token
        for c in chunks
        if c.choices and c.choices[0].logprobs
    ]
    assert tokens and set(tokens) == {"Paris"}


TOOL_MODELS = sorted(m.id for m in CATALOG.models.values() if "tools" in m.capabilities)


@pytest.mark.parametrize("model", TOOL_MODELS)
def test_every_model_with_tools_takes_a_strict_json_schema_tool(client, strict, model) -> None:
    reply = client.chat.completions.create(
        model=model, messages=QUESTION, tools=[STRICT_TOOL], tool_choice="auto"
    )

    assert reply.choices[0].message.content or reply.choices[0].message.tool_calls
    if strict.requests:  # the demo provider answers locally
        [(_provider, _path, sent)] = strict.requests
        assert "get_weather" in json.dumps(sent)


def test_a_stream_says_what_was_dropped_in_its_headers(client, strict) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="claude-sonnet-4-5", messages=QUESTION, temperature=0.2, top_p=0.9, stream=True
    ) as response:
        text = "".join(
            chunk.choices[0].delta.content or "" for chunk in response.parse() if chunk.choices
        )
        dropped = response.headers["x-gateway-params-dropped"]

    assert text
    assert dropped.startswith("top_p (Claude 4.5 models take temperature or top_p")
    [(_provider, _path, sent)] = strict.requests
    assert sent["temperature"] == 0.2 and "top_p" not in sent
