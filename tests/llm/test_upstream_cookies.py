"""The production upstream client keeps no cookies: one session serves every tenant."""

from __future__ import annotations

from aiohttp import web

from llm.http import AiohttpClient


async def test_a_cookie_set_by_a_provider_is_not_sent_on_the_next_request():
    seen: list[str | None] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Cookie"))
        response = web.json_response({"ok": True})
        response.set_cookie("__cf_bm", "tenant-a-session", path="/")
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    client = AiohttpClient()
    try:
        for _ in range(2):
            async with client.stream(
                "POST",
                # A host name: aiohttp's jar keeps no cookie of an IP address anyway.
                f"http://localhost:{port}/v1/chat/completions",
                headers={"content-type": "application/json"},
                content=b"{}",
            ) as response:
                assert response.status_code == 200
                assert "__cf_bm" in response.headers.get("set-cookie", "")
                async for _ in response.aiter_bytes():
                    pass
    finally:
        await client.aclose()
        await runner.cleanup()
    assert seen == [None, None]
