"""`manage.py check --deploy` is clean with the production settings .env.example documents."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def production_environment() -> dict[str, str]:
    """.env.example's Django block (the production settings), with a real secret key."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    for line in (ROOT / ".env.example").read_text().splitlines():
        name, sep, value = line.partition("=")
        if line.startswith("# --- Services"):
            break
        if sep and not line.startswith("#"):
            env[name.strip()] = value.split("#", 1)[0].strip()
    env["SECRET_KEY"] = secrets.token_urlsafe(60)
    return env


def test_the_deploy_check_is_clean_in_production():
    env = production_environment()
    assert env["DEBUG"] == "0" and env["SECURE_SSL_REDIRECT"] == "1"
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
