"""/api/auth/: the auth API. Its routes keep the accounts: names; they are wired here because
half of them answer with organisations and keys, which accounts (users only) cannot import."""

from __future__ import annotations

from django.urls import path

from accounts import api
from organizations import api as org_api
from organizations import auth_api

app_name = "accounts"

urlpatterns = [
    path("register", auth_api.RegisterView.as_view(), name="register"),
    path("login", api.LoginView.as_view(), name="login"),
    path("refresh", api.RefreshView.as_view(), name="refresh"),
    path("logout", api.LogoutView.as_view(), name="logout"),
    path("me", auth_api.MeView.as_view(), name="me"),
    path(
        "switch-organization",
        auth_api.SwitchOrganizationView.as_view(),
        name="switch-organization",
    ),
    path("api-keys", org_api.ApiKeyListView.as_view(), name="api-keys"),
    path("api-keys/<str:pk>", org_api.ApiKeyDetailView.as_view(), name="api-key"),
]
