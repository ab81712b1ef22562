"""The deployment files hang together: compose wires every service with health checks and volumes,
Prometheus scrapes the protected endpoint and loads valid rules, and the dashboard and rules only
use metrics the gateway really exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

import analytics.metrics  # noqa: F401  (registers the gateway's metrics)

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
PROMETHEUS = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
RULES = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
DASHBOARD = json.loads((ROOT / "deploy/grafana/dashboards/gateway.json").read_text())


SUFFIXES = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}


def exported_names() -> set[str]:
    """Series names the registry exposes, also for labelled metrics not yet recorded."""
    names = set()
    for family in REGISTRY.collect():
        names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, [""])}
    return names


def referenced_metrics(expression: str) -> set[str]:
    return set(re.findall(r"\b((?:gateway|django)_[a-z_]+)\b", expression))


def test_compose_has_every_service_of_the_stack():
    assert set(COMPOSE["services"]) == {
        "migrate",
        "create-admin",
        "api",
        "worker",
        "beat",
        "postgres",
        "redis",
        "prometheus",
        "grafana",
    }


def test_long_running_services_have_health_checks():
    services = COMPOSE["services"]
    for name in ("api", "worker", "postgres", "redis", "prometheus", "grafana"):
        assert services[name]["healthcheck"]["test"], name
    assert "/healthz" in " ".join(services["api"]["healthcheck"]["test"])


def test_app_services_wait_for_healthy_dependencies_and_migrations():
    services = COMPOSE["services"]
    for name in ("api", "worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://")
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert env["PROMETHEUS_MULTIPROC_DIR"]
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"


def test_data_lives_in_named_volumes():
    declared = set(COMPOSE["volumes"])
    mounts = {
        name: [v.split(":")[0] for v in service.get("volumes", [])]
        for name, service in COMPOSE["services"].items()
    }
    assert "pgdata" in mounts["postgres"]
    assert "redisdata" in mounts["redis"]
    assert "promdata" in mounts["prometheus"]
    assert "grafanadata" in mounts["grafana"]
    used = {m for ms in mounts.values() for m in ms if not m.startswith(".")}
    assert used == declared
    for name, paths in mounts.items():
        for path in paths:
            if path.startswith("."):
                assert (ROOT / path).exists(), f"{name} mounts missing {path}"


def test_prometheus_scrapes_the_api_with_the_bearer_token():
    [api] = [job for job in PROMETHEUS["scrape_configs"] if job["job_name"] == "gateway-api"]
    assert api["metrics_path"] == "/metrics"
    assert api["authorization"]["type"] == "Bearer"
    assert api["static_configs"][0]["targets"] == ["api:8000"]
    assert "metrics_token" in " ".join(COMPOSE["services"]["prometheus"]["entrypoint"])
    assert PROMETHEUS["rule_files"] == ["/etc/prometheus/alerts.yml"]


def test_alert_rules_cover_the_required_incidents_and_explain_themselves():
    rules = {rule["alert"]: rule for group in RULES["groups"] for rule in group["rules"]}
    for name in (
        "GatewayProviderErrorSpike",
        "GatewaySpendBurnRate",
        "GatewayTokensWithoutCost",
        "GatewayQueueLag",
        "GatewayUsageFlushLag",
    ):
        assert name in rules
    for name, rule in rules.items():
        assert rule["expr"].strip(), name
        assert rule["labels"]["severity"] in {"page", "ticket"}, name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name


def test_rules_and_dashboard_use_only_exported_metrics():
    exported = exported_names()
    expressions = [rule["expr"] for group in RULES["groups"] for rule in group["rules"]]
    expressions += [t["expr"] for panel in DASHBOARD["panels"] for t in panel["targets"]]
    used = set().union(*(referenced_metrics(e) for e in expressions))
    assert used, "no metrics referenced"
    assert used <= exported, used - exported


def test_dashboard_is_provisioned_from_the_repository():
    provider = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/gateway.yml").read_text()
    )["providers"][0]
    grafana_mounts = COMPOSE["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in grafana_mounts
    datasource = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"
    assert {p["datasource"]["uid"] for p in DASHBOARD["panels"]} == {datasource["uid"]}
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))


def test_dockerfile_runs_as_non_root_with_a_health_check():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.M)
    assert re.search(r"^USER gateway$", dockerfile, re.M)
    assert "HEALTHCHECK" in dockerfile and "/healthz" in dockerfile
    assert "collectstatic" in dockerfile
    assert "gunicorn.conf.py" in dockerfile


@pytest.mark.skipif(not shutil.which("promtool"), reason="promtool not installed")
def test_promtool_accepts_the_rules():
    result = subprocess.run(
        ["promtool", "check", "rules", str(ROOT / "deploy/prometheus/alerts.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(not shutil.which("promtool"), reason="promtool not installed")
def test_the_rules_pass_their_unit_tests():
    """deploy/prometheus/alerts_test.yml: GatewayUsageFlushLag stays quiet while the flusher
    runs (idle or busy) and pages when it stops, falls behind, or disappears."""
    result = subprocess.run(
        ["promtool", "test", "rules", str(ROOT / "deploy/prometheus/alerts_test.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


@pytest.mark.skipif(_compose_command() is None, reason="docker compose not installed")
def test_docker_compose_config_validates():
    result = subprocess.run(
        [*_compose_command(), "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
