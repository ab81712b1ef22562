"""Coding agents through the gateway to an Anthropic upstream: a Claude-Code-style streamed
tool-use exchange on /v1/messages (translated into the internal request and back into
Anthropic's wire format by the provider dialect), and the Responses API's function-call turn on
the same upstream. The fake upstream refuses what Anthropic refuses."""

from __future__ import annotations

import json
import textwrap

import httpx
import openai
import pytest

from llm.catalog import build_catalog, set_catalog
from tests.api.fake_anthropic import FakeAnthropic
from tests.api.loopback import ServerThread
from tests.api.usage import wait_for_usage

pytestmark = pytest.mark.django_db(transaction=True)

CATALOG = textwrap.dedent(
    """\
    providers:
      anthropic: {{name: Anthropic, dialect: anthropic, base_url: "{url}"}}
    models:
      - id: claude-sonnet
        provider: anthropic
        upstream: claude-sonnet-4-5-20250929
        prices: [{{valid_from: 2025-09-29, input_per_mtok: "3", output_per_mtok: "15"}}]
        context_window: 200000
        max_output_tokens: 64000
        capabilities: [chat, stream, tools, json, structured, vision]
        quality_rank: 1
        speed_rank: 1
    """
)
BASH_TOOL = {
    "name": "Bash",
    "description": "Run a shell command.",
    "input_schema": {
        "type": "object",
        "properties": {"command": {"type": "string"}},
        "required": ["command"],
    },
}


@pytest.fixture(scope="session")
def anthropic_server():
    fake = FakeAnthropic()
    server = ServerThread(fake).start()
    yield fake, server.url
    server.stop()


@pytest.fixture
def claude_upstream(anthropic_server, upstreams):
    fake, url = anthropic_server
    fake.script.clear()
    fake.requests.clear()
    set_catalog(build_catalog(CATALOG.format(url=url), {"ANTHROPIC_API_KEY": "sk-ant-test"}))
    return fake


def claude_code_post(gateway: str, key: str, body: dict) -> str:
    """POST as Claude Code does (Bearer token, anthropic-version, a beta header); the raw SSE."""
    headers = {
        "Authorization": f"Bearer {key}",
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "fine-grained-tool-streaming-2025-05-14",
        "content-type": "application/json",
    }
    with httpx.stream("POST", f"{gateway}/v1/messages", json=body, headers=headers) as response:
        assert response.status_code == 200, response.read()
        return response.read().decode()


def sse_events(raw: str) -> list[tuple[str, dict]]:
    events = []
    for frame in raw.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in frame.split("\n"))
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_claude_code_tool_use_exchange(gateway, key, claude_upstream, tmp_path):
    claude_upstream.then_tool_use("toolu_01", "Bash", {"command": "ls"})
    claude_upstream.then_text("There are two files: README.md and main.py.")
    first = {
        "model": "claude-sonnet",
        "max_tokens": 8000,  # within the Free plan's 20,000 tokens a minute
        "stream": True,
        "system": [
            {
                "type": "text",
                "text": "You are a coding agent.",
                "cache_control": {"type": "ephemeral"},
            }
        ],
        "tools": [BASH_TOOL],
        "metadata": {"user_id": "session-1"},
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "What files are here?"}]}
        ],
    }
    raw_first = claude_code_post(gateway, key, first)
    events = sse_events(raw_first)
    assert [name for name, _ in events] == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    block = events[1][1]["content_block"]
    assert (block["type"], block["id"], block["name"]) == ("tool_use", "toolu_01", "Bash")
    assert json.loads(events[3][1]["delta"]["partial_json"]) == {"command": "ls"}
    assert events[5][1]["delta"]["stop_reason"] == "tool_use"
    assert events[5][1]["usage"]["input_tokens"] == 21
    assert events[5][1]["usage"]["output_tokens"] == 9
    upstream = claude_upstream.requests[-1]
    assert upstream["model"] == "claude-sonnet-4-5-20250929"
    assert upstream["system"] == "You are a coding agent."
    assert upstream["tools"] == [BASH_TOOL]

    second = {
        **first,
        "messages": [
            *first["messages"],
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "toolu_01",
                        "name": "Bash",
                        "input": {"command": "ls"},
                    }
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_01",
                        "content": "README.md\nmain.py",
                    }
                ],
            },
        ],
    }
    raw_second = claude_code_post(gateway, key, second)
    text = "".join(
        data["delta"]["text"]
        for name, data in sse_events(raw_second)
        if name == "content_block_delta"
    )
    assert text == "There are two files: README.md and main.py."
    # The upstream got Anthropic's own tool_use / tool_result pairing back (it checks the ids).
    assert claude_upstream.requests[-1]["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_01", "name": "Bash", "input": {"command": "ls"}}
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": "README.md\nmain.py"}
            ],
        },
    ]
    records = wait_for_usage(2)
    assert [(r.endpoint, r.provider, r.status, r.stream) for r in records] == [
        ("messages", "anthropic", 200, True)
    ] * 2
    # 21 in at $3/M + 9 out at $15/M
    assert [str(r.cost) for r in records] == ["0.00019800"] * 2
    transcript = "\n".join(
        [
            "POST /v1/messages",
            json.dumps(first, indent=2),
            "-> 200 text/event-stream",
            raw_first,
            "POST /v1/messages",
            json.dumps(second, indent=2),
            "-> 200 text/event-stream",
            raw_second,
        ]
    )
    (tmp_path / "claude_code_tool_use.txt").write_text(transcript)


def test_responses_function_call_turn_on_an_anthropic_upstream(gateway, key, claude_upstream):
    claude_upstream.then_tool_use("toolu_07", "get_weather", {"city": "Oslo"})
    claude_upstream.then_text("4 °C and snowing in Oslo.")
    tool = {
        "type": "function",
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    with openai.OpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0) as client:
        first = client.responses.create(
            model="claude-sonnet", input="Weather in Oslo?", tools=[tool], max_output_tokens=500
        )
        [call] = first.output
        assert (call.call_id, call.name, json.loads(call.arguments)) == (
            "toolu_07",
            "get_weather",
            {"city": "Oslo"},
        )
        events = list(
            client.responses.create(
                model="claude-sonnet",
                tools=[tool],
                max_output_tokens=500,
                stream=True,
                input=[
                    {"role": "user", "content": "Weather in Oslo?"},
                    call.model_dump(exclude_none=True),
                    {"type": "function_call_output", "call_id": "toolu_07", "output": "4 °C"},
                ],
            )
        )
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == "4 °C and snowing in Oslo."
    assert events[-1].response.usage.output_tokens == 9
    assert claude_upstream.requests[-1]["messages"][-1] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "toolu_07", "content": "4 °C"}],
    }
    assert [r.endpoint for r in wait_for_usage(2)] == ["responses", "responses"]
