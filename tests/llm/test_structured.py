from __future__ import annotations

import json
from decimal import Decimal

import pytest

from llm.errors import InvalidSchemaError, StructuredOutputError
from llm.routing import resolve
from llm.structured import complete_structured, parse_json_answer
from llm.types import ChatRequest, Usage

from .conftest import NOW, ok_result

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
USAGE = Usage(input_tokens=1000, output_tokens=100)


def request() -> ChatRequest:
    # Long enough that the usage the fakes report is within what it could produce.
    return ChatRequest(model="x", messages=[{"role": "user", "content": "Who? " * 300}])


@pytest.fixture
def plan(catalog):
    return resolve(catalog, "b-mid", needs={"chat", "structured"}, now=NOW)


def answers(fake, *texts: str) -> None:
    fake.chats["beta-mid"] = [ok_result(t, usage=USAGE) for t in texts]


async def test_a_valid_answer_is_parsed_and_native_mode_is_requested(fake, runtime, plan):
    captured = []
    original_chat = fake.chat

    async def spy(client, provider, req):
        captured.append(req)
        return await original_chat(client, provider, req)

    fake.chat = spy
    answers(fake, '{"name": "Ada", "age": 36}')
    out = await complete_structured(
        plan, request(), SCHEMA, deadline=5, runtime=runtime, name="person"
    )
    assert out.value == {"name": "Ada", "age": 36} and out.attempts == 1
    assert captured[0].response_format == {
        "type": "json_schema",
        "json_schema": {"name": "person", "schema": SCHEMA, "strict": True},
    }


async def test_a_fenced_answer_is_accepted():
    assert parse_json_answer('```json\n{"a": 1}\n```') == {"a": 1}
    assert parse_json_answer('  {"a": 1} ') == {"a": 1}


async def test_one_bad_answer_is_repaired_and_both_attempts_are_paid_for(fake, runtime, plan):
    captured = []
    original_chat = fake.chat

    async def spy(client, provider, req):
        captured.append([dict(m) for m in req.messages])
        return await original_chat(client, provider, req)

    fake.chat = spy
    answers(fake, '{"name": "Ada", "age": "old"}', '{"name": "Ada", "age": 36}')
    out = await complete_structured(plan, request(), SCHEMA, deadline=5, runtime=runtime)
    assert out.value["age"] == 36 and out.attempts == 2
    follow_up = captured[1]
    assert follow_up[-2] == {"role": "assistant", "content": '{"name": "Ada", "age": "old"}'}
    assert "age: 'old' is not of type 'integer'" in follow_up[-1]["content"]
    assert [c.usage for c in out.charges] == [Usage(input_tokens=1000, output_tokens=100)] * 2
    # b-mid June row: 1000 x 2 + 100 x 10 = 3000 per million per attempt
    assert sum(c.cost for c in out.charges) == Decimal("0.00600000")


async def test_it_gives_up_after_the_repairs_with_the_validation_errors(fake, runtime, plan):
    answers(fake, "not json", '{"name": 1}', '{"name": "Ada"}')
    with pytest.raises(StructuredOutputError) as caught:
        await complete_structured(
            plan, request(), SCHEMA, deadline=5, runtime=runtime, max_repairs=2
        )
    error = caught.value
    assert error.http_status == 422 and error.attempts == 3
    assert error.errors == ["<root>: 'age' is a required property"]
    assert sum(c.usage.input_tokens for c in error.charges) == 3000
    assert sum(c.cost for c in error.charges) == Decimal("0.00900000")
    assert json.loads(error.last_text) == {"name": "Ada"}


async def test_a_broken_schema_is_refused_before_any_call(fake, runtime, plan):
    with pytest.raises(InvalidSchemaError) as caught:
        await complete_structured(plan, request(), {"type": "objekt"}, deadline=5, runtime=runtime)
    assert caught.value.http_status == 400
    assert fake.calls == []
