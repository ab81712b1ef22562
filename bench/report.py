"""The results: one markdown table, then the gateway against Portkey and LiteLLM and its goals."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
HEADER = (
    "| target | scenario | c | req/s | p50 ms | p99 ms | +p50 ms | +p99 ms "
    "| CPU ms/req | DB+Redis CPU ms/req | RSS MB/worker | non-2xx | errors | usage rows |"
)
RULE = "|" + "---|" * (HEADER.count("|") - 1)
# wrk's counters that add up across runs.
COUNTS = (
    "requests",
    "duration_us",
    "bytes",
    "connect_errors",
    "read_errors",
    "write_errors",
    "timeouts",
    "non_2xx",
)
# The goals (the gateway against Portkey's and LiteLLM's proxies on the same machine).
GOAL_VS_PORTKEY = 1.5  # c=64 throughput, JSON and stream
GOAL_VS_LITELLM = 10.0
GOAL_CPU_MS = 0.45  # JSON, CPU ms per request of the whole process tree
GOAL_ADDED_P50_MS = 0.6  # JSON at c=1, over the upstream alone
GOAL_RSS_MB = 150.0  # per worker, peak


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


def cpu_ms(row: dict) -> float:
    return 1000 * row["server_cpu_s"] / max(row["requests"], 1)


def usage_lost(row: dict) -> int:
    """Answered requests without a usage row of a completed request. The requests still in flight
    when wrk stopped (at most c) have rows too, as cut by their client; they are not answers."""
    return max(0, row["requests"] - (row["usage_rows"] - row.get("usage_cut", 0)))


def usage_excess(row: dict) -> int:
    """Rows beyond what the run can explain: its answers plus, at every stop of wrk, at most c
    requests in flight. More would mean a request recorded twice."""
    slack = row["concurrency"] * row.get("wrk_stops", 1)
    return max(0, row["usage_rows"] - row["requests"] - slack)


def usage_cell(row: dict) -> str:
    if "usage_rows" not in row:
        return "–"
    cut = row.get("usage_cut", 0)
    cell = f"{row['usage_rows'] - cut} for {row['requests']}"
    if cut:
        cell += f" (+{row['usage_cut']} cut at the stop)"
    if row.get("usage_dead_letters"):
        cell += f", {row['usage_dead_letters']} dead-lettered"
    if not row.get("usage_drained", True):
        cell += ", queue not drained"
    if row.get("usage_holds_left"):
        cell += f", **{row['usage_holds_left']} holds left**"
    lost, excess = usage_lost(row), usage_excess(row)
    cell += f", **{lost} lost**" if lost else ""
    return cell + (f", **{excess} more than requests**" if excess else "")


def describe(row: dict) -> str:
    """One run on one line, printed as the benchmark goes."""
    rss = "/".join(f"{mb:.0f}" for mb in row["worker_rss_mb"])
    usage = f"  usage rows {usage_cell(row)}" if "usage_rows" in row else ""
    return (
        f"{row['scenario']:<6} c={row['concurrency']:<3} {rate(row):>8.0f} req/s  "
        f"p50 {_ms(row['p50_us']):7.2f} ms  p99 {_ms(row['p99_us']):8.2f} ms  "
        f"cpu {cpu_ms(row):6.3f} ms/req  "
        f"rss {rss} MB  non-2xx {row['non_2xx']}  errors {errors(row)}  "
        f"load {row['loadavg']:.1f}{usage}"
    )


def describe_open_streams(row: dict) -> str:
    result = row["open_streams"]
    base, loaded = result["baseline_ttfb_ms"], result["loaded_ttfb_ms"]
    per_stream = result["rss_kb_per_stream"]
    return (
        f"{row['target']}: {result['opened']}/{result['streams']} streams opened in "
        f"{result['seconds_to_open']} s ({result['open_at_once']} open at once), "
        f"{result['completed']} completed, errors "
        f"{json.dumps(result['errors'])}; RSS {_join(result['baseline_rss_mb'])} → "
        f"{_join(result['open_rss_mb'])} MB"
        + (f" ({per_stream:.1f} KB per open stream)" if per_stream is not None else "")
        + f"; short request TTFB p50 {base.get('p50')} → {loaded.get('p50')} ms, "
        f"p99 {base.get('p99')} → {loaded.get('p99')} ms"
    )


def _join(values: list[float]) -> str:
    return "/".join(f"{mb:.0f}" for mb in values)


def _baseline(rows: list[dict], row: dict) -> dict | None:
    """The direct run to subtract: same scenario and concurrency (cache hits, soaks: JSON)."""
    scenario = "stream" if row["scenario"] == "stream" else "json"
    return _find(rows, "direct", scenario, row["concurrency"])


def _table_row(rows: list[dict], row: dict) -> str | None:
    if "open_streams" in row:
        return None  # its own section
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
        f"{cpu_ms(row):.3f}",
        f"{1000 * row['services_cpu_s'] / requests:.3f}",
        rss,
        str(row["non_2xx"]),
        str(errors(row)),
        usage_cell(row),
    ]
    return "| " + " | ".join(cells) + " |"


def _find(rows: list[dict], target: str, scenario: str, concurrency: object) -> dict | None:
    for row in rows:
        if (row["target"], row["scenario"], row.get("concurrency")) == (
            target,
            scenario,
            concurrency,
        ) and "requests" in row:
            return row
    return None


def _ratio(ours: dict | None, theirs: dict | None) -> float | None:
    if ours is None or theirs is None or rate(theirs) == 0:
        return None
    return rate(ours) / rate(theirs)


def _x(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def _cpu(row: dict | None) -> str:
    return "–" if row is None else f"{cpu_ms(row):.3f}"


# The gateway's targets, by the HTTP server that serves it (the goals read the default one).
SERVERS = {"gateway": "gunicorn + uvicorn", "gateway-granian": "granian"}


def render_ratios(rows: list[dict]) -> list[str]:
    """Ours ÷ Portkey and ours ÷ LiteLLM at every scenario and concurrency both were run."""
    lines = [
        "| scenario | c | server | req/s | ÷ Portkey | ÷ LiteLLM | CPU ms/req: ours "
        "| Portkey | LiteLLM | floor |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row["target"] not in SERVERS or row["scenario"] not in ("json", "stream", "cache"):
            continue
        if "requests" not in row:
            continue
        portkey = _find(rows, "portkey", row["scenario"], row["concurrency"])
        litellm = _find(rows, "litellm", row["scenario"], row["concurrency"])
        floor = _find(rows, "floor", row["scenario"], row["concurrency"])
        cells = [
            row["scenario"],
            str(row["concurrency"]),
            SERVERS[row["target"]],
            f"{rate(row):.0f}",
            _x(_ratio(row, portkey)),
            _x(_ratio(row, litellm)),
            _cpu(row),
            _cpu(portkey),
            _cpu(litellm),
            _cpu(floor),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return ["", "## The gateway against Portkey and LiteLLM", "", *lines] if len(lines) > 2 else []


def _added_p50(rows: list[dict], target: str, scenario: str) -> float | None:
    ours, direct = _find(rows, target, scenario, 1), _find(rows, "direct", scenario, 1)
    return None if ours is None or direct is None else _ms(ours["p50_us"] - direct["p50_us"])


def _goal(name: str, value: str, goal: str, met: bool | None) -> str:
    verdict = "not measured" if met is None else ("met" if met else "**not met**")
    return f"| {name} | {value} | {goal} | {verdict} |"


def render_goals(rows: list[dict]) -> list[str]:
    gateway = [row for row in rows if row["target"] == "gateway" and "requests" in row]
    if not gateway:
        return []
    lines = ["| goal | measured | target | verdict |", "|---|---|---|---|"]
    for scenario in ("json", "stream"):
        ours = _find(rows, "gateway", scenario, 64)
        for rival, name, goal in (
            ("portkey", "Portkey", GOAL_VS_PORTKEY),
            ("litellm", "LiteLLM", GOAL_VS_LITELLM),
        ):
            ratio = _ratio(ours, _find(rows, rival, scenario, 64))
            lines.append(
                _goal(
                    f"{scenario} throughput at c=64 ÷ {name}",
                    _x(ratio),
                    f"≥ {goal:g}×",
                    None if ratio is None else ratio >= goal,
                )
            )
    json_runs = [row for row in gateway if row["scenario"] == "json"]
    if json_runs:
        worst = max(json_runs, key=cpu_ms)
        lines.append(
            _goal(
                "json CPU ms/req (worst concurrency, whole tree incl. Celery)",
                f"{cpu_ms(worst):.3f} (c={worst['concurrency']})",
                f"≤ {GOAL_CPU_MS}",
                cpu_ms(worst) <= GOAL_CPU_MS,
            )
        )
    else:
        lines.append(_goal("json CPU ms/req", "–", f"≤ {GOAL_CPU_MS}", None))
    added = _added_p50(rows, "gateway", "json")
    lines.append(
        _goal(
            "json added p50 at c=1",
            "–" if added is None else f"{added:.2f} ms",
            f"≤ {GOAL_ADDED_P50_MS} ms",
            None if added is None else added <= GOAL_ADDED_P50_MS,
        )
    )
    for scenario in ("json", "stream"):
        ours, theirs = _find(rows, "gateway", scenario, 64), _find(rows, "portkey", scenario, 64)
        both = ours is not None and theirs is not None
        lines.append(
            _goal(
                f"{scenario} p99 at c=64 vs Portkey",
                f"{_fmt(_ms(ours['p99_us']))} vs {_fmt(_ms(theirs['p99_us']))} ms" if both else "–",
                "≤ Portkey's",
                ours["p99_us"] <= theirs["p99_us"] if both else None,
            )
        )
    peak = max((mb for row in gateway for mb in row.get("worker_rss_mb", [])), default=None)
    lines.append(
        _goal(
            "peak RSS per worker",
            "–" if peak is None else f"{peak:.0f} MB",
            f"≤ {GOAL_RSS_MB:.0f} MB",
            None if peak is None else peak <= GOAL_RSS_MB,
        )
    )
    counted = [row for row in gateway if "usage_rows" in row]
    lost = sum(usage_lost(row) for row in counted)
    excess = sum(usage_excess(row) for row in counted)
    answered = sum(row["requests"] for row in counted)
    written = sum(row["usage_rows"] - row.get("usage_cut", 0) for row in counted)
    drained = all(row.get("usage_drained") for row in counted)
    held = sum(max(0, row.get("usage_holds_left") or 0) for row in counted)
    lines.append(
        _goal(
            "usage rows for answered requests (one each)",
            f"{written} rows for {answered} answers, {lost} lost, {excess} extra"
            + ("" if drained else ", queue not drained")
            + (f", {held} holds left unsettled" if held else "")
            if counted
            else "–",
            "0 lost, 0 extra, no hold left",
            (lost == 0 and excess == 0 and drained and held == 0) if counted else None,
        )
    )
    failed = sum(row["non_2xx"] + errors(row) for row in gateway)
    lines.append(_goal("non-2xx answers and socket errors", str(failed), "0", failed == 0))
    return ["", "## Goals", "", *lines, *_extra_lines(rows)]


def _extra_lines(rows: list[dict]) -> list[str]:
    lines = []
    for scenario in ("json", "stream"):
        ours, theirs = _added_p50(rows, "gateway", scenario), _added_p50(rows, "portkey", scenario)
        if ours is not None and theirs is not None:
            note = " (Portkey waits 25 ms before a stream's first chunk)" * (scenario == "stream")
            lines.append(
                f"- added p50 at c=1, {scenario}: gateway {ours:.2f} ms, Portkey {theirs:.2f} ms"
                + note
            )
    return [""] + lines if lines else []


def render_soak(rows: list[dict]) -> list[str]:
    soaks = [row for row in rows if row["scenario"].startswith("soak") and "requests" in row]
    lines = []
    for row in soaks:
        series = row.get("rss_series_mb") or []
        end = series[-1] if series else []
        text = f"- {row['scenario']} at c={row['concurrency']}: {row['requests']} requests, "
        text += f"RSS per worker at the end {_join(end)} MB"
        if "min" in row["scenario"] and len(series) > 1 and len(series[0]) == len(end):
            growth = [100 * (b - a) / a for a, b in zip(series[0], end, strict=True) if a]
            text += f", growth over the soak {', '.join(f'{g:+.1f} %' for g in growth)}"
        lines.append(text)
    return ["", "## Soak", "", *lines] if lines else []


def render_open_streams(rows: list[dict]) -> list[str]:
    lines = []
    for row in rows:
        if row.get("scenario") != "open streams":
            continue
        if "problem" in row:
            lines.append(f"- {row['target']}: NOT MEASURED: {row['problem'][:300]}")
            continue
        result = row["open_streams"]
        lines.append("- " + describe_open_streams(row))
        base, loaded = result["baseline_ttfb_ms"], result["loaded_ttfb_ms"]
        if base.get("n") and loaded.get("n"):
            when = ", sent while streams were still opening" * result.get("loaded_during_opening")
            lines.append(
                f"- {row['target']}: added TTFB of a short request with the streams open: p50 "
                f"{loaded['p50'] - base['p50']:+.2f} ms, p99 {loaded['p99'] - base['p99']:+.2f} ms "
                f"({loaded['n']} requests, {base['n']} without{when})"
            )
        if "usage_rows" in row:
            sent = result.get("requests_sent", 0)
            lines.append(f"- usage rows: {row['usage_rows']} for {sent} requests sent")
    return ["", "## Open streams", "", *lines] if lines else []


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


def _portkey_version() -> str:
    package = BENCH_DIR / ".portkey" / "node_modules" / "@portkey-ai" / "gateway" / "package.json"
    try:
        return json.loads(package.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return "not installed"


def render(rows: list[dict], started: float) -> str:
    loads = [row["loadavg"] for row in rows if "loadavg" in row]
    wrk = _first_line(["wrk", "-v"]).split(" [")[0]
    lines = [
        f"# Benchmark {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}",
        "",
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {wrk}, "
        f"litellm {_litellm_version()}, Portkey gateway {_portkey_version()} on node "
        f"{_first_line(['node', '--version'])}; {os.environ.get('BENCH_DURATION', '10')} s per "
        f"run; 1-minute load average during runs {min(loads, default=0):.1f}"
        f"–{max(loads, default=0):.1f}",
        "",
        HEADER,
        RULE,
        *(line for row in rows if (line := _table_row(rows, row)) is not None),
        *render_ratios(rows),
        *render_goals(rows),
        *render_soak(rows),
        *render_open_streams(rows),
        "",
    ]
    return "\n".join(lines)
