"""The floor under any Python gateway: an ASGI app that only relays, served like the gateway.

`make bench`'s `floor` target runs it with gunicorn and 2 uvicorn workers (uvloop, httptools),
upstream calls through one aiohttp session per worker, exactly the stack the gateway stands on,
and nothing else: no authentication, parsing, limits, routing, usage records, logs or metrics.
POST /json/... is relayed to the JSON upstream, /stream/... to the stream upstream, chunk by
chunk as they arrive, and /slow/... to the slow upstream of the open-streams scenario. What the
gateway costs above this row is its own work, not Python's or the servers'.
"""

from __future__ import annotations

import aiohttp

UPSTREAMS = {
    "/json/": "http://127.0.0.1:18080/v1/chat/completions",
    "/stream/": "http://127.0.0.1:18081/v1/chat/completions",
    "/slow/": "http://127.0.0.1:18082/v1/chat/completions",
}
_session: aiohttp.ClientSession | None = None


async def app(scope, receive, send) -> None:
    global _session
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        if _session is not None:
            await _session.close()
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    url = next((url for prefix, url in UPSTREAMS.items() if scope["path"].startswith(prefix)), "")
    if not url:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"not found"})
        return
    if _session is None:
        # No cap on connections, as the gateway's client: each open stream holds one.
        _session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    headers = {"content-type": "application/json", "authorization": "Bearer sk-bench"}
    async with _session.post(url, data=body, headers=headers) as answer:
        kind = answer.headers.get("content-type", "application/json").encode()
        start = {"type": "http.response.start", "status": answer.status}
        await send({**start, "headers": [(b"content-type", kind)]})
        async for part in answer.content.iter_any():
            await send({"type": "http.response.body", "body": part, "more_body": True})
    await send({"type": "http.response.body"})
