"""CPU per API request in-process: the gateway's ASGI application with a fake upstream.

Drives N POST /v1/chat/completions (JSON, then stream) through `gateway_project.asgi.application`
one after another, in one event loop, with the upstream answered by httpx.MockTransport (no
network, no server), and prints the process's CPU microseconds per request (time.process_time)
over batches of --batch requests: the median and the best batch. With --against, another version
of the API's handler (a file) serves as many requests, batch for batch in turn with this one, in
the same process: both versions see the same machine, so a busy machine skews the comparison
little. Then it counts the Python function calls per request (cProfile), which a busy machine
does not change at all. Needs a migrated database (DATABASE_URL); REDIS_URL as in production.

    git show main:gateway_project/api_handler.py > /tmp/main_api_handler.py
    .venv/bin/python bench/asgi_cpu.py --against /tmp/main_api_handler.py 2>/dev/null
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import importlib.util
import io
import json
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_project.settings")

from asgi_scope import chat_scope  # noqa: E402  (bench/ is on the path: run as a script)

CATALOG = """\
providers:
  openai: {name: OpenAI, dialect: openai, base_url: "http://upstream.invalid/v1"}
models:
  - id: gpt-4o-mini
    provider: openai
    upstream: gpt-4o-mini-2024-07-18
    prices: [{valid_from: 2024-07-18, input_per_mtok: "0.15", output_per_mtok: "0.60"}]
    context_window: 128000
    max_output_tokens: 16384
    capabilities: [chat, stream]
    quality_rank: 1
    speed_rank: 1
"""
ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Hi!"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
}
CHUNKS = [
    {"choices": [{"index": 0, "delta": {"role": "assistant", "content": word}}]}
    for word in ("Hello", " there", "!")
] + [
    {
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
    }
]
SSE = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in CHUNKS) + "data: [DONE]\n\n"


def upstream(request: httpx.Request) -> httpx.Response:
    if json.loads(request.content).get("stream"):
        return httpx.Response(200, text=SSE, headers={"content-type": "text/event-stream"})
    return httpx.Response(200, json=ANSWER)


async def post(app, key: str, body: bytes) -> int:
    scope = chat_scope(body, key)
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    done = asyncio.Event()
    status = 0

    async def receive():
        if messages:
            return messages.pop()
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif not message.get("more_body", False):
            done.set()

    await app(scope, receive, send)
    return status


def bench_key() -> str:
    """A fresh key of an organisation whose limits never refuse (bench/gateway_fixtures.py)."""
    from django.core.management import call_command

    with contextlib.redirect_stdout(io.StringIO()) as out:
        call_command("shell", command=(Path(__file__).parent / "gateway_fixtures.py").read_text())
    return out.getvalue().split("BENCH_API_KEY=")[1].split()[0]


async def calls_per_request(app, key: str, body: bytes, requests: int = 100) -> float:
    """Python function calls per request (cProfile's count): the same on a busy machine."""
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(requests):
        await post(app, key, body)
    profile.disable()
    return pstats.Stats(profile).total_calls / requests


def handler_from(path: str):
    """The ApiASGIHandler of another version of gateway_project/api_handler.py."""
    spec = importlib.util.spec_from_file_location("other_api_handler", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ApiASGIHandler()


async def run(key: str, requests: int, batch: int, against: str | None) -> None:
    from gateway_project import asgi, startup
    from llm.catalog import build_catalog, set_catalog
    from llm.http import set_client

    await startup.start_serving()
    set_catalog(build_catalog(CATALOG, {"OPENAI_API_KEY": "sk-bench"}))
    set_client(httpx.AsyncClient(transport=httpx.MockTransport(upstream)))
    apps = {"this": asgi.application}
    if against:
        apps["other"] = handler_from(against)
    messages = [{"role": "user", "content": "Say hi."}]
    for scenario, stream in (("json", False), ("stream", True)):
        body = json.dumps({"model": "gpt-4o-mini", "messages": messages, "stream": stream}).encode()
        for app in apps.values():
            for _ in range(200):  # warm-up: caches, connections, lazy imports
                assert await post(app, key, body) == 200
        samples: dict[str, list[float]] = {name: [] for name in apps}
        for turn in range(requests // batch):  # the versions take turns, batch by batch
            for name, app in sorted(apps.items(), reverse=turn % 2 == 1):
                began = time.process_time()
                for _ in range(batch):
                    await post(app, key, body)
                samples[name].append((time.process_time() - began) / batch * 1e6)
        figures = "   ".join(
            f"{name} median {statistics.median(cpu):5.0f} best {min(cpu):5.0f}"
            for name, cpu in samples.items()
        )
        print(f"{scenario:6} CPU µs/request:   {figures}", flush=True)
        calls = [
            f"{name} {await calls_per_request(app, key, body):5.0f}" for name, app in apps.items()
        ]
        print(f"{scenario:6} Python calls/request:   {'   '.join(calls)}", flush=True)
    await startup.stop_serving()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=50, help="requests per turn")
    parser.add_argument("--against", help="another version of gateway_project/api_handler.py")
    args = parser.parse_args()
    import gateway_project.asgi  # noqa: F401  (sets Django up)

    asyncio.run(run(bench_key(), args.requests, args.batch, args.against))


if __name__ == "__main__":
    main()
