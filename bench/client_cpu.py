"""CPU per call of the two clients on the request path: the upstream HTTP client and Redis.

Upstream: POST one chat completion to the bench's nginx upstream (started here, on its usual
port) and read the answer, N times one after another, through (a) httpx's AsyncClient over
httpx-aiohttp's transport, the client the gateway used before, and (b) llm.http.AiohttpClient,
the one it uses now; rounds alternate, so both see the same machine.

Redis: run a small Lua script by EVALSHA with a 300-byte argument (about what admission sends),
N times: one call per round trip (redis-py's plain evalsha), then in pipelines of 8 and 32 (what
llm.redis_scripts sent when that many requests of a process admit or settle in one turn of its
event loop), then through llm.redis_scripts.run_script itself, 1, 8 and 32 callers a turn (the
batches over its own connection).

Prints the process's CPU microseconds per call (time.process_time), the best of --rounds.

    .venv/bin/python bench/client_cpu.py --redis-url redis://127.0.0.1:6379/9
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx
import redis.asyncio
import uvloop
from httpx_aiohttp import AiohttpTransport

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import servers  # noqa: E402  (bench/ is on the path: run as a script)
import upstream  # noqa: E402

from llm import redis_clients  # noqa: E402
from llm.http import AiohttpClient  # noqa: E402
from llm.redis_scripts import run_script  # noqa: E402

URL = f"http://127.0.0.1:{upstream.UPSTREAM_PORT}/v1/chat/completions"
HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer sk-bench"}
BODY = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello."}]}'
SCRIPT = "return #ARGV[1]"


async def cpu_per_call(call, n: int) -> float:
    started = time.process_time()
    for _ in range(n):
        await call()
    return (time.process_time() - started) / n * 1e6


async def upstream_clients(n: int, rounds: int) -> dict[str, float]:
    before = httpx.AsyncClient(transport=AiohttpTransport(trust_env=False))
    now = AiohttpClient()

    def post(client):
        async def call():
            async with client.stream("POST", URL, headers=HEADERS, content=BODY) as response:
                async for _ in response.aiter_bytes():
                    pass
            assert response.status_code == 200

        return call

    best = {"httpx over aiohttp (before)": float("inf"), "AiohttpClient (now)": float("inf")}
    for _ in range(rounds):
        for name, client in zip(best, (before, now), strict=True):
            best[name] = min(best[name], await cpu_per_call(post(client), n))
    await before.aclose()
    await now.aclose()
    return best


async def redis_calls(url: str, n: int, rounds: int) -> dict[str, float]:
    client = redis.asyncio.Redis.from_url(url)
    sha = await client.script_load(SCRIPT)
    argument = "x" * 300

    async def one():
        await client.evalsha(sha, 1, "bench:k", argument)

    def pipelined(size: int):
        async def call():
            pipe = client.pipeline(transaction=False)
            for _ in range(size):
                pipe.evalsha(sha, 1, "bench:k", argument)
            await pipe.execute(raise_on_error=False)

        return call

    redis_clients.configure(url)
    gateway = redis_clients.get_redis()  # the gateway's own client (hiredis-packed connections)

    def turn(size: int):
        async def call():
            calls = (run_script(gateway, SCRIPT, sha, ["bench:k"], [argument]) for _ in range(size))
            await asyncio.gather(*calls)

        return call

    best = {"1 a round trip": float("inf"), "8 a pipeline": float("inf")}
    best["32 a pipeline"] = float("inf")
    for size in (1, 8, 32):
        best[f"run_script, {size} a turn"] = float("inf")
    for _ in range(rounds):
        best["1 a round trip"] = min(best["1 a round trip"], await cpu_per_call(one, n))
        for size in (8, 32):
            per_batch = await cpu_per_call(pipelined(size), max(1, n // size))
            best[f"{size} a pipeline"] = min(best[f"{size} a pipeline"], per_batch / size)
        for size in (1, 8, 32):
            name = f"run_script, {size} a turn"
            best[name] = min(best[name], await cpu_per_call(turn(size), max(1, n // size)) / size)
    await client.aclose()
    await redis_clients.close_redis()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        nginx = servers.start_nginx(Path(workdir))
        try:
            upstream_best = uvloop.run(upstream_clients(args.calls, args.rounds))
        finally:
            nginx.stop()
    redis_best = uvloop.run(redis_calls(args.redis_url, args.calls, args.rounds))
    print("upstream POST, CPU µs a request (best of rounds):")
    for name, value in upstream_best.items():
        print(f"  {name:30} {value:7.0f}")
    print("Redis EVALSHA, CPU µs a call (best of rounds):")
    for name, value in redis_best.items():
        print(f"  {name:30} {value:7.0f}")


if __name__ == "__main__":
    main()
