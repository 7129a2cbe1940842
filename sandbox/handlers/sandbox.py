"""Sandbox control plane: what a bank operator does to partners' accounts and payments."""

from __future__ import annotations

from starlette.responses import Response

from sandbox import payments
from sandbox.context import Context
from sandbox.handlers import respond
from sandbox.money import Fen, to_yuan
from sandbox.records import Controls, Partner
from sandbox.refusals import AccountNotFound, PartnerNotFound, decides, found
from sandbox.resources import (
    account_resource,
    controls_resource,
    payment_resource,
    risk_event_resource,
)
from sandbox.rules import payments as rules


@decides(PartnerNotFound)
async def _partner(ctx: Context, partner_id: str) -> Partner:
    return found(await ctx.store.partners.get(partner_id), PartnerNotFound,
                 f"No partner {partner_id}.", field="path.partner_id")


def _no_account(partner_id: str, account_id: str) -> AccountNotFound:
    return AccountNotFound(f"No account {account_id} for partner {partner_id}.",
                           field="path.account_id")


@decides(_partner, AccountNotFound)
async def _set_status(ctx: Context, partner_id: str, account_id: str, status: str) -> Response:
    await _partner(ctx, partner_id)
    account = await ctx.store.control.set_account_status(partner_id, account_id, status)
    if account is None:
        raise _no_account(partner_id, account_id)
    return respond(account_resource(account))


@decides(_set_status)
async def freeze_account(ctx: Context, partner_id: str, account_id: str) -> Response:
    return await _set_status(ctx, partner_id, account_id, "frozen")


@decides(_set_status)
async def unfreeze_account(ctx: Context, partner_id: str, account_id: str) -> Response:
    return await _set_status(ctx, partner_id, account_id, "active")


def _fen(body: dict, key: str) -> int | None:
    value = body.get(key)
    return None if value is None else int(Fen.from_yuan(value))


async def _set_controls(ctx: Context, partner_id: str, subject: str, body: dict) -> Response:
    velocity = body.get("velocity") or {}
    controls = await ctx.store.control.set_controls(Controls(
        partner_id=partner_id, subject=subject,
        payments_closed=1 if body.get("payments_closed") else 0,
        single_limit_fen=_fen(body, "single_limit"), daily_limit_fen=_fen(body, "daily_limit"),
        large_amount_fen=_fen(body, "large_amount"), velocity_count=velocity.get("count"),
        velocity_window_s=velocity.get("window_seconds"),
        risk_action=body.get("risk_action", "refuse"),
        updated_at=ctx.clock.now().isoformat(timespec="seconds")))
    return respond(controls_resource(controls))


@decides(_partner)
async def set_partner_controls(ctx: Context, partner_id: str, body: dict) -> Response:
    await _partner(ctx, partner_id)
    return await _set_controls(ctx, partner_id, "partner", body)


@decides(_partner, AccountNotFound)
async def set_account_controls(ctx: Context, partner_id: str, account_id: str,
                               body: dict) -> Response:
    await _partner(ctx, partner_id)
    if await ctx.store.bank.account(partner_id, account_id) is None:
        raise _no_account(partner_id, account_id)
    return await _set_controls(ctx, partner_id, account_id, body)


@decides(_partner)
async def list_risk_events(ctx: Context, partner_id: str, limit: int = 50) -> Response:
    await _partner(ctx, partner_id)
    events = await ctx.store.control.risk_events(partner_id, limit=limit)
    return respond({"items": [risk_event_resource(event) for event in events]})


@decides(_partner)
async def get_ledger(ctx: Context, partner_id: str) -> Response:
    await _partner(ctx, partner_id)
    check = await ctx.store.ledger.check(partner_id)
    return respond({
        "partner_id": partner_id, "payments": check["payments"], "legs": check["legs"],
        "journal_total": to_yuan(check["total_fen"]), "accounts_off": check["accounts_off"],
        "unbalanced_movements": check["unbalanced_movements"],
        "balanced": not (check["total_fen"] or check["accounts_off"]
                         or check["unbalanced_movements"]),
    })


@decides(_partner, rules.decide_release)
async def release_payment(ctx: Context, partner_id: str, payment_id: str) -> Response:
    await _partner(ctx, partner_id)
    payment = await payments.release_payment(ctx.store, ctx.clock, partner_id, payment_id,
                                              interbank_delay=ctx.settings.interbank_delay)
    ctx.worker.wake()
    return respond(payment_resource(payment))


@decides(_partner, rules.decide_reject)
async def reject_payment(ctx: Context, partner_id: str, payment_id: str) -> Response:
    await _partner(ctx, partner_id)
    payment = await payments.reject_payment(ctx.store, ctx.clock, partner_id, payment_id)
    ctx.worker.wake()
    return respond(payment_resource(payment))


@decides(_partner)
async def set_partner_clock(ctx: Context, partner_id: str, body: dict) -> Response:
    await _partner(ctx, partner_id)
    await ctx.store.partners.set_clock_offset(partner_id, body["offset_seconds"])
    return respond({"offset_seconds": body["offset_seconds"],
                    "now": ctx.now_for(body["offset_seconds"]).isoformat(timespec="seconds")})
