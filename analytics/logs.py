"""Structured logs: one JSON object per line, a request id on every line, secrets never written.

- `log_request(...)`: the one line per gateway request (called by the request pipeline).
- `request_id_var`: the request id of the current request or Celery task (a contextvar, so it
  follows asyncio tasks); Celery messages carry it in a header.
- `JsonFormatter` / `TextFormatter` + `RequestIdFilter`: wired in settings.LOGGING (LOG_FORMAT).

Redaction is done by the formatter, so it covers every logger, including third-party ones: values
that look like gateway keys, provider keys or bearer tokens are masked, and fields with secret-ish
names are dropped.

This module is loaded while settings are configured: it must not import models.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import os
import re
import secrets
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

REQUEST_ID_HEADER = "gateway_request_id"
REDACTED = "[redacted]"

request_id_var: ContextVar[str | None] = ContextVar("gateway_request_id", default=None)

# Patterns of secrets that may end up inside messages or exception texts.
SECRET_PATTERNS = [
    re.compile(r"gw-[0-9a-f]{4,16}_[A-Za-z0-9_\-]{8,}"),  # gateway API keys
    re.compile(r"sk-(?:ant-|proj-|or-)?[A-Za-z0-9_\-]{16,}"),  # OpenAI, Anthropic, OpenRouter
    re.compile(r"AIza[0-9A-Za-z_\-]{30,}"),  # Google
    re.compile(r"gsk_[A-Za-z0-9]{20,}"),  # Groq
    re.compile(r"xai-[A-Za-z0-9]{20,}"),  # xAI
    re.compile(r"sk_(?:live|test)_[A-Za-z0-9]{16,}"),  # Stripe
    re.compile(r"(?i:(bearer\s+))[A-Za-z0-9._~+/=\-]{8,}"),
    re.compile(
        r"(?i:((?:api[_-]?key|x-api-key|token|secret|password)[\"']?\s*[:=]\s*[\"']?))"
        r"[^\s\"',}]{6,}"
    ),
]
# One scan finds whether a text holds any of them (most log texts hold none).
_ANY_SECRET = re.compile("|".join(pattern.pattern for pattern in SECRET_PATTERNS))
SECRET_FIELD_NAMES = frozenset(
    {
        "api_key",
        "authorization",
        "password",
        "provider_key",
        "secret",
        "token",
        "x-api-key",
        "credential",
    }
)
PROMPT_FIELD_NAMES = frozenset({"prompt", "messages", "input", "completion"})

# LogRecord attributes that are not user-supplied `extra` fields.
_RECORD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "color_message"}  # uvicorn's ANSI copy of the message
)


# Request ids: a random prefix per process plus a counter, unique without a syscall per request.
# A forked child draws its own prefix, so two processes never hand out the same id.
_id_prefix = secrets.token_hex(8)
_id_counter = itertools.count(1)


def _new_id_prefix() -> None:
    global _id_prefix, _id_counter
    _id_prefix, _id_counter = secrets.token_hex(8), itertools.count(1)


os.register_at_fork(after_in_child=_new_id_prefix)


def new_unique_id() -> str:
    """32 hex digits no other call of any process returns (request and reservation ids)."""
    return f"{_id_prefix}{next(_id_counter):016x}"


def new_request_id() -> str:
    """A new request id: `req_` and 32 hex digits."""
    return f"req_{new_unique_id()}"


def redact(text: str) -> str:
    if not _ANY_SECRET.search(text):
        return text
    for pattern in SECRET_PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        else:
            text = pattern.sub(REDACTED, text)
    return text


_PLAIN = frozenset({int, float, bool, type(None)})


def _clean(value: Any) -> Any:
    if type(value) in _PLAIN:  # most fields of a request's line: nothing to look at
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: REDACTED if _is_secret_name(k) else _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(str(value))


@functools.lru_cache(maxsize=1024)  # field names come from code: a few hundred at most
def _is_secret_name(name: Any) -> bool:
    return str(name).lower() in SECRET_FIELD_NAMES


class RequestIdFilter(logging.Filter):
    """Stamps every record with the current request id (None outside a request or task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id_var.get()
        return True


class RedactSecretsFilter(logging.Filter):
    """For log lines we do not format ourselves (uvicorn's access log): secrets in the message's
    arguments, e.g. a key someone put in a query string, are masked before any handler sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def redact_server_logs() -> None:
    """Install the filter on the server's own loggers (uvicorn configures them before us)."""
    for name in ("uvicorn.access", "uvicorn.error", "gunicorn.access", "gunicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecretsFilter) for f in logger.filters):
            logger.addFilter(RedactSecretsFilter())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
        }
        for key, value in vars(record).items():
            if key in _RECORD_ATTRS or key in entry:
                continue
            if key in PROMPT_FIELD_NAMES and not getattr(record, "prompt_logging", False):
                continue  # prompt text only for organisations that turned prompt logging on
            if _is_secret_name(key):
                entry[key] = REDACTED
            else:  # numbers, booleans and None (most of a request's fields) as they are
                entry[key] = value if type(value) in _PLAIN else _clean(value)
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return _dumps(entry)


def _dumps(entry: dict[str, Any]) -> str:
    try:
        return orjson.dumps(entry, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # an integer past 64 bits, which only the standard library writes
        return json.dumps(entry, default=str, ensure_ascii=False)


def skip_unused_record_fields() -> None:
    """No formatter of ours prints a record's source line, thread or process, so a serving
    process does not look them up for every line: a walk up the stack and a system call each
    (the logging HOWTO's "Optimization" section)."""
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False


class TextFormatter(logging.Formatter):
    """Human-readable lines for development, redacted like the JSON ones."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return redact(super().format(record))


request_logger = logging.getLogger("gateway.requests")


def log_request(
    *,
    request_id: str,
    org_id: int | None,
    key_id: int | None,
    endpoint: str,
    provider: str,
    model: str,
    status: int,
    latency_ms: int,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cost: Decimal = Decimal(0),
    ttft_ms: int | None = None,
    upstream_ms: int | None = None,
    cache_hit: bool = False,
    stream: bool = False,
    error_class: str = "",
    prompt: Any = None,
    prompt_logging: bool = False,
) -> None:
    """Write the one JSON line for a finished request. The prompt text is included only when the
    organisation enabled prompt logging (`prompt_logging=True`), and even then it is redacted."""
    fields: dict[str, Any] = {
        "event": "request",
        "request_id": request_id,
        "org_id": org_id,
        "key_id": key_id,
        "endpoint": endpoint,
        "provider": provider,
        "model": model,
        "status": status,
        "latency_ms": latency_ms,
        "ttft_ms": ttft_ms,
        "upstream_ms": upstream_ms,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cost": str(cost),
        "cache_hit": cache_hit,
        "stream": stream,
        "error_class": error_class,
    }
    if prompt_logging and prompt is not None:
        fields["prompt"] = prompt
        fields["prompt_logging"] = True
    level = logging.ERROR if status >= 500 else logging.INFO
    request_logger.log(level, "%s %s %s", endpoint, model, status, extra=fields)


# Celery: carry the request id from the publisher to the task.


def attach_request_id(headers: dict | None) -> None:
    """before_task_publish: put the current request id in the message headers."""
    request_id = request_id_var.get()
    if request_id and headers is not None:
        headers.setdefault(REQUEST_ID_HEADER, request_id)


_task_tokens: dict[str, Token] = {}


def adopt_request_id(task_id: str | None, task: Any) -> None:
    """task_prerun: make the publisher's request id current inside the task."""
    request = getattr(task, "request", None)
    value = getattr(request, REQUEST_ID_HEADER, None)
    if value is None:
        value = (getattr(request, "headers", None) or {}).get(REQUEST_ID_HEADER)
    # Eager tasks run inside the caller: they keep the caller's id.
    _task_tokens[task_id or ""] = request_id_var.set(value or request_id_var.get())


def release_request_id(task_id: str | None) -> None:
    """task_postrun: restore what was current before the task (None in a worker), so one task's
    id never leaks into the next."""
    token = _task_tokens.pop(task_id or "", None)
    if token is not None:
        try:
            request_id_var.reset(token)
        except ValueError:  # set in another context; nothing of ours to restore
            request_id_var.set(None)
