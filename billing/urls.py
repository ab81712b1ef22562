from __future__ import annotations

from django.urls import path

from billing import api, views

app_name = "billing"

urlpatterns = [
    path("api/billing/plans", api.PlanListView.as_view(), name="plans"),
    path("api/billing/usage", api.UsageView.as_view(), name="usage"),
    path("api/billing/invoices", api.InvoiceListView.as_view(), name="invoices"),
    path("api/billing/subscribe", api.SubscribeView.as_view(), name="subscribe"),
    path("api/billing/portal", api.PortalView.as_view(), name="portal"),
    path("api/billing/webhook", api.WebhookView.as_view(), name="webhook"),
    path("billing/", views.billing_page, name="page"),
    path("billing/plan-usage/", views.plan_usage, name="plan-usage"),
    path("billing/subscribe/", views.subscribe, name="page-subscribe"),
    path("billing/portal/", views.portal, name="page-portal"),
]
