"""Child processes of the suite: each in its own process group, all ended when the suite ends.

Every process started here is registered; `stop_all` (called from `finally` and `atexit`) ends
whatever is still running, so a failing scenario never leaves a server behind.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Process groups of this run, on disk too: a run killed with SIGKILL cannot clean up after
# itself, so the next run ends what it left (see reap_leftovers).
LEDGER = Path.home() / ".cache" / "llm-gateway-reliability" / "running"
OURS = ("redis-server", "postgres", "uvicorn", "celery")
_running: list[Proc] = []


@dataclass
class Proc:
    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    process: subprocess.Popen | None = None

    def start(self) -> Proc:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv,
            cwd=REPO,
            env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=self.user,
            group=self.user,
        )
        log.close()
        if self not in _running:
            _running.append(self)
        LEDGER.parent.mkdir(parents=True, exist_ok=True)
        with LEDGER.open("a") as ledger:
            ledger.write(f"{self.pid}\n")
        return self

    @property
    def pid(self) -> int:
        return self.process.pid

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def send_signal(self, sig: signal.Signals, group: bool = False) -> None:
        if not self.is_running():
            return
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(self.pid, sig)
            else:
                os.kill(self.pid, sig)

    def wait(self, timeout: float) -> bool:
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self, sig: signal.Signals = signal.SIGTERM, grace: float = 15.0) -> None:
        """End the whole group: `sig` first, SIGKILL after `grace` seconds."""
        if self.process is None:
            return
        if self.is_running():
            self.send_signal(signal.SIGCONT, group=True)  # a frozen process cannot act on SIGTERM
            self.send_signal(sig, group=True)
            if not self.wait(grace):
                self.send_signal(signal.SIGKILL, group=True)
                self.wait(5)
        # Children left in the group (a worker whose master died) go too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def stop_all() -> None:
    for proc in reversed(_running):
        with contextlib.suppress(Exception):
            proc.stop(grace=5)
    LEDGER.unlink(missing_ok=True)


def reap_leftovers() -> int:
    """End the process groups a killed earlier run left running; returns how many."""
    if not LEDGER.exists():
        return 0
    reaped = 0
    for line in LEDGER.read_text().split():
        pid = int(line)
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # gone already
        if any(name in cmdline for name in OURS):  # not a recycled pid of something else
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
                reaped += 1
    LEDGER.unlink(missing_ok=True)
    return reaped


atexit.register(stop_all)


def wait_for_port(port: int, timeout: float, proc: Proc | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.process is not None and not proc.is_running():
            raise RuntimeError(f"{proc.name} exited early:\n{proc.log_tail()}")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on port {port} after {timeout:.0f}s")


def is_port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, from /proc."""
    total = 0
    for each in [pid, *children_of(pid)]:
        with contextlib.suppress(OSError, ValueError, IndexError):
            pages = int(Path(f"/proc/{each}/statm").read_text().split()[1])
            total += pages * os.sysconf("SC_PAGE_SIZE")
    return total / 1e6


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(entry.name))
                found.extend(children_of(int(entry.name)))
    return found
