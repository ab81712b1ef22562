"""Portkey and the gateway in turns: their ratio on a machine whose speed drifts.

`make bench` measures each target's scenarios one after the other, minutes apart. On a machine
whose speed drifts by ±30 % within minutes (bench/README.md, Results) a ratio of two targets then
moves with the machine. Here both servers are up at once on the same nginx upstream (Portkey as
in `make bench`; the gateway in its production shape, with its usage rows counted), and wrk
drives them in turns: BENCH_ROUNDS rounds of BENCH_DURATION seconds per scenario and
concurrency, the order swapped every round, each turn begun on a machine gone quiet (what the
run before left behind, such as PostgreSQL writing the gateway's rows, is done) and warmed by
two unmeasured seconds of the same load. It prints every run, then per scenario the medians of
both, the ratio of the medians and in how many rounds the gateway served more. Results go to
bench/results/paired.md and paired.json.

    BENCH_SCENARIOS=json,stream BENCH_CONCURRENCY=1,64 BENCH_ROUNDS=6 BENCH_DURATION=6 \\
        .venv/bin/python bench/paired.py

With BENCH_AGAINST=<commit>, the other server is not Portkey but the gateway at that commit
(checked out into a temporary git worktree, served by the same interpreter on the next port,
with the same database and Redis): two builds of the gateway compared the same way.

Needs what `make bench` installs (nginx, wrk, Portkey in bench/.portkey) and PostgreSQL and Redis
running (BENCH_DATABASE_URL, BENCH_REDIS_URL as in bench/README.md).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import report
import servers
import upstream

import bench
from bench import Target, check_once, env_list, measured_run, run_wrk

PORTKEY_HEADERS = {"x-portkey-provider": "openai"}
# Unmeasured seconds of the same load before each turn: a server idle during the other's turn
# starts cold (Node shrinks its heap when idle; Portkey's first seconds after a pause then run
# at two thirds of its speed, with p99 near 400 ms), and what is compared is steady serving.
TURN_WARMUP = 2


def portkey_target(server: servers.Server) -> Target:
    ports = {"json": upstream.UPSTREAM_PORT, "stream": upstream.STREAM_PORT}
    headers = {
        scenario: PORTKEY_HEADERS | {"x-portkey-custom-host": f"http://127.0.0.1:{port}/v1"}
        for scenario, port in ports.items()
    }
    url = f"http://127.0.0.1:{servers.PORTKEY_PORT}/v1/chat/completions"
    return Target("portkey", server, dict.fromkeys(ports, url), api_key="sk-bench", headers=headers)


def wait_until_quiet(limit: float = 15.0) -> None:
    """Until the whole machine is nearly idle (under 10 % busy over half a second), at most
    `limit` seconds: what one target's run leaves behind (PostgreSQL writing the gateway's rows
    to disk, say) must not run during the other's turn."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = machine_times()
        time.sleep(0.5)
        after = machine_times()
        busy, total = (a - b for a, b in zip(after, before, strict=True))
        if busy < 0.1 * total:
            return


def machine_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return sum(fields) - idle, sum(fields)


def take_turns(targets: list[Target], scenario: str, rows: list[dict]) -> None:
    rounds = int(os.environ.get("BENCH_ROUNDS", "6"))
    duration = int(os.environ.get("BENCH_DURATION", "6"))
    for target in targets:
        problem = check_once(target, scenario)
        if problem is not None:
            raise RuntimeError(f"{target.name}/{scenario}: {problem}")
        run_wrk(target, scenario, 16, int(os.environ.get("BENCH_WARMUP", "3")), [])
    for connections in [int(c) for c in env_list("BENCH_CONCURRENCY", "1,64")]:
        for turn in range(rounds):
            for target in targets if turn % 2 == 0 else targets[::-1]:
                wait_until_quiet()
                run_wrk(target, scenario, connections, TURN_WARMUP, [])  # steady, not waking up
                row = measured_run(target, scenario, connections, duration) | {"round": turn}
                rows.append(row)
                print(f"  {target.name:8} {report.describe(row)}", flush=True)


def of(rows: list[dict], target: str, scenario: str, connections: int) -> list[dict]:
    return [
        row
        for row in rows
        if (row["target"], row["scenario"], row["concurrency"]) == (target, scenario, connections)
    ]


def summary(rows: list[dict], other: str = "portkey", label: str = "Portkey") -> str:
    """The gateway's runs against the `other` target's (called `label`), per scenario."""
    lines = [
        f"| scenario | c | rounds | gateway req/s | {label} req/s | ratio of medians | "
        f"gateway ahead | CPU ms/req: gateway / {label} | p99 ms: gateway / {label} |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    cells = sorted({(row["scenario"], row["concurrency"]) for row in rows})
    for scenario, connections in cells:
        runs = {name: of(rows, name, scenario, connections) for name in ("gateway", other)}
        rate = {name: [report.rate(r) for r in runs[name]] for name in runs}
        ahead = sum(g > p for g, p in zip(rate["gateway"], rate[other], strict=False))
        medians = {name: statistics.median(rate[name]) for name in rate}
        cpu = {name: statistics.median(report.cpu_ms(r) for r in runs[name]) for name in runs}
        p99 = {name: statistics.median(r["p99_us"] / 1000 for r in runs[name]) for name in runs}
        lines.append(
            f"| {scenario} | {connections} | {len(rate['gateway'])} | {medians['gateway']:.0f} | "
            f"{medians[other]:.0f} | {medians['gateway'] / medians[other]:.2f}× | "
            f"{ahead} of {len(rate['gateway'])} | {cpu['gateway']:.3f} / {cpu[other]:.3f} | "
            f"{p99['gateway']:.1f} / {p99[other]:.1f} |"
        )
    return "\n".join(lines)


def check_out(commit: str, path: Path) -> Path:
    """`commit` of this repository in a detached worktree at `path` (removed by `remove`)."""
    subprocess.run(
        ["git", "-C", str(servers.REPO), "worktree", "add", "--detach", str(path), commit],
        check=True,
        capture_output=True,
    )
    return path


def remove(worktree: Path) -> None:
    subprocess.run(
        ["git", "-C", str(servers.REPO), "worktree", "remove", "--force", str(worktree)],
        check=False,
        capture_output=True,
    )


def main() -> int:
    os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/gw_bench")
    os.environ.setdefault("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
    python = os.environ.get("BENCH_PYTHON", sys.executable)
    database_url, redis_url = os.environ["BENCH_DATABASE_URL"], os.environ["BENCH_REDIS_URL"]
    against = os.environ.get("BENCH_AGAINST", "")
    other, label = (f"at {against}", f"at {against}") if against else ("portkey", "Portkey")
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="llm-gateway-paired-") as tmp:
        workdir = Path(tmp)
        nginx = servers.start_nginx(workdir)
        portkey = ledger = worktree = None
        try:
            if against:
                worktree = check_out(against, workdir / "against")
            else:
                portkey = portkey_target(servers.start_portkey(workdir))
            api_key = servers.prepare_gateway(python, database_url, redis_url)
            ledger = bench.usage_ledger(database_url, redis_url)
            ports = {"json": upstream.UPSTREAM_PORT, "stream": upstream.STREAM_PORT}
            for scenario in env_list("BENCH_SCENARIOS", "json,stream"):
                # The gateway's upstream is its OPENAI_BASE_URL: one start per scenario.
                builds = [("gateway", servers.REPO, servers.GATEWAY_PORT)]
                if worktree is not None:
                    builds.append((other, worktree, servers.GATEWAY_PORT + 1))
                gateways: list[Target] = []
                try:
                    for name, repo, port in builds:
                        server = servers.start_gateway(
                            workdir,
                            python,
                            database_url,
                            redis_url,
                            ports[scenario],
                            repo=repo,
                            port=port,
                        )
                        url = f"http://127.0.0.1:{port}/v1/chat/completions"
                        gateways.append(
                            Target(name, server, {scenario: url}, api_key=api_key, ledger=ledger)
                        )
                    print(f"{scenario}:", flush=True)
                    take_turns([*gateways, *([portkey] if portkey else [])], scenario, rows)
                finally:
                    for gateway in gateways:
                        gateway.server.stop()
        finally:
            if portkey is not None:
                portkey.server.stop()
            if ledger is not None:
                ledger.close()
            if worktree is not None:
                remove(worktree)
            nginx.stop()
    text = summary(rows, other, label)
    print("\n" + text)
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    (results / "paired.md").write_text(text + "\n")
    (results / "paired.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
