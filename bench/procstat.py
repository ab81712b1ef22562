"""CPU time and resident memory of a server's process tree, read from /proc."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
# Helper processes that Python's multiprocessing starts beside real workers.
# Not request-serving workers: left out of the RSS column (their CPU still counts).
HELPERS = ("resource_tracker", "semaphore_tracker", "forkserver", "celery")


def read_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds in user + system mode), or None if the process is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses; the fields after the last ')' do not.
    fields = raw[raw.rindex(")") + 2 :].split()
    ppid, utime, stime = int(fields[1]), int(fields[11]), int(fields[12])
    return ppid, (utime + stime) / CLOCK_TICKS


def read_rss_mb(pid: int) -> float:
    try:
        resident_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return resident_pages * PAGE_KB / 1024


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def list_tree(root: int) -> dict[int, int]:
    """Every live process in root's tree, as pid -> parent pid."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = read_stat(int(entry))
            if stat is not None:
                parents[int(entry)] = stat[0]
    tree = {root: parents.get(root, 0)} if root in parents else {}
    grew = True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in tree and pid not in tree:
                tree[pid] = ppid
                grew = True
    return tree


def list_workers(root: int) -> list[int]:
    """The processes serving requests: the root's children (gunicorn, uvicorn, nginx workers),
    or the root itself when it has none."""
    children = [
        pid
        for pid, ppid in list_tree(root).items()
        if ppid == root and not any(helper in _cmdline(pid) for helper in HELPERS)
    ]
    return children or [root]


@dataclass
class TreeSampler:
    """Samples one process tree: CPU seconds per pid (first and last seen), peak RSS per worker."""

    root: int
    first_cpu: dict[int, float] = field(default_factory=dict)
    last_cpu: dict[int, float] = field(default_factory=dict)
    peak_worker_rss: dict[int, float] = field(default_factory=dict)

    def sample(self) -> None:
        for pid in list_tree(self.root):
            stat = read_stat(pid)
            if stat is None:
                continue
            self.first_cpu.setdefault(pid, stat[1])
            self.last_cpu[pid] = stat[1]
        for pid in list_workers(self.root):
            self.peak_worker_rss[pid] = max(self.peak_worker_rss.get(pid, 0.0), read_rss_mb(pid))

    def cpu_seconds(self) -> float:
        """CPU used between the first and the last sample (a process born in between counts from
        its first sample, which is near its birth at this sampling rate)."""
        return sum(self.last_cpu[pid] - self.first_cpu[pid] for pid in self.last_cpu)


def find_processes(needle: str) -> list[int]:
    """Pids whose command line contains needle (e.g. PostgreSQL backends of one database)."""
    return [
        int(entry)
        for entry in os.listdir("/proc")
        if entry.isdigit() and int(entry) != os.getpid() and needle in _cmdline(int(entry))
    ]
