"""Real HTTP servers on 127.0.0.1 for API tests: a fake OpenAI-dialect upstream and the gateway.

Both run under uvicorn in a background thread of the test process, so the gateway shares the
test database, the catalogue and the runtime with the test, and clients speak real HTTP to it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import uvicorn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerThread:
    """Run an ASGI app under uvicorn in a thread; stop() shuts it down gracefully."""

    def __init__(self, app, port: int | None = None) -> None:
        self.port = port or free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            loop="asyncio",
            http="h11",
        )
        self.server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.server.serve()

    def call(self, coroutine, timeout: float = 10):
        """Run a coroutine in the server's event loop (where its connections live)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class Reply:
    """One scripted upstream answer."""

    status: int = 200
    body: dict[str, Any] | None = None
    chunks: list[str] | None = None  # SSE `data:` payloads; the stream is cut after them
    cut: bool = False  # drop the connection after the chunks instead of ending cleanly
    delay: float = 0.0  # seconds before answering
    chunk_delay: float = 0.0


@dataclass
class FakeOpenAI:
    """An OpenAI chat-completions upstream speaking the documented wire format."""

    text: str = "Hello from the upstream."
    prompt_tokens: int = 12
    completion_tokens: int = 6
    script: deque = field(default_factory=deque)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    def then(self, *replies: Reply) -> None:
        self.script.extend(replies)

    def completion(self, model: str) -> dict[str, Any]:
        return {
            "id": "chatcmpl-upstream",
            "object": "chat.completion",
            "created": 1_750_000_000,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": self.text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens,
            },
        }

    def stream_chunks(self, model: str, include_usage: bool) -> list[str]:
        base = {"id": "chatcmpl-upstream", "object": "chat.completion.chunk", "model": model}
        words = self.text.split(" ")
        chunks = [
            json.dumps(
                {
                    **base,
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"content": (" " if i else "") + word},
                            "finish_reason": None,
                        }
                    ],
                }
            )
            for i, word in enumerate(words)
        ]
        chunks.append(
            json.dumps({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        )
        if include_usage:
            usage = {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens,
            }
            chunks.append(json.dumps({**base, "choices": [], "usage": usage}))
        return chunks

    def tool_call_reply(self, name: str, arguments: str, call_id: str = "call_1") -> Reply:
        """A completion that calls one function, with usage, as OpenAI answers it."""
        body = self.completion("gpt-4o-mini-2024-07-18")
        body["choices"][0]["message"] = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            ],
        }
        body["choices"][0]["finish_reason"] = "tool_calls"
        return Reply(body=body)

    def tool_call_stream_reply(
        self, name: str, argument_pieces: list[str], call_id: str = "call_1", text: str = ""
    ) -> Reply:
        """A streamed function call: optional text first, the call's id and name, its
        arguments in pieces, finish_reason tool_calls, then the usage chunk."""
        base = {"id": "chatcmpl-upstream", "object": "chat.completion.chunk", "model": "m"}

        def chunk(delta, finish=None):
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return json.dumps({**base, "choices": [choice]})

        chunks = [chunk({"role": "assistant", "content": text})] if text else []
        start = {"index": 0, "id": call_id, "type": "function"}
        start["function"] = {"name": name, "arguments": ""}
        chunks.append(chunk({"tool_calls": [start]}))
        for piece in argument_pieces:
            chunks.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
        chunks.append(chunk({}, "tool_calls"))
        usage = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }
        chunks.append(json.dumps({**base, "choices": [], "usage": usage}))
        return Reply(chunks=chunks)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.headers.append({k.decode(): v.decode() for k, v in scope["headers"]})
        data = json.loads(body) if body else {}
        self.requests.append({"path": scope["path"], **data})
        reply = self.script.popleft() if self.script else Reply()
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.status != 200:
            error = reply.body or {"error": {"message": "upstream failure", "type": "server_error"}}
            await _send(send, reply.status, json.dumps(error).encode())
            return
        if scope["path"].endswith("/embeddings"):
            inputs = data["input"] if isinstance(data["input"], list) else [data["input"]]
            await _send(send, 200, json.dumps(self.embeddings(data["model"], inputs)).encode())
            return
        if scope["path"].endswith("/models"):
            await _send(send, 200, json.dumps({"object": "list", "data": []}).encode())
            return
        if not data.get("stream"):
            await _send(
                send, 200, json.dumps(reply.body or self.completion(data["model"])).encode()
            )
            return
        include_usage = bool((data.get("stream_options") or {}).get("include_usage"))
        chunks = reply.chunks or self.stream_chunks(data["model"], include_usage)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        for chunk in chunks:
            if reply.chunk_delay:
                await asyncio.sleep(reply.chunk_delay)
            await send(
                {
                    "type": "http.response.body",
                    "body": f"data: {chunk}\n\n".encode(),
                    "more_body": True,
                }
            )
        if reply.cut:
            raise ConnectionResetError("upstream dropped the connection")
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})

    def embeddings(self, model: str, inputs: list[str]) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": [0.25, -0.5, float(i)]}
                for i, _ in enumerate(inputs)
            ],
            "model": model,
            "usage": {"prompt_tokens": 4 * len(inputs), "total_tokens": 4 * len(inputs)},
        }


async def _send(send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
