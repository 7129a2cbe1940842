"""Double-entry ledger: every money movement is a set of legs, in integer fen, summing to zero.

A leg's amount is signed from the ledger account's point of view: positive raises its balance
(a credit to a customer account), negative lowers it. Customer accounts are ledger accounts
under their account_id; the bank's own side of a movement lands on internal accounts, so the
sum of all legs of a partner's bank is zero, always.
"""

from __future__ import annotations

import dataclasses
import itertools

from sandbox.money import Fen

CLEARING = "internal:interbank-clearing"  # money to and from other banks and merchants
HELD = "internal:held-for-review"  # payments a risk rule holds until an operator decides
BANK_EQUITY = "internal:bank-equity"  # opening balances brought forward, interest paid


class UnbalancedMovement(ValueError):
    """Legs that do not sum to zero: a bug, never a partner's fault."""


@dataclasses.dataclass(frozen=True)
class Leg:
    ledger_account: str
    amount: Fen


def balanced(legs: list[Leg]) -> list[Leg]:
    """`legs`, after checking that they form one movement: two or more, summing to zero."""
    if len(legs) < 2 or sum(leg.amount for leg in legs) != 0:
        raise UnbalancedMovement(f"legs do not balance: {legs!r}")
    return legs


def transfer(debtor: str, creditor: str, amount: Fen) -> list[Leg]:
    if amount <= 0:
        raise UnbalancedMovement(f"a transfer moves a positive amount, not {amount!r}")
    return balanced([Leg(debtor, Fen(-amount)), Leg(creditor, Fen(amount))])


def history_journal(postings) -> list[dict]:
    """The journal of a generated history: its customer legs, grouped by movement, and for a
    movement with one side outside the bank, the contra leg on an internal account."""
    rows = []
    by_movement = itertools.groupby(sorted(postings, key=lambda p: (p.movement_id, p.seq,
                                                                   p.account_id)),
                                    key=lambda p: p.movement_id)
    for movement_id, group in by_movement:
        group = list(group)
        legs = [Leg(p.account_id, Fen(p.amount_fen if p.direction == "credit" else -p.amount_fen))
                for p in group]
        rest = -sum(leg.amount for leg in legs)
        if rest:
            contra = BANK_EQUITY if group[0].channel == "system" else CLEARING
            legs.append(Leg(contra, Fen(rest)))
        for number, leg in enumerate(balanced(legs), start=1):
            rows.append({"movement_id": movement_id, "leg": number,
                         "ledger_account": leg.ledger_account, "amount_fen": int(leg.amount),
                         "booked_at": group[0].booked_at})
    return rows
