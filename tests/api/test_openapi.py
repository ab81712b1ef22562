"""The OpenAPI schema documents every public endpoint, and what the endpoints really answer
matches it (validated with jsonschema against live responses). The docs pages load only our own
static files."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import httpx
import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404
from drf_spectacular.validation import validate_schema
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.api.loopback import Reply

PUBLIC_PREFIXES = ("/v1/", "/api/v1/")
SCHEMA_URI = "urn:gateway-openapi"


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        response = Client().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return json.loads(response.content)


def public_routes() -> set[str]:
    """Every URL pattern under /v1/ and /api/v1/, as an OpenAPI path template."""
    found = set()

    def walk(patterns, prefix: str) -> None:
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, route)
            elif isinstance(entry, URLPattern) and "(" not in route and "^" not in route:
                found.add("/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route))

    walk(get_resolver().url_patterns, "")
    return {r for r in found if r.startswith(PUBLIC_PREFIXES)}


def test_the_schema_is_valid_openapi(schema):
    validate_schema(schema)  # raises on any violation of the OpenAPI 3.1 meta-schema
    assert schema["openapi"].startswith("3.1")


def shape(path: str) -> str:
    """/v1/models/{model} and /v1/models/{model_id} are the same route."""
    return re.sub(r"\{\w+\}", "{}", path)


def test_the_schema_generates_without_warnings(tmp_path):
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", file=str(tmp_path / "s.yaml"))


def test_every_public_route_is_documented_with_errors(schema):
    routes = public_routes()
    assert {"/v1/chat/completions", "/v1/embeddings", "/api/v1/generate"} <= routes
    documented = {shape(path): path for path in schema["paths"]}
    undocumented = {route for route in routes if shape(route) not in documented}
    assert not undocumented, undocumented
    for path in {documented[shape(route)] for route in routes}:
        for method, operation in schema["paths"][path].items():
            codes = set(operation["responses"])
            assert "200" in codes, (path, method)
            if path != "/api/v1/health":  # needs no key and takes no input
                assert codes & {"400", "401", "404"}, (path, method)
            if method == "post":
                assert operation["requestBody"]["content"]["application/json"]["schema"]


def test_documented_public_paths_exist_at_the_documented_place(schema):
    for path in schema["paths"]:
        if not path.startswith(PUBLIC_PREFIXES):
            continue
        concrete = re.sub(r"\{\w+\}", "some-model", path)
        try:
            match = resolve(concrete)
        except Resolver404:
            raise AssertionError(f"{path} is documented but has no view") from None
        route = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", match.route)
        assert shape(route) == shape(path), (path, match.route)


def test_documented_request_fields_are_the_fields_the_parsers_accept(schema):
    from llm.api.parsing import CHAT_FIELDS, GENERATE_FIELDS

    schemas = schema["components"]["schemas"]
    assert set(schemas["ChatCompletionRequest"]["properties"]) == CHAT_FIELDS
    structured = schemas["GenerateStructuredRequest"]["allOf"][1]["properties"]
    assert set(schemas["GenerateRequest"]["properties"]) | set(structured) == GENERATE_FIELDS
    embeddings = {"model", "input", "encoding_format", "dimensions", "user"}
    assert set(schemas["EmbeddingsRequest"]["properties"]) == embeddings


def test_the_management_api_is_there_with_its_error_shape(schema):
    login = schema["paths"]["/api/auth/login"]["post"]
    assert "4XX" in login["responses"]
    assert schema["paths"]["/api/auth/refresh"]["post"]
    assert schema["components"]["schemas"]["ManagementError"]["required"] == ["detail", "code"]
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


# --- responses against the schema ---


def validator_for(schema, path: str, method: str, status: int):
    responses = schema["paths"][path][method]["responses"]
    response = responses[str(status)]
    if "$ref" in response:
        response = schema["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    body_schema = response["content"]["application/json"]["schema"]
    registry = Registry().with_resource(
        SCHEMA_URI, Resource.from_contents(schema, default_specification=DRAFT202012)
    )
    if "$ref" in body_schema:
        body_schema = {"$ref": SCHEMA_URI + body_schema["$ref"]}
    else:
        body_schema = {
            "$ref": f"{SCHEMA_URI}#/paths/{_escape(path)}/{method}/responses/{status}"
            "/content/application~1json/schema"
        }
    return Draft202012Validator(body_schema, registry=registry)


def _escape(path: str) -> str:
    return path.replace("~", "~0").replace("/", "~1")


def test_the_validator_refuses_a_body_the_schema_does_not_describe(schema):
    validator = validator_for(schema, "/v1/chat/completions", "post", 200)
    assert list(validator.iter_errors({"id": "x", "object": "chat.completion"}))
    error = validator_for(schema, "/v1/chat/completions", "post", 400)
    assert list(error.iter_errors({"detail": "management shape"}))


def assert_documented(schema, path, method, response: httpx.Response, template=None):
    validator = validator_for(schema, template or path, method, response.status_code)
    errors = [e.message for e in validator.iter_errors(response.json())]
    assert not errors, (path, response.status_code, errors, response.json())


def assert_request_documented(schema, path: str, body: dict) -> None:
    ref = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    registry = Registry().with_resource(
        SCHEMA_URI, Resource.from_contents(schema, default_specification=DRAFT202012)
    )
    validator = Draft202012Validator({"$ref": SCHEMA_URI + ref["$ref"]}, registry=registry)
    errors = [e.message for e in validator.iter_errors(body)]
    assert not errors, (path, errors)


def call(gateway, key, method, path, body=None, headers=None):
    return httpx.request(
        method.upper(),
        f"{gateway}{path}",
        json=body,
        headers={"Authorization": f"Bearer {key}", **(headers or {})},
        timeout=30,
    )


@pytest.mark.django_db(transaction=True)
def test_public_answers_match_the_schema(schema, gateway, key, upstreams):
    primary, _ = upstreams
    hello = [{"role": "user", "content": "Say hello"}]
    cases = [
        ("post", "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": hello}, 200),
        ("post", "/v1/chat/completions", {"model": "gpt-4o-mini"}, 400),
        ("post", "/v1/chat/completions", {"model": "nope", "messages": hello}, 404),
        ("post", "/v1/embeddings", {"model": "text-embedding-3-small", "input": ["a", "b"]}, 200),
        ("post", "/v1/embeddings", {"model": "text-embedding-3-small", "input": []}, 400),
        ("get", "/v1/models", None, 200),
        ("post", "/api/v1/generate", {"prompt": "hi", "model": "gpt-4o-mini"}, 200),
        ("post", "/api/v1/generate", {"prompt": ""}, 400),
        ("get", "/api/v1/models", None, 200),
        ("get", "/api/v1/health", None, 200),
    ]
    for method, path, body, status in cases:
        response = call(gateway, key, method, path, body)
        assert response.status_code == status, (path, response.text)
        assert_documented(schema, path, method, response)
        if status == 200 and body is not None:
            assert_request_documented(schema, path, body)

    structured = primary.completion("gpt-4o-mini-2024-07-18")
    structured["choices"][0]["message"]["content"] = json.dumps({"city": "Oslo"})
    primary.then(Reply(body=structured))
    body = {"prompt": "x", "model": "gpt-4o-mini", "schema": {"type": "object"}}
    response = call(gateway, key, "post", "/api/v1/generate-structured", body)
    assert response.status_code == 200
    assert_documented(schema, "/api/v1/generate-structured", "post", response)

    refused = call(gateway, "gw-nope_nope", "get", "/v1/models")
    assert refused.status_code == 401
    assert_documented(schema, "/v1/models", "get", refused)


@pytest.mark.django_db(transaction=True)
def test_a_streamed_chunk_matches_the_schema(schema, gateway, key, upstreams):
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Say hello"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    response = call(gateway, key, "post", "/v1/chat/completions", body)
    lines = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    registry = Registry().with_resource(
        SCHEMA_URI, Resource.from_contents(schema, default_specification=DRAFT202012)
    )
    chunk = Draft202012Validator(
        {"$ref": SCHEMA_URI + "#/components/schemas/ChatCompletionChunk"}, registry=registry
    )
    for line in lines[:-1]:
        assert not list(chunk.iter_errors(json.loads(line))), line


# --- the docs pages ---


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href", "spec-url") and value:
                self.urls.append(value)


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["/api/docs/", "/api/redoc/"])
def test_docs_pages_reference_only_our_own_static_files(client, page):
    response = client.get(page)
    assert response.status_code == 200
    html = response.content.decode()
    parser = Links()
    parser.feed(html)
    assert parser.urls
    for url in parser.urls:
        assert url.startswith("/"), f"{page} loads {url} from elsewhere"
        if url.startswith("/static/"):
            assert finders.find(url.removeprefix("/static/")), f"{url} is not shipped"
    assert not re.search(r"https?://", html.replace("http://www.w3.org", "")), "external URL"


@pytest.mark.django_db(transaction=True)
def test_agent_endpoints_answer_as_documented(schema, gateway, key, upstreams):
    """The Anthropic Messages and OpenAI Responses routes and GET /v1/models/{model}."""
    hello = [{"role": "user", "content": "Say hello"}]
    anthropic = {"anthropic-version": "2023-06-01"}
    cases = [
        ("/v1/messages", {"model": "gpt-4o-mini", "max_tokens": 50, "messages": hello}, 200),
        ("/v1/messages", {"model": "gpt-4o-mini", "messages": hello}, 400),
        ("/v1/messages/count_tokens", {"model": "gpt-4o-mini", "messages": hello}, 200),
        ("/v1/responses", {"model": "gpt-4o-mini", "input": "Say hello"}, 200),
        ("/v1/responses", {"model": "nope", "input": "Say hello"}, 404),
    ]
    for path, body, status in cases:
        response = call(gateway, key, "post", path, body, anthropic)
        assert response.status_code == status, (path, response.text)
        assert_documented(schema, path, "post", response)
    for name, status in (("gpt-4o-mini", 200), ("nope", 404)):
        response = call(gateway, key, "get", f"/v1/models/{name}")
        assert response.status_code == status, response.text
        assert_documented(schema, f"/v1/models/{name}", "get", response, "/v1/models/{model}")
