"""The usage API of the original design: /api/dashboard/*. Login token, session or API key."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from analytics.serializers import AnalyticsQuery, RecentRequestsQuery, UsageRecordSerializer
from analytics.usage_queries import records_for_org
from analytics.usage_report import analytics_for_org
from organizations.api import TenantView
from organizations.models import Membership
from organizations.serializers import MembershipSerializer, OrganizationSerializer


class UsagePagination(CursorPagination):
    """Newest first, paged by cursor: no COUNT and no OFFSET over the organisation's history."""

    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class DashboardView(TenantView):
    allow_api_keys = True
    action_for_method = {"GET": "read"}


class RecentRequestsView(DashboardView):
    @extend_schema(parameters=[RecentRequestsQuery], responses=UsageRecordSerializer(many=True))
    def get(self, request):
        query = RecentRequestsQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = records_for_org(request.tenant.organization, query.validated_data).select_related(
            "api_key"
        )
        paginator = UsagePagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(UsageRecordSerializer(page, many=True).data)


class AnalyticsView(DashboardView):
    @extend_schema(parameters=[AnalyticsQuery], responses=OpenApiTypes.OBJECT)
    def get(self, request):
        query = AnalyticsQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        return Response(
            analytics_for_org(request.tenant.organization, data.get("start"), data.get("end"))
        )


class DashboardOrganizationView(DashboardView):
    @extend_schema(responses=OrganizationSerializer)
    def get(self, request):
        return Response(OrganizationSerializer(request.tenant.organization).data)


class TeamMembersView(DashboardView):
    @extend_schema(responses=MembershipSerializer(many=True))
    def get(self, request):
        members = Membership.objects.for_org(request.tenant.organization).select_related("user")
        return Response(MembershipSerializer(members.order_by("created_at"), many=True).data)
