"""Rows of figures with verdicts, written as one JSON report and docs/reliability.md."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from processes import REPO


@dataclass
class Row:
    scenario: str
    group: str
    figure: str  # the measured figure, in words and numbers
    expectation: str  # what the issue asks for
    passed: bool | None  # None: the scenario could not run (see error)
    data: dict = field(default_factory=dict)
    seconds: float = 0.0
    error: str = ""

    @property
    def verdict(self) -> str:
        return {True: "pass", False: "FAIL", None: "ERROR"}[self.passed]


def git_head() -> str:
    head = REPO / ".git"
    try:
        if head.is_file():  # a worktree: .git names the real directory
            head = Path(head.read_text().split(":", 1)[1].strip())
        ref = (head / "HEAD").read_text().strip()
        if ref.startswith("ref:"):
            name = ref.split(" ", 1)[1]
            path = head / name
            if not path.exists():
                path = Path(str(head).split("/worktrees/")[0]) / name
            return path.read_text().strip()[:12]
        return ref[:12]
    except (OSError, IndexError):
        return "unknown"


def write(
    rows: list[Row], subset: str, started: float, out_dir: Path, docs: bool
) -> tuple[Path, Path]:
    """docs/reliability.{json,md} for the full matrix; a subset writes to out_dir instead, so it
    never overwrites the published page."""
    meta = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git_head(),
        "subset": subset,
        "seconds": round(time.monotonic() - started, 1),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    report = {"meta": meta, "rows": [asdict(r) | {"verdict": r.verdict} for r in rows]}
    # The full matrix is the published one (docs/); a subset stays beside the suite.
    folder = REPO / "docs" if docs else out_dir
    name = "reliability" if docs else "reliability-subset"
    folder.mkdir(parents=True, exist_ok=True)
    json_path, md_path = folder / f"{name}.json", folder / f"{name}.md"
    json_path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    md_path.write_text(markdown(rows, meta))
    return json_path, md_path


def markdown(rows: list[Row], meta: dict) -> str:
    passed = sum(1 for r in rows if r.passed)
    failed = sum(1 for r in rows if r.passed is False)
    errors = sum(1 for r in rows if r.passed is None)
    lines = [
        "# Reliability: the fault matrix",
        "",
        "Written by `make reliability` (the whole matrix) or `make reliability-ci` (the bounded",
        "subset); do not edit by hand. Method and topology: `bench/reliability/README.md`.",
        "",
        f"Run {meta['when']} on commit `{meta['commit']}` ({meta['subset']}), "
        f"{meta['seconds']:.0f} s, {meta['cpus']} CPUs, load average {meta['load_average']}.",
        f"**{passed} pass, {failed} fail, {errors} could not run.**",
        "",
        "| scenario | group | figure | expectation | verdict | s |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        figure = row.figure if not row.error else f"{row.figure} error: {row.error}".strip()
        cells = [row.scenario, row.group, figure, row.expectation, row.verdict]
        cells = [str(c).replace("|", "\\|").replace("\n", " ") for c in cells]
        lines.append("| " + " | ".join(cells) + f" | {row.seconds:.0f} |")
    lines += ["", "Raw numbers of every row: the JSON report beside this page.", ""]
    return "\n".join(lines)


def table(rows: list[Row]) -> str:
    return "\n".join(
        f"{r.verdict:5} {r.scenario:28} {r.figure}" + (f" [{r.error}]" if r.error else "")
        for r in rows
    )
