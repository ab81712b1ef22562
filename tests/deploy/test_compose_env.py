"""The compose stack serves: every variable the app reads is documented in .env.example and
reaches the app containers (env_file), compose pins only what points at its own services, the
services start in order, and the settings load under exactly the environment the api container
gets from a fresh copy of .env.example. (No Docker engine here: these read the files.)"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from llm.catalog import CONFIG_ENV

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
APP_SERVICES = ("migrate", "create-admin", "api", "worker", "beat")
# Values compose must set itself: they point the app at compose's own services and volumes.
PINNED = {"DATABASE_URL", "REDIS_URL", "PROMETHEUS_MULTIPROC_DIR", "GATEWAY_WORKER_METRICS_PORT"}
# How Python finds the settings module, not a setting: an empty value would break start-up.
NOT_SETTINGS = {"DJANGO_SETTINGS_MODULE"}
READ = re.compile(
    r"""(?:\benv(?:_bool|_int|_list)?|os\.environ\.get|os\.getenv|os\.environ\.setdefault)"""
    r"""\(\s*["']([A-Z][A-Z0-9_]+)["']|os\.environ\[["']([A-Z][A-Z0-9_]+)["']\]"""
    r"""|\benv=["']([A-Z][A-Z0-9_]+)["']"""  # dj-database-url's config(env=...)
)


def source_files():
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT).parts
        if relative[0] in {".venv", "tests", "bench"} or "migrations" in relative:
            continue
        yield path


def variables_in_code() -> set[str]:
    found = set()
    for path in source_files():
        for match in READ.finditer(path.read_text()):
            found.add(next(group for group in match.groups() if group))
    return found - NOT_SETTINGS


def variables_of_providers() -> set[str]:
    """The catalogue reads <PREFIX>_API_KEY, <PREFIX>_BASE_URL and enabled_by variables."""
    providers = yaml.safe_load((ROOT / "models_config.yaml").read_text())["providers"]
    found = {CONFIG_ENV}
    for pid, spec in providers.items():
        prefix = spec.get("env_prefix") or pid.upper().replace("-", "_")
        found.add(f"{prefix}_BASE_URL")
        if spec.get("requires_key", True):
            found.add(f"{prefix}_API_KEY")
        else:
            found.add(spec["enabled_by"])
    return found


def parse_env_file(text: str) -> dict[str, str]:
    """Compose's env-file reading: NAME=value, `#` comments, inline ` #` comments unquoted."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, value = line.partition("=")
        values[name.strip()] = re.split(r"\s+#", value, maxsplit=1)[0].strip()
    return values


EXAMPLE = parse_env_file((ROOT / ".env.example").read_text())


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${NAME:-default} and ${NAME} (from .env and the shell)."""

    def substitute(match: re.Match) -> str:
        name, default = match.group(1), match.group(3) or ""
        return env.get(name) or default

    return re.sub(r"\$\{([A-Z_0-9]+)(:-([^}]*))?\}", substitute, str(value))


def test_the_variable_scan_finds_reads_in_both_quote_styles():
    assert {"SECRET_KEY", "DATABASE_URL", "WEB_CONCURRENCY", "DJANGO_SUPERUSER_EMAIL"} <= (
        variables_in_code()
    )
    assert {"OPENAI_API_KEY", "OLLAMA_BASE_URL", "GATEWAY_DEMO_PROVIDER"} <= (
        variables_of_providers()
    )


def test_every_variable_the_app_reads_is_in_env_example():
    missing = (variables_in_code() | variables_of_providers()) - set(EXAMPLE)
    assert not missing, f"not in .env.example: {sorted(missing)}"


def test_env_example_names_nothing_the_app_does_not_read():
    compose_only = {"POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "WORKER_CONCURRENCY"}
    tests_only = {"GATEWAY_TEST_REDIS_URL"}
    unknown = (
        set(EXAMPLE) - variables_in_code() - variables_of_providers() - compose_only - tests_only
    )
    assert not unknown, f"in .env.example but read by nothing: {sorted(unknown)}"


def test_app_services_take_every_variable_from_the_env_file():
    for name in APP_SERVICES:
        env_files = SERVICES[name]["env_file"]
        assert [entry["path"] for entry in env_files] == [".env"], name


def test_compose_sets_only_pinned_values_and_otherwise_defers_to_env():
    for name in APP_SERVICES:
        for variable, value in SERVICES[name]["environment"].items():
            if variable in PINNED:
                continue
            assert re.fullmatch(rf"\$\{{{variable}(:-[^}}]*)?\}}", str(value)), (
                f"{name} hard-codes {variable}={value!r}: a value in .env could not win"
            )


def test_the_demo_provider_is_opt_in():
    for name in ("api", "worker", "beat"):
        value = SERVICES[name]["environment"]["GATEWAY_DEMO_PROVIDER"]
        assert interpolate(value, {}) == "0"
        assert interpolate(value, {"GATEWAY_DEMO_PROVIDER": "1"}) == "1"
    assert EXAMPLE["GATEWAY_DEMO_PROVIDER"] == "0"


def test_services_start_in_order():
    def waits_for(service: str) -> dict[str, str]:
        return {
            dependency: spec["condition"]
            for dependency, spec in SERVICES[service].get("depends_on", {}).items()
        }

    assert waits_for("migrate") == {"postgres": "service_healthy", "redis": "service_healthy"}
    assert waits_for("create-admin") == {"migrate": "service_completed_successfully"}
    for name in ("api", "worker", "beat"):
        assert waits_for(name) == {
            "postgres": "service_healthy",
            "redis": "service_healthy",
            "migrate": "service_completed_successfully",
            "create-admin": "service_completed_successfully",
        }, name
    assert waits_for("prometheus") == {"api": "service_healthy"}
    assert waits_for("grafana") == {"prometheus": "service_healthy"}
    # Every dependency exists, one-shots never restart, and there is no cycle.
    for name in SERVICES:
        assert set(waits_for(name)) <= set(SERVICES), name
    for name in ("migrate", "create-admin"):
        assert SERVICES[name]["restart"] == "no"
    order = start_order({name: set(waits_for(name)) for name in SERVICES})
    assert order.index("create-admin") < order.index("api")


def start_order(graph: dict[str, set[str]]) -> list[str]:
    order, ready = [], {n for n, deps in graph.items() if not deps}
    remaining = {n: set(deps) for n, deps in graph.items() if deps}
    while ready:
        node = sorted(ready)[0]
        ready.remove(node)
        order.append(node)
        for other, deps in list(remaining.items()):
            deps.discard(node)
            if not deps:
                ready.add(other)
                del remaining[other]
    assert not remaining, f"dependency cycle among {sorted(remaining)}"
    return order


def test_the_admin_service_creates_the_admin():
    assert SERVICES["create-admin"]["command"] == ["python", "manage.py", "create_admin"]
    for variable in ("DJANGO_SUPERUSER_EMAIL", "DJANGO_SUPERUSER_PASSWORD"):
        assert variable in EXAMPLE


def test_settings_load_in_the_api_container_environment_from_a_copy_of_env_example(tmp_path):
    """What the api container gets from `cp .env.example .env`: env_file, then compose's
    environment on top (interpolated from the same .env)."""
    container = dict(EXAMPLE)
    for variable, value in SERVICES["api"]["environment"].items():
        container[variable] = interpolate(value, EXAMPLE)
    container["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path)  # the container's tmpfs
    script = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', "
        "'gateway_project.settings'); django.setup(); from django.conf import settings; "
        "from django.core.management import call_command; call_command('check'); "
        "print(settings.DATABASES['default']['HOST'], settings.DEBUG, "
        "settings.CELERY_BROKER_URL, settings.GATEWAY_USAGE_FLUSH_SECONDS)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={"PATH": "/usr/bin:/bin", **container},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    host, debug, broker, flush = result.stdout.split()[-4:]
    assert (host, debug) == ("postgres", "False")
    assert broker == "redis://redis:6379/0"  # empty CELERY_BROKER_URL: the default, REDIS_URL
    assert float(flush) == 0.0  # empty: the default with Redis
