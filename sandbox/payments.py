"""Payments as requests and the other bank move them: each step loads its facts, lets a decision
of `rules.payments` decide and writes the booking, in one transaction (`store.ledger.carry_out`).

Each runs in one store transaction that locks the accounts it touches, so concurrent orders from
any number of server processes never overdraw an account or break a class cap, and an order is
either wholly booked with its payment record or not at all. The partner's request id makes
retries safe: the same id and body give back the payment already made; the same id with
another body is refused.
"""

from __future__ import annotations

import hashlib
import typing as t

import orjson

from sandbox.clock import Clock
from sandbox.mint import IdSource
from sandbox.money import Fen
from sandbox.records import Payment
from sandbox.refusals import Refusal, RiskRefused
from sandbox.rules import payments as rules
from sandbox.rules.payments import Order, replay
from sandbox.rules.risk import risk_event
from sandbox.store import DuplicateError, Store


def request_hash(body: dict) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def post_transfer(store: Store, clock: Clock, partner_id: str, request_id: str,
                        body: dict, *, consent_accounts: frozenset[str],
                        interbank_delay: float = 2.0) -> tuple[Payment, bool]:
    """(payment, replayed): the payment this order made, now or on an earlier try.
    `consent_accounts` are those of the consent the order came with. A payment to another bank
    stays pending for `interbank_delay` seconds."""
    order = Order(partner_id=partner_id, request_id=request_id, request_hash=request_hash(body),
                  debtor_account_id=body["debtor_account_id"], creditor=body["creditor"],
                  amount=Fen.from_yuan(body["amount"]["amount"]),
                  remittance_information=body.get("remittance_information"),
                  consent_accounts=consent_accounts)
    now, ids = clock.now(), IdSource.fresh()
    try:
        booking = await store.ledger.carry_out(
            partner_id, lambda tx: store.ledger.transfer_facts(tx, order, now),
            lambda facts: rules.decide_transfer(order, facts, now=now, ids=ids,
                                                 interbank_delay_s=interbank_delay))
    except (DuplicateError, Refusal) as exc:
        # A concurrent try with the same request id booked first: answer with its payment.
        # It may also have made this try's checks fail (on PostgreSQL this try waits for the
        # account locks and then sees the funds the other one spent): the answer is still the
        # payment made, not a refusal.
        async with store.transaction() as tx:
            existing = await store.ledger.payment_by_request(tx, partner_id, request_id)
        if existing is None:
            if isinstance(exc, RiskRefused):
                # Recorded after the order's own transaction rolled back, so it stays.
                await store.control.add_risk_event(risk_event(
                    exc, partner_id=partner_id, event_id=ids.next("rsk"),
                    account_id=order.debtor_account_id, action="refused", amount=order.amount,
                    request_id=request_id, at=clock.now().isoformat(timespec="microseconds")))
            raise
        return replay(existing, order), True
    return booking.result, booking.replayed


async def _step(store: Store, clock: Clock, partner_id: str, payment_id: str,
                decision: t.Callable, **inputs):
    """A later step of a payment: its facts (the payment and its accounts, locked), decided."""
    now = clock.now()
    return await store.ledger.carry_out(
        partner_id,
        lambda tx: store.ledger.payment_facts(tx, partner_id, payment_id, now.date().isoformat()),
        lambda facts: decision(facts, now=now, ids=IdSource.fresh(), **inputs))


async def settle_due(store: Store, clock: Clock, limit: int = 50) -> int:
    """Answers the payments to other banks that are due; how many it found."""
    due = await store.ledger.due_settlements(int(clock.timestamp() * 1000), limit)
    for row in due:
        await settle_payment(store, clock, row["partner_id"], row["payment_id"])
    return len(due)


async def settle_payment(store: Store, clock: Clock, partner_id: str,
                         payment_id: str) -> Payment | None:
    """The other bank's answer to a pending payment: settled, or failed with the money back.
    Whichever process locks the payment first decides; the others find it decided (None)."""
    booking = await _step(store, clock, partner_id, payment_id, rules.decide_answer)
    return booking.result if booking is not None else None


async def refund_payment(store: Store, clock: Clock, partner_id: str, payment_id: str,
                         request_id: str, *, consent_accounts: frozenset[str]
                         ) -> tuple[Payment, bool]:
    """(payment, replayed): the whole amount goes back to the debtor, once, if the payee's
    holder consented (`consent_accounts`: the accounts of the caller's consent)."""
    booking = await _step(store, clock, partner_id, payment_id, rules.decide_refund,
                          request_id=request_id, consent_accounts=consent_accounts)
    return booking.result, booking.replayed


async def release_payment(store: Store, clock: Clock, partner_id: str, payment_id: str, *,
                          interbank_delay: float = 2.0) -> Payment:
    """The operator lets a held payment go on, if its creditor can still take it."""
    booking = await _step(store, clock, partner_id, payment_id, rules.decide_release,
                          interbank_delay_s=interbank_delay)
    return booking.result


async def reject_payment(store: Store, clock: Clock, partner_id: str, payment_id: str) -> Payment:
    """The operator stops a held payment: it fails and the money goes back to the debtor."""
    return (await _step(store, clock, partner_id, payment_id, rules.decide_reject)).result
