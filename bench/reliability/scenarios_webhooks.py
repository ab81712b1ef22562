"""Stripe webhooks: forgery, replay, future dates, concurrent duplicates, reordering and handler
errors. Events are signed as Stripe signs them (https://docs.stripe.com/webhooks#verify-manually):
`Stripe-Signature: t=<unix time>,v1=<HMAC-SHA256 of "<t>.<body>" with the endpoint secret>`."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid

import ledger
from matrix import Context, scenario
from report import Row
from stack import WEBHOOK_SECRET

SUBSCRIPTION_UPDATED = "customer.subscription.updated"


def event(kind: str, obj: dict, created: int | None = None) -> dict:
    return {
        "id": f"evt_rel_{uuid.uuid4().hex[:20]}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": created or int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "type": kind,
        "data": {"object": obj},
    }


def signature(body: bytes, at: float | None = None, secret: str = WEBHOOK_SECRET) -> str:
    stamp = int(at if at is not None else time.time())
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={mac}"


async def deliver(ctx: Context, body: bytes, sig: str | None, gateway: int = 0) -> int | None:
    headers = {"Content-Type": "application/json"}
    if sig is not None:
        headers["Stripe-Signature"] = sig
    try:
        response = await ctx.client.post(
            f"{ctx.url(gateway)}/api/billing/webhook", content=body, headers=headers, timeout=30
        )
    except Exception:  # noqa: BLE001 - any transport failure is "no answer" here
        return None
    return response.status_code


def applied(ctx: Context, event_id: str) -> int:
    sql = "SELECT count(*) FROM billing_processedevent WHERE stripe_event_id = %s"
    return ledger.query(ctx.pg_url, sql, (event_id,))[0][0]


def subscription(ctx: Context, tenant: str, status: str) -> dict:
    org_id = ctx.stack.tenants[tenant]["org_id"]
    now = int(time.time())
    sub_id = f"sub_rel_{org_id}"
    return {
        "id": sub_id,
        "object": "subscription",
        "customer": f"cus_rel_{org_id}",
        "status": status,
        "created": now - 60,
        "cancel_at_period_end": False,
        "metadata": {"organization_id": str(org_id)},
        "items": {
            "object": "list",
            "data": [
                {
                    "id": f"si_rel_{org_id}",
                    "object": "subscription_item",
                    "price": {"id": "price_rel_unknown", "object": "price"},
                    "current_period_start": now - 60,
                    "current_period_end": now + 30 * 86400,
                }
            ],
        },
    }


def set_stripe(ctx: Context, sub: dict | None = None, fail: bool = False) -> None:
    values: dict = {"fail": fail}
    if sub is not None:
        values["subscriptions"] = {sub["id"]: sub}
    ctx.stack.fault(stripe=values)


def account_status(ctx: Context, tenant: str) -> str:
    sql = "SELECT status FROM billing_billingaccount WHERE organization_id = %s"
    return ledger.query(ctx.pg_url, sql, (ctx.stack.tenants[tenant]["org_id"],))[0][0]


def verdict_row(name: str, figure: str, expectation: str, passed: bool, data: dict) -> Row:
    return Row(name, "webhooks", figure, expectation, passed, data)


@scenario("webhook forgery", "webhooks", ci=True, tenants={"wh": {}})
async def webhook_forgery(ctx: Context) -> Row:
    sent = event("invoice.paid", {"id": "in_rel_forged", "object": "invoice"})
    body = json.dumps(sent).encode()
    tampered = body.replace(b"in_rel_forged", b"in_rel_forgeX")
    answers = [
        await deliver(ctx, body, None),
        await deliver(ctx, body, "t=1,v1=00"),
        await deliver(ctx, body, signature(body, secret="whsec_not_the_secret")),
        await deliver(ctx, tampered, signature(body), gateway=1),
    ]
    refused = sum(1 for a in answers if a == 400)
    done = applied(ctx, sent["id"])
    return verdict_row(
        "webhook forgery",
        f"unsigned, garbage, wrong-secret and tampered deliveries: {refused}/4 answered 400, "
        f"{done} applied",
        "4/4 answered 400; none applied",
        refused == 4 and done == 0,
        {"answers": answers, "applied": done},
    )


@scenario("webhook replay", "webhooks", ci=True)
async def webhook_replay(ctx: Context) -> Row:
    sent = event("invoice.paid", {"id": "in_rel_replay", "object": "invoice"})
    body = json.dumps(sent).encode()
    answers = [await deliver(ctx, body, signature(body), gateway=i % 2) for i in range(5)]
    stale = event("invoice.paid", {"id": "in_rel_stale", "object": "invoice"})
    stale_body = json.dumps(stale).encode()
    stale_answer = await deliver(ctx, stale_body, signature(stale_body, at=time.time() - 3600))
    done, stale_done = applied(ctx, sent["id"]), applied(ctx, stale["id"])
    return verdict_row(
        "webhook replay",
        f"one event delivered 5 times: answers {answers}, applied {done}×; an hour-old signature: "
        f"{stale_answer}, applied {stale_done}×",
        "redeliveries 200 and applied once; the stale one 400 and not applied",
        all(a == 200 for a in answers) and done == 1 and stale_answer == 400 and not stale_done,
        {
            "answers": answers,
            "applied": done,
            "stale_answer": stale_answer,
            "stale_applied": stale_done,
        },
    )


@scenario("webhook dated in the future", "webhooks")
async def webhook_future(ctx: Context) -> Row:
    sent = event("invoice.paid", {"id": "in_rel_future", "object": "invoice"})
    body = json.dumps(sent).encode()
    answer = await deliver(ctx, body, signature(body, at=time.time() + 3600))
    done = applied(ctx, sent["id"])
    return verdict_row(
        "webhook dated in the future",
        f"signed an hour ahead: answered {answer}, applied {done}×",
        "400 (outside ±5 minutes); not applied",
        answer == 400 and done == 0,
        {"answer": answer, "applied": done},
    )


@scenario("webhook duplicates at once", "webhooks", ci=True)
async def webhook_duplicates(ctx: Context) -> Row:
    set_stripe(ctx, subscription(ctx, "wh", "active"))
    sent = event(SUBSCRIPTION_UPDATED, subscription(ctx, "wh", "active"))
    body = json.dumps(sent).encode()
    sig = signature(body)
    answers = await asyncio.gather(*(deliver(ctx, body, sig, gateway=i % 2) for i in range(30)))
    errors = sum(1 for a in answers if a is None or a >= 500)
    done = applied(ctx, sent["id"])
    return verdict_row(
        "webhook duplicates at once",
        f"30 concurrent deliveries of one event: {errors} answered 5xx, applied {done}×",
        "30/30 answered 200; applied once",
        errors == 0 and done == 1 and all(a == 200 for a in answers),
        {"answers": sorted(str(a) for a in answers), "applied": done},
    )


@scenario("webhook reordering", "webhooks")
async def webhook_reordering(ctx: Context) -> Row:
    truth = subscription(ctx, "wh", "past_due")
    set_stripe(ctx, truth)
    newer = event(SUBSCRIPTION_UPDATED, truth, created=int(time.time()))
    older = event(
        SUBSCRIPTION_UPDATED, subscription(ctx, "wh", "active"), created=int(time.time()) - 120
    )
    answers = []
    for sent in (newer, older):  # the older one arrives last
        body = json.dumps(sent).encode()
        answers.append(await deliver(ctx, body, signature(body)))
    status = account_status(ctx, "wh")
    return verdict_row(
        "webhook reordering",
        f"newer event (past_due) delivered before an older one (active): answers {answers}; "
        f"account ends {status}",
        "account ends in Stripe's current state (past_due)",
        answers == [200, 200] and status == "past_due",
        {"answers": answers, "final_status": status},
    )


@scenario("webhook handler error", "webhooks")
async def webhook_handler_error(ctx: Context) -> Row:
    truth = subscription(ctx, "wh", "active")
    set_stripe(ctx, truth, fail=True)
    sent = event(SUBSCRIPTION_UPDATED, truth)
    body = json.dumps(sent).encode()
    failing = await deliver(ctx, body, signature(body))
    kept = ledger.query(
        ctx.pg_url,
        "SELECT count(*) FROM djstripe_webhookeventtrigger WHERE body LIKE %s AND NOT processed",
        (f"%{sent['id']}%",),
    )[0][0]
    set_stripe(ctx, truth, fail=False)
    retried = await deliver(ctx, body, signature(body), gateway=1)
    done = applied(ctx, sent["id"])
    status = account_status(ctx, "wh")
    return verdict_row(
        "webhook handler error",
        f"Stripe API failing: answered {failing}, {kept} delivery kept for retry; after it "
        f"recovers the redelivery answered {retried}, applied {done}×, account {status}",
        "5xx while failing (Stripe redelivers), kept on record; the redelivery applies once",
        failing is not None
        and failing >= 500
        and kept >= 1
        and retried == 200
        and done == 1
        and status == "active",
        {"failing": failing, "kept": kept, "retried": retried, "applied": done, "status": status},
    )
