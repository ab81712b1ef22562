"""What the catalogue shows API clients: /v1/models, /api/v1/models and /api/v1/health."""

from __future__ import annotations

from datetime import UTC, datetime

from django.http import HttpResponse, JsonResponse

from llm.api import pipeline
from llm.api.auth import Caller
from llm.api.errors import ApiError
from llm.api.unknown_routes import allow_methods
from llm.catalog import Catalog, get_catalog
from llm.errors import GatewayError
from llm.routing import resolve
from llm.runtime import get_runtime


def usable_names(caller: Caller) -> tuple[list, list]:
    """The models and aliases this organisation may use right now: configured and allowed
    models, and the allowed aliases that route to at least one of them. Nothing is listed that
    would only answer 503."""
    return usable_names_for(caller.limits)


def usable_names_for(limits) -> tuple[list, list]:
    catalog = get_catalog()
    models = [
        m
        for m in catalog.models.values()
        if catalog.is_configured(m.provider) and limits.allows_model(m.id)
    ]
    aliases = [
        a
        for a in catalog.aliases.values()
        if limits.allows_model(a.name) and can_route(catalog, a.name, limits.allows_model)
    ]
    return sorted(models, key=lambda m: m.id), sorted(aliases, key=lambda a: a.name)


def can_route(catalog: Catalog, name: str, allowed) -> bool:
    try:
        resolve(catalog, name, needs=(), allowed=allowed)
    except GatewayError:
        return False
    return True


def openai_model_list(caller: Caller) -> dict:
    models, aliases = usable_names(caller)
    created = int(get_catalog().loaded_at.timestamp())
    data = [
        {"id": m.id, "object": "model", "created": created, "owned_by": m.provider} for m in models
    ]
    data += [
        {"id": a.name, "object": "model", "created": created, "owned_by": "gateway"}
        for a in aliases
    ]
    return {"object": "list", "data": data}


def openai_model(caller: Caller, model_id: str) -> dict | None:
    return next((m for m in openai_model_list(caller)["data"] if m["id"] == model_id), None)


async def _caller(request) -> Caller:
    call = pipeline.begin(request, "models")
    await pipeline.authenticate_call(call, request)
    return call.caller


@allow_methods("GET")
async def gateway_models(request) -> HttpResponse:
    """Each model with its provider, prices now, context window, capabilities and health."""
    try:
        caller = await _caller(request)
    except ApiError as error:
        return error.response()
    health = get_runtime().health
    await health.refresh()
    models, aliases = usable_names(caller)
    now = datetime.now(UTC)
    body = {
        "models": [
            {
                "id": m.id,
                "provider": m.provider,
                "upstream_model": m.upstream,
                "demo": m.demo,
                "input_per_mtok": str(m.price_at(now).input_per_mtok),
                "output_per_mtok": str(m.price_at(now).output_per_mtok),
                "cached_input_per_mtok": _str(m.price_at(now).cached_input_per_mtok),
                "price_version": m.price_at(now).version,
                "context_window": m.context_window,
                "max_output_tokens": m.max_output_tokens,
                "capabilities": sorted(m.capabilities),
                "quality_rank": m.quality_rank,
                "speed_rank": m.speed_rank,
                "health": health.model_state(m.id).value,
            }
            for m in models
            if m.has_price_at(now)
        ],
        "aliases": [
            {
                "id": a.name,
                "strategy": a.strategy,
                "models": list(a.models),
                "description": a.description,
            }
            for a in aliases
        ],
    }
    return JsonResponse(body)


def _str(value) -> str | None:
    return None if value is None else str(value)


@allow_methods("GET")
async def gateway_health(request) -> HttpResponse:
    """Per-provider health derived from real traffic (no key needed: it names no tenant)."""
    catalog, health = get_catalog(), get_runtime().health
    await health.refresh()
    return JsonResponse(health.report(catalog))
