from __future__ import annotations

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerView,
)

from llm.api.admin_views import catalogue_view
from llm.api.unknown_routes import unknown_path
from organizations import views as organization_views
from organizations.api_errors import not_found as management_not_found

urlpatterns = [
    path("", organization_views.home, name="home"),
    path("admin/catalogue/", admin.site.admin_view(catalogue_view), name="llm-catalogue"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("api/auth/", include("organizations.auth_urls")),
    path("", include("organizations.urls")),
    path("", include("llm.api.urls")),
    path("", include("analytics.urls")),
    path("", include("billing.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path(
        "api/redoc/",
        SpectacularRedocView.as_view(url_name="schema", template_name="api_docs/redoc.html"),
        name="api-redoc",
    ),
    path("", include("analytics.ops_urls")),
    # Last: any other path under the public API is a JSON 404, not an HTML page, and so is any
    # other /api/ path of the management API.
    re_path(r"^(?:api/)?v1(?:/(?P<rest>.*))?$", unknown_path, name="api-unknown-path"),
    re_path(r"^api/(?!v1(?:/|$))", management_not_found),
]
