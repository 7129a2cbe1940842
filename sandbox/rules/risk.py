"""Operator controls and real-time risk rules, as plain checks over figures the store gives.

Controls are what a bank operator set (Everbright-style): a closed payment permission, a limit
per payment, a limit per day, for a whole partner or one account. Risk rules, switched on by the
operator with thresholds of its choosing, run on every payment of that partner or account: a
single large amount, or too many payments from one account in a short window, is refused or,
if the operator chose `hold`, held for the operator to release or reject; either way it is
recorded as a risk event. Everything is off until the operator sets it, so load tests and
partners' own tests see only the bank's fixed rules (funds, account classes).
"""

from __future__ import annotations

from sandbox.money import Fen, to_yuan
from sandbox.records import Controls, RiskEvent
from sandbox.refusals import LimitExceeded, PaymentsClosed, RiskRefused, decides


@decides(PaymentsClosed, LimitExceeded)
def check_controls(controls: Controls | None, whose: str, amount: Fen, out_today: Fen) -> None:
    """The operator's controls for `whose` ("this partner", "account acc_…")."""
    if controls is None:
        return
    if controls.payments_closed:
        raise PaymentsClosed(f"Payments are closed for {whose} by the bank.")
    single = controls.single_limit_fen
    if single is not None and amount > single:
        raise LimitExceeded(f"The bank limits a payment of {whose} to {to_yuan(single)} CNY.",
                            field="body.amount")
    daily = controls.daily_limit_fen
    if daily is not None and out_today + amount > daily:
        raise LimitExceeded(f"The bank limits payments of {whose} to {to_yuan(daily)} CNY a day "
                            f"({to_yuan(max(daily - out_today, 0))} CNY left today).",
                            field="body.amount")


@decides(RiskRefused)
def check_large_amount(controls: Controls | None, amount: Fen) -> None:
    threshold = controls and controls.large_amount_fen
    if threshold and amount >= threshold:
        raise RiskRefused(f"A single payment of {to_yuan(amount)} CNY reaches the large-amount "
                          f"rule ({to_yuan(threshold)} CNY).", rule="LARGE_AMOUNT")


@decides(RiskRefused)
def check_velocity(controls: Controls | None, recent_payments: int) -> None:
    """`recent_payments`: from the paying account within the rule's window, this one excluded."""
    count = controls and controls.velocity_count
    if count and recent_payments >= count:
        raise RiskRefused(f"{recent_payments} payments from this account in the last "
                          f"{controls.velocity_window_s} s reach the velocity rule ({count}).",
                          rule="VELOCITY")


def risk_event(refusal: RiskRefused, *, partner_id: str, event_id: str, account_id: str,
               action: str, amount: Fen, request_id: str, at: str,
               payment_id: str | None = None) -> RiskEvent:
    """The record of a rule that refused (`action` "refused") or held ("held") a payment."""
    return RiskEvent(partner_id=partner_id, event_id=event_id, account_id=account_id,
                     rule=refusal.rule, action=action, amount_fen=int(amount),
                     request_id=request_id, detail=refusal.detail, created_at=at,
                     payment_id=payment_id)
