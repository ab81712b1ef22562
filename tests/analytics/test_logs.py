"""Log lines are JSON with the request fields, carry the request id into Celery tasks, and never
contain an API key, a provider key or (unless the organisation asked) the prompt."""

from __future__ import annotations

import io
import json
import logging
from decimal import Decimal

import pytest
from celery import shared_task
from kombu import Connection

from analytics import logs
from gateway_project.celery import app as celery_app

PROVIDER_KEY = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0" * 2
ANTHROPIC_KEY = "sk-ant-api03-" + "Zy9Xw8Vu7Ts6Rq5Po4Nm3" * 2


@pytest.fixture
def output():
    """What the configured console handler writes (settings.LOGGING, LOG_FORMAT=json)."""
    [handler] = [
        h for h in logging.getLogger().handlers if isinstance(h.formatter, logs.JsonFormatter)
    ]
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield stream
    handler.setStream(previous)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def request_fields(**overrides):
    fields = {
        "request_id": "req_0123",
        "org_id": 7,
        "key_id": 42,
        "endpoint": "chat.completions",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "status": 200,
        "latency_ms": 812,
        "ttft_ms": 120,
        "upstream_ms": 790,
        "input_tokens": 31,
        "output_tokens": 12,
        "cost": Decimal("0.00001185"),
        "prompt": [{"role": "user", "content": "my secret plan for world domination"}],
    }
    return {**fields, **overrides}


def test_a_request_is_one_json_line_with_its_fields(output):
    logs.log_request(**request_fields())

    [line] = lines(output)
    assert line["event"] == "request"
    assert line["logger"] == "gateway.requests"
    assert line["level"] == "INFO"
    assert {k: line[k] for k in ("request_id", "org_id", "key_id", "provider", "model")} == {
        "request_id": "req_0123",
        "org_id": 7,
        "key_id": 42,
        "provider": "openai",
        "model": "gpt-4o-mini",
    }
    assert line["status"] == 200
    assert line["latency_ms"] == 812
    assert (line["input_tokens"], line["output_tokens"]) == (31, 12)
    assert line["cost"] == "0.00001185"  # exact, as a string
    assert "ts" in line


def test_prompts_stay_out_of_logs_unless_the_org_enabled_prompt_logging(output):
    logs.log_request(**request_fields())
    logs.log_request(**request_fields(request_id="req_0124"), prompt_logging=True)

    first, second = lines(output)
    assert "world domination" not in json.dumps(first)
    assert "prompt" not in first
    assert second["prompt"][0]["content"] == "my secret plan for world domination"


def test_a_server_error_is_logged_at_error_level(output):
    logs.log_request(**request_fields(status=502, error_class="upstream_timeout"))
    [line] = lines(output)
    assert line["level"] == "ERROR"
    assert line["error_class"] == "upstream_timeout"


def test_keys_never_reach_the_log_even_in_messages_and_tracebacks(output, api_key):
    _, secret = api_key
    log = logging.getLogger("llm.providers")

    log.warning("calling upstream with %s for client %s", PROVIDER_KEY, secret)
    log.info("headers", extra={"authorization": f"Bearer {secret}", "x_trace": ANTHROPIC_KEY})
    try:
        raise ValueError(f"Invalid API key: {PROVIDER_KEY}")
    except ValueError:
        log.exception("provider refused")
    logs.log_request(**request_fields(prompt=f"use {secret}"), prompt_logging=True)

    written = output.getvalue()
    assert len(lines(output)) == 4
    for value in (secret, secret.split("_", 1)[1], PROVIDER_KEY, ANTHROPIC_KEY):
        assert value not in written
    assert "[redacted]" in written
    assert "Invalid API key" in written  # the message stays useful


def test_bearer_tokens_and_key_value_secrets_are_masked():
    assert logs.redact("Authorization: Bearer abcdef123456789") == (
        "Authorization: Bearer [redacted]"
    )
    assert logs.redact("api_key=abcd1234efgh") == "api_key=[redacted]"
    assert logs.redact('{"password": "hunter22hunter"}') == '{"password": "[redacted]"}'
    assert logs.redact("nothing to see") == "nothing to see"


def test_every_line_carries_the_current_request_id(output):
    token = logs.request_id_var.set("req_abc")
    try:
        logging.getLogger("billing").info("reserved quota")
    finally:
        logs.request_id_var.reset(token)
    logging.getLogger("billing").info("outside a request")

    first, second = lines(output)
    assert first["request_id"] == "req_abc"
    assert second["request_id"] is None


@shared_task
def report_request_id() -> str | None:
    logging.getLogger("analytics.tasks").info("task ran")
    return logs.request_id_var.get()


def test_the_request_id_travels_in_the_task_message(monkeypatch):
    monkeypatch.setitem(celery_app.conf, "task_always_eager", False)
    token = logs.request_id_var.set("req_published")
    try:
        with Connection("memory://") as conn:
            report_request_id.apply_async(connection=conn, queue="request-id-test")
            message = conn.SimpleQueue("request-id-test").get(timeout=1)
    finally:
        logs.request_id_var.reset(token)
    assert message.headers["gateway_request_id"] == "req_published"


def test_a_task_runs_under_the_request_id_of_its_message(output):
    result = report_request_id.apply(headers={"gateway_request_id": "req_from_message"})

    assert result.get() == "req_from_message"
    assert any(
        line["request_id"] == "req_from_message" and line["message"] == "task ran"
        for line in lines(output)
    )
    assert logs.request_id_var.get() is None  # nothing leaks into the next task


def test_an_eager_task_keeps_the_callers_request_id():
    token = logs.request_id_var.set("req_caller")
    try:
        assert report_request_id.apply().get() == "req_caller"
        assert logs.request_id_var.get() == "req_caller"
    finally:
        logs.request_id_var.reset(token)


def test_text_format_is_redacted_too():
    formatter = logs.TextFormatter()
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "key %s", (PROVIDER_KEY,), None)
    assert PROVIDER_KEY not in formatter.format(record)


def test_any_extra_value_is_written_even_what_orjson_refuses(output):
    huge = 2**70  # past 64 bits: orjson refuses it, the line must still be written
    logging.getLogger("gateway.test").warning(
        "odd values", extra={"huge": huge, "ids": {3: "three"}, "text": "é ☃", "when": None}
    )
    [line] = lines(output)
    assert line["huge"] == huge and line["ids"] == {"3": "three"}
    assert (line["text"], line["when"], line["message"]) == ("é ☃", None, "odd values")
