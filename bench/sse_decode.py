"""Decoding an upstream SSE stream: our decoder (llm.providers.sse) against httpx-sse.

    .venv/bin/python bench/sse_decode.py            # needs httpx-sse installed to compare

A chat stream as OpenAI sends it (a role chunk, content chunks, the finish chunk, the usage
chunk, [DONE]), each event in its own network chunk as an upstream flushes them, decoded from
an httpx.Response to (event, data) pairs; the JSON in each frame is not parsed (both sides would
pay the same for it). Three decoders:

- ours:       llm.providers.sse.iter_sse (incremental UTF-8, capped line splitter, SSE fields)
- httpx-sse:  httpx_sse.EventSource(response).aiter_sse() (response.aiter_text, its line decoder)
- hybrid:     our capped line splitter feeding httpx_sse.SSEDecoder (what adopting it while
              keeping the size cap would mean)

Prints microseconds per stream (best of 5 timeit repeats) for an 11-chunk and a 500-chunk stream.
"""

from __future__ import annotations

import asyncio
import json
import sys
import timeit
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm.providers.sse import iter_lines, iter_sse  # noqa: E402

try:
    import httpx_sse
    from httpx_sse._decoders import SSEDecoder  # not exported; what EventSource uses
except ImportError:  # the comparison is optional; ours is always measured
    httpx_sse = SSEDecoder = None

WORDS = ("The capital of France is Paris, a city on the Seine known for its art " * 4).split(" ")


def chat_stream(chunks: int) -> list[bytes]:
    """`chunks` SSE events of an OpenAI chat-completions stream, one network chunk each."""
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}

    def event(payload: dict | str) -> bytes:
        data = payload if isinstance(payload, str) else json.dumps(payload)
        return f"data: {data}\n\n".encode()

    def choice(delta: dict, finish: str | None = None) -> dict:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    content = chunks - 4  # role, finish, usage and [DONE] frame the content
    frames = [event(choice({"role": "assistant", "content": ""}))]
    frames += [event(choice({"content": WORDS[i % len(WORDS)] + " "})) for i in range(content)]
    frames.append(event(choice({}, "stop")))
    usage = {"prompt_tokens": 12, "completion_tokens": content, "total_tokens": 12 + content}
    frames.append(event({**base, "choices": [], "usage": usage}))
    frames.append(event("[DONE]"))
    return frames


def response(frames: list[bytes]) -> httpx.Response:
    async def body() -> AsyncIterator[bytes]:
        for frame in frames:
            yield frame

    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())


async def ours(frames: list[bytes]) -> list[tuple[str, str]]:
    return [(m.event, m.data) async for m in iter_sse(response(frames))]


async def with_httpx_sse(frames: list[bytes]) -> list[tuple[str, str]]:
    source = httpx_sse.EventSource(response(frames))
    return [(m.event, m.data) async for m in source.aiter_sse()]


async def hybrid(frames: list[bytes]) -> list[tuple[str, str]]:
    decoder, out = SSEDecoder(), []
    async for line in iter_lines(response(frames)):
        message = decoder.decode(line)
        if message is not None:
            out.append((message.event, message.data))
    return out


def measure(decode, frames: list[bytes], loop: asyncio.AbstractEventLoop) -> float:
    """Microseconds per stream, best of 5 repeats."""
    number = max(20, 20000 // len(frames))
    timer = timeit.Timer(lambda: loop.run_until_complete(decode(frames)))
    return min(timer.repeat(repeat=5, number=number)) / number * 1e6


def main() -> None:
    loop = asyncio.new_event_loop()
    decoders = {"ours": ours}
    if httpx_sse is not None:
        decoders |= {"httpx-sse": with_httpx_sse, "hybrid": hybrid}
    print(f"{'chunks':>6}  " + "  ".join(f"{name:>12}" for name in decoders))
    for chunks in (11, 500):
        frames = chat_stream(chunks)
        expected = loop.run_until_complete(ours(frames))
        assert len(expected) == chunks
        for decode in decoders.values():  # same messages from each, or the timing means nothing
            assert loop.run_until_complete(decode(frames)) == expected
        timings = [measure(decode, frames, loop) for decode in decoders.values()]
        print(f"{chunks:>6}  " + "  ".join(f"{us:>9.1f} µs" for us in timings))
    loop.close()


if __name__ == "__main__":
    main()
