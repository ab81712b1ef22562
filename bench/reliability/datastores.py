"""The suite's private Redis and PostgreSQL: own ports, own data directories, never the shared ones.

Both run as direct children (no daemonizing), so stopping, freezing (SIGSTOP) and crashing them
is a signal to a pid we own. PostgreSQL refuses to run as root: its processes run as `postgres`.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from pathlib import Path

from processes import Proc, is_port_free, wait_for_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_USER = "postgres"


class PrivateRedis:
    def __init__(self, workdir: Path, port: int):
        self.port = port
        self.dir = workdir / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc: Proc | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        if not is_port_free(self.port):
            raise RuntimeError(f"port {self.port} is taken: another suite or server runs there")
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--dir", str(self.dir), "--save", "", "--appendonly", "yes"]
        argv += ["--appendfsync", "everysec", "--maxmemory-policy", "noeviction"]
        self.proc = Proc("redis", argv, self.dir.parent / "redis.log").start()
        wait_for_port(self.port, 15, self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(signal.SIGTERM, grace=10)

    def freeze(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            ["redis-cli", "-p", str(self.port), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return done.stdout.strip()


class PrivatePostgres:
    """A throwaway cluster made by initdb in the suite's temporary directory."""

    def __init__(self, workdir: Path, port: int, max_connections: int = 100):
        self.port = port
        self.root = workdir / "pg"
        self.data = self.root / "data"
        self.max_connections = max_connections
        self.proc: Proc | None = None

    def url(self, database: str = "gateway") -> str:
        return f"postgres://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        if not is_port_free(self.port):
            raise RuntimeError(f"port {self.port} is taken: another suite or server runs there")
        self.root.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.root, PG_USER, PG_USER)
        self.root.parent.chmod(0o755)
        argv = [str(PG_BIN / "initdb"), "-D", str(self.data), "-U", PG_USER, "-A", "trust"]
        argv += ["--no-sync", "-E", "UTF8", "--locale", "C"]
        subprocess.run(
            argv,
            check=True,
            capture_output=True,
            timeout=120,
            user=PG_USER,
            group=PG_USER,
            cwd=self.root,
        )
        self.start()
        self.psql("postgres", "CREATE DATABASE gateway")

    def start(self) -> None:
        argv = [str(PG_BIN / "postgres"), "-D", str(self.data), "-p", str(self.port)]
        argv += ["-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.root}"]
        argv += ["-c", f"max_connections={self.max_connections}"]
        # Durability against a crash of the server (immediate stop) is kept; an OS crash is not
        # part of the matrix, so the disk sync is skipped to keep the machine quiet.
        argv += ["-c", "fsync=off", "-c", "full_page_writes=off"]
        self.proc = Proc("postgres", argv, self.root.parent / "postgres.log", user=PG_USER)
        self.proc.start()
        self.wait_ready(60)

    def wait_ready(self, timeout: float) -> None:
        wait_for_port(self.port, timeout, self.proc)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = subprocess.run(
                [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"],
                check=False,
                timeout=10,
            )
            if done.returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError("private PostgreSQL did not become ready")

    def stop(self, mode: str = "fast") -> None:
        """fast: SIGINT (clean shutdown); immediate: SIGQUIT (a crash, recovery on start)."""
        if self.proc is None:
            return
        sig = signal.SIGQUIT if mode == "immediate" else signal.SIGINT
        self.proc.send_signal(sig)
        if not self.proc.wait(30):
            self.proc.stop(signal.SIGKILL, grace=5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            self.proc.stop(signal.SIGKILL, grace=1)

    def psql(self, database: str, sql: str) -> str:
        done = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_USER, "-d", database]
            + ["-v", "ON_ERROR_STOP=1", "-tAc", sql],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def dump(self, path: Path) -> None:
        partial = path.with_suffix(".partial")
        subprocess.run(
            ["pg_dump", "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_USER, "-d", "gateway"]
            + ["--no-owner", "-f", str(partial)],
            check=True,
            timeout=120,
        )
        partial.rename(path)

    def restore(self, path: Path) -> None:
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_USER, "-d", "gateway"]
            + ["-q", "-v", "ON_ERROR_STOP=1", "-f", str(path)],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def destroy(self) -> None:
        self.stop("fast")
        shutil.rmtree(self.root, ignore_errors=True)
