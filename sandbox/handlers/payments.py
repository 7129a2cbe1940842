"""Payments contract: transfers, refunds, the bank directory, callbacks and their delivery log."""

from __future__ import annotations

import datetime as dt

import orjson
from connexion import request
from starlette.responses import Response

from sandbox import notify, payments
from sandbox.bank.directory import BANKS
from sandbox.clock import BEIJING
from sandbox.context import Context
from sandbox.handlers import respond
from sandbox.pagination import decode_cursor, page
from sandbox.records import Payment
from sandbox.refusals import (
    CallbackNotRegistered,
    NotificationNotFound,
    decides,
    found,
)
from sandbox.resources import payment_resource
from sandbox.rules import payments as rules
from sandbox.rules.consents import live, partner_only, require
from sandbox.security.callbacks import CallbackPolicy, policy_for

BASE_PATH = "/payments/v1"


def _answer(payment: Payment, replayed: bool, status: int) -> Response:
    location = f"{BASE_PATH}/payments/{payment.payment_id}"
    return respond(payment_resource(payment), status,
                   {"Location": location, "Idempotent-Replayed": "true" if replayed else "false"})


@decides(require, rules.decide_transfer)
async def create_transfer(ctx: Context, token_info: dict, body: dict) -> Response:
    consent = ctx.consent(token_info, "InitiatePayments", account_id=body["debtor_account_id"],
                          account_field="body.debtor_account_id")
    payment, replayed = await payments.post_transfer(
        ctx.store, ctx.clock, token_info["sub"], request.headers["x-request-id"], body,
        consent_accounts=frozenset(consent.account_id_list),
        interbank_delay=ctx.settings.interbank_delay)
    ctx.worker.wake()
    return _answer(payment, replayed, 201)


@decides(live, rules.seen_by)
async def get_payment(ctx: Context, token_info: dict, payment_id: str) -> Response:
    """A customer sees the payments of its consent's accounts, paid or received."""
    consent = ctx.live_consent(token_info)
    payment = await ctx.store.ledger.payment(token_info["sub"], payment_id)
    return respond(payment_resource(rules.seen_by(payment, payment_id,
                                                  consent.account_id_list)))


@decides(require, rules.decide_refund)
async def refund_payment(ctx: Context, token_info: dict, payment_id: str) -> Response:
    consent = ctx.consent(token_info, "InitiatePayments")
    payment, replayed = await payments.refund_payment(
        ctx.store, ctx.clock, token_info["sub"], payment_id, request.headers["x-request-id"],
        consent_accounts=frozenset(consent.account_id_list))
    ctx.worker.wake()
    return _answer(payment, replayed, 200)


async def list_banks(token_info: dict) -> Response:
    return respond({"items": [{"bank_code": code, "name": name, "short_name": short}
                              for code, name, short in BANKS]})


# -- callbacks ---------------------------------------------------------------------------------

def _callback_resource(ctx: Context, row: dict) -> dict:
    return {"url": row["url"], "signing_secret": row["secret"],
            "event_types": list(notify.EVENT_TYPES),
            "retry_schedule_s": list(ctx.settings.notify_backoff),
            "timeout_s": ctx.settings.notify_timeout,
            "created_at": row["created_at"], "updated_at": row["updated_at"]}


def _no_callback() -> CallbackNotRegistered:
    return CallbackNotRegistered("No callback URL is registered for this partner; register one "
                                 "with PUT /payments/v1/callback.")


@decides(partner_only, CallbackNotRegistered)
async def get_callback(ctx: Context, token_info: dict) -> Response:
    ctx.partner_only(token_info)
    row = await ctx.store.outbox.callback(token_info["sub"])
    if row is None:
        raise _no_callback()
    return respond(_callback_resource(ctx, row))


@decides(partner_only, CallbackPolicy.check)
async def register_callback(ctx: Context, token_info: dict, body: dict) -> Response:
    ctx.partner_only(token_info)
    # The pattern admits the shape of a URL, not where it points: the policy refuses a malformed
    # host and an address behind the sandbox (metadata, private, ...) before anything is kept.
    await policy_for(ctx.settings).check(body["url"])
    row = await ctx.store.outbox.set_callback(token_info["sub"], body["url"], notify.new_secret(),
                                              ctx.clock.now().isoformat(timespec="seconds"))
    return respond(_callback_resource(ctx, row))


@decides(partner_only, CallbackNotRegistered)
async def delete_callback(ctx: Context, token_info: dict) -> Response:
    ctx.partner_only(token_info)
    if not await ctx.store.outbox.delete_callback(token_info["sub"]):
        raise _no_callback()
    return Response(status_code=204)


# -- the delivery log ----------------------------------------------------------------------------

async def _with_deliveries(ctx: Context, rows: list[dict]) -> list[dict]:
    attempts: dict[str, list] = {row["event_id"]: [] for row in rows}
    for delivery in await ctx.store.outbox.deliveries(list(attempts)):
        entry = {"attempt": delivery["attempt"], "attempted_at": delivery["attempted_at"],
                 "url": delivery["url"], "duration_ms": delivery["duration_ms"]}
        if delivery["status_code"] is not None:
            entry["status_code"] = delivery["status_code"]
        if delivery["error"]:
            entry["error"] = delivery["error"]
        attempts[delivery["event_id"]].append(entry)
    out = []
    for row in rows:
        item = {"event_id": row["event_id"], "type": row["type"],
                "payment_id": row["payment_id"], "status": row["status"],
                "attempts": row["attempts"], "created_at": row["created_at"],
                "event": orjson.loads(row["body"]), "deliveries": attempts[row["event_id"]]}
        if row["status"] == "pending":
            item["next_attempt_at"] = _iso(row["next_attempt_ms"])
        if row["delivered_at"]:
            item["delivered_at"] = row["delivered_at"]
        out.append(item)
    return out


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, BEIJING).isoformat(timespec="seconds")


@decides(partner_only, decode_cursor)
async def list_notifications(ctx: Context, token_info: dict, limit: int = 20,
                             cursor: str | None = None, payment_id: str | None = None,
                             status: str | None = None) -> Response:
    ctx.partner_only(token_info)
    rows = await ctx.store.outbox.notifications(
        token_info["sub"], payment_id=payment_id, status=status,
        before_us=decode_cursor(cursor), limit=limit + 1)
    result = page(rows, limit, lambda row: row["created_us"])
    result["items"] = await _with_deliveries(ctx, result["items"])
    return respond(result)


@decides(NotificationNotFound)
async def _notification(ctx: Context, partner_id: str, event_id: str) -> dict:
    row = found(await ctx.store.outbox.notification(partner_id, event_id), NotificationNotFound,
                f"No notification {event_id} for this partner.", field="path.event_id")
    return (await _with_deliveries(ctx, [row]))[0]


@decides(partner_only, _notification)
async def get_notification(ctx: Context, token_info: dict, event_id: str) -> Response:
    ctx.partner_only(token_info)
    return respond(await _notification(ctx, token_info["sub"], event_id))


@decides(partner_only, _notification)
async def redeliver_notification(ctx: Context, token_info: dict, event_id: str) -> Response:
    ctx.partner_only(token_info)
    if not await ctx.store.outbox.redeliver(token_info["sub"], event_id,
                                            notify.next_second_ms(ctx.clock.timestamp())):
        raise NotificationNotFound(f"No notification {event_id} for this partner.",
                                   field="path.event_id")
    ctx.worker.wake()
    return respond(await _notification(ctx, token_info["sub"], event_id), 202)
