"""The fake upstream: nginx answering chat completions with fixed bodies, fast enough to vanish.

Port UPSTREAM_PORT always answers JSON; port STREAM_PORT always answers an SSE stream (nginx cannot
branch on the request body, so the stream is chosen by port: a target's stream scenario is pointed
at STREAM_PORT).
"""

from __future__ import annotations

import json
from pathlib import Path

UPSTREAM_PORT = 18080
STREAM_PORT = 18081
MODEL = "gpt-4o-mini"  # a model of the shipped catalogue
CREATED = 1_767_225_600
USAGE = {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21}
WORDS = ["Hello", "!", " How", " can", " I", " help", " you", " today", "?"]


def build_completion() -> str:
    return json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": CREATED,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(WORDS)},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": USAGE,
        },
        separators=(",", ":"),
    )


def _chunk(delta: dict, finish_reason: str | None = None, usage: dict | None = None) -> str:
    choices = [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "choices": choices,
        "usage": usage,
    }
    return "data: " + json.dumps(body, separators=(",", ":")) + "\n\n"


def build_stream() -> str:
    """Role chunk, one chunk per word, finish chunk, usage chunk, [DONE]."""
    events = [_chunk({"role": "assistant", "content": ""})]
    events += [_chunk({"content": word}) for word in WORDS]
    events.append(_chunk({}, finish_reason="stop"))
    events.append(_chunk({}, usage=USAGE))
    events.append("data: [DONE]\n\n")
    return "".join(events)


def _quote(text: str) -> str:
    """An nginx single-quoted string; the config parser understands these escapes."""
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return f"'{escaped}'"


def _server(port: int, content_type: str, body: str) -> str:
    return f"""
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        location / {{
            default_type {content_type};
            add_header Cache-Control no-cache;
            return 200 {_quote(body)};
        }}
    }}"""


def write_nginx_config(workdir: Path) -> Path:
    """Write a self-contained nginx.conf (pid, logs, temp dirs inside workdir); return its path."""
    for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (workdir / name).mkdir(parents=True, exist_ok=True)
    servers = _server(UPSTREAM_PORT, "application/json", build_completion()) + _server(
        STREAM_PORT, "text/event-stream", build_stream()
    )
    config = f"""
daemon off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    client_body_temp_path {workdir}/client_body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
{servers}
}}
"""
    path = workdir / "nginx.conf"
    path.write_text(config)
    return path
