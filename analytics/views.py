"""Dashboard pages of analytics: overview, analytics (with CSV export), the request log."""

from __future__ import annotations

import csv

from django.http import HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods

from analytics import dashboard_queries as queries
from analytics.forms import RequestFilterForm, UsageFilterForm
from analytics.models import AlertSettings, UsageRecord
from analytics.settings_forms import AlertSettingsForm
from organizations import tenancy
from organizations.decorators import require_role, tenant_page

PAGE_SIZE = 50
# Token classes most requests do not have: shown only when a request has some.
RARE_TOKEN_CLASSES = [
    ("cache_write_5m_tokens", "Cache-write tokens (5 min)"),
    ("cache_write_1h_tokens", "Cache-write tokens (1 h)"),
    ("reasoning_tokens", "Reasoning tokens (in output)"),
    ("tool_use_prompt_tokens", "Tool-use prompt tokens"),
    ("billed_input_units", "Billed input units"),
    ("billed_output_units", "Billed output units"),
]


@require_GET
@tenant_page()
def overview(request):
    org = request.tenant.organization
    period = queries.last_days(30)
    if not queries.has_traffic(org):
        base_url = request.build_absolute_uri("/v1")
        context = {"empty": True, "period": period, "base_url": base_url}
        return render(request, "analytics/overview.html", context)
    cube = queries.usage_cube(org, period, dims=("day", "model"))
    context = {
        "period": period,
        "totals": queries.totals(cube),
        "latency": queries.recent_latency(org, period),
        "latency_sample": queries.LATENCY_SAMPLE,
        "series": queries.daily_series(cube, period),
        "top_models": queries.breakdown(cube, "model")[:5],
    }
    return render(request, "analytics/overview.html", context)


@require_GET
@tenant_page()
def analytics_page(request):
    org = request.tenant.organization
    form = UsageFilterForm(org, request.GET)
    if not form.is_valid():
        return render(request, "analytics/analytics.html", {"form": form}, status=400)
    data = form.cleaned_data
    period, filters = queries.Period(data["start"], data["end"]), form.filters()
    cube = queries.usage_cube(org, period, filters)
    if request.GET.get("format") == "csv":
        return _csv_response(org, period, cube, form.key_names)
    by_key = queries.breakdown(cube, "key")
    for row in by_key:
        row["label"] = form.key_names.get(row["value"], "deleted key" if row["value"] else "none")
    context = {
        "form": form,
        "period": period,
        "totals": queries.totals(cube),
        "series": queries.daily_series(cube, period),
        "by_model": queries.breakdown(cube, "model"),
        "by_provider": queries.breakdown(cube, "provider"),
        "by_error": [
            row
            for row in queries.breakdown(cube, "error_class")
            if row["value"] and row["usage"].requests
        ],
        "by_key": by_key,
        "csv_query": request.GET.urlencode(),
    }
    return render(request, "analytics/analytics.html", context)


def _csv_response(org, period, cube, key_names) -> HttpResponse:
    response = HttpResponse(content_type="text/csv")
    name = f"usage-{org.slug}-{period.start}-{period.end}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    rows = list(queries.export_rows(cube, key_names))
    writer = csv.DictWriter(response, fieldnames=list(rows[0]) if rows else ["day"])
    writer.writeheader()
    writer.writerows(rows)
    return response


@require_GET
@tenant_page()
def requests_page(request):
    org = request.tenant.organization
    form = RequestFilterForm(org, request.GET)
    valid = form.is_valid()
    records, next_cursor = queries.request_log(
        org,
        form.filters() if valid else {},
        period=form.period() if valid else None,
        before=form.cleaned_data.get("before") if valid else "",
        size=PAGE_SIZE,
    )
    context = {
        "form": form,
        "records": records,
        "next_cursor": next_cursor,
        "is_first_page": not (valid and form.cleaned_data.get("before")),
        "filter_query": _query_without(request.GET, "before"),
    }
    template = "analytics/requests.html"
    if request.htmx and request.htmx.target == "request-log":
        template += "#request-log"
    response = render(request, template, context, status=200 if valid else 400)
    patch_vary_headers(response, ["HX-Request", "HX-Target"])  # the same URL, two bodies
    return response


def _query_without(query, name: str) -> str:
    query = query.copy()
    query.pop(name, None)
    return query.urlencode()


@require_GET
@tenant_page()
def request_detail(request, pk):
    org = request.tenant.organization
    record = tenancy.get_for_org(UsageRecord.objects.select_related("api_key"), org, pk)
    token_classes = [
        ("Input tokens", record.input_tokens),
        ("Cached input tokens", record.cached_input_tokens),
        ("Output tokens", record.output_tokens),
    ] + [
        (label, getattr(record, name))
        for name, label in RARE_TOKEN_CLASSES
        if getattr(record, name)
    ]
    context = {
        "record": record,
        "token_classes": token_classes,
        # Kept only while the organisation keeps prompts; hidden again once it stops.
        "prompt": record.prompt_text if org.prompt_logging else None,
        "prompt_logging": org.prompt_logging,
    }
    return render(request, "analytics/request_detail.html", context)


@require_http_methods(["GET", "POST"])
@tenant_page()
def alert_settings(request):
    """Alert recipients and webhook: a section of the settings page, also a page of its own."""
    org = request.tenant.organization
    current = AlertSettings.objects.for_org(org).first() or AlertSettings(organization=org)
    form = AlertSettingsForm(request.POST or None, instance=current)
    saved = False
    if request.method == "POST":
        require_role(request, "manage_settings")
        if form.is_valid():
            form.save()
            saved = True
    if not request.tenant.can("manage_settings"):
        for field in form.fields.values():
            field.disabled = True
    context = {
        "alert_form": form,
        "saved": saved,
        "can_edit": request.tenant.can("manage_settings"),
    }
    template = "analytics/alert_settings.html"
    if request.htmx:
        template += "#alert-settings"
    status = 400 if request.method == "POST" and not saved else 200
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response
