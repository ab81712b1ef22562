"""Benchmark driver: start the upstream and each target, drive them with wrk, print one table.

Targets: direct (the nginx upstream itself), litellm (LiteLLM's proxy), portkey (Portkey's
gateway, 2 node:cluster workers), gateway (this project, gunicorn + 2 uvicorn workers + Celery,
PostgreSQL, Redis, governance on). Scenarios: json (non-stream), stream (SSE), cache
(temperature 0, the same body every time), each at every concurrency. Optional: a soak of the
gateway (BENCH_SOAK=1) and many open streams held through it (BENCH_OPEN_STREAMS=N).

Every knob is an environment variable, listed in bench/README.md.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import procstat
import report
import servers
import slow_upstream
import upstream

BENCH_DIR = Path(__file__).resolve().parent
LUA = BENCH_DIR / "chat.lua"
RESULT_MARKER = "BENCH_RESULT "
OPEN_STREAMS_MARKER = "OPEN_STREAMS_RESULT "
# Many connections opened at once: the listen backlog asked of a server (the kernel caps it at
# net.core.somaxconn).
OPEN_STREAMS_BACKLOG = 65535
SCENARIOS = {  # name -> (stream, temperature)
    "json": (False, "0.7"),
    "stream": (True, "0.7"),
    "cache": (False, "0"),
}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


@dataclass
class Target:
    """One server to drive: where to send each scenario, with which model and key."""

    name: str
    server: servers.Server
    urls: dict[str, str]  # scenario -> URL
    models: dict[str, str] = field(default_factory=dict)  # scenario -> model name
    api_key: str = ""
    cache_opt_in: bool = False  # LiteLLM's cache answers only requests that ask for it
    headers: dict[str, dict[str, str]] = field(default_factory=dict)  # scenario -> extra headers
    ledger: object | None = None  # usage_rows.UsageLedger: the gateway's rows are counted

    def request_headers(self, scenario: str) -> dict[str, str]:
        headers = {"Content-Type": "application/json"} | self.headers.get(scenario, {})
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def body(self, scenario: str) -> dict:
        stream, temperature = SCENARIOS[scenario]
        body = {
            "model": self.models.get(scenario, upstream.MODEL),
            "messages": [
                {"role": "system", "content": "You are a concise assistant."},
                {"role": "user", "content": "Say hello in one short sentence."},
            ],
            "max_tokens": 32,
            "temperature": float(temperature),
        }
        if stream:
            body |= {"stream": True, "stream_options": {"include_usage": True}}
        if scenario == "cache" and self.cache_opt_in:
            body["cache"] = {"use-cache": True}
        return body


def check_once(target: Target, scenario: str) -> str | None:
    """Send one request as wrk will; return None if the answer looks right, else why not."""
    request = urllib.request.Request(  # noqa: S310 - always http://127.0.0.1
        target.urls[scenario],
        data=json.dumps(target.body(scenario)).encode(),
        headers=target.request_headers(scenario),
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            status, text = response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode(errors="replace")
    except OSError as error:
        return f"no answer: {error}"
    if status != 200:
        return f"HTTP {status}: {' '.join(text.split())[:200]}"
    if SCENARIOS[scenario][0]:
        ok = "data:" in text and "[DONE]" in text
    else:
        ok = text.lstrip().startswith("{") and '"choices"' in text
    return None if ok else f"HTTP 200 but not a chat completion: {text[:200]}"


def run_wrk(target: Target, scenario: str, connections: int, seconds: int, samplers: list) -> dict:
    stream, temperature = SCENARIOS[scenario]
    model = target.models.get(scenario, upstream.MODEL)
    argv = ["wrk", "-t", str(min(2, connections)), "-c", str(connections), "-d", f"{seconds}s"]
    argv += ["--timeout", "10s", "--latency", "-s", str(LUA), target.urls[scenario], "--"]
    argv += [model, "1" if stream else "0", temperature]
    argv.append("1" if scenario == "cache" and target.cache_opt_in else "0")
    headers = target.headers.get(scenario, {})
    extra = "\n".join(f"{name}: {value}" for name, value in headers.items())
    env = {**os.environ, "BENCH_API_KEY": target.api_key, "BENCH_HEADERS": extra}
    for sampler in samplers:
        sampler.sample()
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env) as wrk:
        while wrk.poll() is None:
            time.sleep(0.5)
            for sampler in samplers:
                sampler.sample()
        output = wrk.stdout.read()
    for sampler in samplers:
        sampler.sample()
    for line in output.splitlines():
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER) :])
    raise RuntimeError(f"wrk printed no result:\n{output[-1000:]}")


def services_pids(exclude: frozenset[int] = frozenset()) -> list[int]:
    """PostgreSQL backends of the benchmark database, and Redis (shared, so approximate);
    without the driver's own backend (it counts usage rows)."""
    database = os.environ["BENCH_DATABASE_URL"].rsplit("/", 1)[-1]
    pids = [pid for pid in procstat.find_processes(f" {database} ") if "postgres:" in _cmd(pid)]
    return [pid for pid in pids if pid not in exclude] + procstat.find_processes("redis-server")


def _cmd(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
    except OSError:
        return ""


class PidsSampler(procstat.TreeSampler):
    """CPU of a set of processes found anew at each sample (backends come and go)."""

    def __init__(self, exclude: frozenset[int] = frozenset()) -> None:
        super().__init__(root=0)
        self.exclude = exclude

    def sample(self) -> None:
        for pid in services_pids(self.exclude):
            stat = procstat.read_stat(pid)
            if stat is not None:
                self.first_cpu.setdefault(pid, stat[1])
                self.last_cpu[pid] = stat[1]


def _exclude(target: Target) -> frozenset[int]:
    return frozenset([target.ledger.backend_pid]) if target.ledger else frozenset()


def usage_delta(before, after, drained: bool) -> dict:
    return {
        "usage_rows": after.rows - before.rows,
        "usage_cut": after.cut - before.cut,
        "usage_dead_letters": after.dead_letters - before.dead_letters,
        "usage_drained": drained,
        # Once drained, nothing is in flight: every hold this run left is one nobody settles.
        "usage_holds_left": None if None in (before.held, after.held) else after.held - before.held,
    }


def measured_run(target: Target, scenario: str, connections: int, seconds: int) -> dict:
    """One wrk run with the server's and the services' CPU sampled; for the gateway, its usage
    rows counted before and after (sampling on until the queue is drained: the flush of this
    run's rows is work of this run)."""
    server_cpu = procstat.TreeSampler(target.server.pid)
    services_cpu = PidsSampler(_exclude(target))
    samplers = [server_cpu, services_cpu]
    before = target.ledger.settle(lambda: None)[0] if target.ledger else None
    result = run_wrk(target, scenario, connections, seconds, samplers)
    row = {"target": target.name, "scenario": scenario, "concurrency": connections, **result}
    if target.ledger:
        during_wrk = server_cpu.cpu_seconds()
        after, drained = target.ledger.settle(lambda: [s.sample() for s in samplers])
        row |= usage_delta(before, after, drained)
        row["server_cpu_drain_s"] = server_cpu.cpu_seconds() - during_wrk  # in server_cpu_s
    row["server_cpu_s"] = server_cpu.cpu_seconds()
    row["services_cpu_s"] = services_cpu.cpu_seconds()
    row["worker_rss_mb"] = sorted(server_cpu.peak_worker_rss.values())
    row["loadavg"] = os.getloadavg()[0]
    return row


def measure(target: Target, scenarios: list[str], rows: list[dict]) -> None:
    duration = int(os.environ.get("BENCH_DURATION", "10"))
    warmup = int(os.environ.get("BENCH_WARMUP", "3"))
    for scenario in scenarios:
        if scenario not in target.urls:
            continue
        problem = check_once(target, scenario)
        if problem is None and scenario == "cache":
            problem = check_once(target, scenario)  # the first answer filled the cache
        base = {"target": target.name, "scenario": scenario}
        if problem is not None:
            print(f"  {target.name}/{scenario}: NOT MEASURED, {problem}", flush=True)
            rows.append(base | {"concurrency": "-", "problem": problem})
            continue
        if warmup:
            run_wrk(target, scenario, 16, warmup, [])
        for connections in [int(c) for c in env_list("BENCH_CONCURRENCY", "1,16,64")]:
            row = measured_run(target, scenario, connections, duration)
            rows.append(row)
            print("  " + report.describe(row), flush=True)


def measure_direct(nginx: servers.Server, scenarios: list[str], rows: list) -> None:
    urls = {
        "json": f"http://127.0.0.1:{upstream.UPSTREAM_PORT}/v1/chat/completions",
        "stream": f"http://127.0.0.1:{upstream.STREAM_PORT}/v1/chat/completions",
    }
    measure(Target("direct", nginx, urls), scenarios, rows)


def measure_litellm(workdir: Path, scenarios: list[str], rows: list) -> None:
    litellm_bin = Path(
        os.environ.get("BENCH_LITELLM", BENCH_DIR / ".litellm-venv" / "bin" / "litellm")
    )
    server = servers.start_litellm(workdir, litellm_bin, os.environ["BENCH_REDIS_URL"])
    try:
        url = f"http://127.0.0.1:{servers.LITELLM_PORT}/v1/chat/completions"
        target = Target(
            "litellm",
            server,
            dict.fromkeys(("json", "stream", "cache"), url),
            models={"stream": f"{upstream.MODEL}-stream"},
            cache_opt_in=True,
        )
        measure(target, scenarios, rows)
    finally:
        server.stop()


def measure_portkey(workdir: Path, scenarios: list[str], rows: list) -> None:
    """Portkey routes by headers: provider openai, its base URL the upstream's port. It has no
    cache scenario (its cache is a feature of the hosted product)."""
    try:
        server = servers.start_portkey(workdir)
    except RuntimeError as error:
        print(f"  portkey: NOT MEASURED, did not start: {error}", flush=True)
        rows.append({"target": "portkey", "scenario": "all", "problem": "did not start"})
        return
    try:
        url = f"http://127.0.0.1:{servers.PORTKEY_PORT}/v1/chat/completions"
        ports = {"json": upstream.UPSTREAM_PORT, "stream": upstream.STREAM_PORT}
        headers = {
            scenario: {
                "x-portkey-provider": "openai",
                "x-portkey-custom-host": f"http://127.0.0.1:{port}/v1",
            }
            for scenario, port in ports.items()
        }
        target = Target(
            "portkey", server, dict.fromkeys(ports, url), api_key="sk-bench", headers=headers
        )
        measure(target, scenarios, rows)
    finally:
        server.stop()
    if open_streams_count() > 0:
        slow = f"http://127.0.0.1:{servers.SLOW_UPSTREAM_PORT}/v1"
        run_open_streams(
            workdir,
            "portkey",
            lambda: servers.start_portkey(workdir),
            url,
            rows,
            api_key="sk-bench",
            headers={"x-portkey-provider": "openai", "x-portkey-custom-host": slow},
        )


def measure_floor(workdir: Path, scenarios: list[str], rows: list) -> None:
    """bench/floor.py: the same servers and upstream client as the gateway, doing nothing else."""
    server = servers.start_floor(workdir, os.environ["BENCH_PYTHON"])
    try:
        base = f"http://127.0.0.1:{servers.FLOOR_PORT}"
        urls = {
            scenario: f"{base}/{scenario}/v1/chat/completions" for scenario in ("json", "stream")
        }
        measure(Target("floor", server, urls), scenarios, rows)
    finally:
        server.stop()
    if open_streams_count() > 0:
        run_open_streams(
            workdir,
            "floor",
            lambda: servers.start_floor(
                workdir, os.environ["BENCH_PYTHON"], backlog=OPEN_STREAMS_BACKLOG
            ),
            f"http://127.0.0.1:{servers.FLOOR_PORT}/slow/v1/chat/completions",
            rows,
        )


def usage_ledger(database_url: str, redis_url: str):
    """The gateway's usage rows, counted from outside (None if the stores cannot be reached)."""
    try:
        import usage_rows

        return usage_rows.UsageLedger(database_url, redis_url)
    except Exception as error:  # noqa: BLE001 - the table still comes out, with a warning
        print(f"  usage rows NOT COUNTED: {error}", flush=True)
        return None


def measure_gateway(workdir: Path, scenarios: list[str], rows: list, name: str = "gateway") -> None:
    """The upstream is chosen by OPENAI_BASE_URL, so the stream scenario runs against a second
    start of the gateway pointed at the streaming port (and the open-streams scenario against a
    third, pointed at the slow upstream). `gateway-granian` is the same gateway under granian
    instead of gunicorn and uvicorn (no soak and no open streams: those measure the default)."""
    http_server = "granian" if name == "gateway-granian" else "gunicorn"
    python = os.environ.get("BENCH_PYTHON", sys.executable)
    database_url, redis_url = os.environ["BENCH_DATABASE_URL"], os.environ["BENCH_REDIS_URL"]
    try:
        api_key = servers.prepare_gateway(python, database_url, redis_url)
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        print(f"  {name}: NOT MEASURED, setup failed: {error}", flush=True)
        rows.append({"target": name, "scenario": "all", "problem": "setup failed"})
        return
    ledger = usage_ledger(database_url, redis_url)
    url = f"http://127.0.0.1:{servers.GATEWAY_PORT}/v1/chat/completions"
    soak = os.environ.get("BENCH_SOAK", "0") not in ("", "0") and name == "gateway"
    phases = [
        (upstream.UPSTREAM_PORT, [s for s in scenarios if s != "stream"]),
        (upstream.STREAM_PORT, [s for s in scenarios if s == "stream"]),
    ]
    try:
        for upstream_port, phase_scenarios in phases:
            if not phase_scenarios and not (soak and upstream_port == upstream.UPSTREAM_PORT):
                continue
            try:
                server = servers.start_gateway(
                    workdir, python, database_url, redis_url, upstream_port, None, http_server
                )
            except RuntimeError as error:
                print(f"  {name}: NOT MEASURED, did not start: {error}", flush=True)
                rows.append({"target": name, "scenario": "all", "problem": "did not start"})
                return
            try:
                target = Target(
                    name,
                    server,
                    dict.fromkeys([*phase_scenarios, "json"], url),
                    api_key=api_key,
                    ledger=ledger,
                )
                measure(target, phase_scenarios, rows)
                if soak and upstream_port == upstream.UPSTREAM_PORT:
                    run_soak(target, rows)
            finally:
                server.stop()
        if open_streams_count() > 0 and name == "gateway":
            run_open_streams(
                workdir,
                name,
                lambda: servers.start_gateway(
                    workdir,
                    python,
                    database_url,
                    redis_url,
                    servers.SLOW_UPSTREAM_PORT,
                    backlog=OPEN_STREAMS_BACKLOG,
                ),
                url,
                rows,
                api_key=api_key,
                ledger=ledger,
            )
    finally:
        if ledger is not None:
            ledger.close()


def _merge_pieces(pieces: list[dict]) -> dict:
    """Several wrk runs as one: counts added; p50 the median of the pieces', p99 and max the
    worst piece's (wrk's histograms are not kept, so these are approximations)."""
    merged = {key: sum(piece[key] for piece in pieces) for key in report.COUNTS}
    p50s = sorted(piece["p50_us"] for piece in pieces)
    merged["p50_us"] = p50s[len(p50s) // 2]
    merged["p99_us"] = max(piece["p99_us"] for piece in pieces)
    merged["max_us"] = max(piece["max_us"] for piece in pieces)
    return merged


def soak_phase(target: Target, name: str, connections: int, stop, piece_seconds: int) -> dict:
    """wrk in pieces of piece_seconds until stop(requests, elapsed) says so; the worker RSS at the
    end of every piece is kept (its first and last value give the growth)."""
    server_cpu = procstat.TreeSampler(target.server.pid)
    services_cpu = PidsSampler(_exclude(target))
    samplers = [server_cpu, services_cpu]
    before = target.ledger.settle(lambda: None)[0] if target.ledger else None
    rss_start = _worker_rss(target.server.pid)
    pieces: list[dict] = []
    rss_series = [rss_start]
    started = time.monotonic()
    while not stop(sum(p["requests"] for p in pieces), time.monotonic() - started):
        pieces.append(run_wrk(target, "json", connections, piece_seconds, samplers))
        rss_series.append(_worker_rss(target.server.pid))
        print(
            f"    {name}: {sum(p['requests'] for p in pieces)} requests, RSS "
            f"{'/'.join(f'{mb:.0f}' for mb in rss_series[-1])} MB",
            flush=True,
        )
    row = {"target": target.name, "scenario": name, "concurrency": connections}
    row |= _merge_pieces(pieces)
    row["wrk_stops"] = len(pieces)
    if target.ledger:
        during_wrk = server_cpu.cpu_seconds()
        after, drained = target.ledger.settle(lambda: [s.sample() for s in samplers])
        row |= usage_delta(before, after, drained)
        row["server_cpu_drain_s"] = server_cpu.cpu_seconds() - during_wrk
    row["server_cpu_s"] = server_cpu.cpu_seconds()
    row["services_cpu_s"] = services_cpu.cpu_seconds()
    row["worker_rss_mb"] = sorted(server_cpu.peak_worker_rss.values())
    row["rss_series_mb"] = rss_series
    row["loadavg"] = os.getloadavg()[0]
    return row


def _worker_rss(root: int) -> list[float]:
    """Current RSS of each worker, in a stable order (by pid)."""
    return [round(procstat.read_rss_mb(pid), 1) for pid in sorted(procstat.list_workers(root))]


def run_soak(target: Target, rows: list[dict]) -> None:
    """BENCH_SOAK: BENCH_SOAK_REQUESTS (100,000) JSON requests, then the RSS of each worker; then
    BENCH_SOAK_MINUTES (10) of load, and how much each worker's RSS grew over them."""
    total = int(os.environ.get("BENCH_SOAK_REQUESTS", "100000"))
    minutes = float(os.environ.get("BENCH_SOAK_MINUTES", "10"))
    connections = int(os.environ.get("BENCH_SOAK_CONCURRENCY", "64"))
    print(f"  soak: {total} requests, then {minutes:g} min at c={connections}", flush=True)
    row = soak_phase(
        target, f"soak {total} req", connections, lambda n, _: n >= total, piece_seconds=10
    )
    rows.append(row)
    print("  " + report.describe(row), flush=True)
    seconds = minutes * 60
    piece = max(1, min(60, round(seconds)))
    row = soak_phase(
        target, f"soak {minutes:g} min", connections, lambda _, t: t >= seconds - 0.5, piece
    )
    rows.append(row)
    print("  " + report.describe(row), flush=True)


def open_streams_count() -> int:
    return int(os.environ.get("BENCH_OPEN_STREAMS", "0"))


def run_open_streams(
    workdir: Path,
    name: str,
    start: Callable[[], servers.Server],
    url: str,
    rows: list[dict],
    *,
    api_key: str = "",
    headers: dict[str, str] | None = None,
    ledger=None,
) -> None:
    """BENCH_OPEN_STREAMS: that many slow streams held open at once through one target, which
    `start` starts pointed at the slow upstream (the gateway, the floor or Portkey)."""
    streams = open_streams_count()
    seconds = float(os.environ.get("BENCH_OPEN_STREAM_SECONDS", "60"))
    interval = float(os.environ.get("BENCH_OPEN_STREAM_INTERVAL", "5"))
    print(f"  open streams: {streams} streams of {seconds:g} s (a chunk every {interval:g} s)")
    base = {"target": name, "scenario": "open streams", "streams": streams}
    slow = None
    try:
        slow = servers.start_slow_upstream(workdir, interval, seconds)
        server = start()
    except RuntimeError as error:
        if slow is not None:
            slow.stop()
        print(f"  open streams: NOT MEASURED, did not start: {error}", flush=True)
        rows.append(base | {"problem": f"did not start: {error}"})
        return
    try:
        before = ledger.settle(lambda: None)[0] if ledger else None
        python = os.environ.get("BENCH_PYTHON", sys.executable)
        argv = [python, str(BENCH_DIR / "open_streams.py"), "--url", url]
        argv += ["--server-pid", str(server.pid), "--streams", str(streams)]
        argv += ["--seconds", str(seconds)]
        extra = "\n".join(f"{header}: {value}" for header, value in (headers or {}).items())
        env = {**os.environ, "BENCH_API_KEY": api_key, "BENCH_HEADERS": extra}
        done = subprocess.run(
            argv,
            cwd=BENCH_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=seconds * 4 + 600,
            check=False,
        )
        result = None
        for line in done.stdout.splitlines():
            if line.startswith(OPEN_STREAMS_MARKER):
                result = json.loads(line[len(OPEN_STREAMS_MARKER) :])
        if result is None:
            problem = f"client failed: {(done.stdout + done.stderr)[-500:]}"
            print(f"  open streams: NOT MEASURED, {problem}", flush=True)
            rows.append(base | {"problem": problem})
            return
        row = base | {"open_streams": result}
        if ledger:
            after, drained = ledger.settle(lambda: None)
            row |= usage_delta(before, after, drained)
        rows.append(row)
        print("  " + report.describe_open_streams(row), flush=True)
    finally:
        server.stop()
        slow.stop()


def stop_on_signal(signum: int, frame: object) -> None:
    # Turn SIGTERM into an exception so every `finally` stops the servers it started.
    raise SystemExit(128 + signum)


def main() -> int:
    signal.signal(signal.SIGTERM, stop_on_signal)
    os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/gw_bench")
    os.environ.setdefault("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
    targets = env_list("BENCH_TARGETS", "direct,litellm,portkey,gateway")
    scenarios = env_list("BENCH_SCENARIOS", "json,stream,cache")
    rows: list[dict] = []
    started = time.time()
    if open_streams_count() > 0:
        # Inherited by every server started from here: one fd per open stream and more.
        slow_upstream.raise_fd_limit()
    with tempfile.TemporaryDirectory(prefix="llm-gateway-bench-") as tmp:
        workdir = Path(tmp)
        nginx = servers.start_nginx(workdir)
        try:
            for name in targets:
                print(f"{name}:", flush=True)
                if name == "direct":
                    measure_direct(nginx, scenarios, rows)
                elif name == "litellm":
                    measure_litellm(workdir, scenarios, rows)
                elif name == "portkey":
                    measure_portkey(workdir, scenarios, rows)
                elif name == "floor":
                    measure_floor(workdir, scenarios, rows)
                elif name in ("gateway", "gateway-granian"):
                    measure_gateway(workdir, scenarios, rows, name)
                else:
                    print(
                        f"  unknown target {name!r} "
                        "(direct, floor, litellm, portkey, gateway, gateway-granian)"
                    )
        finally:
            nginx.stop()
    text = report.render(rows, started)
    print("\n" + text)
    results = BENCH_DIR / "results"
    results.mkdir(exist_ok=True)
    (results / "latest.md").write_text(text)
    (results / "latest.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
