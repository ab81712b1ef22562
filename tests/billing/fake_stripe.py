"""A small in-memory Stripe API for tests, plugged in as the stripe SDK's HTTP client.

It answers the calls billing makes (customers, Checkout and portal sessions, subscriptions,
invoices, meter events), honours Idempotency-Key like Stripe does, and records every request.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from urllib.parse import parse_qsl, urlsplit

import stripe


class FakeStripe(stripe.HTTPClient):
    name = "fake"

    def __init__(self):
        super().__init__()
        self.customers: dict[str, dict] = {}
        self.subscriptions: dict[str, dict] = {}
        self.checkout_sessions: dict[str, dict] = {}
        self.portal_sessions: dict[str, dict] = {}
        self.invoices: dict[str, dict] = {}
        self.meter_events: dict[str, dict] = {}
        self.requests: list[tuple[str, str, dict]] = []
        self.failing_paths: set[str] = set()
        self._idempotent: dict[str, tuple[str, int, dict]] = {}
        self._ids = itertools.count(1)

    # --- the HTTPClient interface -------------------------------------------------------------
    def request(self, method, url, headers, post_data=None, *, _usage=None):
        parts = urlsplit(url)
        params = dict(parse_qsl(post_data or parts.query or "", keep_blank_values=True))
        self.requests.append((method.upper(), parts.path, params))
        key = (headers or {}).get("Idempotency-Key")
        if key and key in self._idempotent:
            return self._idempotent[key]
        response = self._route(method.upper(), parts.path, params)
        if key and response[1] < 400:
            self._idempotent[key] = response
        return response

    def request_stream(self, method, url, headers, post_data=None, *, _usage=None):
        raise NotImplementedError

    def close(self):
        pass

    # --- helpers for tests --------------------------------------------------------------------
    def new_id(self, prefix: str) -> str:
        return f"{prefix}_test{next(self._ids):06d}"

    def add_subscription(self, customer: str, price: str, status: str = "active", **extra) -> dict:
        now = int(time.time())
        sub_id = extra.pop("id", None) or self.new_id("sub")
        sub = {
            "id": sub_id,
            "object": "subscription",
            "customer": customer,
            "status": status,
            "cancel_at_period_end": False,
            "metadata": {},
            "items": {
                "object": "list",
                "data": [
                    {
                        "id": self.new_id("si"),
                        "object": "subscription_item",
                        "price": {"id": price, "object": "price"},
                        "current_period_start": now - 3600,
                        "current_period_end": now + 30 * 86400,
                    }
                ],
            },
            **extra,
        }
        self.subscriptions[sub_id] = sub
        return sub

    def add_invoice(self, customer: str, amount_due: int, status: str = "paid", **extra) -> dict:
        """An Invoice object shaped like Stripe's API reference (the fields billing reads and
        the usual neighbours), with one line item; amounts in the currency's smallest unit."""
        invoice_id = extra.pop("id", None) or self.new_id("in")
        created = extra.pop("created", None) or int(time.time())
        period_start = extra.pop("period_start", created - 30 * 86400)
        period_end = extra.pop("period_end", created)
        currency = extra.pop("currency", "usd")
        paid = status == "paid"
        invoice = {
            "id": invoice_id,
            "object": "invoice",
            "customer": customer,
            "number": f"ACME-{next(self._ids):04d}",
            "status": status,
            "currency": currency,
            "amount_due": amount_due,
            "amount_paid": amount_due if paid else 0,
            "amount_remaining": 0 if paid else amount_due,
            "subtotal": amount_due,
            "total": amount_due,
            "created": created,
            "period_start": period_start,
            "period_end": period_end,
            "livemode": False,
            "collection_method": "charge_automatically",
            "billing_reason": "subscription_cycle",
            "hosted_invoice_url": f"https://invoice.stripe.test/i/{invoice_id}",
            "invoice_pdf": f"https://pay.stripe.test/invoice/{invoice_id}/pdf",
            "metadata": {},
            "lines": {
                "object": "list",
                "data": [
                    {
                        "id": f"il_{invoice_id}",
                        "object": "line_item",
                        "amount": amount_due,
                        "currency": currency,
                        "description": "1 × plan (at the monthly price)",
                        "period": {"start": period_start, "end": period_end},
                        "quantity": 1,
                    }
                ],
                "has_more": False,
                "url": f"/v1/invoices/{invoice_id}/lines",
            },
            **extra,
        }
        if status == "draft":
            invoice.update(number=None, hosted_invoice_url=None, invoice_pdf=None)
        self.invoices[invoice_id] = invoice
        return invoice

    def _list_invoices(self, path: str, params: dict) -> dict:
        # Stripe lists newest first and pages with `limit` (default 10) and `starting_after`.
        found = sorted(
            (i for i in self.invoices.values() if i["customer"] == params.get("customer")),
            key=lambda i: (i["created"], i["id"]),
            reverse=True,
        )
        if params.get("starting_after"):
            ids = [i["id"] for i in found]
            found = found[ids.index(params["starting_after"]) + 1 :]
        limit = int(params.get("limit") or 10)
        return {
            "object": "list",
            "data": found[:limit],
            "has_more": len(found) > limit,
            "url": path,
        }

    def calls(self, method: str, path: str) -> list[dict]:
        return [params for m, p, params in self.requests if m == method and p == path]

    # --- routes -------------------------------------------------------------------------------
    def _route(self, method, path, params):
        if path in self.failing_paths:
            return _error(500, "api_error", "Stripe is having a bad day.")
        if method == "POST" and path == "/v1/customers":
            return self._create("cus", "customer", self.customers, params)
        if method == "POST" and path == "/v1/checkout/sessions":
            session_id = self.new_id("cs")
            return self._create(
                "cs",
                "checkout.session",
                self.checkout_sessions,
                params,
                id=session_id,
                url=f"https://checkout.stripe.test/c/pay/{session_id}",
            )
        if method == "POST" and path == "/v1/billing_portal/sessions":
            session_id = self.new_id("bps")
            return self._create(
                "bps",
                "billing_portal.session",
                self.portal_sessions,
                params,
                id=session_id,
                url=f"https://billing.stripe.test/p/session/{session_id}",
            )
        if method == "GET" and path.startswith("/v1/subscriptions/"):
            sub = self.subscriptions.get(path.rsplit("/", 1)[1])
            return _ok(sub) if sub else _error(404, "invalid_request_error", "No such subscription")
        if method == "GET" and path == "/v1/invoices":
            return _ok(self._list_invoices(path, params))
        if method == "GET" and path.startswith("/v1/invoices/"):
            invoice = self.invoices.get(path.rsplit("/", 1)[1])
            return (
                _ok(invoice) if invoice else _error(404, "invalid_request_error", "No such invoice")
            )
        if method == "POST" and path == "/v1/billing/meter_events":
            event = {"object": "billing.meter_event", **params}
            self.meter_events.setdefault(params["identifier"], event)
            return _ok(event)
        return _error(404, "invalid_request_error", f"Unrecognized request URL ({method} {path})")

    def _create(self, prefix, kind, store, params, **extra):
        obj = {"id": extra.pop("id", None) or self.new_id(prefix), "object": kind, **params}
        obj.update(extra)
        store[obj["id"]] = obj
        return _ok(obj)


def _ok(body: dict):
    return json.dumps(body), 200, {"Request-Id": "req_fake"}


def _error(status: int, kind: str, message: str):
    return json.dumps({"error": {"type": kind, "message": message}}), status, {}


def sign_payload(payload: str, secret: str, timestamp: int | None = None) -> str:
    """A Stripe-Signature header value, computed the way Stripe does."""
    timestamp = timestamp or int(time.time())
    digest = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def make_event(event_type: str, obj: dict, event_id: str | None = None) -> dict:
    return {
        "id": event_id or f"evt_{abs(hash((event_type, json.dumps(obj, sort_keys=True))))}",
        "object": "event",
        "type": event_type,
        "livemode": False,
        "api_version": "2026-05-27.dahlia",
        "created": int(time.time()),
        "data": {"object": obj},
    }
