"""Each mismatch the provider-fidelity issue found, against strict fakes of the real APIs.

For every row: the shipped catalogue's parameter rules make the request one the provider
accepts, and the same request without the rules is refused by the fake exactly as the provider
refuses it (so the fake is strict enough to catch the bug).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from llm import failover, params
from llm.catalog import Catalog, load_catalog
from llm.errors import UnsupportedParameterError
from llm.providers import get_dialect
from llm.routing import resolve
from llm.runtime import Runtime
from llm.types import ChatRequest, ErrorKind, ProviderError
from tests.llm.conftest import FakeClock, make_runtime
from tests.llm.fakes import collect, text_of
from tests.llm.strict import ANSWER, COMPLETION_TOKENS, PROMPT_TOKENS, StrictUpstreams

KEYS = {
    f"{name}_API_KEY": f"key-{name.lower()}"
    for name in [
        "OPENAI",
        "ANTHROPIC",
        "GEMINI",
        "GROQ",
        "TOGETHER",
        "MISTRAL",
        "COHERE",
        "HUGGINGFACE",
        "OPENROUTER",
        "PERPLEXITY",
        "DEEPSEEK",
    ]
} | {"OLLAMA_BASE_URL": "http://localhost:11434"}

STRICT_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "strict": True,
        "parameters": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "const": "celsius"},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(environ=KEYS)


@pytest.fixture
def upstreams() -> StrictUpstreams:
    return StrictUpstreams()


@pytest.fixture
async def runtime(upstreams):
    client = upstreams.client()
    rt = dataclasses.replace(
        make_runtime(FakeClock()), client=lambda: client, utcnow=lambda: datetime.now(UTC)
    )
    yield rt
    await client.aclose()


def ask(**fields) -> ChatRequest:
    base = {"model": "", "messages": [{"role": "user", "content": "Capital of France?"}]}
    return ChatRequest(**(base | fields))


async def complete(catalog: Catalog, runtime: Runtime, model: str, request: ChatRequest):
    plan = resolve(catalog, model, request=request, now=datetime.now(UTC))
    return await failover.complete(plan, request, deadline=10, runtime=runtime)


async def stream(catalog: Catalog, runtime: Runtime, model: str, request: ChatRequest):
    plan = resolve(catalog, model, needs={"chat", "stream"}, request=request)
    chat = failover.stream(plan, request, deadline=10, runtime=runtime)
    return await collect(chat), chat.route


async def send_raw(catalog: Catalog, runtime: Runtime, model: str, request: ChatRequest):
    """The request as the gateway sent it before the rules: every parameter, OpenAI's names."""
    entry = catalog.models[model]
    provider = catalog.provider(entry.provider)
    raw = dataclasses.replace(request, model=entry.upstream)
    dialect = get_dialect(provider.dialect)
    if request.stream:
        return await collect(dialect.stream(runtime.client(), provider, raw))
    return await dialect.chat(runtime.client(), provider, raw)


# --- Mistral ---------------------------------------------------------------------------------


async def test_mistral_streams_without_stream_options_and_reads_usage_from_the_last_chunk(
    catalog, runtime, upstreams
) -> None:
    events, route = await stream(catalog, runtime, "mistral-small-2506", ask(stream=True))

    [sent] = upstreams.sent_to("mistral")
    assert "stream_options" not in sent
    assert text_of(events) == ANSWER
    assert (route.charge.usage.input_tokens, route.charge.usage.output_tokens) == (
        PROMPT_TOKENS,
        COMPLETION_TOKENS,
    )


async def test_mistral_refuses_stream_options_with_422_extra_forbidden(catalog, runtime) -> None:
    with pytest.raises(ProviderError) as caught:
        await send_raw(catalog, runtime, "mistral-small-2506", ask(stream=True))

    error = caught.value
    assert (error.kind, error.status) == (ErrorKind.BAD_REQUEST, 422)
    assert "Extra inputs are not permitted" in error.message


async def test_mistral_gets_the_seed_as_random_seed_and_no_user(catalog, runtime, upstreams):
    result, info = await complete(catalog, runtime, "mistral-small-2506", ask(seed=7, user="u-1"))

    [sent] = upstreams.sent_to("mistral")
    assert sent["random_seed"] == 7
    assert "seed" not in sent and "user" not in sent
    assert result.text == ANSWER
    assert "user" in info.headers()["X-Gateway-Params-Dropped"]


@pytest.mark.parametrize("field", [{"seed": 7}, {"user": "u-1"}])
async def test_mistral_refuses_seed_and_user_under_their_openai_names(catalog, runtime, field):
    with pytest.raises(ProviderError) as caught:
        await send_raw(catalog, runtime, "mistral-small-2506", ask(**field))
    assert caught.value.status == 422
    assert not caught.value.retryable  # which is why failover never helped


# --- OpenAI gpt-5 family ---------------------------------------------------------------------


async def test_gpt5_gets_max_completion_tokens_and_loses_temperature_zero_with_a_header(
    catalog, runtime, upstreams
) -> None:
    result, info = await complete(
        catalog, runtime, "gpt-5-mini", ask(max_tokens=200, temperature=0.0)
    )

    [sent] = upstreams.sent_to("openai")
    assert sent["max_completion_tokens"] == 200
    assert "max_tokens" not in sent and "temperature" not in sent
    assert result.text == ANSWER
    assert info.headers()["X-Gateway-Params-Dropped"].startswith("temperature (")


@pytest.mark.parametrize(
    ("field", "code"),
    [({"max_tokens": 200}, "unsupported_parameter"), ({"temperature": 0.0}, "unsupported_value")],
)
async def test_gpt5_refuses_max_tokens_and_temperature_other_than_one(
    catalog, runtime, field, code
) -> None:
    with pytest.raises(ProviderError) as caught:
        await send_raw(catalog, runtime, "gpt-5", ask(**field))
    assert caught.value.status == 400
    assert caught.value.body["error"]["code"] == code


async def test_gpt5_keeps_temperature_one(catalog, runtime, upstreams) -> None:
    _, info = await complete(catalog, runtime, "gpt-5", ask(temperature=1))

    assert upstreams.sent_to("openai")[0]["temperature"] == 1
    assert "X-Gateway-Params-Dropped" not in info.headers()


async def test_a_named_gpt5_refuses_stop_with_the_gateways_own_error(catalog) -> None:
    with pytest.raises(UnsupportedParameterError) as caught:
        resolve(catalog, "gpt-5", request=ask(stop=["\n"]))
    assert (caught.value.param, caught.value.models) == ("stop", ["gpt-5"])


# --- Anthropic Claude 4.5 ------------------------------------------------------------------


async def test_claude_45_gets_temperature_without_top_p(catalog, runtime, upstreams) -> None:
    result, info = await complete(
        catalog, runtime, "claude-sonnet-4-5", ask(temperature=0.3, top_p=0.9)
    )

    [sent] = upstreams.sent_to("anthropic")
    assert sent["temperature"] == 0.3 and "top_p" not in sent
    assert result.text == ANSWER
    assert info.headers()["X-Gateway-Params-Dropped"].startswith("top_p (")


async def test_claude_45_keeps_top_p_alone(catalog, runtime, upstreams) -> None:
    await complete(catalog, runtime, "claude-haiku-4-5", ask(top_p=0.9))

    assert upstreams.sent_to("anthropic")[0]["top_p"] == 0.9


async def test_claude_45_refuses_temperature_and_top_p_together(catalog, runtime) -> None:
    with pytest.raises(ProviderError) as caught:
        await send_raw(catalog, runtime, "claude-opus-4-5", ask(temperature=0.3, top_p=0.9))
    assert caught.value.status == 400
    assert "cannot both be specified" in caught.value.message


# --- Gemini ----------------------------------------------------------------------------------


async def test_gemini_takes_a_strict_json_schema_tool_as_parameters_json_schema(
    catalog, runtime, upstreams
) -> None:
    request = ask(
        tools=[STRICT_TOOL], tool_choice={"type": "function", "function": {"name": "get_weather"}}
    )
    result, _ = await complete(catalog, runtime, "gemini-2.5-flash", request)

    [sent] = upstreams.sent_to("gemini")
    [declaration] = sent["tools"][0]["functionDeclarations"]
    assert declaration["parametersJsonSchema"] == STRICT_TOOL["function"]["parameters"]
    assert "parameters" not in declaration and "strict" not in declaration
    assert result.tool_calls[0].name == "get_weather"
    assert result.tool_calls[0].arguments == '{"city": "Paris", "unit": "celsius"}'


async def test_gemini_refuses_json_schema_keywords_in_parameters(upstreams) -> None:
    async with upstreams.client() as client:
        declaration = {
            "name": "get_weather",
            **{"parameters": STRICT_TOOL["function"]["parameters"]},
        }
        response = await client.post(
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent",
            json={
                "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                "tools": [{"functionDeclarations": [declaration]}],
            },
        )

    assert response.status_code == 400
    message = response.json()["error"]["message"]
    for keyword in ("$schema", "additionalProperties", "const"):
        assert f'Unknown name "{keyword}"' in message


async def test_gemini_gets_images_as_inline_data_and_file_data(catalog, runtime, upstreams):
    content = [
        {"type": "text", "text": "What is in these?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.webp"}},
    ]
    await complete(
        catalog, runtime, "gemini-2.5-flash", ask(messages=[{"role": "user", "content": content}])
    )

    parts = upstreams.sent_to("gemini")[0]["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}
    assert parts[2] == {
        "fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/cat.webp"}
    }


# --- Groq ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field", [{"logprobs": True}, {"top_logprobs": 2}, {"logit_bias": {"50256": -100}}]
)
async def test_groq_models_refuse_what_groq_answers_400_for(catalog, runtime, field) -> None:
    request = ask(extra=field)
    with pytest.raises(UnsupportedParameterError) as caught:
        resolve(catalog, "groq/llama-3.1-8b-instant", request=request)
    assert caught.value.param == next(iter(field))
    with pytest.raises(ProviderError) as upstream:
        await send_raw(catalog, runtime, "groq/llama-3.1-8b-instant", request)
    assert upstream.value.status == 400


async def test_groq_gets_no_message_names_and_reports_usage_in_x_groq(
    catalog, runtime, upstreams
) -> None:
    named = ask(messages=[{"role": "user", "name": "ada", "content": "Hi"}], stream=True)
    events, route = await stream(catalog, runtime, "groq/llama-3.3-70b-versatile", named)

    [sent] = upstreams.sent_to("groq")
    assert "name" not in sent["messages"][0]
    assert text_of(events) == ANSWER
    assert route.charge.usage.output_tokens == COMPLETION_TOKENS
    with pytest.raises(ProviderError) as caught:
        await send_raw(catalog, runtime, "groq/llama-3.3-70b-versatile", ask(**vars(named)))
    assert caught.value.status == 400


async def test_an_alias_skips_the_groq_candidate_that_refuses_logprobs(catalog) -> None:
    catalog = dataclasses.replace(
        catalog,
        aliases={
            **catalog.aliases,
            "pair": dataclasses.replace(
                catalog.aliases["smart"],
                name="pair",
                models=("groq/llama-3.1-8b-instant", "gpt-4o-mini"),
            ),
        },
    )
    plan = resolve(catalog, "pair", request=ask(extra={"logprobs": True}))

    assert plan.candidate_ids() == ["gpt-4o-mini"]
    assert plan.headers()["X-Gateway-Route-Skipped"] == (
        "groq/llama-3.1-8b-instant (refuses logprobs)"
    )


# --- Perplexity ------------------------------------------------------------------------------


async def test_perplexity_sonar_goes_to_the_agent_api_with_web_search(
    catalog, runtime, upstreams
) -> None:
    request = ask(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Capital of France?"},
        ],
        max_tokens=100,
    )
    result, _ = await complete(catalog, runtime, "sonar", request)

    [(provider, path, sent)] = upstreams.requests
    assert (provider, path) == ("perplexity", "/v1/agent")
    assert sent["model"] == "perplexity/sonar"
    assert sent["tools"] == [{"type": "web_search"}] and sent["max_steps"] == 1
    assert sent["instructions"] == "Be brief."
    assert sent["input"] == [{"role": "user", "content": "Capital of France?"}]
    assert sent["max_output_tokens"] == 100
    assert result.text == ANSWER and result.citations == ["https://en.wikipedia.org/wiki/Paris"]
    assert (result.usage.input_tokens, result.usage.output_tokens) == (
        PROMPT_TOKENS,
        COMPLETION_TOKENS,
    )


async def test_perplexity_sonar_pro_is_the_pro_search_preset_and_streams_usage(
    catalog, runtime, upstreams
) -> None:
    events, route = await stream(catalog, runtime, "sonar-pro", ask(stream=True))

    [sent] = upstreams.sent_to("perplexity")
    assert sent["preset"] == "pro-search" and "model" not in sent
    assert text_of(events) == ANSWER
    assert route.charge.usage.input_tokens == PROMPT_TOKENS


async def test_the_retired_sonar_chat_completions_path_answers_410(upstreams) -> None:
    async with upstreams.client() as client:
        response = await client.post(
            "https://api.perplexity.ai/chat/completions",
            json={"model": "sonar", "messages": [{"role": "user", "content": "hi"}]},
        )
    assert response.status_code == 410


def test_perplexity_prices_follow_the_agent_api_from_its_switch_date(catalog) -> None:
    sonar = catalog.models["sonar"]
    assert sonar.price_at(datetime(2026, 9, 26, tzinfo=UTC)).input_per_mtok == 1
    after = sonar.price_at(datetime(2026, 9, 27, tzinfo=UTC))
    assert (str(after.input_per_mtok), str(after.per_request)) == ("0.25", "0.005")


# --- every OpenAI-compatible provider ----------------------------------------------------------


OPENAI_DIALECT_MODELS = [
    "gpt-4o-mini",
    "groq/llama-3.3-70b-versatile",
    "together/llama-3.3-70b-instruct-turbo",
    "mistral-small-2506",
    "huggingface/llama-3.3-70b-instruct",
    "openrouter/gpt-5-mini",
    "deepseek-chat",
]


@pytest.mark.parametrize("model", OPENAI_DIALECT_MODELS)
def test_no_openai_dialect_model_forwards_a_parameter_its_provider_does_not_list(
    catalog, model
) -> None:
    rules = catalog.models[model].params
    assert rules.default.action == "refuse"
    for param in params.PARAMS:
        rule = rules.rule(param)
        assert rule.action in params.ACTIONS
        if param not in rules.rules:
            assert rule.action == "refuse", (model, param)


@pytest.mark.parametrize("model", ["mistral-small-2506", "groq/llama-3.1-8b-instant"])
def test_an_unlisted_openai_parameter_is_the_gateways_400_not_the_providers(catalog, model):
    with pytest.raises(UnsupportedParameterError) as caught:
        resolve(catalog, model, request=ask(extra={"verbosity": "low"}))
    assert caught.value.param == "verbosity"


# --- per-model rules: Claude Sonnet 5.5 ------------------------------------------------------


async def test_sonnet_55_gets_no_sampling_parameters_and_says_so(catalog, runtime, upstreams):
    result, info = await complete(
        catalog, runtime, "claude-sonnet-5-5", ask(temperature=0.2, top_p=0.5)
    )

    [sent] = upstreams.sent_to("anthropic")
    assert "temperature" not in sent and "top_p" not in sent
    assert result.text == ANSWER
    dropped = info.headers()["X-Gateway-Params-Dropped"]
    assert dropped.startswith("temperature (") and "top_p (" in dropped


def test_sonnet_55_refuses_forced_tool_use_before_anthropic_does(catalog) -> None:
    forced = ask(tools=[STRICT_TOOL], tool_choice="required")
    with pytest.raises(UnsupportedParameterError) as caught:
        resolve(catalog, "claude-sonnet-5-5", request=forced)
    assert caught.value.param == "tool_choice"


async def test_anthropic_answers_400_to_forced_tool_use_on_sonnet_55(catalog, runtime) -> None:
    forced = ask(tools=[STRICT_TOOL], tool_choice="required")
    with pytest.raises(ProviderError) as caught:
        await send_raw(catalog, runtime, "claude-sonnet-5-5", forced)
    assert caught.value.status == 400


# --- translations the matrix promises ----------------------------------------------------------


async def test_cohere_gets_strict_tools_request_wide(catalog, runtime, upstreams) -> None:
    forced = {"type": "function", "function": {"name": "get_weather"}}
    result, _ = await complete(
        catalog, runtime, "command-a-03-2025", ask(tools=[STRICT_TOOL], tool_choice=forced)
    )

    [sent] = upstreams.sent_to("cohere")
    assert sent["strict_tools"] is True and sent["tool_choice"] == "REQUIRED"
    assert "strict" not in sent["tools"][0]["function"]
    assert result.tool_calls[0].name == "get_weather"


async def test_anthropic_gets_parallel_tool_calls_false_as_disable_parallel_tool_use(
    catalog, runtime, upstreams
) -> None:
    await complete(
        catalog,
        runtime,
        "claude-sonnet-4-5",
        ask(tools=[STRICT_TOOL], tool_choice="auto", extra={"parallel_tool_calls": False}),
    )

    [sent] = upstreams.sent_to("anthropic")
    assert sent["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert "strict" not in sent["tools"][0]
    assert sent["tools"][0]["input_schema"] == STRICT_TOOL["function"]["parameters"]


async def test_gemini_gets_reasoning_effort_as_a_thinking_budget(catalog, runtime, upstreams):
    await complete(
        catalog, runtime, "gemini-2.5-pro", ask(extra={"reasoning_effort": "low"}, seed=3)
    )

    config = upstreams.sent_to("gemini")[0]["generationConfig"]
    assert config["thinkingConfig"] == {"thinkingBudget": 1024}
    assert config["seed"] == 3


async def test_gemini_drops_parallel_tool_calls_true_and_says_so(catalog, runtime, upstreams):
    _, info = await complete(
        catalog,
        runtime,
        "gemini-2.5-flash",
        ask(tools=[STRICT_TOOL], extra={"parallel_tool_calls": True}),
    )

    assert "parallel_tool_calls" not in upstreams.sent_to("gemini")[0]
    assert info.headers()["X-Gateway-Params-Dropped"].startswith("parallel_tool_calls (")
