"""Dashboard pages of the gateway itself: the model catalogue and the playground.

The playground sends its prompt through the API's own pipeline (route, admit, stream, settle and
record) with the member's playground key, so it is governed and billed exactly like an API call.
"""

from __future__ import annotations

from datetime import UTC, datetime

from asgiref.sync import sync_to_async
from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from billing.limits import PlanLimits, limits_for_plan
from llm.api import pipeline, views
from llm.api.auth import Caller
from llm.api.call import Call
from llm.api.catalog_views import usable_names_for
from llm.api.errors import ApiError
from llm.api.parsing import parse_chat
from llm.catalog import get_catalog
from llm.runtime import get_runtime
from organizations.api_keys import get_playground_key
from organizations.tenancy import TenantContext, get_context_for_user

MAX_PROMPT_CHARS = 20_000


class PlaygroundForm(forms.Form):
    model = forms.ChoiceField(label="Model or alias")
    prompt = forms.CharField(
        max_length=MAX_PROMPT_CHARS, widget=forms.Textarea(attrs={"rows": 5}), label="Prompt"
    )
    max_tokens = forms.IntegerField(
        required=False, min_value=1, max_value=4096, label="Max output tokens"
    )

    def __init__(self, names: list[str], *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = [(name, name) for name in names]


def _names(limits: PlanLimits) -> list[str]:
    models, aliases = usable_names_for(limits)
    return [a.name for a in aliases] + [m.id for m in models]


def _load_tenant(user) -> tuple[TenantContext | None, PlanLimits | None]:
    tenant = get_context_for_user(user)
    return tenant, limits_for_plan(tenant.organization.plan) if tenant else None


async def _tenant(request) -> tuple[TenantContext | None, PlanLimits | None]:
    """The member's organisation and its plan's limits (database work, off the event loop)."""
    return await sync_to_async(_load_tenant)(await request.auser())


@login_required
@require_GET
async def playground(request) -> HttpResponse:
    tenant, limits = await _tenant(request)
    if tenant is None:
        return redirect("home")
    org = tenant.organization
    names = _names(limits)
    default = org.default_route_alias if org.default_route_alias in names else None
    form = PlaygroundForm(names, initial={"model": default or (names[0] if names else None)})
    context = {"form": form, "can_send": tenant.can("use_api"), "has_models": bool(names)}
    return await sync_to_async(render)(request, "llm/playground.html", context)


async def _send_prompt(call: Call, request) -> HttpResponse:
    """Stream the answer as the API's own server-sent events, or answer the API's JSON error."""
    tenant, limits = await _tenant(request)
    if tenant is None or not tenant.can("use_api"):
        raise ApiError(403, "Your role in this organization cannot send requests.", code="refused")
    org = tenant.organization
    form = PlaygroundForm(_names(limits), request.POST)
    if not form.is_valid():
        field, errors = next(iter(form.errors.items()))
        raise ApiError(400, f"{field}: {errors[0]}", param=field, code="invalid_request")
    if org.is_suspended:
        raise ApiError(403, "This organization is suspended.", code="organization_suspended")
    key = await sync_to_async(get_playground_key)(org, tenant.user)
    call.caller = Caller(key, org, limits)
    call.parsed = parse_chat(_chat_body(form.cleaned_data))
    await pipeline.route(call)
    await pipeline.admit(call)
    return await views.stream_chat(call, views.chunk_writer(call))


# The API's own view wrapper (errors, settling, recording), behind the session login; unlike the
# API, a browser form: the CSRF check applies.
playground_send = login_required(views.api_view("playground")(_send_prompt))
playground_send.csrf_exempt = False


def _chat_body(data: dict) -> dict:
    body = {
        "model": data["model"],
        "messages": [{"role": "user", "content": data["prompt"]}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if data.get("max_tokens"):
        body["max_tokens"] = data["max_tokens"]
    return body


@login_required
@require_GET
async def models_page(request) -> HttpResponse:
    tenant, limits = await _tenant(request)
    if tenant is None:
        return redirect("home")
    health = get_runtime().health
    await health.refresh()
    catalog = get_catalog()
    models, aliases = usable_names_for(limits)
    now = datetime.now(UTC)
    rows = [
        {
            "model": m,
            "provider": catalog.providers[m.provider].name,
            "price": m.price_at(now),
            "health": health.model_state(m.id).value,
            "latency_ms": health.latency_ms(m.id),
            "capabilities": ", ".join(sorted(m.capabilities)),
        }
        for m in models
        if m.has_price_at(now)
    ]
    context = {"rows": rows, "aliases": aliases}
    return await sync_to_async(render)(request, "llm/models.html", context)
