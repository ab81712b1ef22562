"""The import contracts in pyproject.toml, which `lint-imports` checks in CI, cover every module."""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The parts of llm/ that are not its core: the edge, the Django glue, the (empty) migrations.
LLM_NOT_CORE = {"llm.api", "llm.apps", "llm.admin", "llm.migrations"}


def contract(contract_id: str) -> dict:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return next(c for c in config["contracts"] if c.get("id") == contract_id)


def test_every_module_of_the_llm_core_is_held_to_the_core_contract():
    modules = {f"llm.{m.name}" for m in pkgutil.iter_modules([str(ROOT / "llm")])}
    assert set(contract("llm-core")["source_modules"]) == modules - LLM_NOT_CORE


def test_every_app_is_in_a_layer():
    apps = {p.parent.name for p in ROOT.glob("*/apps.py")} | {"gateway_project", "llm.api"}
    assert set(contract("apps")["layers"]) == apps - {"llm"}
