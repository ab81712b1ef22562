from __future__ import annotations

from django.urls import path

from organizations import api, key_pages, settings_pages, team_pages, views

app_name = "organizations"

urlpatterns = [
    path("api/org", api.OrganizationView.as_view(), name="organization"),
    path("api/org/members", api.MemberListView.as_view(), name="members"),
    path("api/org/members/<str:pk>", api.MemberDetailView.as_view(), name="member"),
    path("api/org/invitations", api.InvitationListView.as_view(), name="invitations"),
    path("api/org/invitations/<str:pk>", api.InvitationDetailView.as_view(), name="invitation"),
    path(
        "api/invitations/<str:token>/accept",
        api.AcceptInvitationView.as_view(),
        name="api-accept-invitation",
    ),
    path("invitations/<str:token>/", views.accept_invitation, name="accept-invitation"),
    path("organizations/switch/", views.switch, name="switch"),
    # Dashboard pages.
    path("dashboard/keys/", key_pages.keys, name="keys"),
    path("dashboard/keys/<str:pk>/revoke/", key_pages.revoke, name="revoke-key"),
    path("dashboard/team/", team_pages.team, name="team"),
    path("dashboard/team/invite/", team_pages.invite, name="invite"),
    path("dashboard/team/members/<str:pk>/role/", team_pages.change_role, name="change-role"),
    path("dashboard/team/members/<str:pk>/remove/", team_pages.remove, name="remove-member"),
    path(
        "dashboard/team/invitations/<str:pk>/cancel/",
        team_pages.cancel_invitation,
        name="cancel-invitation",
    ),
    path("dashboard/settings/", settings_pages.settings_page, name="settings"),
]
