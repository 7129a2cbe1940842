"""Payment decisions: facts in, a `Booking` (or a refusal) out, for each way a payment moves.

    decide_transfer    an order: settled at once between the partner's own accounts; to another
                       bank, out of the debtor into clearing, `pending` until that bank answers;
                       held in a holding account when a risk rule set to `hold` trips
    decide_answer      the other bank's answer to a pending payment: settled, or failed with
                       the money back (`退汇`) for an account it does not have (number ...0000)
    decide_refund      the whole amount of a settled payment back to the debtor, once
    decide_release     the operator lets a held payment go on as it would have
    decide_reject      the operator stops a held payment: failed, the money back

Each status change is a notification in the same booking. No I/O, no clock: `now` and the
ids (`IdSource`) are inputs, so the same facts give the same booking.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing as t

from sandbox import ledger, notify
from sandbox.bank.directory import BY_CODE, SANDBOX_BANK_CODE
from sandbox.ledger import Booking, Books, Event, Narrative, Save, Totals
from sandbox.mint import IdSource
from sandbox.money import Fen
from sandbox.records import Account, Controls, Payment
from sandbox.refusals import (
    AccountNotFound,
    AccountNotInConsent,
    AlreadyRefunded,
    AmountNotPositive,
    Conflict,
    CreditorAccountNotFound,
    IdempotencyConflict,
    InsufficientFunds,
    PaymentNotFound,
    PaymentNotHeld,
    PaymentNotSettled,
    PaymentsClosed,
    Refusal,
    RiskRefused,
    SameAccount,
    StateConflict,
    UnknownBank,
    decides,
)
from sandbox.resources import payment_resource
from sandbox.rules.limits import check_active, check_credit, check_debit
from sandbox.rules.risk import check_controls, check_large_amount, check_velocity, risk_event

#: Another bank has no account whose number ends so: a payment to it fails and comes back.
UNKNOWN_AT_OTHER_BANK = "0000"


@dataclasses.dataclass(slots=True)
class Order:
    """A transfer order, as the contract admitted it."""

    partner_id: str
    request_id: str
    request_hash: str  # of the body: the same id with another body is another order
    debtor_account_id: str
    creditor: dict  # {"account_id"} or {"account_number", "bank_code", "name"}
    amount: Fen
    remittance_information: str | None = None
    #: The accounts of the consent the order came with: whose payments an answer may name.
    consent_accounts: frozenset[str] = frozenset()


@dataclasses.dataclass(slots=True)
class TransferFacts:
    """What deciding an order reads, loaded (and the accounts locked) in one store call."""

    existing: Payment | None  # made by an earlier try with the order's request id
    debtor: Account | None
    creditor: Account | None  # the account paid, when it is one of this bank's
    controls: dict[str, Controls]  # by subject: "partner", or an account id
    totals: Totals  # usage totals of the accounts whose caps apply, today and this year
    names: dict[str, str]  # customers' names by customer id
    partner_paid_today: Fen = Fen(0)  # loaded only when the partner has controls
    recent_debits: dict[int, int] = dataclasses.field(default_factory=dict)  # by window (s)
    callback: bool = True  # the partner has a callback registered: notifications are kept


@dataclasses.dataclass(slots=True)
class PaymentFacts:
    """A payment (locked), its accounts in this bank (locked), their usage totals, names."""

    payment_id: str
    payment: Payment | None
    accounts: dict[str, Account]
    totals: Totals
    names: dict[str, str]
    callback: bool = True  # the partner has a callback registered: notifications are kept


def _event(kind: str, payment: Payment, now: dt.datetime, ids: IdSource) -> Event:
    return notify.event(ids.next("evt"), kind, payment_resource(payment), now)


def _settles_at_ms(now: dt.datetime, delay_s: float) -> int:
    return int((now.timestamp() + delay_s) * 1000)


@decides(IdempotencyConflict)
def replay(existing: Payment, order: Order) -> Payment:
    """The payment an earlier try with this request id made, if it was the same order.
    Request ids are the partner's, so the earlier try may have been another customer's: then
    the refusal names nothing of it."""
    if existing.debtor_account_id not in order.consent_accounts:
        raise IdempotencyConflict(
            f"Request id {existing.request_id!r} was used already by this partner, for an order "
            "made under another consent; use a new id for a new order.",
            field="header.X-Request-ID")
    if existing.request_hash != order.request_hash:
        raise IdempotencyConflict(
            f"Request id {existing.request_id!r} was used for a different order (payment "
            f"{existing.payment_id}); use a new id for a new order.",
            field="header.X-Request-ID")
    return existing


@decides(PaymentNotFound)
def seen_by(payment: Payment | None, payment_id: str, accounts: t.Collection[str]) -> Payment:
    """The payment, if a consent with these accounts may see it: one of them paid or was paid.
    Any other payment is, to that consent, not there: the same 404 as no payment at all."""
    if payment is None or (payment.debtor_account_id not in accounts
                           and payment.creditor_account_id not in accounts):
        raise PaymentNotFound(f"No payment {payment_id} for this consent's accounts.",
                              field="path.payment_id")
    return payment


@decides(replay, AmountNotPositive, UnknownBank, CreditorAccountNotFound, SameAccount,
         AccountNotFound.named_in_request(), check_debit, check_controls, PaymentsClosed,
         check_large_amount, check_velocity, check_credit)
def decide_transfer(order: Order, facts: TransferFacts, *, now: dt.datetime, ids: IdSource,
                    interbank_delay_s: float) -> Booking:
    """The payment an order makes (or made, on an earlier try with its request id)."""
    if facts.existing is not None:
        return Booking(result=replay(facts.existing, order), replayed=True)
    amount = order.amount
    if amount <= 0:
        raise AmountNotPositive("The amount must be more than 0.00.", field="body.amount.amount")
    creditor = order.creditor
    bank_code = creditor.get("bank_code", SANDBOX_BANK_CODE)
    if bank_code not in BY_CODE:
        raise UnknownBank(f"No bank with code {bank_code} in the directory "
                          "(GET /payments/v1/banks).", field="body.creditor.bank_code")
    internal = bank_code == SANDBOX_BANK_CODE
    if "account_id" in creditor:
        creditor_id = creditor["account_id"]
    elif internal:
        if facts.creditor is None:
            raise CreditorAccountNotFound("No account with that number here.",
                                          field="body.creditor.account_number")
        creditor_id = facts.creditor.account_id
    else:
        creditor_id = None
    if creditor_id == order.debtor_account_id:
        raise SameAccount("An account cannot pay itself.", field="body.creditor")
    if facts.debtor is None:
        raise AccountNotFound(f"No account {order.debtor_account_id} for this partner.",
                              field="body.debtor_account_id")
    target = facts.creditor
    if creditor_id is not None and target is None:
        raise AccountNotFound(f"No account {creditor_id} for this partner.",
                              field="body.creditor.account_id")
    debtor = facts.debtor
    books = Books([a for a in (debtor, target) if a is not None], ids, totals=facts.totals)
    today = now.date().isoformat()
    usage = books.usage(debtor.account_id, today)
    creditor_number = target.account_number if target else creditor["account_number"]
    check_debit(debtor, amount, creditor_number, usage)
    account_controls = facts.controls.get(debtor.account_id)
    partner_controls = facts.controls.get("partner")
    check_controls(account_controls, f"account {debtor.account_id}", amount, usage.out_day)
    check_controls(partner_controls, "this partner", amount, facts.partner_paid_today)
    if target is not None:
        target_controls = facts.controls.get(target.account_id)
        if target_controls is not None and target_controls.payments_closed:
            raise PaymentsClosed(f"Payments are closed for account {target.account_id} by the "
                                 "bank.", field="body.creditor.account_id")
    hold = None
    for controls in (account_controls, partner_controls):
        try:
            check_large_amount(controls, amount)
            if controls and controls.velocity_count:
                check_velocity(controls, facts.recent_debits[controls.velocity_window_s])
        except RiskRefused as refusal:
            if controls.risk_action != "hold":
                raise
            hold = hold or refusal
    if target is not None:
        check_credit(target, amount, debtor.account_number,
                     books.usage(target.account_id, today))
        creditor_name = facts.names[target.customer_id]
    else:
        creditor_name = creditor["name"]
    debtor_name = facts.names[debtor.customer_id]
    note = f" · {order.remittance_information}" if order.remittance_information else ""
    booked_at = now.isoformat(timespec="seconds")
    narratives = {debtor.account_id: Narrative(f"转账 Transfer to {creditor_name}{note}",
                                               creditor_name, creditor_number)}
    if target is not None and hold is None:
        narratives[target.account_id] = Narrative(f"转账 Transfer from {debtor_name}{note}",
                                                  debtor_name, debtor.account_number)
    destination = ledger.HELD if hold else creditor_id or ledger.CLEARING
    move = books.move(ledger.transfer(debtor.account_id, destination, amount), narratives,
                      booked_at=booked_at)
    payment_id = ids.next("pay")
    status = "held" if hold else "settled" if internal else "pending"
    payment = Payment(
        partner_id=order.partner_id, payment_id=payment_id, request_id=order.request_id,
        request_hash=order.request_hash, status=status,
        debtor_account_id=debtor.account_id, creditor_account_id=creditor_id,
        creditor_account_number=creditor_number, creditor_bank_code=bank_code,
        creditor_name=creditor_name, amount_fen=int(amount), currency="CNY",
        remittance_information=order.remittance_information, created_at=booked_at,
        movement_id=move.movement_id,
        settles_at_ms=_settles_at_ms(now, interbank_delay_s) if status == "pending" else None,
        settled_at=booked_at if status == "settled" else None)
    saves = [Save(payment)]
    if hold is not None:
        saves.append(Save(risk_event(
            hold, partner_id=order.partner_id, event_id=ids.next("rsk"),
            account_id=debtor.account_id, action="held", amount=amount,
            request_id=order.request_id, at=now.isoformat(timespec="microseconds"),
            payment_id=payment_id)))
    events = ([_event("payment.settled", payment, now, ids)]
              if status == "settled" and facts.callback else [])
    return books.booking(saves=saves, events=events, result=payment)


def _changed(facts: PaymentFacts, books: Books, before: Payment, now: dt.datetime,
             ids: IdSource, event: str | None, **changes: t.Any) -> Booking:
    """`before` with `changes`, and the notification `event` of it if the partner has a
    callback to send it to."""
    payment = before.changed(**changes)
    events = [_event(event, payment, now, ids)] if event and facts.callback else []
    return books.booking(saves=[Save(payment, before)], events=events, result=payment)


def decide_answer(facts: PaymentFacts, *, now: dt.datetime, ids: IdSource) -> Booking | None:
    """The other bank's answer to a pending payment; None when it is no longer pending (another
    process answered first)."""
    payment = facts.payment
    if payment is None or payment.status != "pending":
        return None
    books = Books(facts.accounts.values(), ids, totals=facts.totals)
    booked_at = now.isoformat(timespec="seconds")
    if not payment.creditor_account_number.endswith(UNKNOWN_AT_OTHER_BANK):
        return _changed(facts, books, payment, now, ids, "payment.settled", status="settled",
                        settles_at_ms=None, settled_at=booked_at)
    # Money returned by the other bank is always taken back: no class cap applies.
    debtor_id = payment.debtor_account_id
    move = books.move(ledger.transfer(ledger.CLEARING, debtor_id, Fen(payment.amount_fen)),
                      {debtor_id: Narrative(f"退汇 Returned: {payment.payment_id}",
                                            payment.creditor_name,
                                            payment.creditor_account_number)},
                      booked_at=booked_at)
    return _changed(facts, books, payment, now, ids, "payment.failed", status="failed",
                    settles_at_ms=None, failure_code=CreditorAccountNotFound.code,
                    failure_detail="The creditor's bank has no account with that number; the "
                                   f"amount came back in movement {move.movement_id}.",
                    return_movement_id=move.movement_id)


@decides(seen_by, AccountNotInConsent, AlreadyRefunded, PaymentNotSettled, check_active,
         InsufficientFunds, check_credit)
def decide_refund(facts: PaymentFacts, *, consent_accounts: t.Collection[str], request_id: str,
                  now: dt.datetime, ids: IdSource) -> Booking:
    """The refund; a retry with the same request id answers with it again (`replayed`).
    It debits the payee's account, so it needs what any debit of it needs: the consent of its
    holder (`consent_accounts`, the accounts of the caller's consent with InitiatePayments).
    A payment to another bank comes back from that bank, at the payer's request."""
    payment = seen_by(facts.payment, facts.payment_id, consent_accounts)
    giver = payment.creditor_account_id or payment.debtor_account_id
    if giver not in consent_accounts:
        raise AccountNotInConsent(
            f"A refund of {payment.payment_id} debits account {giver}: it needs a consent of "
            "that account's holder with InitiatePayments.")
    if payment.status == "refunded":
        if payment.refund_request_id == request_id:
            return Booking(result=payment, replayed=True)
        raise AlreadyRefunded(f"Payment {payment.payment_id} was refunded at "
                              f"{payment.refunded_at}.")
    if payment.status != "settled":
        raise PaymentNotSettled(f"Payment {payment.payment_id} is {payment.status}: only a "
                                "settled payment can be refunded.")
    amount = Fen(payment.amount_fen)
    books = Books(facts.accounts.values(), ids, totals=facts.totals)
    debtor = books.account(payment.debtor_account_id)
    creditor_id = payment.creditor_account_id
    if creditor_id is not None:
        # A refund reverses the payment: the payee needs the funds back, but the class caps
        # on payments are not checked for giving money back (it still counts in the payee's
        # totals, as everything it sends does).
        payee = books.account(creditor_id)
        check_active(payee)
        if payee.balance_fen < amount:
            raise InsufficientFunds(f"Account {creditor_id} no longer holds the amount to "
                                    "refund.")
    check_credit(debtor, amount, payment.creditor_account_number,
                 books.usage(debtor.account_id, now.date().isoformat()), field=None)
    description = f"退款 Refund of {payment.payment_id}"
    narratives = {debtor.account_id: Narrative(description, payment.creditor_name,
                                               payment.creditor_account_number)}
    if creditor_id is not None:
        debtor_name = facts.names[debtor.customer_id]
        narratives[creditor_id] = Narrative(description, debtor_name, debtor.account_number)
    booked_at = now.isoformat(timespec="seconds")
    move = books.move(ledger.transfer(creditor_id or ledger.CLEARING, debtor.account_id, amount),
                      narratives, booked_at=booked_at)
    return _changed(facts, books, payment, now, ids, "payment.refunded", status="refunded",
                    refund_request_id=request_id, refund_movement_id=move.movement_id,
                    refunded_at=booked_at)


@decides(PaymentNotFound)
def _found(facts: PaymentFacts) -> Payment:
    if facts.payment is None:
        raise PaymentNotFound(f"No payment {facts.payment_id} for this partner.",
                              field="path.payment_id")
    return facts.payment


@decides(_found, PaymentNotHeld)
def _held(facts: PaymentFacts) -> Payment:
    payment = _found(facts)
    if payment.status != "held":
        raise PaymentNotHeld(f"Payment {payment.payment_id} is {payment.status}, not held: "
                             "there is nothing to decide.")
    return payment


@decides(_held, Conflict.over(check_credit))
def decide_release(facts: PaymentFacts, *, now: dt.datetime, ids: IdSource,
                   interbank_delay_s: float) -> Booking:
    """The held payment is booked on to its creditor as it would have been (settled, or
    pending at another bank), if the creditor can still take it."""
    payment = _held(facts)
    amount = Fen(payment.amount_fen)
    books = Books(facts.accounts.values(), ids, totals=facts.totals)
    booked_at = now.isoformat(timespec="seconds")
    narratives = {}
    creditor_id = payment.creditor_account_id
    if creditor_id is not None:
        debtor, target = books.account(payment.debtor_account_id), books.account(creditor_id)
        try:
            check_credit(target, amount, debtor.account_number,
                         books.usage(creditor_id, now.date().isoformat()), field=None)
        except Refusal as refusal:  # the payment's state is the conflict, not the request
            raise StateConflict(refusal, f"{refusal.detail} The payment stays held; reject it "
                                "or release it later.") from None
        debtor_name = facts.names[debtor.customer_id]
        note = payment.remittance_information
        narratives[creditor_id] = Narrative(
            f"转账 Transfer from {debtor_name}" + (f" · {note}" if note else ""), debtor_name,
            debtor.account_number)
    books.move(ledger.transfer(ledger.HELD, creditor_id or ledger.CLEARING, amount), narratives,
               booked_at=booked_at)
    if creditor_id is not None:
        return _changed(facts, books, payment, now, ids, "payment.settled", status="settled",
                        settled_at=booked_at)
    return _changed(facts, books, payment, now, ids, None, status="pending",
                    settles_at_ms=_settles_at_ms(now, interbank_delay_s))


@decides(_held)
def decide_reject(facts: PaymentFacts, *, now: dt.datetime, ids: IdSource) -> Booking:
    """The held payment fails; the money goes back to the debtor."""
    payment = _held(facts)
    debtor_id = payment.debtor_account_id
    books = Books(facts.accounts.values(), ids, totals=facts.totals)
    move = books.move(ledger.transfer(ledger.HELD, debtor_id, Fen(payment.amount_fen)),
                      {debtor_id: Narrative(f"退回 Returned by the bank: {payment.payment_id}",
                                            payment.creditor_name,
                                            payment.creditor_account_number)},
                      booked_at=now.isoformat(timespec="seconds"))
    return _changed(facts, books, payment, now, ids, "payment.failed", status="failed",
                    failure_code="RISK_REJECTED",
                    failure_detail="The bank's risk review rejected the payment; the amount "
                                   f"came back in movement {move.movement_id}.",
                    return_movement_id=move.movement_id)
