"""Where an open stream's memory goes: N slow streams through the gateway's ASGI application,
in-process, with tracemalloc.

    DATABASE_URL=postgres://... REDIS_URL=redis://... \
        .venv/bin/python bench/stream_memory.py --streams 500 [--top 25]

It starts bench/slow_upstream.py on a free port, points the OpenAI provider at it, migrates the
database and mints a key on the unlimited bench plan (bench/gateway_fixtures.py), then calls
`gateway_project.asgi.application` directly (no server: what uvicorn keeps per connection is not
counted). After a few warm-up streams it takes a tracemalloc snapshot, opens N streams, waits
until each has sent its first chunk, takes another, and prints the memory the open streams hold
(traced KB per stream, RSS KB per stream) and the lines that allocated most of it. Then it lets
the streams end and checks that every one ended with [DONE].
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import pstats
import socket
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(BENCH), str(REPO)]

import procstat  # noqa: E402
import slow_upstream  # noqa: E402
import upstream  # noqa: E402
from asgi_scope import chat_scope  # noqa: E402


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_listening(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on {port}")


def _prepare(env: dict[str, str]) -> str:
    """Migrate, mint a bench key (as the bench does); return it."""
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "--noinput"], cwd=REPO, env=env, check=True)
    code = (BENCH / "gateway_fixtures.py").read_text()
    out = subprocess.run(
        [python, "manage.py", "shell", "-c", code],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return next(line.split("=", 1)[1] for line in out.splitlines() if line.startswith("BENCH_"))


class Stream:
    """One ASGI request; the body is held until `done`, disconnect never comes."""

    def __init__(self, body: bytes, key: str) -> None:
        self.body = body
        self.scope = chat_scope(body, key)
        self.first = asyncio.Event()
        self.status = 0
        self.tail = b""
        self.sent_body = False
        self.finished = asyncio.Event()

    async def receive(self) -> dict:
        if not self.sent_body:
            self.sent_body = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self.finished.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            chunk = message.get("body", b"")
            if b"data:" in chunk and not self.first.is_set():
                self.opened_at = time.monotonic()
                self.first.set()
            self.tail = (self.tail + chunk)[-64:]
            if not message.get("more_body", False):
                self.first.set()

    async def run(self, app) -> None:
        self.started_at = time.monotonic()
        try:
            await app(self.scope, self.receive, self.send)
        finally:
            self.first.set()
            self.finished.set()


def _body() -> bytes:
    body = {
        "model": upstream.MODEL,
        "messages": [{"role": "user", "content": slow_upstream.SLOW_MARKER.decode()}],
        "max_tokens": 32,
        "temperature": 0.7,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    return json.dumps(body, separators=(",", ":")).encode()


async def _lifespan(app) -> asyncio.Queue:
    inbox: asyncio.Queue = asyncio.Queue()
    outbox: asyncio.Queue = asyncio.Queue()
    asyncio.get_running_loop().create_task(app({"type": "lifespan"}, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    message = await outbox.get()
    assert message["type"] == "lifespan.startup.complete", message
    return inbox


def _census() -> dict[str, int]:
    counts: dict[str, int] = {}
    for obj in gc.get_objects():
        kind = type(obj)
        name = f"{kind.__module__}.{kind.__qualname__}"
        counts[name] = counts.get(name, 0) + 1
    return counts


def _report_census(before: dict[str, int], after: dict[str, int], streams: int, top: int) -> None:
    grown = {name: after.get(name, 0) - before.get(name, 0) for name in after}
    print("objects (gc-tracked) per open stream:")
    for name, count in sorted(grown.items(), key=lambda item: -item[1])[:top]:
        print(f"  {count / streams:6.2f}  {name}")


def _ours(frame) -> bool:
    return frame.filename.startswith(str(REPO)) and "/.venv/" not in frame.filename


def _report_by_caller(stats, streams: int, top: int) -> None:
    """Each allocation charged to the innermost frame of the gateway's own code above it."""
    totals: dict[str, list[int]] = {}
    for stat in stats:
        frame = next((f for f in reversed(stat.traceback) if _ours(f)), stat.traceback[-1])
        name = f"{Path(frame.filename).relative_to(REPO) if _ours(frame) else frame.filename}"
        where = totals.setdefault(f"{name}:{frame.lineno}", [0, 0])
        where[0] += stat.size_diff
        where[1] += stat.count_diff
    print("by the innermost line of ours that allocated (B, blocks per stream):")
    for where, (size, count) in sorted(totals.items(), key=lambda item: -item[1][0])[:top]:
        print(f"{size / streams:8.0f} B {count / streams:6.1f}  {where}")


def _report(before, after, streams: int, top: int, frames: int, key: str) -> None:
    stats = after.compare_to(before, "traceback" if frames > 1 else key)
    if frames > 1:
        _report_by_caller(stats, streams, top)
        return
    grown = sum(stat.size_diff for stat in stats)
    print(f"traced: {grown / 1024 / streams:.1f} KB per open stream ({grown / 1024:.0f} KB)")
    for stat in sorted(stats, key=lambda s: s.size_diff, reverse=True)[:top]:
        per = stat.size_diff / streams
        count = stat.count_diff / streams
        where = stat.traceback.format(limit=frames)
        print(f"{per:8.0f} B {count:6.1f} blocks  " + " <- ".join(line.strip() for line in where))


async def main_async(args: argparse.Namespace, key: str) -> int:
    from gateway_project.asgi import application

    inbox = await _lifespan(application)
    body = _body()
    warm = [Stream(body, key) for _ in range(args.warmup)]
    await asyncio.gather(*(s.run(application) for s in warm))
    gc.collect()
    await asyncio.sleep(1)  # settlements of the warm-up streams
    if args.trace:
        tracemalloc.start(args.frames)
    gc.collect()
    rss_before = procstat.read_rss_mb(os.getpid())
    census = _census()
    before = tracemalloc.take_snapshot() if args.trace else None
    streams = [Stream(body, key) for _ in range(args.streams)]
    profile = cProfile.Profile() if args.profile else None
    if profile:
        profile.enable()
    tasks = [asyncio.create_task(s.run(application)) for s in streams]
    started = time.monotonic()
    for s in streams:
        await s.first.wait()
    if profile:
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)
    print(f"{args.streams} streams open in {time.monotonic() - started:.1f} s")
    waits = sorted(s.opened_at - s.started_at for s in streams if hasattr(s, "opened_at"))
    if waits:
        cuts = [waits[int(q * (len(waits) - 1))] for q in (0, 0.5, 0.9, 1)]
        print("time to first chunk min/p50/p90/max s: " + " ".join(f"{c:.2f}" for c in cuts))
    await asyncio.sleep(args.interval / 2)  # between two chunks
    gc.collect()
    rss_open = procstat.read_rss_mb(os.getpid())
    kb = (rss_open - rss_before) * 1024 / args.streams
    traced = " (tracemalloc on)" if args.trace else ""
    print(f"RSS: {rss_before:.1f} -> {rss_open:.1f} MB, {kb:.1f} KB per open stream{traced}")
    _report_census(census, _census(), args.streams, args.top)
    if args.trace:
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        _report(before, after, args.streams, args.top, args.frames, args.key)
    await asyncio.gather(*tasks)
    done = sum(1 for s in streams if s.status == 200 and b"[DONE]" in s.tail)
    print(f"ended with [DONE]: {done} of {args.streams}")
    await inbox.put({"type": "lifespan.shutdown"})
    return 0 if done == args.streams else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--frames", type=int, default=1, help="traceback depth to group by")
    parser.add_argument("--key", default="lineno", help="tracemalloc grouping: lineno, filename")
    parser.add_argument("--no-trace", dest="trace", action="store_false", help="RSS only")
    parser.add_argument("--profile", action="store_true", help="cProfile the opening")
    args = parser.parse_args()
    slow_upstream.raise_fd_limit()
    port = _free_port()
    slow = subprocess.Popen(
        [sys.executable, str(BENCH / "slow_upstream.py"), str(port)]
        + ["--interval", str(args.interval), "--seconds", str(args.seconds)],
        stdout=subprocess.DEVNULL,
    )
    try:
        _wait_listening(port)
        env = {
            "DEBUG": "0",
            "SECRET_KEY": "bench-secret-key-not-for-production-0123456789abcdef",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "OPENAI_API_KEY": "sk-bench",
            "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1",
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
            "GATEWAY_USAGE_FLUSH_SECONDS": "0",
            "DJANGO_SETTINGS_MODULE": "gateway_project.settings",
        }
        os.environ.update(env)
        key = _prepare(dict(os.environ))
        import uvloop

        uvloop.install()
        return asyncio.run(main_async(args, key))
    finally:
        slow.terminate()
        slow.wait()


if __name__ == "__main__":
    sys.exit(main())
