"""Stream framing: server-sent events (every dialect but Ollama's) and NDJSON (Ollama's), decoded
as the bytes arrive and never past the upstream size cap (llm.providers.limits).

The SSE decoder is ours rather than httpx-sse's: bench/sse_decode.py measures both on a chat
stream (see its docstring for the figures). httpx-sse reads through response.aiter_text(), which
has no size cap, checks the Content-Type (some upstreams send none), drops a last event that
lacks its blank line, and was not faster on the hot path.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from llm.providers import limits

LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass
class SSEMessage:
    event: str
    data: str


async def iter_lines(response: httpx.Response) -> AsyncIterator[str]:
    """The stream's lines, decoded as they arrive; UpstreamTooLargeError past the cap."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending, total = "", 0
    async for chunk in response.aiter_bytes():
        total += len(chunk)
        if total > limits.max_upstream_bytes:
            raise limits.UpstreamTooLargeError(total)
        text = pending + decoder.decode(chunk)
        held = text.endswith("\r")  # maybe the first half of a CRLF split across chunks
        *lines, pending = LINE_BREAK.split(text[:-1] if held else text)
        pending += "\r" if held else ""
        for line in lines:
            yield line
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending.removesuffix("\r")


async def iter_sse(response: httpx.Response) -> AsyncIterator[SSEMessage]:
    """Server-sent events, one message per blank-line-terminated block; comments skipped."""
    event, data = "", []
    async for line in iter_lines(response):
        if not line:
            if data:
                yield SSEMessage(event or "message", "\n".join(data))
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value
    if data:  # some servers omit the final blank line
        yield SSEMessage(event or "message", "\n".join(data))


async def iter_ndjson(response: httpx.Response) -> AsyncIterator[Any]:
    async for line in iter_lines(response):
        if line.strip():
            yield json.loads(line)


def loads(data: str) -> Any:
    """One frame's JSON."""
    return json.loads(data)
