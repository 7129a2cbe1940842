"""Payments contract: transfers, refunds, the bank directory, callbacks and their delivery log."""

from __future__ import annotations

import datetime as dt
import urllib.parse

import orjson
from connexion import request
from starlette.responses import Response

from sandbox import consents, notify, payments
from sandbox.bank.directory import BANKS
from sandbox.clock import BEIJING
from sandbox.handlers import respond
from sandbox.notify import new_secret
from sandbox.pagination import decode_cursor, page
from sandbox.payments import payment_resource
from sandbox.problems import NotFound, Unprocessable

BASE_PATH = "/payments/v1"


def _answer(payment: dict, replayed: bool, status: int) -> Response:
    location = f"{BASE_PATH}/payments/{payment['payment_id']}"
    return respond(payment_resource(payment), status,
                   {"Location": location, "Idempotent-Replayed": "true" if replayed else "false"})


async def create_transfer(token_info: dict, body: dict) -> Response:
    state = request.state
    consents.require(token_info, state.clock, "InitiatePayments",
                     account_id=body["debtor_account_id"], account_field="body.debtor_account_id")
    payment, replayed = await payments.post_transfer(
        state.store, state.clock, token_info["sub"], request.headers["x-request-id"], body,
        interbank_delay=state.settings.interbank_delay)
    state.worker.wake()
    return _answer(payment, replayed, 201)


async def get_payment(token_info: dict, payment_id: str) -> Response:
    payment = await request.state.store.payment(token_info["sub"], payment_id)
    if payment is None:
        raise NotFound("PAYMENT_NOT_FOUND", f"No payment {payment_id} for this partner.",
                       field="path.payment_id")
    return respond(payment_resource(payment))


async def refund_payment(token_info: dict, payment_id: str) -> Response:
    state = request.state
    payment, replayed = await payments.refund_payment(
        state.store, state.clock, token_info["sub"], payment_id, request.headers["x-request-id"])
    state.worker.wake()
    return _answer(payment, replayed, 200)


async def list_banks(token_info: dict) -> Response:
    return respond({"items": [{"bank_code": code, "name": name, "short_name": short}
                              for code, name, short in BANKS]})


# -- callbacks ---------------------------------------------------------------------------------

def _callback_resource(row: dict) -> dict:
    return {"url": row["url"], "signing_secret": row["secret"],
            "event_types": list(notify.EVENT_TYPES),
            "retry_schedule_s": list(request.state.settings.notify_backoff),
            "timeout_s": request.state.settings.notify_timeout,
            "created_at": row["created_at"], "updated_at": row["updated_at"]}


def _no_callback() -> NotFound:
    return NotFound("CALLBACK_NOT_REGISTERED", "No callback URL is registered for this partner; "
                    "register one with PUT /payments/v1/callback.")


async def get_callback(token_info: dict) -> Response:
    row = await request.state.store.callback(token_info["sub"])
    if row is None:
        raise _no_callback()
    return respond(_callback_resource(row))


async def register_callback(token_info: dict, body: dict) -> Response:
    state = request.state
    try:  # the pattern admits the shape of a bracketed IPv6 host, not that it is one
        _ = urllib.parse.urlsplit(body["url"]).port  # raises on a bad host or port
    except ValueError as exc:
        raise Unprocessable("INVALID_CALLBACK_URL", f"The URL cannot be delivered to: {exc}.",
                            field="body.url") from None
    row = await state.store.set_callback(token_info["sub"], body["url"], new_secret(),
                                         state.clock.now().isoformat(timespec="seconds"))
    return respond(_callback_resource(row))


async def delete_callback(token_info: dict) -> Response:
    if not await request.state.store.delete_callback(token_info["sub"]):
        raise _no_callback()
    return Response(status_code=204)


# -- the delivery log ----------------------------------------------------------------------------

async def _with_deliveries(rows: list[dict]) -> list[dict]:
    attempts: dict[str, list] = {row["event_id"]: [] for row in rows}
    for delivery in await request.state.store.deliveries(list(attempts)):
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


async def list_notifications(token_info: dict, limit: int = 20, cursor: str | None = None,
                             payment_id: str | None = None,
                             status: str | None = None) -> Response:
    rows = await request.state.store.notifications(
        token_info["sub"], payment_id=payment_id, status=status,
        before_us=decode_cursor(cursor), limit=limit + 1)
    result = page(rows, limit, lambda row: row["created_us"])
    result["items"] = await _with_deliveries(result["items"])
    return respond(result)


async def _notification(partner_id: str, event_id: str) -> dict:
    row = await request.state.store.notification(partner_id, event_id)
    if row is None:
        raise NotFound("NOTIFICATION_NOT_FOUND", f"No notification {event_id} for this "
                       "partner.", field="path.event_id")
    return (await _with_deliveries([row]))[0]


async def get_notification(token_info: dict, event_id: str) -> Response:
    return respond(await _notification(token_info["sub"], event_id))


async def redeliver_notification(token_info: dict, event_id: str) -> Response:
    state = request.state
    if not await state.store.redeliver(token_info["sub"], event_id,
                                       notify.next_second_ms(state.clock.timestamp())):
        raise NotFound("NOTIFICATION_NOT_FOUND", f"No notification {event_id} for this "
                       "partner.", field="path.event_id")
    state.worker.wake()
    return respond(await _notification(token_info["sub"], event_id), 202)
