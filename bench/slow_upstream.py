"""A slow fake upstream for the open-streams scenario: one SSE chunk every few seconds.

    python bench/slow_upstream.py PORT [--interval 5] [--seconds 60]

A request whose body holds SLOW_MARKER gets a stream that sends its role chunk at once, then one
content chunk every `interval` seconds for `seconds`, then the finish and usage chunks and
[DONE]. Any other request is answered at once with the fixed bodies of the nginx upstream (a
stream if it asks for one), so the short requests measured beside the open streams go through the
same gateway and the same upstream. Loopback only. Plain asyncio streams (uvloop when installed):
ten thousand idle connections cost little.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource

import upstream

SLOW_MARKER = b"SLOW-STREAM"


def raise_fd_limit() -> int:
    """Raise RLIMIT_NOFILE as far as allowed (root may raise the hard limit too); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for wanted in (1_048_576, 262_144, 65_536, hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, max(wanted, hard)))
            return wanted
        except (ValueError, OSError):
            continue
    return soft


def _event(body: dict | str) -> bytes:
    data = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


def _chunk(delta: dict, finish_reason: str | None = None, usage: dict | None = None) -> dict:
    return {
        "id": "chatcmpl-slow",
        "object": "chat.completion.chunk",
        "created": upstream.CREATED,
        "model": upstream.MODEL,
        "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        "usage": usage,
    }


def _http_chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


async def _slow_stream(writer: asyncio.StreamWriter, interval: float, seconds: float) -> None:
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    writer.write(_http_chunk(_event(_chunk({"role": "assistant", "content": ""}))))
    await writer.drain()
    for _ in range(int(seconds / interval + 1e-9)):
        await asyncio.sleep(interval)
        writer.write(_http_chunk(_event(_chunk({"content": " tick"}))))
        await writer.drain()
    tail = _event(_chunk({}, finish_reason="stop")) + _event(_chunk({}, usage=upstream.USAGE))
    writer.write(_http_chunk(tail + _event("[DONE]")) + b"0\r\n\r\n")
    await writer.drain()


def _fixed(content_type: str, body: str) -> bytes:
    raw = body.encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {len(raw)}\r\n\r\n"
    return head.encode() + raw


async def _serve(reader, writer, interval: float, seconds: float) -> None:
    fast_json = _fixed("application/json", upstream.build_completion())
    fast_stream = _fixed("text/event-stream", upstream.build_stream())
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length, close = 0, False
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value.strip())
                elif name == b"connection":
                    close = value.strip().lower() == b"close"
            body = await reader.readexactly(length) if length else b""
            if SLOW_MARKER in body:
                await _slow_stream(writer, interval, seconds)
            else:
                streamed = b'"stream":true' in body.replace(b" ", b"")
                writer.write(fast_stream if streamed else fast_json)
                await writer.drain()
            if close:
                break
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def main_async(port: int, interval: float, seconds: float) -> None:
    server = await asyncio.start_server(
        lambda r, w: _serve(r, w, interval, seconds), "127.0.0.1", port, backlog=65535
    )
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    raise_fd_limit()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main_async(args.port, args.interval, args.seconds))


if __name__ == "__main__":
    main()
