from __future__ import annotations

from django.urls import path

from analytics import api

app_name = "analytics"

urlpatterns = [
    path("recent-requests", api.RecentRequestsView.as_view(), name="recent-requests"),
    path("analytics", api.AnalyticsView.as_view(), name="analytics"),
    path("organization", api.DashboardOrganizationView.as_view(), name="organization"),
    path("team-members", api.TeamMembersView.as_view(), name="team-members"),
]
