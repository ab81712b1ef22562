"""Starting and stopping the servers under test: the nginx upstream, LiteLLM's proxy, Portkey's
gateway, this gateway, and the slow upstream of the open-streams scenario.

Each server runs in its own session (process group) so stopping it ends its whole tree.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import upstream

REPO = Path(__file__).resolve().parent.parent
LITELLM_PORT = 18400
GATEWAY_PORT = 18500
PORTKEY_PORT = 18600
FLOOR_PORT = 18700
SLOW_UPSTREAM_PORT = 18082
PORTKEY_DIR = Path(__file__).resolve().parent / ".portkey"  # npm install target (gitignored)
API_KEY_MARKER = "BENCH_API_KEY="


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, grace: float = 10.0) -> None:
        """End the whole process group: the master and everything it started (the gateway's
        Celery worker too, which may outlive gunicorn's master and would otherwise go on
        flushing, unmeasured, during the next target's runs)."""
        _signal_group(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while _group_alive(self.pid) and time.monotonic() < deadline:
            self.process.poll()  # reap the master so it does not count as alive
            time.sleep(0.1)
        _signal_group(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def ensure_port_free(port: int) -> None:
    """Refuse to start on a port something already answers on: its answers would be measured."""
    with socket.socket() as probe:
        probe.settimeout(1)
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise RuntimeError(f"port {port} is already in use by another process")


def spawn(
    name: str,
    argv: list[str],
    workdir: Path,
    env: dict[str, str] | None = None,
    cwd: Path = REPO,
) -> Server:
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(name, process, log_path)


def wait_until_listening(server: Server, port: int, timeout: float) -> None:
    """Return once anything answers HTTP on the port (the caller checked it was free before
    starting the server); raise with the log tail otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited early:\n{server.log_tail()}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)  # noqa: S310
            return
        except urllib.error.HTTPError:
            return  # a 404 still means the server is up
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{server.name} did not answer on port {port} in {timeout:.0f}s")


def started(server: Server, port: int, timeout: float) -> Server:
    """The server once it answers; stopped (its whole group) if it never does."""
    try:
        wait_until_listening(server, port, timeout)
    except BaseException:
        server.stop(grace=5)
        raise
    return server


def start_nginx(workdir: Path) -> Server:
    config = upstream.write_nginx_config(workdir)
    for port in (upstream.UPSTREAM_PORT, upstream.STREAM_PORT):
        ensure_port_free(port)
    server = spawn("nginx", ["nginx", "-c", str(config), "-e", str(workdir / "error.log")], workdir)
    return started(server, upstream.UPSTREAM_PORT, 10)


def redis_parts(redis_url: str) -> tuple[str, int, int]:
    parts = urlsplit(redis_url)
    return parts.hostname or "127.0.0.1", parts.port or 6379, int(parts.path.strip("/") or 0)


def start_litellm(workdir: Path, litellm_bin: Path, redis_url: str) -> Server:
    """LiteLLM's proxy, 2 workers, no database, no master key; one model per upstream port and
    a Redis response cache that requests opt into (so only the cache scenario hits it)."""
    host, port, db = redis_parts(redis_url)

    def model(name: str, upstream_port: int) -> dict:
        api_base = f"http://127.0.0.1:{upstream_port}/v1"
        params = {"model": f"openai/{upstream.MODEL}", "api_base": api_base, "api_key": "sk-bench"}
        return {"model_name": name, "litellm_params": params}

    config = {
        "model_list": [
            model(upstream.MODEL, upstream.UPSTREAM_PORT),
            model(f"{upstream.MODEL}-stream", upstream.STREAM_PORT),
        ],
        "litellm_settings": {
            "cache": True,
            "cache_params": {
                "type": "redis",
                "host": host,
                "port": port,
                "db": db,
                "namespace": "litellm-bench",
                "mode": "default_off",
            },
        },
    }
    config_path = workdir / "litellm.yaml"
    config_path.write_text(json.dumps(config, indent=2))  # JSON is valid YAML
    env = {
        "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOG": "ERROR",
    }
    argv = [str(litellm_bin), "--config", str(config_path), "--host", "127.0.0.1"]
    argv += ["--port", str(LITELLM_PORT), "--num_workers", "2"]
    # uvicorn restarts a worker that misses a 5 s health-check ping; on a loaded machine that
    # kills busy workers over and over and measures restarts, not the proxy.
    argv += ["--timeout_worker_healthcheck", "60"]
    ensure_port_free(LITELLM_PORT)
    server = spawn("litellm", argv, workdir, env)
    return started(server, LITELLM_PORT, 180)


def start_portkey(workdir: Path, install_dir: Path = PORTKEY_DIR, workers: int = 2) -> Server:
    """Portkey's gateway (the npm package, its Hono app on @hono/node-server), `workers` processes
    sharing one port through node:cluster (bench/portkey/cluster.js)."""
    entry = install_dir / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
    if not entry.exists():
        raise RuntimeError(f"Portkey is not installed in {install_dir} (bench/run.sh installs it)")
    cluster = Path(__file__).resolve().parent / "portkey" / "cluster.js"
    argv = ["node", str(cluster), str(install_dir), str(PORTKEY_PORT), str(workers)]
    ensure_port_free(PORTKEY_PORT)
    server = spawn("portkey", argv, workdir, {"NODE_ENV": "production"})
    return started(server, PORTKEY_PORT, 60)


def start_floor(workdir: Path, python: str, backlog: int | None = None) -> Server:
    """bench/floor.py, the bare relay, under gunicorn with 2 uvicorn workers."""
    argv = [python, "-m", "gunicorn", "floor:app", "-k", "uvicorn_worker.UvicornWorker"]
    argv += ["-w", "2", "-b", f"127.0.0.1:{FLOOR_PORT}", "--chdir", str(REPO / "bench")]
    if backlog:
        argv += ["--backlog", str(backlog)]
    ensure_port_free(FLOOR_PORT)
    return started(spawn("floor", argv, workdir), FLOOR_PORT, 60)


def start_slow_upstream(workdir: Path, interval: float, seconds: float) -> Server:
    """bench/slow_upstream.py: one SSE chunk every `interval` s for `seconds` s."""
    script = Path(__file__).resolve().parent / "slow_upstream.py"
    argv = [sys.executable, str(script), str(SLOW_UPSTREAM_PORT)]
    argv += ["--interval", str(interval), "--seconds", str(seconds)]
    ensure_port_free(SLOW_UPSTREAM_PORT)
    server = spawn("slow-upstream", argv, workdir)
    return started(server, SLOW_UPSTREAM_PORT, 30)


def gateway_env(database_url: str, redis_url: str, upstream_port: int) -> dict[str, str]:
    return {
        "DEBUG": "0",
        "SECRET_KEY": "bench-secret-key-not-for-production-0123456789abcdef",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": database_url,
        "DATABASE_CONN_MAX_AGE": "60",
        "REDIS_URL": redis_url,
        "OPENAI_API_KEY": "sk-bench",
        "OPENAI_BASE_URL": f"http://127.0.0.1:{upstream_port}/v1",
        # INFO, as in production: the one JSON line per request is part of the work measured.
        "LOG_LEVEL": os.environ.get("BENCH_GATEWAY_LOG_LEVEL", "INFO"),
        # Usage records go to Redis on the request path; the Celery worker flushes them.
        "GATEWAY_USAGE_FLUSH_SECONDS": "0",
    }


def run_checked(argv: list[str], env: dict[str, str], timeout: float) -> str:
    done = subprocess.run(
        argv,
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} failed:\n{(done.stdout + done.stderr)[-2000:]}")
    return done.stdout


def ensure_database(database_url: str) -> None:
    parts = urlsplit(database_url)
    name = parts.path.strip("/")
    psql = ["psql", "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432)]
    psql += ["-U", parts.username or "postgres", "-d", "postgres", "-tAc"]
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise RuntimeError(f"unexpected database name {name!r}")
    names = run_checked([*psql, "SELECT datname FROM pg_database"], {}, 30).split()
    if name not in names:
        run_checked([*psql, f'CREATE DATABASE "{name}"'], {}, 30)


def prepare_gateway(python: str, database_url: str, redis_url: str) -> str:
    """Create and migrate the database, mint an API key on an unlimited plan; return the key."""
    ensure_database(database_url)
    env = gateway_env(database_url, redis_url, upstream.UPSTREAM_PORT)
    run_checked([python, "manage.py", "migrate", "--noinput"], env, 600)
    code = (Path(__file__).parent / "gateway_fixtures.py").read_text()
    output = run_checked([python, "manage.py", "shell", "-c", code], env, 120)
    for line in output.splitlines():
        if line.startswith(API_KEY_MARKER):
            return line[len(API_KEY_MARKER) :].strip()
    raise RuntimeError(f"no API key printed by gateway_fixtures.py:\n{output[-1000:]}")


def start_gateway(
    workdir: Path,
    python: str,
    database_url: str,
    redis_url: str,
    upstream_port: int,
    backlog: int | None = None,
    http_server: str = "gunicorn",
    repo: Path = REPO,
    port: int = GATEWAY_PORT,
) -> Server:
    """The production shape: gunicorn with the repository's gunicorn.conf.py (2 uvicorn workers),
    bound to the benchmark's port; a Celery worker with beat beside it. `http_server="granian"`
    serves the same application with granian (2 workers, uvloop) instead, to compare servers.
    `repo` is the checkout served (another commit's, to compare two), on `port`."""
    if http_server == "granian":
        web = [python, "-m", "granian", "--interface", "asgi", "--workers", "2"]
        web += ["--loop", "uvloop", "--http", "1", "--no-access-log", "--log-level", "warning"]
        web += ["--host", "127.0.0.1", "--port", str(port)]
        if backlog:
            web += ["--backlog", str(backlog)]
        web += ["gateway_project.asgi:application"]
    else:
        web = [python, "-m", "gunicorn", "gateway_project.asgi:application"]
        if (repo / "gunicorn.conf.py").exists():
            web += ["-c", "gunicorn.conf.py"]  # its worker class, as in production
        else:
            web += ["-k", "uvicorn_worker.UvicornWorker"]
        web += ["-w", "2"]
        web += ["-b", f"127.0.0.1:{port}", "--graceful-timeout", "5"]
        if backlog:
            # Many connections opened at once (the open-streams scenario): gunicorn's listen
            # backlog (capped by net.core.somaxconn); uvicorn's limit_concurrency stays unset.
            web += ["--backlog", str(backlog)]
    # The Celery worker (with beat) writes the queued usage records to PostgreSQL, as in
    # production. It is started by the same shell that then becomes gunicorn, so it sits in the
    # measured process tree and its CPU counts against the gateway.
    celery = [python, "-m", "celery", "-A", "gateway_project", "worker", "-B"]
    celery += ["--concurrency", "1", "--loglevel", "warning"]
    celery += ["--schedule", str(workdir / f"celerybeat-schedule-{port}")]
    script = f"{shlex.join(celery)} & exec {shlex.join(web)}"
    env = gateway_env(database_url, redis_url, upstream_port)
    # gunicorn.conf.py empties this directory on start: a private one, never a shared default.
    metrics = workdir / f"prometheus-{http_server}-{upstream_port}-{port}"
    metrics.mkdir(exist_ok=True)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
    ensure_port_free(port)
    server = spawn(f"gateway-{upstream_port}-{port}", ["sh", "-c", script], workdir, env, repo)
    return started(server, port, 180)
