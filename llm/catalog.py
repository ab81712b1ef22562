"""The model catalogue: providers, models, effective-dated prices and aliases.

Loaded once at start-up from models_config.yaml (or the file GATEWAY_MODELS_CONFIG names),
validated with errors that name the line and field, and combined with the environment (keys,
base URL overrides, enable flags). The process-wide Catalog is an immutable value swapped in one
assignment by reload_catalog(), so readers on the hot path never lock and never see half a reload.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from llm.catalog_yaml import (
    DECIMAL_PATTERN,
    SCHEMA,
    STRATEGIES,
    CatalogError,
    Problem,
    format_path,
    line_of,
    parse_yaml,
)
from llm.params import ACCEPT_ALL, ParamRules, parse_rules
from llm.prices import PriceRow, parse_price_rows
from llm.types import ProviderConfig

__all__ = [
    "AliasEntry",
    "Catalog",
    "CatalogError",
    "ModelEntry",
    "NoPriceError",
    "build_catalog",
    "get_catalog",
    "load_catalog",
    "reload_catalog",
    "set_catalog",
]

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "models_config.yaml"
CONFIG_ENV = "GATEWAY_MODELS_CONFIG"
_FALSE_WORDS = {"", "0", "false", "no", "off"}


class NoPriceError(LookupError):
    """The model has no price row in force at the given time (it is not on sale yet)."""


@dataclass(frozen=True)
class ModelEntry:
    id: str  # the gateway's name for the model
    provider: str  # ProviderConfig.id
    upstream: str  # the provider's model id
    prices: tuple[PriceRow, ...]  # ascending valid_from
    context_window: int
    capabilities: frozenset[str]
    quality_rank: int
    speed_rank: int
    max_output_tokens: int | None = None
    fallbacks: tuple[str, ...] = ()
    demo: bool = False
    params: ParamRules = ACCEPT_ALL  # the provider's parameter rules with this model's overrides

    def price_at(self, when: datetime | date) -> PriceRow:
        """The row with the latest valid_from on or before when (a UTC datetime or a date)."""
        day = _utc_day(when)
        chosen = None
        for row in self.prices:
            if row.valid_from > day:
                break
            chosen = row
        if chosen is None:
            raise NoPriceError(f"{self.id} has no price in force on {day.isoformat()}")
        return chosen

    def has_price_at(self, when: datetime | date) -> bool:
        return self.prices[0].valid_from <= _utc_day(when)


@dataclass(frozen=True)
class AliasEntry:
    name: str
    models: tuple[str, ...] = ()  # an ordered list, or empty when strategy is set
    strategy: str | None = None
    providers: frozenset[str] | None = None  # strategy filters
    only_models: frozenset[str] | None = None
    capabilities: frozenset[str] = frozenset()
    description: str = ""


BUILTIN_ALIASES = {name: AliasEntry(name=name, strategy=name) for name in STRATEGIES}


@dataclass(frozen=True)
class Catalog:
    providers: Mapping[str, ProviderConfig]
    models: Mapping[str, ModelEntry]
    aliases: Mapping[str, AliasEntry]
    configured: frozenset[str]  # ids of providers that may be routed to
    source: str = ""
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def is_configured(self, provider_id: str) -> bool:
        return provider_id in self.configured

    def provider(self, provider_id: str) -> ProviderConfig:
        return self.providers[provider_id]

    def model(self, model_id: str) -> ModelEntry:
        return self.models[model_id]

    def price_at(self, model_id: str, when: datetime | date) -> PriceRow:
        return self.models[model_id].price_at(when)

    def names(self) -> list[str]:
        """Every name a request may use: aliases first, then model ids."""
        return sorted(self.aliases) + sorted(self.models)


def _utc_day(when: datetime | date) -> date:
    if isinstance(when, datetime):
        if when.tzinfo is None:
            raise ValueError("price lookups need an aware datetime")
        return when.astimezone(UTC).date()
    return when


# --- loading -------------------------------------------------------------------------------


def load_catalog(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Catalog:
    """Read and validate the catalogue ($GATEWAY_MODELS_CONFIG, else the shipped file)."""
    env = os.environ if environ is None else environ
    chosen = Path(path or env.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH)
    try:
        text = chosen.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(str(chosen), [Problem(None, "", f"cannot read file: {exc}")]) from None
    return build_catalog(text, env, source=str(chosen))


def build_catalog(text: str, environ: Mapping[str, str], *, source: str = "<catalogue>") -> Catalog:
    data, root = parse_yaml(text, source)
    if not isinstance(data, dict):
        raise CatalogError(source, [Problem(1, "", "expected a mapping with providers and models")])
    schema_problems = [
        Problem(
            line_of(root, list(err.absolute_path)), format_path(list(err.absolute_path)), _say(err)
        )
        for err in sorted(Draft202012Validator(SCHEMA).iter_errors(data), key=lambda e: e.path)
    ]
    if schema_problems:
        raise CatalogError(source, schema_problems)
    problems: list[Problem] = []

    def complain(path: list[Any], message: str) -> None:
        problems.append(Problem(line_of(root, path), format_path(path), message))

    providers = {pid: _provider(pid, spec, environ) for pid, spec in data["providers"].items()}
    configured = frozenset(
        pid for pid, spec in data["providers"].items() if _is_configured(pid, spec, environ)
    )
    rules = {pid: parse_rules(spec.get("params")) for pid, spec in data["providers"].items()}
    models: dict[str, ModelEntry] = {}
    for i, spec in enumerate(data["models"]):
        entry = _model(spec, ["models", i], complain, rules.get(spec["provider"]))
        if entry.id in models:
            complain(["models", i, "id"], f"duplicate model id {entry.id!r}")
        if entry.provider not in providers:
            complain(["models", i, "provider"], f"unknown provider {entry.provider!r}")
        models[entry.id] = entry
    for i, spec in enumerate(data["models"]):
        for j, target in enumerate(spec.get("fallbacks", [])):
            if target not in models:
                complain(["models", i, "fallbacks", j], f"unknown model {target!r}")
            elif target == spec["id"]:
                complain(["models", i, "fallbacks", j], "a model cannot fall back to itself")
    aliases = dict(BUILTIN_ALIASES)
    for name, spec in (data.get("aliases") or {}).items():
        aliases[name] = _alias(name, spec, ["aliases", name], models, providers, complain)
    if problems:
        raise CatalogError(source, problems)
    return Catalog(
        providers=providers, models=models, aliases=aliases, configured=configured, source=source
    )


def _say(err: Any) -> str:
    if err.validator == "pattern" and err.schema.get("pattern") == DECIMAL_PATTERN:
        return f'{err.instance!r} is not a non-negative decimal string (quote prices, e.g. "0.15")'
    if err.validator == "type" and isinstance(err.instance, float):
        return f"{err.instance!r} is a float: write prices as quoted decimal strings"
    if err.validator == "additionalProperties":
        return err.message.replace("Additional properties are not allowed", "unknown field(s)")
    return err.message


def _env_prefix(pid: str, spec: Mapping[str, Any]) -> str:
    return spec.get("env_prefix") or pid.upper().replace("-", "_")


def _provider(pid: str, spec: Mapping[str, Any], environ: Mapping[str, str]) -> ProviderConfig:
    prefix = _env_prefix(pid, spec)
    return ProviderConfig(
        id=pid,
        name=spec["name"],
        dialect=spec["dialect"],
        base_url=(environ.get(f"{prefix}_BASE_URL") or spec["base_url"]).rstrip("/"),
        api_key=environ.get(f"{prefix}_API_KEY") or None,
        headers=dict(spec.get("headers") or {}),
        quirks=dict(spec.get("quirks") or {}),
        requires_key=spec.get("requires_key", True),
    )


def _is_configured(pid: str, spec: Mapping[str, Any], environ: Mapping[str, str]) -> bool:
    """Keyed providers need their key; keyless ones (Ollama, demo) need their enable variable."""
    if spec.get("requires_key", True):
        return bool(environ.get(f"{_env_prefix(pid, spec)}_API_KEY"))
    flag = spec.get("enabled_by")
    return flag is None or environ.get(flag, "").strip().lower() not in _FALSE_WORDS


def _model(
    spec: Mapping[str, Any], path: list[Any], complain, provider_rules: ParamRules | None
) -> ModelEntry:
    caps = frozenset(spec["capabilities"])
    embeddings_only = caps == {"embeddings"}
    rows = parse_price_rows(spec, path, complain, embeddings_only=embeddings_only)
    rules = parse_rules(spec.get("params"), provider_rules)
    for name, rule in rules.rules.items():
        if rule.action == "rename" and not rule.to:
            complain([*path, "params", name], "a rename needs `to` (or write {rename: <name>})")
    if "stream" in caps and rules.rule("stream_options").action == "refuse":
        complain(
            [*path, "capabilities"],
            "a streaming model must accept or drop stream_options (the gateway asks for usage)",
        )
    if "embeddings" in caps and len(caps) > 1:
        complain([*path, "capabilities"], "embeddings models cannot also be chat models")
    if not embeddings_only and "chat" not in caps:
        complain([*path, "capabilities"], "a model without embeddings must have chat")
    return ModelEntry(
        id=spec["id"],
        provider=spec["provider"],
        upstream=spec["upstream"],
        prices=rows,
        context_window=spec["context_window"],
        max_output_tokens=spec.get("max_output_tokens"),
        capabilities=caps,
        quality_rank=spec["quality_rank"],
        speed_rank=spec["speed_rank"],
        fallbacks=tuple(spec.get("fallbacks", ())),
        demo=spec.get("demo", False),
        params=rules,
    )


def _alias(name, spec, path, models, providers, complain) -> AliasEntry:
    if name in BUILTIN_ALIASES:
        complain(path, f"{name!r} is a built-in strategy and cannot be redefined")
    if name in models:
        complain(path, f"alias {name!r} shadows a model id")
    if isinstance(spec, list):
        spec = {"models": spec}
        listed, listed_path = spec["models"], path
    else:
        listed, listed_path = spec.get("models", []), [*path, "models"]
    for i, model_id in enumerate(listed):
        if model_id not in models:
            complain([*listed_path, i], f"unknown model {model_id!r}")
    filters = spec.get("filters") or {}
    for i, pid in enumerate(filters.get("providers", [])):
        if pid not in providers:
            complain([*path, "filters", "providers", i], f"unknown provider {pid!r}")
    for i, model_id in enumerate(filters.get("models", [])):
        if model_id not in models:
            complain([*path, "filters", "models", i], f"unknown model {model_id!r}")
    return AliasEntry(
        name=name,
        models=tuple(listed),
        strategy=spec.get("strategy"),
        providers=frozenset(filters["providers"]) if "providers" in filters else None,
        only_models=frozenset(filters["models"]) if "models" in filters else None,
        capabilities=frozenset(filters.get("capabilities", ())),
        description=spec.get("description", ""),
    )


# --- the process-wide catalogue ------------------------------------------------------------

_current: Catalog | None = None


def get_catalog() -> Catalog:
    """The catalogue in force, loaded at start-up (gateway_project/startup.py)."""
    if _current is None:
        raise RuntimeError("No model catalogue is loaded: the process was not started up.")
    return _current


def set_catalog(catalog: Catalog | None) -> None:
    global _current
    _current = catalog


def reload_catalog(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Catalog:
    """Load a fresh catalogue and swap it in; on any error the old one stays in force."""
    global _current
    fresh = load_catalog(path, environ)
    _current = fresh  # one reference assignment: readers see the old or the new, never a mix
    return fresh
