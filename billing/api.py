"""Billing API: plans, usage, invoices, Checkout, the Customer Portal, the Stripe webhook."""

from __future__ import annotations

import logging

from django.http import HttpResponse
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import View
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import stripe_api, webhooks
from billing.invoices import describe_invoice, list_invoices_for_org
from billing.models import Plan
from billing.plans import find_subscribable_plan
from billing.serializers import InvoiceSerializer, PlanSerializer, SubscribeSerializer
from billing.usage import describe_period_usage
from organizations.api import TenantView

logger = logging.getLogger(__name__)

UrlSerializer = inline_serializer("BillingUrl", {"url": serializers.URLField()})


class BillingUnavailable(APIException):
    status_code = 503
    default_detail = "Billing is unavailable."
    default_code = "billing_unavailable"


def _stripe_url(make_url, *args) -> Response:
    try:
        return Response({"url": make_url(*args)})
    except stripe_api.StripeUnavailable as error:
        raise BillingUnavailable(str(error)) from error


class PlanListView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        responses=inline_serializer(
            "PlanList",
            {"stripe_configured": serializers.BooleanField(), "plans": PlanSerializer(many=True)},
        )
    )
    def get(self, request):
        plans = Plan.objects.filter(is_public=True)
        return Response(
            {
                "stripe_configured": stripe_api.is_stripe_configured(),
                "plans": PlanSerializer(plans, many=True).data,
            }
        )


class UsageView(TenantView):
    allow_api_keys = True
    action_for_method = {"GET": "read"}

    @extend_schema(responses=inline_serializer("PeriodUsage", {"plan": serializers.CharField()}))
    def get(self, request):
        return Response(describe_period_usage(request.tenant.organization))


class InvoiceListView(TenantView):
    allow_api_keys = True
    action_for_method = {"GET": "read"}

    @extend_schema(responses=InvoiceSerializer(many=True))
    def get(self, request):
        invoices = list_invoices_for_org(request.tenant.organization)
        return Response(InvoiceSerializer(map(describe_invoice, invoices), many=True).data)


class SubscribeView(TenantView):
    action_for_method = {"POST": "manage_billing"}

    @extend_schema(request=SubscribeSerializer, responses=UrlSerializer)
    def post(self, request):
        serializer = SubscribeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if not stripe_api.is_stripe_configured():
            # Without Stripe no plan has a price to subscribe to; say why, not "no such plan".
            raise BillingUnavailable(
                "Stripe is not configured: billing is off and the Free plan applies."
            )
        plan = find_subscribable_plan(serializer.validated_data["plan"])
        if plan is None:
            raise ValidationError({"plan": ["No such plan can be subscribed to."]})
        org = request.tenant.organization
        return _stripe_url(stripe_api.create_checkout_session, org, plan, request.user.email)


class PortalView(TenantView):
    action_for_method = {"POST": "manage_billing"}

    @extend_schema(request=None, responses=UrlSerializer)
    def post(self, request):
        org = request.tenant.organization
        return _stripe_url(stripe_api.create_portal_session, org, request.user.email)


@method_decorator(csrf_exempt, name="dispatch")
class WebhookView(View):
    """Stripe posts events here; the signature is the authentication."""

    def post(self, request):
        try:
            trigger = webhooks.receive_webhook(request)
        except webhooks.WebhookRejected as rejection:
            return HttpResponse(str(rejection), status=rejection.status, content_type="text/plain")
        except Exception:
            # Kept on the trigger; Stripe redelivers on 5xx and retry_failed_webhooks retries.
            logger.exception("webhook processing failed")
            return HttpResponse("Processing failed; will retry.", status=500)
        return HttpResponse(str(trigger.pk), content_type="text/plain")
