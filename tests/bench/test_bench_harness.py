"""The benchmark's own parts: the slow upstream streams as told, and the report judges the goals
and the usage ledger from the numbers it is given."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.append(str(BENCH))  # after everything else: bench/reliability has modules of the same name


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


report = _load("report")
LEDGER_GOAL = "usage rows for answered requests (one each)"
slow_upstream = _load("slow_upstream")


def run_row(target, scenario, concurrency, req_per_s, p50_ms, p99_ms, cpu_ms, **extra):
    requests = int(req_per_s * 10)
    return {
        "target": target,
        "scenario": scenario,
        "concurrency": concurrency,
        "requests": requests,
        "duration_us": 10_000_000,
        "p50_us": p50_ms * 1000,
        "p99_us": p99_ms * 1000,
        "connect_errors": 0,
        "read_errors": 0,
        "write_errors": 0,
        "timeouts": 0,
        "non_2xx": 0,
        "server_cpu_s": cpu_ms * requests / 1000,
        "services_cpu_s": 0.0,
        "worker_rss_mb": [120.0, 121.0],
        "loadavg": 0.5,
        **extra,
    }


def goal_verdicts(rows):
    lines = report.render_goals(rows)
    verdicts = {}
    for line in lines:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 4 and cells[0] not in ("goal", "---"):
            verdicts[cells[0]] = cells[3]
    return verdicts


def full_rows(gateway_json_64=3000.0, gateway_cpu=0.4, usage_rows=None):
    rows = []
    for scenario in ("json", "stream"):
        rows.append(run_row("direct", scenario, 1, 10000, 0.1, 1.0, 0.02))
        rows.append(run_row("direct", scenario, 64, 90000, 0.5, 4.0, 0.01))
        rows.append(run_row("litellm", scenario, 64, 150, 400, 900, 13))
        rows.append(run_row("portkey", scenario, 1, 900, 1.0, 3.0, 1.0))
        rows.append(run_row("portkey", scenario, 64, 1500, 40, 90, 0.8))
        rows.append(run_row("gateway", scenario, 1, 2000, 0.5, 2.0, gateway_cpu))
        ours = gateway_json_64 if scenario == "json" else 2500.0
        extra = {} if usage_rows is None else usage_rows(ours)
        rows.append(run_row("gateway", scenario, 64, ours, 20, 60, gateway_cpu, **extra))
    return rows


def test_goals_are_met_when_every_figure_is_within_its_target():
    verdicts = goal_verdicts(full_rows())
    assert verdicts["json throughput at c=64 ÷ Portkey"] == "met"  # 2.0×
    assert verdicts["json throughput at c=64 ÷ LiteLLM"] == "met"  # 20×
    assert verdicts["stream throughput at c=64 ÷ Portkey"] == "met"
    assert verdicts["json added p50 at c=1"] == "met"  # 0.4 ms
    assert verdicts["json p99 at c=64 vs Portkey"] == "met"
    assert verdicts["peak RSS per worker"] == "met"
    assert verdicts["non-2xx answers and socket errors"] == "met"


def test_goals_not_met_are_marked():
    verdicts = goal_verdicts(full_rows(gateway_json_64=2000.0, gateway_cpu=0.6))
    assert verdicts["json throughput at c=64 ÷ Portkey"] == "**not met**"  # 1.33×
    cpu_goal = next(name for name in verdicts if name.startswith("json CPU"))
    assert verdicts[cpu_goal] == "**not met**"


def test_goals_without_a_rival_are_not_measured():
    rows = [row for row in full_rows() if row["target"] != "portkey"]
    verdicts = goal_verdicts(rows)
    assert verdicts["json throughput at c=64 ÷ Portkey"] == "not measured"
    assert verdicts["json throughput at c=64 ÷ LiteLLM"] == "met"


def test_usage_rows_of_requests_cut_at_the_stop_are_not_answers():
    row = run_row("gateway", "json", 64, 100, 1, 2, 1, usage_rows=1000 + 40, usage_cut=40)
    assert report.usage_lost(row) == 0
    assert "+40 cut at the stop" in report.usage_cell(row)
    # 40 rows are missing: the cut rows do not make up for them.
    row |= {"usage_rows": 960 + 40}
    assert report.usage_lost(row) == 40
    assert "40 lost" in report.usage_cell(row)


def test_a_lost_usage_row_fails_the_ledger_goal():
    def rows_for(lost):
        return lambda rate: {
            "usage_rows": int(rate * 10) - lost,
            "usage_cut": 0,
            "usage_drained": True,
        }

    assert goal_verdicts(full_rows(usage_rows=rows_for(0)))[LEDGER_GOAL] == ("met")
    verdict = goal_verdicts(full_rows(usage_rows=rows_for(3)))[LEDGER_GOAL]
    assert verdict == "**not met**"


def test_a_hold_left_unsettled_after_the_run_fails_the_ledger_goal():
    def rows_with(held):
        return lambda rate: {
            "usage_rows": int(rate * 10),
            "usage_cut": 0,
            "usage_drained": True,
            "usage_holds_left": held,
        }

    assert goal_verdicts(full_rows(usage_rows=rows_with(0)))[LEDGER_GOAL] == "met"
    rows = full_rows(usage_rows=rows_with(12))
    assert goal_verdicts(rows)[LEDGER_GOAL] == "**not met**"
    gateway = next(row for row in rows if "usage_rows" in row)
    assert "12 holds left" in report.usage_cell(gateway)


def test_more_usage_rows_than_requests_in_flight_can_explain_are_flagged():
    row = run_row("gateway", "json", 64, 100, 1, 2, 1, usage_rows=1000 + 64, usage_cut=64)
    assert report.usage_excess(row) == 0  # every connection was cut in flight at the stop
    row |= {"usage_rows": 1000 + 64 + 5}
    assert report.usage_excess(row) == 5
    assert "5 more than requests" in report.usage_cell(row)
    # A soak of three wrk runs may leave c in flight at each of its stops.
    row |= {"wrk_stops": 3}
    assert report.usage_excess(row) == 0


def test_ratio_table_divides_ours_by_each_rival():
    lines = report.render_ratios(full_rows())
    json64 = next(line for line in lines if line.startswith("| json | 64 | gunicorn"))
    assert "| 2.00× | 20.00× |" in json64


def test_ratio_table_sets_the_gateways_cpu_beside_the_bare_relays():
    rows = full_rows(gateway_cpu=0.4)
    lines = report.render_ratios(rows)
    assert next(line for line in lines if line.startswith("| json | 64 |")).endswith(" – |")
    rows.append(run_row("floor", "json", 64, 9000, 5, 30, 0.15))
    json64 = next(line for line in report.render_ratios(rows) if line.startswith("| json | 64 |"))
    assert json64.endswith("| 0.400 | 0.800 | 13.000 | 0.150 |")


def test_ratio_table_shows_the_gateway_under_each_server():
    rows = full_rows()
    rows += [row | {"target": "gateway-granian"} for row in rows if row["target"] == "gateway"]
    lines = report.render_ratios(rows)
    assert any(line.startswith("| json | 64 | granian |") for line in lines)
    assert any(line.startswith("| json | 64 | gunicorn + uvicorn |") for line in lines)


async def _post(port: int, body: dict) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    raw = json.dumps(body).encode()
    writer.write(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(raw), raw)
    )
    await writer.drain()
    received = b""
    while b"[DONE]" not in received and b'"chat.completion"' not in received:
        chunk = await asyncio.wait_for(reader.read(65536), 5)
        if not chunk:
            break
        received += chunk
    writer.close()
    return received


@pytest.mark.parametrize("slow", [True, False])
def test_slow_upstream_streams_slowly_only_when_asked(slow):
    async def scenario():
        server = await asyncio.start_server(
            lambda r, w: slow_upstream._serve(r, w, interval=0.05, seconds=0.2), "127.0.0.1", 0
        )
        port = server.sockets[0].getsockname()[1]
        content = slow_upstream.SLOW_MARKER.decode() if slow else "hello"
        body = {"model": "m", "messages": [{"role": "user", "content": content}], "stream": slow}
        loop = asyncio.get_running_loop()
        started = loop.time()
        answer = await _post(port, body)
        elapsed = loop.time() - started
        server.close()
        await server.wait_closed()
        return answer, elapsed

    answer, elapsed = asyncio.run(scenario())
    assert answer.startswith(b"HTTP/1.1 200")
    if slow:
        assert answer.count(b" tick") == 4  # one chunk every 0.05 s for 0.2 s
        assert b"[DONE]" in answer
        assert elapsed >= 0.2
    else:
        assert b'"chat.completion"' in answer
        assert b" tick" not in answer


def test_stopping_a_server_ends_children_that_outlive_its_master(tmp_path):
    servers = _load("servers")
    # The master dies on SIGTERM; its child ignores it and lives on, as a slow Celery worker may.
    master = (
        "import signal, subprocess\n"
        "child = subprocess.Popen(['sh', '-c', \"trap '' TERM; exec sleep 60\"])\n"
        f"open({str(tmp_path / 'child.pid')!r}, 'w').write(str(child.pid))\n"
        "signal.pause()\n"
    )
    server = servers.spawn("outliver", [sys.executable, "-c", master], tmp_path)
    pid_file = tmp_path / "child.pid"
    for _ in range(200):
        if pid_file.exists() and pid_file.read_text():
            break
        time.sleep(0.05)
    child = int(pid_file.read_text())
    time.sleep(0.2)  # the child has set its trap
    try:
        server.stop(grace=1)
        for _ in range(50):
            if not Path(f"/proc/{child}").exists():
                break
            time.sleep(0.05)
        assert not Path(f"/proc/{child}").exists()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)


def test_open_streams_requests_carry_a_targets_own_headers():
    """Portkey routes by headers: the open-streams client sends BENCH_HEADERS with each request."""
    open_streams = _load("open_streams")
    extra = open_streams._extra_headers("x-portkey-provider: openai\nnot a header\n")
    raw = open_streams._request("127.0.0.1", 8787, "/v1/chat/completions", "sk-x", {}, extra)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert b"x-portkey-provider: openai" in lines
    assert b"not a header" not in head
    assert b"Authorization: Bearer sk-x" in lines
    assert f"Content-Length: {len(body)}".encode() in lines


def test_open_streams_section_names_each_target():
    def row(target, per_stream):
        ttfb = {"n": 10, "p50": 1.0, "p99": 2.0}
        return {
            "target": target,
            "scenario": "open streams",
            "open_streams": {
                "streams": 100,
                "opened": 100,
                "open_at_once": 100,
                "completed": 100,
                "seconds_to_open": 1.0,
                "errors": {},
                "baseline_rss_mb": [40.0, 40.0],
                "open_rss_mb": [41.0, 41.0],
                "rss_kb_per_stream": per_stream,
                "baseline_ttfb_ms": ttfb,
                "loaded_ttfb_ms": ttfb,
                "loaded_during_opening": False,
            },
        }

    lines = report.render_open_streams([row("floor", 20.5), row("portkey", 110.0)])
    assert any(line.startswith("- floor: 100/100") and "20.5 KB" in line for line in lines)
    assert any(line.startswith("- portkey: 100/100") and "110.0 KB" in line for line in lines)
    assert any(line.startswith("- portkey: added TTFB") for line in lines)


def test_paired_turns_are_summed_up_as_medians_and_rounds_ahead(monkeypatch):
    paired = _load("paired")
    # Its `import report` may find bench/reliability's module of that name first (sys.path).
    monkeypatch.setattr(paired, "report", report)
    rows = []
    for turn, (ours, theirs) in enumerate([(3000, 2000), (1500, 2500), (2800, 1800)]):
        rows.append(run_row("gateway", "json", 64, ours, 20, 50, 0.5, round=turn))
        rows.append(run_row("portkey", "json", 64, theirs, 30, 90, 0.9, round=turn))
    table = paired.summary(rows)
    assert "| json | 64 | 3 | 2800 | 2000 | 1.40× | 2 of 3 | 0.500 / 0.900 | 50.0 / 90.0 |" in table


def test_paired_turns_against_another_build_are_named_by_its_commit(monkeypatch):
    paired = _load("paired")
    monkeypatch.setattr(paired, "report", report)
    rows = []
    for turn, (ours, theirs) in enumerate([(3300, 3000), (3200, 3100)]):
        rows.append(run_row("gateway", "json", 64, ours, 20, 50, 0.4, round=turn))
        rows.append(run_row("at abc123", "json", 64, theirs, 20, 60, 0.5, round=turn))
    table = paired.summary(rows, "at abc123", "at abc123")
    assert "| gateway req/s | at abc123 req/s |" in table
    assert "| json | 64 | 2 | 3250 | 3050 | 1.07× | 2 of 2 | 0.400 / 0.500 | 50.0 / 60.0 |" in table
