from __future__ import annotations

from django.contrib import admin

from organizations.models import ApiKey, Invitation, Membership, Organization
from organizations.revocations import announce_organization_changed


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "plan", "is_suspended", "member_count", "created_at"]
    list_filter = ["plan", "is_suspended"]
    search_fields = ["name", "slug", "memberships__user__email"]
    inlines = [MembershipInline]
    actions = ["suspend", "unsuspend"]

    def get_queryset(self, request):
        from django.db.models import Count

        return super().get_queryset(request).annotate(_members=Count("memberships"))

    @admin.display(ordering="_members", description="members")
    def member_count(self, org):
        return org._members

    @admin.action(description="Suspend the selected organizations")
    def suspend(self, request, queryset):
        queryset.update(is_suspended=True)
        for org_id in queryset.values_list("pk", flat=True):
            announce_organization_changed(org_id)

    @admin.action(description="Lift the suspension of the selected organizations")
    def unsuspend(self, request, queryset):
        queryset.update(is_suspended=False)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "organization__name", "organization__slug"]
    list_select_related = ["user", "organization"]
    raw_id_fields = ["user", "organization"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "organization", "role", "created_at", "expires_at", "accepted_at"]
    list_filter = ["role"]
    search_fields = ["email", "organization__name"]
    list_select_related = ["organization"]
    exclude = ["token"]
    raw_id_fields = ["organization", "invited_by"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "prefix",
        "organization",
        "created_by",
        "created_at",
        "last_used_at",
        "expires_at",
        "is_revoked",
    ]
    list_filter = ["is_revoked"]
    search_fields = ["name", "public_id", "organization__name"]
    list_select_related = ["organization", "created_by"]
    # The secret's hash is never shown; staff can only revoke or change limits.
    exclude = ["secret_hash"]
    readonly_fields = ["public_id", "organization", "created_by", "created_at", "last_used_at"]
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False  # keys are minted by their organisation, where the secret can be shown once

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request, queryset):
        queryset.update(is_revoked=True)
