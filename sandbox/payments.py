"""Transfers and refunds: a validated order becomes one balanced ledger movement, exactly once.

Each order runs in one store transaction that locks the accounts it touches, so concurrent
orders from any number of server processes never overdraw an account or break a class cap,
and an order is either wholly booked with its payment record or not at all. The partner's
request id makes retries safe: the same id and body give back the payment already made; the
same id with another body is refused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

import orjson

from sandbox import ledger
from sandbox.bank.directory import BY_CODE, SANDBOX_BANK_CODE
from sandbox.clock import Clock
from sandbox.money import Fen
from sandbox.rules import ConflictingRequest, InvalidOrder, Refusal, UnknownResource
from sandbox.rules.limits import Usage, check_active, check_credit, check_debit
from sandbox.rules.risk import (
    RiskRefusal,
    check_controls,
    check_large_amount,
    check_velocity,
)
from sandbox.store.base import DuplicateError, Store


def request_hash(body: dict) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _line(description: str, party_name: str, party_account: str | None) -> dict:
    """One statement line of a movement, as the account holder will read it."""
    return {"transaction_id": "txn_" + secrets.token_hex(8), "description": description,
            "counterparty_name": party_name, "counterparty_account": party_account,
            "channel": "online"}


def _replay(existing: dict, digest: str, request_id: str) -> tuple[dict, bool]:
    if existing["request_hash"] != digest:
        raise ConflictingRequest(
            "IDEMPOTENCY_CONFLICT",
            f"Request id {request_id!r} was used for a different order (payment "
            f"{existing['payment_id']}); use a new id for a new order.",
            field="header.X-Request-ID")
    return existing, True


async def post_transfer(store: Store, clock: Clock, partner_id: str, request_id: str,
                        body: dict) -> tuple[dict, bool]:
    """(payment, replayed): the payment this order made, now or on an earlier try."""
    digest = request_hash(body)
    amount = Fen.from_yuan(body["amount"]["amount"])
    if amount <= 0:
        raise InvalidOrder("AMOUNT_NOT_POSITIVE", "The amount must be more than 0.00.",
                           field="body.amount.amount")
    try:
        async with store.transaction() as tx:
            existing = await store.payment_by_request(tx, partner_id, request_id)
            if existing is not None:
                return _replay(existing, digest, request_id)
            return await _book_transfer(store, tx, clock, partner_id, request_id, digest,
                                        amount, body), False
    except (DuplicateError, Refusal) as exc:
        # A concurrent try with the same request id booked first: answer with its payment.
        # It may also have made this try's checks fail (on PostgreSQL this try waits for the
        # account locks and then sees the funds the other one spent): the answer is still the
        # payment made, not a refusal.
        async with store.transaction() as tx:
            existing = await store.payment_by_request(tx, partner_id, request_id)
        if existing is None:
            if isinstance(exc, RiskRefusal):
                # Recorded after the order's own transaction rolled back, so it stays.
                await store.add_risk_event({
                    "partner_id": partner_id, "event_id": "rsk_" + secrets.token_hex(8),
                    "account_id": body["debtor_account_id"], "rule": exc.rule,
                    "action": "refused", "amount_fen": int(amount), "request_id": request_id,
                    "detail": exc.detail,
                    # Microseconds: events of one second keep the order they happened in.
                    "created_at": clock.now().isoformat(timespec="microseconds")})
            raise
        return _replay(existing, digest, request_id)


async def _book_transfer(store, tx, clock, partner_id, request_id, digest, amount, body):
    debtor_id = body["debtor_account_id"]
    creditor = body["creditor"]
    if "account_id" in creditor:
        creditor_id = creditor["account_id"]
        bank_code = SANDBOX_BANK_CODE
    else:
        bank_code = creditor["bank_code"]
        if bank_code not in BY_CODE:
            raise Refusal("UNKNOWN_BANK", f"No bank with code {bank_code} in the directory "
                          "(GET /payments/v1/banks).", field="body.creditor.bank_code")
        creditor_id = None
        if bank_code == SANDBOX_BANK_CODE:
            creditor_id = await store.account_id_by_number(tx, partner_id,
                                                           creditor["account_number"])
            if creditor_id is None:
                raise Refusal("CREDITOR_ACCOUNT_NOT_FOUND", "No account with that number here.",
                              field="body.creditor.account_number")
    if creditor_id == debtor_id:
        raise Refusal("SAME_ACCOUNT", "An account cannot pay itself.",
                      field="body.creditor")
    accounts = await store.lock_accounts(tx, partner_id, [debtor_id, creditor_id or debtor_id])
    debtor = accounts.get(debtor_id)
    if debtor is None:
        raise UnknownResource("ACCOUNT_NOT_FOUND", f"No account {debtor_id} for this partner.",
                              field="body.debtor_account_id")
    target = accounts.get(creditor_id) if creditor_id else None
    if creditor_id and target is None:
        raise UnknownResource("ACCOUNT_NOT_FOUND", f"No account {creditor_id} for this "
                              "partner.", field="body.creditor.account_id")
    now = clock.now()
    today = now.date().isoformat()
    creditor_number = target["account_number"] if target else creditor["account_number"]
    usage = Usage(**await store.usage(tx, partner_id, debtor, today))
    check_debit(debtor, amount, creditor_number, usage)
    account_controls = await store.controls(tx, partner_id, debtor_id)
    partner_controls = await store.controls(tx, partner_id, "partner")
    check_controls(account_controls, f"account {debtor_id}", amount, usage.out_day)
    check_controls(partner_controls, "this partner", amount,
                   Fen(await store.partner_paid_today(tx, partner_id, today)))
    if target is not None:
        target_controls = await store.controls(tx, partner_id, creditor_id)
        if target_controls is not None and target_controls["payments_closed"]:
            raise Refusal("PAYMENTS_CLOSED", f"Payments are closed for account {creditor_id} "
                          "by the bank.", field="body.creditor.account_id")
    for controls in (account_controls, partner_controls):
        check_large_amount(controls, amount)
        if controls and controls["velocity_count"]:
            since = now - dt.timedelta(seconds=controls["velocity_window_s"])
            check_velocity(controls, await store.debits_since(
                tx, partner_id, debtor_id, since.isoformat(timespec="seconds")))
    debtor_name = (await store.customer(partner_id, debtor["customer_id"], tx))["name"]
    if target is not None:
        check_credit(target, amount, debtor["account_number"],
                     Usage(**await store.usage(tx, partner_id, target, today)))
        creditor_name = (await store.customer(partner_id, target["customer_id"], tx))["name"]
    else:
        creditor_name = creditor["name"]
    remittance = body.get("remittance_information")
    note = f" · {remittance}" if remittance else ""
    movement_id = "mov_" + secrets.token_hex(8)
    booked_at = now.isoformat(timespec="seconds")
    lines = {debtor_id: _line(f"转账 Transfer to {creditor_name}{note}", creditor_name,
                              creditor_number)}
    if target is not None:
        lines[creditor_id] = _line(f"转账 Transfer from {debtor_name}{note}", debtor_name,
                                   debtor["account_number"])
    await store.book(tx, partner_id, movement_id, booked_at,
                     ledger.transfer(debtor_id, creditor_id or ledger.CLEARING, amount),
                     lines, accounts)
    payment = {
        "partner_id": partner_id, "payment_id": "pay_" + secrets.token_hex(8),
        "request_id": request_id, "request_hash": digest, "status": "settled",
        "debtor_account_id": debtor_id, "creditor_account_id": creditor_id,
        "creditor_account_number": creditor_number, "creditor_bank_code": bank_code,
        "creditor_name": creditor_name, "amount_fen": int(amount), "currency": "CNY",
        "remittance_information": remittance, "created_at": booked_at,
        "movement_id": movement_id, "refund_request_id": None, "refund_movement_id": None,
        "refunded_at": None,
    }
    await store.add_payment(tx, payment)
    return payment


async def refund_payment(store: Store, clock: Clock, partner_id: str, payment_id: str,
                         request_id: str) -> tuple[dict, bool]:
    """(payment, replayed): the whole amount goes back to the debtor, once."""
    async with store.transaction() as tx:
        payment = await store.payment(partner_id, payment_id, tx, lock=True)
        if payment is None:
            raise UnknownResource("PAYMENT_NOT_FOUND", f"No payment {payment_id} for this "
                                  "partner.", field="path.payment_id")
        if payment["status"] == "refunded":
            if payment["refund_request_id"] == request_id:
                return payment, True
            raise Refusal("ALREADY_REFUNDED", f"Payment {payment_id} was refunded at "
                          f"{payment['refunded_at']}.")
        amount = Fen(payment["amount_fen"])
        debtor_id, creditor_id = payment["debtor_account_id"], payment["creditor_account_id"]
        accounts = await store.lock_accounts(tx, partner_id, [debtor_id, creditor_id or debtor_id])
        debtor = accounts[debtor_id]
        now = clock.now()
        today = now.date().isoformat()
        if creditor_id is not None:
            # A refund reverses the payment: the payee needs the funds back, but the class
            # caps on payments do not apply to giving money back.
            payee = accounts[creditor_id]
            check_active(payee)
            if payee["balance_fen"] < amount:
                raise Refusal("INSUFFICIENT_FUNDS", f"Account {creditor_id} no longer holds "
                              "the amount to refund.")
        check_credit(debtor, amount, payment["creditor_account_number"],
                     Usage(**await store.usage(tx, partner_id, debtor, today)))
        debtor_name = (await store.customer(partner_id, debtor["customer_id"], tx))["name"]
        movement_id = "mov_" + secrets.token_hex(8)
        booked_at = now.isoformat(timespec="seconds")
        lines = {debtor_id: _line(f"退款 Refund of {payment_id}", payment["creditor_name"],
                                  payment["creditor_account_number"])}
        if creditor_id is not None:
            lines[creditor_id] = _line(f"退款 Refund of {payment_id}", debtor_name,
                                       debtor["account_number"])
        await store.book(tx, partner_id, movement_id, booked_at,
                         ledger.transfer(creditor_id or ledger.CLEARING, debtor_id, amount),
                         lines, accounts)
        changes = {"status": "refunded", "refund_request_id": request_id,
                   "refund_movement_id": movement_id, "refunded_at": booked_at}
        await store.update_payment(tx, partner_id, payment_id, **changes)
        return {**payment, **changes}, False
