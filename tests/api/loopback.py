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

    def completion(self, model: str, max_tokens: int | None = None) -> dict[str, Any]:
        # Like the real API, never more output than the cap the request sent.
        completion_tokens = min(self.completion_tokens, max_tokens or self.completion_tokens)
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
                "completion_tokens": completion_tokens,
                "total_tokens": self.prompt_tokens + completion_tokens,
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
                send,
                200,
                json.dumps(
                    reply.body or self.completion(data["model"], data.get("max_tokens"))
                ).encode(),
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
            await asyncio.sleep(0)  # a send to a closed connection returns at once: let watch() run
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


async def _read_body(receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def _stream_sse(send, frames: list[str], delay: float) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream")],
        }
    )
    for frame in frames:
        await send({"type": "http.response.body", "body": frame.encode(), "more_body": True})
        await asyncio.sleep(delay)
    await send({"type": "http.response.body", "body": b""})


@dataclass
class FakeAnthropicStream:
    """Anthropic's streaming Messages API: message_start carries the input counts (cache reads
    and writes included), then text deltas, message_delta (cumulative output), message_stop.
    Refuses what the API refuses: a wrong key or version (401/400), no max_tokens (400).
    https://docs.anthropic.com/en/api/messages-streaming
    https://docs.anthropic.com/en/api/errors"""

    input_tokens: int = 900
    cache_read_input_tokens: int = 4_000
    cache_creation_input_tokens: int = 100
    words: int = 200
    output_tokens: int = 400
    delay: float = 0.02
    requests: list[dict[str, Any]] = field(default_factory=list)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        if scope["path"] != "/v1/messages":
            error = {"type": "error", "error": {"type": "not_found_error", "message": "Not found"}}
            await _send(send, 404, json.dumps(error).encode())
            return
        if headers.get("x-api-key") != "sk-ant-test" or not headers.get("anthropic-version"):
            error = {
                "type": "error",
                "error": {"type": "authentication_error", "message": "invalid x-api-key"},
            }
            await _send(send, 401, json.dumps(error).encode())
            return
        data = json.loads(body)
        self.requests.append(data)
        if not isinstance(data.get("max_tokens"), int):
            error = {
                "type": "error",
                "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"},
            }
            await _send(send, 400, json.dumps(error).encode())
            return
        start = {
            "type": "message_start",
            "message": {
                "id": "msg_fake",
                "type": "message",
                "role": "assistant",
                "model": data["model"],
                "content": [],
                "stop_reason": None,
                "usage": {
                    "input_tokens": self.input_tokens,
                    "cache_read_input_tokens": self.cache_read_input_tokens,
                    "cache_creation_input_tokens": self.cache_creation_input_tokens,
                    "output_tokens": 1,
                },
            },
        }
        frames = [_frame("message_start", start)]
        frames.append(
            _frame(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}},
            )
        )
        for _ in range(self.words):
            delta = {"type": "text_delta", "text": "word "}
            frames.append(
                _frame(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0, "delta": delta},
                )
            )
        frames.append(_frame("content_block_stop", {"type": "content_block_stop", "index": 0}))
        frames.append(
            _frame(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn"},
                    "usage": {"output_tokens": self.output_tokens},
                },
            )
        )
        frames.append(_frame("message_stop", {"type": "message_stop"}))
        await _stream_sse(send, frames, self.delay)


@dataclass
class FakeGeminiStream:
    """Gemini's streamGenerateContent?alt=sse: every chunk is a partial GenerateContentResponse
    with the running usageMetadata (the prompt count, cached part included, from the first).
    Refuses a wrong key (400 API_KEY_INVALID) and a request without contents (400).
    https://ai.google.dev/api/generate-content#method:-models.streamgeneratecontent
    https://ai.google.dev/gemini-api/docs/troubleshooting"""

    prompt_tokens: int = 5_000
    cached_tokens: int = 4_000
    words: int = 200
    delay: float = 0.02
    requests: list[dict[str, Any]] = field(default_factory=list)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        if not scope["path"].endswith(":streamGenerateContent") or b"alt=sse" not in scope.get(
            "query_string", b""
        ):
            await _send(
                send, 404, json.dumps({"error": {"code": 404, "status": "NOT_FOUND"}}).encode()
            )
            return
        if headers.get("x-goog-api-key") != "gm-test":
            error = {
                "error": {
                    "code": 400,
                    "message": "API key not valid. Please pass a valid API key.",
                    "status": "INVALID_ARGUMENT",
                }
            }
            await _send(send, 400, json.dumps(error).encode())
            return
        data = json.loads(body)
        self.requests.append(data)
        if not data.get("contents"):
            error = {
                "error": {
                    "code": 400,
                    "message": "contents is not specified",
                    "status": "INVALID_ARGUMENT",
                }
            }
            await _send(send, 400, json.dumps(error).encode())
            return
        frames = []
        for i in range(1, self.words + 1):
            chunk = {
                "candidates": [{"content": {"role": "model", "parts": [{"text": "word "}]}}],
                "usageMetadata": {
                    "promptTokenCount": self.prompt_tokens,
                    "cachedContentTokenCount": self.cached_tokens,
                    "candidatesTokenCount": i,
                    "totalTokenCount": self.prompt_tokens + i,
                },
                "modelVersion": "gemini-2.5-pro",
            }
            if i == self.words:
                chunk["candidates"][0]["finishReason"] = "STOP"
            frames.append(f"data: {json.dumps(chunk)}\r\n\r\n")
        await _stream_sse(send, frames, self.delay)


def _frame(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"
