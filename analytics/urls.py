from __future__ import annotations

from django.urls import path

from analytics import api, views

app_name = "analytics"

urlpatterns = [
    # The JSON usage API of the original design.
    path("api/dashboard/recent-requests", api.RecentRequestsView.as_view(), name="recent-requests"),
    path("api/dashboard/analytics", api.AnalyticsView.as_view(), name="analytics"),
    path(
        "api/dashboard/organization", api.DashboardOrganizationView.as_view(), name="organization"
    ),
    path("api/dashboard/team-members", api.TeamMembersView.as_view(), name="team-members"),
    # Dashboard pages.
    path("dashboard/", views.overview, name="overview"),
    path("dashboard/analytics/", views.analytics_page, name="analytics-page"),
    path("dashboard/requests/", views.requests_page, name="requests"),
    path("dashboard/requests/<str:pk>/", views.request_detail, name="request"),
    path("dashboard/settings/alerts/", views.alert_settings, name="alert-settings"),
]
