"""Transfers and refunds: a validated order becomes one balanced ledger movement, exactly once.

Each order runs in one store transaction that locks the accounts it touches, so concurrent
orders from any number of server processes never overdraw an account or break a class cap,
and an order is either wholly booked with its payment record or not at all. The partner's
request id makes retries safe: the same id and body give back the payment already made; the
same id with another body is refused.

A transfer between the partner's own accounts settles at once. One to another bank leaves the
debtor at once (into clearing) and stays "pending" until the other bank answers, a couple of
seconds later: it settles, or, for an account the other bank does not have, fails and the money
comes back. Each outcome, and each refund, is a notification in the same transaction.

A payment that trips a risk rule the operator set to `hold` leaves the debtor into a holding
account and is "held" until the operator releases it (it then goes on as any payment) or
rejects it (it fails and the money comes back).
"""

from __future__ import annotations

import datetime as dt
import hashlib

import orjson

from sandbox import ledger, notify
from sandbox.bank.directory import BY_CODE, SANDBOX_BANK_CODE
from sandbox.clock import Clock
from sandbox.money import Fen, to_yuan
from sandbox.record_ids import new_id
from sandbox.rules import ConflictingRequest, Refusal, UnknownResource
from sandbox.rules.limits import Usage, check_active, check_credit, check_debit, needs_usage
from sandbox.rules.risk import (
    RiskRefusal,
    check_controls,
    check_large_amount,
    check_velocity,
)
from sandbox.store.base import DuplicateError, Store

#: Another bank has no account whose number ends so: a payment to it fails and comes back.
UNKNOWN_AT_OTHER_BANK = "0000"


def payment_resource(row: dict) -> dict:
    """The payment as partners see it, in answers and in notifications."""
    creditor = {"account_number": row["creditor_account_number"],
                "bank_code": row["creditor_bank_code"], "name": row["creditor_name"]}
    if row["creditor_account_id"]:
        creditor = {"account_id": row["creditor_account_id"], **creditor}
    out = {
        "payment_id": row["payment_id"], "status": row["status"],
        "debtor_account_id": row["debtor_account_id"], "creditor": creditor,
        "amount": {"amount": to_yuan(row["amount_fen"]), "currency": row["currency"]},
        "created_at": row["created_at"],
    }
    for name in ("remittance_information", "settled_at", "refunded_at"):
        if row[name]:
            out[name] = row[name]
    if row["failure_code"]:
        out["failure"] = {"code": row["failure_code"], "detail": row["failure_detail"]}
    return out


def request_hash(body: dict) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _line(description: str, party_name: str, party_account: str | None) -> dict:
    """One statement line of a movement, as the account holder will read it."""
    return {"transaction_id": new_id("txn"), "description": description,
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
                        body: dict, *, interbank_delay: float = 2.0) -> tuple[dict, bool]:
    """(payment, replayed): the payment this order made, now or on an earlier try.
    A payment to another bank stays pending for `interbank_delay` seconds."""
    digest = request_hash(body)
    amount = Fen.from_yuan(body["amount"]["amount"])
    if amount <= 0:
        raise Refusal("AMOUNT_NOT_POSITIVE", "The amount must be more than 0.00.",
                      field="body.amount.amount")
    try:
        async with store.transaction() as tx:
            existing = await store.payment_by_request(tx, partner_id, request_id)
            if existing is not None:
                return _replay(existing, digest, request_id)
            return await _book_transfer(store, tx, clock, partner_id, request_id, digest,
                                        amount, body, interbank_delay), False
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
                await store.add_risk_event(_risk_event(
                    partner_id, body["debtor_account_id"], exc, "refused", amount, request_id,
                    clock))
            raise
        return _replay(existing, digest, request_id)


def _risk_event(partner_id: str, account_id: str, exc: RiskRefusal, action: str, amount: Fen,
                request_id: str, clock: Clock, payment_id: str | None = None) -> dict:
    return {"partner_id": partner_id, "event_id": new_id("rsk"),
            "account_id": account_id, "rule": exc.rule, "action": action,
            "amount_fen": int(amount), "request_id": request_id, "detail": exc.detail,
            # Microseconds: events of one second keep the order they happened in.
            "created_at": clock.now().isoformat(timespec="microseconds"),
            "payment_id": payment_id}


async def _book_transfer(store, tx, clock, partner_id, request_id, digest, amount, body,
                         interbank_delay):
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
        raise Refusal("ACCOUNT_NOT_FOUND", f"No account {debtor_id} for this partner.",
                      field="body.debtor_account_id")
    target = accounts.get(creditor_id) if creditor_id else None
    if creditor_id and target is None:
        raise Refusal("ACCOUNT_NOT_FOUND", f"No account {creditor_id} for this partner.",
                      field="body.creditor.account_id")
    now = clock.now()
    today = now.date().isoformat()
    creditor_number = target["account_number"] if target else creditor["account_number"]
    subjects = [debtor_id, "partner"] + ([creditor_id] if creditor_id else [])
    by_subject = await store.controls(tx, partner_id, subjects)
    account_controls, partner_controls = by_subject.get(debtor_id), by_subject.get("partner")
    usage = (Usage(**await store.usage(tx, partner_id, debtor, today))
             if needs_usage(debtor, account_controls) else Usage())
    check_debit(debtor, amount, creditor_number, usage)
    check_controls(account_controls, f"account {debtor_id}", amount, usage.out_day)
    if partner_controls is not None:
        # Summed only when the operator set controls for the partner: its day's payments.
        check_controls(partner_controls, "this partner", amount,
                       Fen(await store.partner_paid_today(tx, partner_id, today)))
    if target is not None:
        target_controls = by_subject.get(creditor_id)
        if target_controls is not None and target_controls["payments_closed"]:
            raise Refusal("PAYMENTS_CLOSED", f"Payments are closed for account {creditor_id} "
                          "by the bank.", field="body.creditor.account_id")
    hold = None
    for controls in (account_controls, partner_controls):
        try:
            check_large_amount(controls, amount)
            if controls and controls["velocity_count"]:
                since = now - dt.timedelta(seconds=controls["velocity_window_s"])
                check_velocity(controls, await store.debits_since(
                    tx, partner_id, debtor_id, since.isoformat(timespec="seconds")))
        except RiskRefusal as exc:
            if controls["risk_action"] != "hold":
                raise
            hold = hold or exc
    if target is not None:
        check_credit(target, amount, debtor["account_number"],
                     Usage(**await store.usage(tx, partner_id, target, today))
                     if needs_usage(target) else Usage())
        names = await store.customer_names(tx, partner_id, {debtor["customer_id"],
                                                            target["customer_id"]})
        debtor_name, creditor_name = names[debtor["customer_id"]], names[target["customer_id"]]
    else:
        debtor_name = (await store.customer(partner_id, debtor["customer_id"], tx))["name"]
        creditor_name = creditor["name"]
    remittance = body.get("remittance_information")
    note = f" · {remittance}" if remittance else ""
    movement_id = new_id("mov")
    booked_at = now.isoformat(timespec="seconds")
    lines = {debtor_id: _line(f"转账 Transfer to {creditor_name}{note}", creditor_name,
                              creditor_number)}
    if target is not None and hold is None:
        lines[creditor_id] = _line(f"转账 Transfer from {debtor_name}{note}", debtor_name,
                                   debtor["account_number"])
    destination = ledger.HELD if hold else creditor_id or ledger.CLEARING
    await store.book(tx, partner_id, movement_id, booked_at,
                     ledger.transfer(debtor_id, destination, amount), lines, accounts)
    interbank = bank_code != SANDBOX_BANK_CODE
    payment_id = new_id("pay")
    if hold is not None:
        await store.add_risk_event(_risk_event(partner_id, body["debtor_account_id"], hold,
                                               "held", amount, request_id, clock, payment_id),
                                   tx)
    payment = {
        "partner_id": partner_id, "payment_id": payment_id,
        "request_id": request_id, "request_hash": digest,
        "status": "held" if hold else "pending" if interbank else "settled",
        "debtor_account_id": debtor_id, "creditor_account_id": creditor_id,
        "creditor_account_number": creditor_number, "creditor_bank_code": bank_code,
        "creditor_name": creditor_name, "amount_fen": int(amount), "currency": "CNY",
        "remittance_information": remittance, "created_at": booked_at,
        "movement_id": movement_id, "refund_request_id": None, "refund_movement_id": None,
        "refunded_at": None,
        "settles_at_ms": (int((clock.timestamp() + interbank_delay) * 1000)
                          if interbank and not hold else None),
        "settled_at": None if interbank or hold else booked_at,
        "failure_code": None, "failure_detail": None, "return_movement_id": None,
    }
    await store.add_payment(tx, payment)
    if payment["status"] == "settled":
        await notify.enqueue(store, tx, clock, partner_id, "payment.settled",
                             payment_resource(payment))
    return payment


async def settle_due(store: Store, clock: Clock, limit: int = 50) -> int:
    """Settles (or fails) the payments to other banks that are due; how many it found."""
    due = await store.due_settlements(int(clock.timestamp() * 1000), limit)
    for row in due:
        await settle_payment(store, clock, row["partner_id"], row["payment_id"])
    return len(due)


async def settle_payment(store: Store, clock: Clock, partner_id: str,
                         payment_id: str) -> dict | None:
    """The other bank's answer to a pending payment: settled, or failed with the money back.
    Whichever process locks the payment first decides; the others find it decided."""
    async with store.transaction() as tx:
        payment = await store.payment(partner_id, payment_id, tx, lock=True)
        if payment is None or payment["status"] != "pending":
            return None
        now = clock.now().isoformat(timespec="seconds")
        if payment["creditor_account_number"].endswith(UNKNOWN_AT_OTHER_BANK):
            debtor_id = payment["debtor_account_id"]
            accounts = await store.lock_accounts(tx, partner_id, [debtor_id])
            movement_id = new_id("mov")
            # Money returned by the other bank is always taken back: no class cap applies.
            await store.book(tx, partner_id, movement_id, now,
                             ledger.transfer(ledger.CLEARING, debtor_id,
                                             Fen(payment["amount_fen"])),
                             {debtor_id: _line(f"退汇 Returned: {payment_id}",
                                               payment["creditor_name"],
                                               payment["creditor_account_number"])},
                             accounts)
            changes = {"status": "failed", "settles_at_ms": None,
                       "failure_code": "CREDITOR_ACCOUNT_NOT_FOUND",
                       "failure_detail": "The creditor's bank has no account with that number; "
                                         f"the amount came back in movement {movement_id}.",
                       "return_movement_id": movement_id}
            event = "payment.failed"
        else:
            changes = {"status": "settled", "settles_at_ms": None, "settled_at": now}
            event = "payment.settled"
        await store.update_payment(tx, partner_id, payment_id, **changes)
        payment = {**payment, **changes}
        await notify.enqueue(store, tx, clock, partner_id, event, payment_resource(payment))
        return payment


async def release_payment(store: Store, clock: Clock, partner_id: str, payment_id: str, *,
                          interbank_delay: float = 2.0) -> dict:
    """The operator lets a held payment go: it is booked on to its creditor as it would have
    been (settled, or pending at another bank), if the creditor can still take it."""
    async with store.transaction() as tx:
        payment = await _held(store, tx, partner_id, payment_id)
        amount = Fen(payment["amount_fen"])
        debtor_id, creditor_id = payment["debtor_account_id"], payment["creditor_account_id"]
        accounts = await store.lock_accounts(tx, partner_id, [debtor_id, creditor_id or debtor_id])
        now = clock.now()
        booked_at = now.isoformat(timespec="seconds")
        lines = {}
        if creditor_id is not None:
            debtor, target = accounts[debtor_id], accounts[creditor_id]
            try:
                check_credit(target, amount, debtor["account_number"], Usage(
                    **await store.usage(tx, partner_id, target, now.date().isoformat())))
            except Refusal as exc:  # the payment's state is the conflict, not the request
                raise ConflictingRequest(exc.code, f"{exc.detail} The payment stays held; "
                                         "reject it or release it later.") from None
            debtor_name = (await store.customer(partner_id, debtor["customer_id"], tx))["name"]
            note = payment["remittance_information"]
            lines[creditor_id] = _line(f"转账 Transfer from {debtor_name}"
                                       + (f" · {note}" if note else ""), debtor_name,
                                       debtor["account_number"])
        await store.book(tx, partner_id, new_id("mov"), booked_at,
                         ledger.transfer(ledger.HELD, creditor_id or ledger.CLEARING, amount),
                         lines, accounts)
        if creditor_id is not None:
            changes = {"status": "settled", "settled_at": booked_at}
        else:
            changes = {"status": "pending",
                       "settles_at_ms": int((clock.timestamp() + interbank_delay) * 1000)}
        await store.update_payment(tx, partner_id, payment_id, **changes)
        payment = {**payment, **changes}
        if payment["status"] == "settled":
            await notify.enqueue(store, tx, clock, partner_id, "payment.settled",
                                 payment_resource(payment))
        return payment


async def reject_payment(store: Store, clock: Clock, partner_id: str, payment_id: str) -> dict:
    """The operator stops a held payment: it fails and the money goes back to the debtor."""
    async with store.transaction() as tx:
        payment = await _held(store, tx, partner_id, payment_id)
        debtor_id = payment["debtor_account_id"]
        accounts = await store.lock_accounts(tx, partner_id, [debtor_id])
        movement_id = new_id("mov")
        await store.book(tx, partner_id, movement_id, clock.now().isoformat(timespec="seconds"),
                         ledger.transfer(ledger.HELD, debtor_id, Fen(payment["amount_fen"])),
                         {debtor_id: _line(f"退回 Returned by the bank: {payment_id}",
                                           payment["creditor_name"],
                                           payment["creditor_account_number"])},
                         accounts)
        changes = {"status": "failed", "failure_code": "RISK_REJECTED",
                   "failure_detail": "The bank's risk review rejected the payment; the amount "
                                     f"came back in movement {movement_id}.",
                   "return_movement_id": movement_id}
        await store.update_payment(tx, partner_id, payment_id, **changes)
        payment = {**payment, **changes}
        await notify.enqueue(store, tx, clock, partner_id, "payment.failed",
                             payment_resource(payment))
        return payment


async def _held(store: Store, tx, partner_id: str, payment_id: str) -> dict:
    payment = await store.payment(partner_id, payment_id, tx, lock=True)
    if payment is None:
        raise UnknownResource("PAYMENT_NOT_FOUND", f"No payment {payment_id} for this "
                              "partner.", field="path.payment_id")
    if payment["status"] != "held":
        raise ConflictingRequest("PAYMENT_NOT_HELD", f"Payment {payment_id} is "
                                 f"{payment['status']}, not held: there is nothing to decide.")
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
            raise ConflictingRequest("ALREADY_REFUNDED", f"Payment {payment_id} was refunded at "
                          f"{payment['refunded_at']}.")
        if payment["status"] != "settled":
            raise ConflictingRequest("PAYMENT_NOT_SETTLED", f"Payment {payment_id} is "
                          f"{payment['status']}: only a settled payment can be refunded.")
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
        movement_id = new_id("mov")
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
        payment = {**payment, **changes}
        await notify.enqueue(store, tx, clock, partner_id, "payment.refunded",
                             payment_resource(payment))
        return payment, False
