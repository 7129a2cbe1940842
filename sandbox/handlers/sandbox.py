"""Sandbox control plane: what a bank operator does to partners' accounts and payments."""

from __future__ import annotations

from connexion import request
from starlette.responses import Response

from sandbox import payments
from sandbox.handlers import respond
from sandbox.handlers.accounts import account_resource
from sandbox.money import Fen, to_yuan
from sandbox.payments import payment_resource
from sandbox.problems import NotFound


async def _partner(partner_id: str) -> dict:
    partner = await request.state.store.partner(partner_id)
    if partner is None:
        raise NotFound("PARTNER_NOT_FOUND", f"No partner {partner_id}.",
                       field="path.partner_id")
    return partner


async def _set_status(partner_id: str, account_id: str, status: str) -> Response:
    await _partner(partner_id)
    row = await request.state.store.set_account_status(partner_id, account_id, status)
    if row is None:
        raise NotFound("ACCOUNT_NOT_FOUND", f"No account {account_id} for partner "
                       f"{partner_id}.", field="path.account_id")
    return respond(account_resource(row))


async def freeze_account(partner_id: str, account_id: str) -> Response:
    return await _set_status(partner_id, account_id, "frozen")


async def unfreeze_account(partner_id: str, account_id: str) -> Response:
    return await _set_status(partner_id, account_id, "active")


def _fen(body: dict, key: str) -> int | None:
    value = body.get(key)
    return None if value is None else int(Fen.from_yuan(value))


def controls_resource(row: dict) -> dict:
    out = {"payments_closed": bool(row["payments_closed"])}
    for key in ("single_limit", "daily_limit", "large_amount"):
        if row[f"{key}_fen"] is not None:
            out[key] = to_yuan(row[f"{key}_fen"])
    if row["velocity_count"]:
        out["velocity"] = {"count": row["velocity_count"],
                           "window_seconds": row["velocity_window_s"]}
    out["risk_action"] = row["risk_action"]
    out["updated_at"] = row["updated_at"]
    return out


async def _set_controls(partner_id: str, subject: str, body: dict) -> Response:
    velocity = body.get("velocity") or {}
    row = await request.state.store.set_controls(partner_id, subject, {
        "payments_closed": 1 if body.get("payments_closed") else 0,
        "single_limit_fen": _fen(body, "single_limit"),
        "daily_limit_fen": _fen(body, "daily_limit"),
        "large_amount_fen": _fen(body, "large_amount"),
        "velocity_count": velocity.get("count"),
        "velocity_window_s": velocity.get("window_seconds"),
        "risk_action": body.get("risk_action", "refuse"),
        "updated_at": request.state.clock.now().isoformat(timespec="seconds"),
    })
    return respond(controls_resource(row))


async def set_partner_controls(partner_id: str, body: dict) -> Response:
    await _partner(partner_id)
    return await _set_controls(partner_id, "partner", body)


async def set_account_controls(partner_id: str, account_id: str, body: dict) -> Response:
    await _partner(partner_id)
    if await request.state.store.account(partner_id, account_id) is None:
        raise NotFound("ACCOUNT_NOT_FOUND", f"No account {account_id} for partner "
                       f"{partner_id}.", field="path.account_id")
    return await _set_controls(partner_id, account_id, body)


async def list_risk_events(partner_id: str, limit: int = 50) -> Response:
    await _partner(partner_id)
    rows = await request.state.store.risk_events(partner_id, limit=limit)
    return respond({"items": [{
        "event_id": r["event_id"], "account_id": r["account_id"], "rule": r["rule"],
        "action": r["action"], "amount": {"amount": to_yuan(r["amount_fen"]), "currency": "CNY"},
        "request_id": r["request_id"], "detail": r["detail"], "created_at": r["created_at"],
        **({"payment_id": r["payment_id"]} if r["payment_id"] else {}),
    } for r in rows]})


async def get_ledger(partner_id: str) -> Response:
    await _partner(partner_id)
    check = await request.state.store.ledger_check(partner_id)
    return respond({
        "partner_id": partner_id, "payments": check["payments"], "legs": check["legs"],
        "journal_total": to_yuan(check["total_fen"]), "accounts_off": check["accounts_off"],
        "unbalanced_movements": check["unbalanced_movements"],
        "balanced": not (check["total_fen"] or check["accounts_off"]
                         or check["unbalanced_movements"]),
    })


async def release_payment(partner_id: str, payment_id: str) -> Response:
    state = request.state
    await _partner(partner_id)
    payment = await payments.release_payment(state.store, state.clock, partner_id, payment_id,
                                              interbank_delay=state.settings.interbank_delay)
    state.worker.wake()
    return respond(payment_resource(payment))


async def reject_payment(partner_id: str, payment_id: str) -> Response:
    state = request.state
    await _partner(partner_id)
    payment = await payments.reject_payment(state.store, state.clock, partner_id, payment_id)
    state.worker.wake()
    return respond(payment_resource(payment))


async def set_partner_clock(partner_id: str, body: dict) -> Response:
    state = request.state
    await _partner(partner_id)
    await state.store.set_clock_offset(partner_id, body["offset_seconds"])
    now = state.clock.now_for({"clock_offset_s": body["offset_seconds"]})
    return respond({"offset_seconds": body["offset_seconds"],
                    "now": now.isoformat(timespec="seconds")})
