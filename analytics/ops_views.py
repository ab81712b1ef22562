"""Operator endpoints: liveness, readiness and the Prometheus scrape. None needs a session."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from analytics import metrics_export, probes


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and serving; touches no dependency."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    results = probes.run_readiness_checks()
    ready = probes.is_ready(results)
    body = {
        "status": "ready" if ready else "not ready",
        "checks": {name: result.as_dict() for name, result in results.items()},
    }
    return JsonResponse(body, status=200 if ready else 503)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not metrics_export.is_metrics_enabled():
        return HttpResponse("Not found\n", status=404, content_type="text/plain")
    if not metrics_export.is_ip_allowed(request.META.get("REMOTE_ADDR", "")):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    if not metrics_export.has_valid_token(request.headers.get("Authorization", "")):
        response = HttpResponse("Unauthorized\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = metrics_export.render_metrics()
    return HttpResponse(body, content_type=content_type)
