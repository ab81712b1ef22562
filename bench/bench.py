"""Benchmark driver: start the upstream and each target, drive them with wrk, print one table.

Targets: direct (the nginx upstream itself), litellm (LiteLLM's proxy), gateway (this project,
gunicorn + 2 uvicorn workers, PostgreSQL, Redis, governance on). Scenarios: json (non-stream),
stream (SSE), cache (temperature 0, the same body every time), each at every concurrency.

Environment: BENCH_TARGETS (direct,litellm,gateway), BENCH_SCENARIOS (json,stream,cache),
BENCH_CONCURRENCY (1,16,64), BENCH_DURATION seconds per run (10), BENCH_WARMUP seconds (3),
BENCH_PYTHON (the gateway's interpreter), BENCH_LITELLM (the litellm executable),
BENCH_DATABASE_URL, BENCH_REDIS_URL.
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
from dataclasses import dataclass, field
from pathlib import Path

import procstat
import report
import servers
import upstream

BENCH_DIR = Path(__file__).resolve().parent
LUA = BENCH_DIR / "chat.lua"
RESULT_MARKER = "BENCH_RESULT "
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
        headers={"Content-Type": "application/json"}
        | ({"Authorization": f"Bearer {target.api_key}"} if target.api_key else {}),
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
    env = {**os.environ, "BENCH_API_KEY": target.api_key}
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


def services_pids() -> list[int]:
    """PostgreSQL backends of the benchmark database, and Redis (shared, so approximate)."""
    database = os.environ["BENCH_DATABASE_URL"].rsplit("/", 1)[-1]
    pids = [pid for pid in procstat.find_processes(f" {database} ") if "postgres:" in _cmd(pid)]
    return pids + procstat.find_processes("redis-server")


def _cmd(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
    except OSError:
        return ""


class PidsSampler(procstat.TreeSampler):
    """CPU of a set of processes found anew at each sample (backends come and go)."""

    def __init__(self) -> None:
        super().__init__(root=0)

    def sample(self) -> None:
        for pid in services_pids():
            stat = procstat.read_stat(pid)
            if stat is not None:
                self.first_cpu.setdefault(pid, stat[1])
                self.last_cpu[pid] = stat[1]


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
            server_cpu = procstat.TreeSampler(target.server.pid)
            services_cpu = PidsSampler()
            result = run_wrk(target, scenario, connections, duration, [server_cpu, services_cpu])
            row = base | {"concurrency": connections, **result}
            row["server_cpu_s"] = server_cpu.cpu_seconds()
            row["services_cpu_s"] = services_cpu.cpu_seconds()
            row["worker_rss_mb"] = sorted(server_cpu.peak_worker_rss.values())
            row["loadavg"] = os.getloadavg()[0]
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


def measure_gateway(workdir: Path, scenarios: list[str], rows: list) -> None:
    """The upstream is chosen by OPENAI_BASE_URL, so the stream scenario runs against a second
    start of the gateway pointed at the streaming port."""
    python = os.environ.get("BENCH_PYTHON", sys.executable)
    database_url, redis_url = os.environ["BENCH_DATABASE_URL"], os.environ["BENCH_REDIS_URL"]
    try:
        api_key = servers.prepare_gateway(python, database_url, redis_url)
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        print(f"  gateway: NOT MEASURED, setup failed: {error}", flush=True)
        rows.append({"target": "gateway", "scenario": "all", "problem": "setup failed"})
        return
    url = f"http://127.0.0.1:{servers.GATEWAY_PORT}/v1/chat/completions"
    phases = [
        (upstream.UPSTREAM_PORT, [s for s in scenarios if s != "stream"]),
        (upstream.STREAM_PORT, [s for s in scenarios if s == "stream"]),
    ]
    for upstream_port, phase_scenarios in phases:
        if not phase_scenarios:
            continue
        try:
            server = servers.start_gateway(workdir, python, database_url, redis_url, upstream_port)
        except RuntimeError as error:
            print(f"  gateway: NOT MEASURED, did not start: {error}", flush=True)
            rows.append({"target": "gateway", "scenario": "all", "problem": "did not start"})
            return
        try:
            target = Target("gateway", server, dict.fromkeys(phase_scenarios, url), api_key=api_key)
            measure(target, phase_scenarios, rows)
        finally:
            server.stop()


def stop_on_signal(signum: int, frame: object) -> None:
    # Turn SIGTERM into an exception so every `finally` stops the servers it started.
    raise SystemExit(128 + signum)


def main() -> int:
    signal.signal(signal.SIGTERM, stop_on_signal)
    os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/gw_bench")
    os.environ.setdefault("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
    targets = env_list("BENCH_TARGETS", "direct,litellm,gateway")
    scenarios = env_list("BENCH_SCENARIOS", "json,stream,cache")
    rows: list[dict] = []
    started = time.time()
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
                elif name == "gateway":
                    measure_gateway(workdir, scenarios, rows)
                else:
                    print(f"  unknown target {name!r} (direct, litellm, gateway)", flush=True)
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
