"""Hostile bodies get a 400 or 415 in OpenAI's error shape, never a 500, and bill nothing."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.api.test_bad_input import assert_nothing_billable

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def send(gateway, key):
    def post(data, path="/v1/chat/completions", content_type="application/json"):
        body = data if isinstance(data, bytes | str) else json.dumps(data)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": content_type}
        return httpx.post(f"{gateway}{path}", content=body, headers=headers, timeout=30)

    return post


def assert_openai_error(response, status):
    assert response.status_code == status, response.content[:300]
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert error["message"]
    return error


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/v1/generate", "/v1/embeddings"])
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_declared_json_is_415(send, path, content_type, upstreams):
    body = json.dumps({"model": "gpt-4o-mini", "messages": MESSAGES, "prompt": "hi"})
    error = assert_openai_error(send(body, path, content_type=content_type), 415)
    assert error["code"] == "unsupported_media_type"
    assert upstreams[0].requests == []
    assert_nothing_billable()


def test_json_with_a_charset_is_accepted(send):
    body = {"model": "gpt-4o-mini", "messages": MESSAGES}
    assert send(body, content_type="application/json; charset=utf-8").status_code == 200


@pytest.mark.parametrize("depth", [100, 5_000, 200_000])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/v1/generate-structured"])
def test_deeply_nested_json_is_400(send, depth, path):
    nested = "[" * depth + "]" * depth
    body = f'{{"model": "gpt-4o-mini", "messages": {nested}}}'
    error = assert_openai_error(send(body, path), 400)
    assert "nested" in error["message"]
    assert_nothing_billable()


def test_nesting_inside_a_message_is_capped_too(send):
    deep: object = "x"
    for _ in range(80):
        deep = {"a": deep}
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "metadata": deep}
    assert "nested" in assert_openai_error(send(body), 400)["message"]


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/v1/generate"])
def test_a_lone_surrogate_is_400(send, path, upstreams):
    raw = (
        '{"model": "gpt-4o-mini", "prompt": "bad \\ud800 text"}'
        if path.endswith("generate")
        else '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "a \\udfff b"}]}'
    )
    error = assert_openai_error(send(raw, path), 400)
    assert "surrogate" in error["message"]
    assert upstreams[0].requests == []


def test_a_proper_surrogate_pair_is_fine(send):
    raw = '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "\\ud83d\\ude00"}]}'
    assert send(raw).status_code == 200


def test_too_many_messages_is_400(send, settings):
    messages = [{"role": "user", "content": "hi"}] * (settings.GATEWAY_MAX_MESSAGES + 1)
    error = assert_openai_error(send({"model": "gpt-4o-mini", "messages": messages}), 400)
    assert error["param"] == "messages" and str(settings.GATEWAY_MAX_MESSAGES) in error["message"]


RECURSIVE_SCHEMAS = [
    {"$ref": "#"},
    {"anyOf": [{"$ref": "#"}]},
    {
        "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"allOf": [{"$ref": "#/$defs/a"}]}},
        "$ref": "#/$defs/a",
    },
    {"$ref": "https://example.com/schema.json"},
    {"$ref": "#/$defs/missing"},
]


@pytest.mark.parametrize("schema", RECURSIVE_SCHEMAS)
def test_recursive_or_remote_schemas_are_400(send, schema, upstreams):
    body = {"model": "gpt-4o-mini", "prompt": "a person", "schema": schema}
    error = assert_openai_error(send(body, "/api/v1/generate-structured"), 400)
    assert "$ref" in error["message"]
    assert upstreams[0].requests == []


def test_a_tree_schema_that_recurses_through_properties_is_fine(send, upstreams):
    upstreams[0].text = '{"name": "root", "children": [{"name": "leaf", "children": []}]}'
    tree = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "children": {"type": "array", "items": {"$ref": "#"}},
        },
        "required": ["name", "children"],
    }
    try:
        body = {"model": "gpt-4o-mini", "prompt": "a tree", "schema": tree}
        response = send(body, "/api/v1/generate-structured")
    finally:
        upstreams[0].text = "Hello from the upstream."
    assert response.status_code == 200, response.content[:300]
    assert response.json()["data"]["children"][0]["name"] == "leaf"


def test_an_oversized_schema_is_400(send, settings):
    schema = {
        "type": "object",
        "properties": {f"p{i}": {"type": "string"} for i in range(5000)},
    }
    body = {"model": "gpt-4o-mini", "prompt": "x", "schema": schema}
    error = assert_openai_error(send(body, "/api/v1/generate-structured"), 400)
    assert error["param"] == "schema" and "bytes" in error["message"]


def test_a_deep_schema_is_400(send):
    schema: dict = {"type": "string"}
    for _ in range(40):
        schema = {"type": "array", "items": schema}
    body = {"model": "gpt-4o-mini", "prompt": "x", "schema": schema}
    error = assert_openai_error(send(body, "/api/v1/generate-structured"), 400)
    assert error["param"] == "schema"
