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
from sandbox.rules import Refusal


class RiskRefusal(Refusal):
    """Refused by a real-time risk rule; the refusal is recorded as a risk event."""

    def __init__(self, rule: str, detail: str):
        super().__init__("RISK_REFUSED", detail, field="body.amount")
        self.rule = rule


def check_controls(controls: dict | None, whose: str, amount: Fen, out_today: Fen) -> None:
    """The operator's controls for `whose` ("partner acme", "account acc_…")."""
    if controls is None:
        return
    if controls["payments_closed"]:
        raise Refusal("PAYMENTS_CLOSED", f"Payments are closed for {whose} by the bank.")
    single = controls["single_limit_fen"]
    if single is not None and amount > single:
        raise Refusal("LIMIT_EXCEEDED", f"The bank limits a payment of {whose} to "
                      f"{to_yuan(single)} CNY.", field="body.amount")
    daily = controls["daily_limit_fen"]
    if daily is not None and out_today + amount > daily:
        raise Refusal("LIMIT_EXCEEDED", f"The bank limits payments of {whose} to "
                      f"{to_yuan(daily)} CNY a day ({to_yuan(max(daily - out_today, 0))} CNY "
                      "left today).", field="body.amount")


def check_large_amount(controls: dict | None, amount: Fen) -> None:
    threshold = controls and controls["large_amount_fen"]
    if threshold and amount >= threshold:
        raise RiskRefusal("LARGE_AMOUNT", f"A single payment of {to_yuan(amount)} CNY reaches "
                          f"the large-amount rule ({to_yuan(threshold)} CNY).")


def check_velocity(controls: dict | None, recent_payments: int) -> None:
    """`recent_payments`: from the paying account within the rule's window, this one excluded."""
    count = controls and controls["velocity_count"]
    if count and recent_payments >= count:
        raise RiskRefusal("VELOCITY", f"{recent_payments} payments from this account in the "
                          f"last {controls['velocity_window_s']} s reach the velocity rule "
                          f"({count}).")
