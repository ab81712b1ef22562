"""The topology under test: private Redis and PostgreSQL, the fake upstream, two gateway
processes (uvicorn on the project's ASGI app), a Celery worker and Celery beat."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from catalogue import write_catalogue
from datastores import PrivatePostgres, PrivateRedis
from processes import REPO, Proc, is_port_free, reap_leftovers, stop_all, wait_for_port

HERE = Path(__file__).resolve().parent
WEBHOOK_SECRET = "whsec_reliabilitysuite0123456789abcdef"
FIRST_BYTE_S = 15
IDLE_S = 15


def schema_cache() -> Path | None:
    """Where the migrated schema of this checkout is kept; None when RELIABILITY_SCHEMA_CACHE=0."""
    if os.environ.get("RELIABILITY_SCHEMA_CACHE", "1") == "0":
        return None
    digest = hashlib.sha256()
    paths = sorted(p for p in REPO.glob("*/migrations/*.py") if ".venv" not in p.parts)
    for path in [*paths, REPO / "requirements.txt"]:
        digest.update(path.name.encode() + path.read_bytes())
    folder = Path.home() / ".cache" / "llm-gateway-reliability"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"schema-{digest.hexdigest()[:16]}.sql"


@dataclass
class Ports:
    """All below 32768 (the ephemeral range) and away from the shared 5432/6379."""

    redis: int = int(os.environ.get("RELIABILITY_REDIS_PORT", "21379"))
    postgres: int = int(os.environ.get("RELIABILITY_PG_PORT", "21432"))
    upstream: int = int(os.environ.get("RELIABILITY_UPSTREAM_PORT", "21900"))
    gateways: tuple[int, int] = (21801, 21802)


@dataclass
class Stack:
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="reliability-")))
    ports: Ports = field(default_factory=Ports)
    python: str = sys.executable
    gateways: list[Proc] = field(default_factory=list)
    worker: Proc | None = None
    beat: Proc | None = None
    upstream: Proc | None = None
    tenants: dict = field(default_factory=dict)
    provider_keys: dict = field(default_factory=dict)
    born: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.workdir.chmod(0o755)
        (self.workdir / "prometheus").mkdir(exist_ok=True)
        self.redis = PrivateRedis(self.workdir, self.ports.redis)
        self.postgres = PrivatePostgres(self.workdir, self.ports.postgres)
        self.provider_keys = write_catalogue(self.workdir / "models.json", self.ports.upstream)

    # --- start and stop -------------------------------------------------------------------------
    def start(self, tenant_spec: dict) -> None:
        if reap_leftovers():
            time.sleep(1)  # let the ports go
        ports = (self.ports.redis, self.ports.postgres, self.ports.upstream, *self.ports.gateways)
        for port in ports:
            if not is_port_free(port):
                raise RuntimeError(f"port {port} is taken")
        # No run is alive (its ports would be taken): remove what a killed one left on disk.
        for stale in Path(tempfile.gettempdir()).glob("reliability-*"):
            if stale != self.workdir:
                shutil.rmtree(stale, ignore_errors=True)
        self.redis.start()
        self.postgres.init()
        self.start_upstream()
        self.step("Redis, PostgreSQL and the fake upstream up")
        self.migrate()
        self.tenants = self.make_tenants(tenant_spec)
        self.step("tenants made")
        self.gateways = [self.gateway_proc(index) for index in range(2)]
        for proc in self.gateways:
            proc.start()
        self.start_worker()
        self.start_beat()
        for index in range(2):
            self.wait_gateway(index)
        self.step("gateways, worker and beat up")

    def step(self, what: str) -> None:
        print(f"   {time.monotonic() - self.born:5.0f} s  {what}", flush=True)

    def migrate(self) -> None:
        """Migrate once per run. dj-stripe's migrations take most of a minute, so the migrated
        schema is kept (keyed by every migration file and the pinned requirements) and restored
        first on the next run; `migrate` then only checks that nothing is left to apply."""
        cache = schema_cache()
        if cache is not None and cache.exists():
            try:
                self.postgres.restore(cache)
                self.step("schema restored from the cache")
            except subprocess.CalledProcessError:
                cache.unlink()  # a damaged copy: start from an empty database instead
                self.postgres.psql("postgres", "DROP DATABASE gateway")
                self.postgres.psql("postgres", "CREATE DATABASE gateway")
        self.manage("migrate", "--noinput", timeout=900)
        self.step("migrated")
        if cache is not None and not cache.exists():
            self.postgres.dump(cache)

    def stop(self, keep_logs: Path | None = None) -> None:
        """Stop everything; keep the servers' logs in `keep_logs`, delete the rest."""
        stop_all()
        self.postgres.destroy()
        if keep_logs is not None:
            shutil.rmtree(keep_logs, ignore_errors=True)
            keep_logs.mkdir(parents=True)
            for log in self.workdir.glob("*.log"):
                shutil.copy(log, keep_logs / log.name)
        shutil.rmtree(self.workdir, ignore_errors=True)

    # --- pieces -------------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        upstream = f"http://127.0.0.1:{self.ports.upstream}"
        return {
            "DEBUG": "0",
            "SECRET_KEY": "reliability-suite-secret-key-0123456789abcdefghijklmnop",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": self.postgres.url(),
            "REDIS_URL": self.redis.url(0),
            "GATEWAY_MODELS_CONFIG": str(self.workdir / "models.json"),
            **self.provider_keys,
            "STRIPE_TEST_SECRET_KEY": "sk_test_reliabilitysuite000000000000",
            "STRIPE_API_HOST": upstream,
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "LOG_LEVEL": "WARNING",
            "GATEWAY_USAGE_BEAT_SECONDS": "2",
            # As an operator of this topology would set them: two processes share each limit
            # when Redis is away, and a silent provider or a stalled stream is given up after
            # FIRST_BYTE_S / IDLE_S (so the silence and stall rows fit in 90 s).
            "GATEWAY_EXPECTED_PROCESSES": "2",
            "GATEWAY_FIRST_BYTE_TIMEOUT_SECONDS": str(FIRST_BYTE_S),
            "GATEWAY_STREAM_IDLE_TIMEOUT_SECONDS": str(IDLE_S),
            # Probes and alert rules would call the fake upstream and skew its call counts.
            "GATEWAY_PROBE_IDLE_SECONDS": "3600",
            "GATEWAY_ALERT_INTERVAL_SECONDS": "3600",
            # Every process writes its metric samples here, never into the checkout.
            "PROMETHEUS_MULTIPROC_DIR": str(self.workdir / "prometheus"),
        }

    def manage(self, *args: str, timeout: float = 120, env: dict | None = None) -> str:
        done = subprocess.run(
            [self.python, "manage.py", *args],
            cwd=REPO,
            env={**os.environ, **self.env(), **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"manage.py {args[0]} failed:\n{(done.stdout + done.stderr)[-3000:]}"
            )
        return done.stdout

    def make_tenants(self, spec: dict) -> dict:
        code = (HERE / "tenants.py").read_text()
        out = self.manage("shell", "-c", code, env={"RELIABILITY_TENANTS": json.dumps(spec)})
        for line in out.splitlines():
            if line.startswith("TENANTS="):
                return json.loads(line[len("TENANTS=") :])
        raise RuntimeError(f"tenants.py printed no tenants:\n{out[-2000:]}")

    def start_upstream(self) -> None:
        argv = [self.python, "-m", "uvicorn", "fake_upstream:app", "--app-dir", str(HERE)]
        argv += ["--host", "127.0.0.1", "--port", str(self.ports.upstream)]
        argv += ["--log-level", "warning", "--no-access-log", "--timeout-keep-alive", "30"]
        self.upstream = Proc("upstream", argv, self.workdir / "upstream.log").start()
        wait_for_port(self.ports.upstream, 30, self.upstream)

    def gateway_proc(self, index: int) -> Proc:
        port = self.ports.gateways[index]
        argv = [self.python, "-m", "uvicorn", "gateway_project.asgi:application"]
        argv += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
        argv += ["--timeout-graceful-shutdown", "30"]
        return Proc(f"gateway{index}", argv, self.workdir / f"gateway{index}.log", env=self.env())

    def start_gateway(self, index: int) -> None:
        self.gateways[index].start()
        self.wait_gateway(index)

    def wait_gateway(self, index: int) -> None:
        proc = self.gateways[index]
        wait_for_port(self.ports.gateways[index], 90, proc)
        self.wait_http(f"{self.gateway_url(index)}/healthz", 60)

    def restart_gateways(self) -> None:
        for proc in self.gateways:
            proc.stop()
        for proc in self.gateways:
            proc.start()
        for index in range(2):
            self.wait_gateway(index)

    def gateway_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports.gateways[index]}"

    def start_worker(self) -> None:
        argv = [self.python, "-m", "celery", "-A", "gateway_project", "worker"]
        argv += ["--concurrency", "1", "--loglevel", "warning", "--without-gossip"]
        argv += ["--without-mingle", "-n", "reliability@%h"]
        if self.worker is None:
            self.worker = Proc("worker", argv, self.workdir / "worker.log", env=self.env())
        self.worker.start()

    def start_beat(self) -> None:
        argv = [self.python, "-m", "celery", "-A", "gateway_project", "beat"]
        argv += ["--loglevel", "warning", "--schedule", str(self.workdir / "beat-schedule")]
        self.beat = Proc("beat", argv, self.workdir / "beat.log", env=self.env()).start()

    def wait_http(self, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(url, timeout=2).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{url} did not answer in {timeout:.0f}s")

    # --- the fake upstream's remote control ---------------------------------------------------
    def fault(self, **providers: dict) -> None:
        """`fault(primary={"mode": "5xx"})`; unnamed settings keep their values."""
        url = f"http://127.0.0.1:{self.ports.upstream}/_control"
        httpx.post(url, json=providers, timeout=5).raise_for_status()

    def reset_upstream(self) -> None:
        httpx.post(f"http://127.0.0.1:{self.ports.upstream}/_reset", timeout=5).raise_for_status()

    def upstream_calls(self) -> dict[str, list[float]]:
        return httpx.get(f"http://127.0.0.1:{self.ports.upstream}/_stats", timeout=5).json()
