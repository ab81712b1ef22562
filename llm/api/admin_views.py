"""The model catalogue for staff, inside Django admin: what is configured, priced and routed."""

from __future__ import annotations

from datetime import UTC, datetime

from django.contrib import admin, messages
from django.shortcuts import redirect
from django.template.response import TemplateResponse

from llm.catalog import CatalogError, get_catalog, reload_catalog


def catalogue_view(request):
    if request.method == "POST":
        try:
            catalog = reload_catalog()
        except CatalogError as error:
            messages.error(request, f"Not reloaded; the catalogue in force is unchanged: {error}")
        else:
            messages.success(
                request, f"Reloaded {len(catalog.models)} models from {catalog.source}."
            )
        return redirect("llm-catalogue")
    catalog, now = get_catalog(), datetime.now(UTC)
    models = [
        {
            "entry": model,
            "configured": catalog.is_configured(model.provider),
            "price": model.price_at(now) if model.has_price_at(now) else None,
            "capabilities": ", ".join(sorted(model.capabilities)),
        }
        for model in sorted(catalog.models.values(), key=lambda m: (m.provider, m.id))
    ]
    providers = [
        {"config": config, "configured": catalog.is_configured(pid)}
        for pid, config in sorted(catalog.providers.items())
    ]
    context = {
        **admin.site.each_context(request),
        "title": "Model catalogue",
        "catalog": catalog,
        "models": models,
        "providers": providers,
        "aliases": sorted(catalog.aliases.values(), key=lambda a: a.name),
    }
    return TemplateResponse(request, "admin/llm/catalogue.html", context)
