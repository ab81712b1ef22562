"""Open-streams scenario client: hold many slow streams open through a server, measure the rest.

    python bench/open_streams.py --url URL --server-pid PID --streams 10000 --seconds 60

The server is the gateway, or another target relaying to the same slow upstream (the floor,
Portkey). The API key comes from BENCH_API_KEY and a target's own headers from BENCH_HEADERS (one
"Name: value" per line, as for wrk). Steps:
1. baseline: short requests one after another (each on a new connection) for a few seconds, the
   time to their first response byte recorded; the server's workers' RSS read;
2. open `streams` streamed requests whose body asks the slow upstream (bench/slow_upstream.py)
   for a slow stream, at most `opening` of them connecting at once; meanwhile short requests go
   on one after another, each noted with the number of streams open when it was sent, and the
   workers' RSS is read every 0.5 s;
3. wait for every stream to end with [DONE].
The loaded time to first byte counts the short requests sent while at least 90 % of the most
streams ever open at once were open, after all had opened (or, when the first streams end before
the last open, during the opening); the RSS per stream is taken at that most.
Prints one line `OPEN_STREAMS_RESULT {json}`: errors by kind, RSS per open stream beyond the
baseline, short-request time to first byte (p50/p99) with and without the open streams.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import time
from collections import Counter
from urllib.parse import urlsplit

import procstat
import slow_upstream
import upstream

RESULT_MARKER = "OPEN_STREAMS_RESULT "


def _request(host: str, port: int, path: str, key: str, body: dict, extra: str = "") -> bytes:
    raw = json.dumps(body, separators=(",", ":")).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {key}\r\n{extra}"
        f"Content-Length: {len(raw)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + raw


def _extra_headers(lines: str) -> str:
    """BENCH_HEADERS ("Name: value" lines) as header lines of a request."""
    return "".join(f"{line.strip()}\r\n" for line in lines.splitlines() if ":" in line)


def _body(slow: bool) -> dict:
    text = slow_upstream.SLOW_MARKER.decode() if slow else "Say hello in one short sentence."
    body = {
        "model": upstream.MODEL,
        "messages": [{"role": "user", "content": text}],
        "max_tokens": 32,
        "temperature": 0.7,
    }
    if slow:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return body


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        parts = urlsplit(args.url)
        self.host, self.port, self.path = parts.hostname, parts.port or 80, parts.path
        key = os.environ.get("BENCH_API_KEY", "")
        extra = _extra_headers(os.environ.get("BENCH_HEADERS", ""))
        where = (self.host, self.port, self.path, key)
        self.slow_request = _request(*where, _body(slow=True), extra)
        self.short_request = _request(*where, _body(slow=False), extra)
        self.args = args
        self.errors: Counter[str] = Counter()
        self.opened = 0
        self.failed_to_open = 0
        self.sent = 0  # requests written to the gateway: each must leave one usage row
        self.completed = 0
        self.closed = 0  # streams that were open and have ended since

    async def short_ttfb(self) -> float | None:
        """Milliseconds from connecting to the first byte of a short request's answer."""
        started = time.perf_counter()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), 30
            )
        except (TimeoutError, OSError):
            self.errors["short: connect"] += 1
            return None
        try:
            writer.write(self.short_request)
            self.sent += 1
            first = await asyncio.wait_for(reader.read(1), 30)
            ttfb = (time.perf_counter() - started) * 1000
            rest = await asyncio.wait_for(reader.read(), 30)
            if not (first + rest).startswith(b"HTTP/1.1 200"):
                self.errors["short: not 200"] += 1
            return ttfb
        except (TimeoutError, OSError):
            self.errors["short: read"] += 1
            return None
        finally:
            writer.close()

    async def short_series(self, seconds: float) -> list[float]:
        """Short requests one after another (with a 20 ms pause) for `seconds`."""
        results: list[float] = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ttfb = await self.short_ttfb()
            if ttfb is not None:
                results.append(ttfb)
            await asyncio.sleep(0.02)
        return results

    def _stream_failed(self, kind: str, first_chunk: asyncio.Event) -> None:
        self.errors[kind] += 1
        self.failed_to_open += 1
        self._check_all_open(first_chunk)

    def _check_all_open(self, first_chunk: asyncio.Event) -> None:
        if self.opened + self.failed_to_open >= self.args.streams:
            first_chunk.set()

    async def hold_stream(self, opening: asyncio.Semaphore, first_chunk: asyncio.Event) -> None:
        deadline = self.args.seconds * 3 + 120
        # The slot is held while connecting and sending, not until the first chunk: the gateway
        # answers once the upstream's first content chunk arrives (one interval after its role
        # chunk), so `opening` streams per interval would be the most that could ever open.
        async with opening:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port), 60
                )
            except (TimeoutError, OSError) as error:
                self._stream_failed(f"stream: connect {type(error).__name__}", first_chunk)
                return
            try:
                writer.write(self.slow_request)
                self.sent += 1
                await asyncio.wait_for(writer.drain(), 60)
            except (TimeoutError, OSError) as error:
                self._stream_failed(f"stream: send {type(error).__name__}", first_chunk)
                writer.close()
                return
        try:
            received = b""
            while b"data:" not in received:  # the status line, headers and first chunk
                more = await asyncio.wait_for(reader.read(65536), deadline)
                if not more:
                    break
                received += more
            if not (received.startswith(b"HTTP/1.1 200") and b"data:" in received):
                status = received.split(b"\r\n", 1)[0].decode(errors="replace")[:40]
                self._stream_failed(f"stream: {status or 'no answer'}", first_chunk)
                writer.close()
                return
        except (TimeoutError, OSError) as error:
            self._stream_failed(f"stream: first chunk {type(error).__name__}", first_chunk)
            writer.close()
            return
        self.opened += 1
        self._check_all_open(first_chunk)
        try:
            tail, failed = received[-16:], b'"error"' in received
            while b"[DONE]" not in tail:
                more = await asyncio.wait_for(reader.read(65536), deadline)
                if not more:
                    self.errors["stream: ended without [DONE]"] += 1
                    return
                failed = failed or b'"error"' in tail[-8:] + more  # the gateway's error event
                tail = tail[-16:] + more
            if failed:
                self.errors["stream: error event"] += 1
            else:
                self.completed += 1
        except (TimeoutError, OSError) as error:
            self.errors[f"stream: body {type(error).__name__}"] += 1
        finally:
            self.closed += 1
            writer.close()

    def open_now(self) -> int:
        return self.opened - self.closed

    async def watch(self, stop: asyncio.Event, peak: dict) -> None:
        """Every 0.5 s: the streams open at once and the workers' RSS; keep the sample with the
        most open (the latest of equals)."""
        while not stop.is_set():
            now = self.open_now()
            if now >= peak.get("open", 0):
                peak.update(open=now, rss=_worker_rss(self.args.server_pid), at=time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)

    async def probe_loaded(
        self, stop: asyncio.Event, all_open: asyncio.Event, samples: list[tuple[int, bool, float]]
    ) -> None:
        """Short requests one after another while the streams open, stay open and end; each
        kept with the number of streams open when it was sent and whether all had opened."""
        while not stop.is_set():
            open_then, opened_all = self.open_now(), all_open.is_set()
            ttfb = await self.short_ttfb()
            if ttfb is not None:
                samples.append((open_then, opened_all, ttfb))
            await asyncio.sleep(0.02)

    async def run(self) -> dict:
        args = self.args
        baseline_ttfb = await self.short_series(args.probe_seconds)
        baseline_rss = _worker_rss(args.server_pid)
        opening = asyncio.Semaphore(args.opening)
        all_open = asyncio.Event()
        stop = asyncio.Event()
        peak: dict = {}
        samples: list[tuple[int, bool, float]] = []
        started = time.monotonic()
        watchers = [
            asyncio.create_task(self.watch(stop, peak)),
            asyncio.create_task(self.probe_loaded(stop, all_open, samples)),
        ]
        streams = [
            asyncio.create_task(self.hold_stream(opening, all_open)) for _ in range(args.streams)
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_open.wait(), args.seconds * 3 + 120)
        open_seconds = time.monotonic() - started
        await asyncio.gather(*streams)
        stop.set()
        await asyncio.gather(*watchers)
        most = peak.get("open", 0)
        # The short requests sent while at least 90 % of the most streams seen were open, once
        # all had opened (the gateway is no longer busy opening them); if the first streams end
        # before the last open, those sent during the opening.
        near_most = [(done, ttfb) for n, done, ttfb in samples if most and n >= 0.9 * most]
        loaded_ttfb = [ttfb for done, ttfb in near_most if done]
        during_opening = not loaded_ttfb
        if during_opening:
            loaded_ttfb = [ttfb for _, ttfb in near_most]
        open_rss = peak.get("rss", baseline_rss)
        return {
            "streams": args.streams,
            "opened": self.opened,
            "open_at_once": most,
            "completed": self.completed,
            "requests_sent": self.sent,
            "seconds_to_open": round(open_seconds, 2),
            "errors": dict(self.errors),
            "baseline_rss_mb": baseline_rss,
            "open_rss_mb": open_rss,
            "rss_kb_per_stream": (
                (sum(open_rss) - sum(baseline_rss)) * 1024 / most if most else None
            ),
            "baseline_ttfb_ms": _percentiles(baseline_ttfb),
            "loaded_ttfb_ms": _percentiles(loaded_ttfb),
            "loaded_during_opening": during_opening,
        }


def _worker_rss(root: int) -> list[float]:
    return sorted(round(procstat.read_rss_mb(pid), 1) for pid in procstat.list_workers(root))


def _percentiles(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    cuts = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values
    p50 = statistics.median(values)
    p99 = cuts[98] if len(values) > 1 else values[0]
    return {"n": len(values), "p50": round(p50, 2), "p99": round(p99, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60.0, help="the slow stream's length")
    parser.add_argument("--opening", type=int, default=200, help="streams connecting at once")
    parser.add_argument("--probe-seconds", type=float, default=5.0)
    args = parser.parse_args()
    slow_upstream.raise_fd_limit()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(Run(args).run())
    print(RESULT_MARKER + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
