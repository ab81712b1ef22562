"""The results table: one markdown table, plus how the gateway stands against its targets."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
HEADER = (
    "| target | scenario | c | req/s | p50 ms | p99 ms | +p50 ms | +p99 ms "
    "| CPU ms/req | DB+Redis CPU ms/req | RSS MB/worker | non-2xx | errors |"
)
RULE = "|" + "---|" * (HEADER.count("|") - 1)


def _ms(microseconds: float) -> float:
    return microseconds / 1000


def _fmt(value: float) -> str:
    if abs(value) < 10:
        return f"{value:.2f}"
    return f"{value:.1f}" if abs(value) < 100 else f"{value:.0f}"


def rate(row: dict) -> float:
    return row["requests"] / (row["duration_us"] / 1e6) if row.get("duration_us") else 0.0


def errors(row: dict) -> int:
    return sum(row[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))


def describe(row: dict) -> str:
    """One run on one line, printed as the benchmark goes."""
    rss = "/".join(f"{mb:.0f}" for mb in row["worker_rss_mb"])
    return (
        f"{row['scenario']:<6} c={row['concurrency']:<3} {rate(row):>8.0f} req/s  "
        f"p50 {_ms(row['p50_us']):7.2f} ms  p99 {_ms(row['p99_us']):8.2f} ms  "
        f"cpu {1000 * row['server_cpu_s'] / max(row['requests'], 1):6.2f} ms/req  "
        f"rss {rss} MB  non-2xx {row['non_2xx']}  errors {errors(row)}  "
        f"load {row['loadavg']:.1f}"
    )


def _baseline(rows: list[dict], row: dict) -> dict | None:
    """The direct run to subtract: same scenario and concurrency (cache hits: the JSON run)."""
    scenario = "json" if row["scenario"] == "cache" else row["scenario"]
    for other in rows:
        if (
            other["target"] == "direct"
            and other["scenario"] == scenario
            and other["concurrency"] == row["concurrency"]
            and "requests" in other
        ):
            return other
    return None


def _table_row(rows: list[dict], row: dict) -> str:
    if "problem" in row:
        problem = row["problem"].replace("|", "/").replace("\n", " ")[:120]
        return f"| {row['target']} | {row['scenario']} | – | NOT MEASURED: {problem} |"
    requests = max(row["requests"], 1)
    direct = _baseline(rows, row)
    if direct is None or direct is row:
        added_p50 = added_p99 = "–"
    else:
        added_p50 = _fmt(_ms(row["p50_us"] - direct["p50_us"]))
        added_p99 = _fmt(_ms(row["p99_us"] - direct["p99_us"]))
    rss = ", ".join(f"{mb:.0f}" for mb in row["worker_rss_mb"])
    cells = [
        row["target"],
        row["scenario"],
        str(row["concurrency"]),
        f"{rate(row):.0f}",
        _fmt(_ms(row["p50_us"])),
        _fmt(_ms(row["p99_us"])),
        added_p50,
        added_p99,
        f"{1000 * row['server_cpu_s'] / requests:.3f}",
        f"{1000 * row['services_cpu_s'] / requests:.3f}",
        rss,
        str(row["non_2xx"]),
        str(errors(row)),
    ]
    return "| " + " | ".join(cells) + " |"


def _find(rows: list[dict], target: str, scenario: str, concurrency: int) -> dict | None:
    for row in rows:
        if (row["target"], row["scenario"], row.get("concurrency")) == (
            target,
            scenario,
            concurrency,
        ) and "requests" in row:
            return row
    return None


def render_targets(rows: list[dict]) -> list[str]:
    """The gateway against the goals, when both it and LiteLLM were measured."""
    ours64, theirs64 = _find(rows, "gateway", "json", 64), _find(rows, "litellm", "json", 64)
    ours1, direct1 = _find(rows, "gateway", "json", 1), _find(rows, "direct", "json", 1)
    stream64 = _find(rows, "gateway", "stream", 64), _find(rows, "litellm", "stream", 64)
    lines = []
    if ours64 and theirs64:
        ratio = rate(ours64) / max(rate(theirs64), 1e-9)
        lines.append(f"- throughput at c=64: {ratio:.1f}× LiteLLM (goal ≥ 3×)")
        p99 = ours64["p99_us"] / max(theirs64["p99_us"], 1)
        lines.append(f"- p99 at c=64: {p99:.2f} of LiteLLM's (goal ≤ 0.33)")
    if ours1 and direct1:
        added = _ms(ours1["p50_us"] - direct1["p50_us"])
        lines.append(f"- added p50 at c=1: {added:.2f} ms (goal ≤ 2.5 ms)")
    if all(stream64):
        ratio = rate(stream64[0]) / max(rate(stream64[1]), 1e-9)
        lines.append(f"- streaming throughput at c=64: {ratio:.1f}× LiteLLM (goal ≥ 3×)")
    peak = [mb for row in rows if row["target"] == "gateway" for mb in row.get("worker_rss_mb", [])]
    if peak:
        lines.append(f"- peak RSS per gateway worker: {max(peak):.0f} MB (goal ≤ 150 MB)")
    non_2xx = sum(row.get("non_2xx", 0) for row in rows if row["target"] == "gateway")
    if any(row["target"] == "gateway" for row in rows) and non_2xx:
        lines.append(f"- WARNING: the gateway answered {non_2xx} non-2xx responses")
    return ["", "Gateway against its goals:", *lines] if lines else []


def _first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[0] if lines else "?"


def _litellm_version() -> str:
    python = BENCH_DIR / ".litellm-venv" / "bin" / "python"
    code = "import importlib.metadata as m; print(m.version('litellm'))"
    return _first_line([str(python), "-c", code]) if python.exists() else "not installed"


def render(rows: list[dict], started: float) -> str:
    loads = [row["loadavg"] for row in rows if "loadavg" in row]
    wrk = _first_line(["wrk", "-v"]).split(" [")[0]
    lines = [
        f"# Benchmark {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}",
        "",
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {wrk}, "
        f"litellm {_litellm_version()}; {os.environ.get('BENCH_DURATION', '10')} s per run; "
        f"1-minute load average during runs {min(loads, default=0):.1f}"
        f"–{max(loads, default=0):.1f}",
        "",
        HEADER,
        RULE,
        *(_table_row(rows, row) for row in rows),
        *render_targets(rows),
        "",
    ]
    return "\n".join(lines)
