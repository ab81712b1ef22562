"""Browser pages of billing: the billing page and its owner-only Checkout and portal buttons."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from billing import stripe_api
from billing.overview import describe_billing_page
from billing.plans import find_subscribable_plan
from organizations.tenancy import TenantContext, get_context_for_request

TEMPLATE = "billing/billing.html"


@login_required
@require_GET
def billing_page(request):
    tenant = get_context_for_request(request)
    if tenant is None:
        return render(request, TEMPLATE, {"organization": None})
    if request.GET.get("checkout") == "success":
        messages.success(request, "Thank you. Your plan changes as soon as Stripe confirms it.")
    return render(request, TEMPLATE, describe_billing_page(tenant))


@login_required
@require_GET
def plan_usage(request):
    """The overview's plan-usage card (the billing page's #plan-usage partial)."""
    tenant = get_context_for_request(request)
    if tenant is None:
        return redirect("home")
    return render(request, TEMPLATE + "#plan-usage", describe_billing_page(tenant))


@login_required
@require_POST
def subscribe(request):
    tenant = _get_owner_context(request)
    plan = find_subscribable_plan(request.POST.get("plan", ""))
    if plan is None:
        context = describe_billing_page(tenant) | {"error": "plan: no such plan can be chosen."}
        return render(request, TEMPLATE, context, status=400)
    return _redirect_to_stripe(
        request, stripe_api.create_checkout_session, tenant.organization, plan, request.user.email
    )


@login_required
@require_POST
def portal(request):
    tenant = _get_owner_context(request)
    return _redirect_to_stripe(
        request, stripe_api.create_portal_session, tenant.organization, request.user.email
    )


def _get_owner_context(request) -> TenantContext:
    tenant = get_context_for_request(request)
    if tenant is None or not tenant.can("manage_billing"):
        raise PermissionDenied("Only owners of the organization manage its billing.")
    return tenant


def _redirect_to_stripe(request, make_url, *args):
    try:
        return redirect(make_url(*args))
    except stripe_api.StripeUnavailable as error:
        messages.error(request, str(error))
        return redirect("billing:page")
