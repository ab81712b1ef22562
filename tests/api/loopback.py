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
    headers: dict[str, str] = field(default_factory=dict)  # e.g. Retry-After on a 429
    huge: int = 0  # bytes of padding in the answer (or stream), sent in pieces as read
    stall_after: int | None = None  # a stream goes silent after this many chunks


@dataclass
class FakeOpenAI:
    """An OpenAI chat-completions upstream speaking the documented wire format."""

    text: str = "Hello from the upstream."
    prompt_tokens: int = 12
    completion_tokens: int = 6
    script: deque = field(default_factory=deque)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    sent_bytes: int = 0  # of the last huge answer, before the reader went away

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
            await _send(send, reply.status, json.dumps(error).encode(), reply.headers)
            return
        if reply.huge:
            await self.send_huge(receive, send, reply.huge, bool(data.get("stream")))
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
        for number, chunk in enumerate(chunks):
            if reply.stall_after is not None and number >= reply.stall_after:
                # Silent with the connection open, until the reader hangs up.
                while (await receive())["type"] != "http.disconnect":
                    pass
                return
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

    async def send_huge(self, receive, send, size: int, stream: bool) -> None:
        """An answer of `size` bytes, sent piece by piece while the reader keeps reading."""
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.create_task(watch())
        kind = b"text/event-stream" if stream else b"application/json"
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", kind)]}
        )
        piece = b"x" * 65536
        if stream:
            chunk = {"id": "c", "object": "chat.completion.chunk", "model": "m"}
            delta = {"index": 0, "delta": {"content": "x" * 65536}, "finish_reason": None}
            piece = f"data: {json.dumps({**chunk, 'choices': [delta]})}\n\n".encode()
        else:
            await send({"type": "http.response.body", "body": b'{"x": "', "more_body": True})
        self.sent_bytes = 0
        while self.sent_bytes < size and not gone.is_set():
            await send({"type": "http.response.body", "body": piece, "more_body": True})
            self.sent_bytes += len(piece)
        watcher.cancel()
        await send({"type": "http.response.body", "body": b"" if stream else b'"}'})

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


async def _send(send, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")]
            + [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        }
    )
    await send({"type": "http.response.body", "body": body})
