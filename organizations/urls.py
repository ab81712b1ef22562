from __future__ import annotations

from django.urls import path

from organizations import api, views

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
]
