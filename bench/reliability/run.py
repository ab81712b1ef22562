"""`make reliability`: start the private topology, run the fault matrix, write the report.

    python bench/reliability/run.py            # the whole matrix -> docs/reliability.md
    python bench/reliability/run.py --ci       # the bounded CI subset (under 5 minutes)
    python bench/reliability/run.py --only redis,webhook

Everything it starts runs in process groups it owns and is stopped on every way out (finally,
atexit, SIGTERM); the private PostgreSQL cluster and Redis data are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
import traceback
from pathlib import Path

import scenarios_limits  # noqa: F401 - each module registers its scenarios
import scenarios_processes  # noqa: F401
import scenarios_stores  # noqa: F401
import scenarios_upstream  # noqa: F401
import scenarios_webhooks  # noqa: F401
from load import new_client
from matrix import MAX_SECONDS, SCENARIOS, TENANTS, Context
from report import Row, table, write
from stack import Stack

HERE = Path(__file__).resolve().parent
HARD_CAP_SECONDS = MAX_SECONDS + 90  # the fault itself ≤ 90 s, plus waiting for usage rows


def choose(ci: bool, only: str) -> list:
    chosen = [s for s in SCENARIOS if s.ci or not ci]
    if only:
        words = [w.strip().lower() for w in only.split(",") if w.strip()]
        chosen = [s for s in chosen if any(w in s.name.lower() or w == s.group for w in words)]
    return chosen


def repair(stack: Stack) -> None:
    """Bring back whatever a failed scenario left stopped or frozen."""
    stack.redis.thaw()
    if not stack.redis.proc.is_running():
        stack.redis.start()
    if not stack.postgres.proc.is_running():
        stack.postgres.start()
    for index, gateway in enumerate(stack.gateways):
        if not gateway.is_running():
            stack.start_gateway(index)
    if not stack.worker.is_running():
        stack.start_worker()
    stack.reset_upstream()


async def run_all(stack: Stack, chosen: list) -> list[Row]:
    rows = []
    async with new_client() as client:
        ctx = Context(stack, client)
        for spec in chosen:
            print(f"-- {spec.name}", flush=True)
            await asyncio.to_thread(repair, stack)
            started = time.monotonic()
            try:
                row = await asyncio.wait_for(spec.run(ctx), HARD_CAP_SECONDS)
            except Exception as error:  # noqa: BLE001 - a broken scenario is a row, not the end
                detail = f"{type(error).__name__}: {error}"[:300]
                traceback.print_exc()
                row = Row(spec.name, spec.group, "", "", None, error=detail)
            row.seconds = round(time.monotonic() - started, 1)
            print(f"   {row.verdict}: {row.figure} ({row.seconds:.0f} s)", flush=True)
            rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ci", action="store_true", help="the bounded CI subset")
    parser.add_argument("--only", default="", help="comma-separated words of scenario names")
    parser.add_argument("--strict", action="store_true", help="exit 1 on any failing verdict")
    parser.add_argument("--out", default=str(HERE / "results"), help="where the JSON goes")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    chosen = choose(args.ci, args.only)
    subset = "CI subset" if args.ci else ("selected: " + args.only if args.only else "full matrix")
    started = time.monotonic()
    stack = Stack()
    rows: list[Row] = []
    try:
        print(f"starting the private stack in {stack.workdir}", flush=True)
        stack.start(TENANTS)
        print(
            f"stack up in {time.monotonic() - started:.0f} s; {len(chosen)} scenarios", flush=True
        )
        rows = asyncio.run(run_all(stack, chosen))
    finally:
        stack.stop(keep_logs=Path(args.out) / "logs")
    json_path, md_path = write(
        rows, subset, started, Path(args.out), docs=not (args.ci or args.only)
    )
    print(table(rows))
    print(f"report: {json_path} and {md_path} ({time.monotonic() - started:.0f} s in all)")
    if not rows or any(r.passed is None for r in rows):
        return 1  # the suite itself broke
    return 1 if args.strict and not all(r.passed for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
