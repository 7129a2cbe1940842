"""Whether an account may send or receive an amount: status, funds, and its class's caps.

Plain functions over account records and usage figures; each declares what it refuses with.
The non-bound rule (a party other than the account's bound Type I account) is written here
once: `is_bound`, which both the caps and the running usage totals (`usage_change`) use.
Running totals are kept for the accounts whose class caps read them (`tracks_usage`); an
operator's daily limit on another account is summed from its statement when it is set.
"""

from __future__ import annotations

import dataclasses

from sandbox.money import Fen, to_yuan
from sandbox.records import Account
from sandbox.refusals import (
    AccountFrozen,
    AccountNotActive,
    BalanceLimitExceeded,
    InsufficientFunds,
    LimitExceeded,
    decides,
)
from sandbox.rules.account_class import (
    TYPE_II_NON_BOUND_DAILY,
    TYPE_II_NON_BOUND_YEARLY,
    TYPE_III_BALANCE_CAP,
    TYPE_III_OUT_DAILY,
    TYPE_III_OUT_YEARLY,
    AccountClass,
)


@dataclasses.dataclass(slots=True)
class Usage:
    """What an account already sent and received, today and this calendar year (Beijing)."""

    out_day: Fen = Fen(0)
    out_year: Fen = Fen(0)
    non_bound_out_day: Fen = Fen(0)
    non_bound_out_year: Fen = Fen(0)
    non_bound_in_day: Fen = Fen(0)
    non_bound_in_year: Fen = Fen(0)


def is_bound(account: Account, counterparty_number: str | None) -> bool:
    """Whether the other party of a movement is the account's bound account."""
    return counterparty_number is not None and counterparty_number == (
        account.bound_account_number)


def usage_change(account: Account, direction: str, amount: int,
                 counterparty_number: str | None) -> tuple[int, int, int]:
    """What one statement line adds to the account's (out, non-bound out, non-bound in)."""
    bound = is_bound(account, counterparty_number)
    if direction == "debit":
        return amount, 0 if bound else amount, 0
    return 0, 0, 0 if bound else amount


def tracks_usage(account: Account) -> bool:
    """Whether the account keeps running totals: only Type II and III accounts have class
    caps that read them."""
    return account.account_class in (AccountClass.TYPE_II, AccountClass.TYPE_III)


def balance_room(account: Account) -> Fen | None:
    """How much more the account may hold: Type III's balance cap less its balance; None for
    an account without one."""
    if account.account_class == AccountClass.TYPE_III:
        return Fen(TYPE_III_BALANCE_CAP - account.balance_fen)
    return None


def _caps(what: str, amount: Fen, today: tuple[Fen, Fen], this_year: tuple[Fen, Fen],
          field: str | None) -> None:
    """`what` today and this year, each (used so far, cap), with `amount` added."""
    for when, (used, cap) in (("today", today), ("this year", this_year)):
        if used + amount > cap:
            raise LimitExceeded(f"{what} {when} would reach {to_yuan(used + amount)} CNY; the "
                                f"cap is {to_yuan(cap)} CNY ({to_yuan(max(cap - used, 0))} CNY "
                                "left).", field=field)


@decides(AccountFrozen, AccountNotActive)
def check_active(account: Account) -> None:
    if account.status == "frozen":
        raise AccountFrozen(f"Account {account.account_id} is frozen.")
    if account.status != "active":
        raise AccountNotActive(f"Account {account.account_id} is {account.status}.")


@decides(check_active, InsufficientFunds, LimitExceeded)
def check_debit(account: Account, amount: Fen, counterparty_number: str | None,
                usage: Usage, *, field: str | None = "body.amount") -> None:
    """May `account` send `amount` to the account numbered `counterparty_number`? A refusal
    points at `field`, the amount in the request (None when the request has no body)."""
    check_active(account)
    if account.balance_fen < amount:
        raise InsufficientFunds(
            f"Account {account.account_id} holds {to_yuan(account.balance_fen)} CNY; the order "
            f"needs {to_yuan(amount)} CNY.", field=field)
    cls = AccountClass(account.account_class)
    if cls is AccountClass.TYPE_II and not is_bound(account, counterparty_number):
        _caps("Type II payments to non-bound accounts", amount,
              (usage.non_bound_out_day, TYPE_II_NON_BOUND_DAILY),
              (usage.non_bound_out_year, TYPE_II_NON_BOUND_YEARLY), field)
    if cls is AccountClass.TYPE_III:
        _caps("Type III payments", amount, (usage.out_day, TYPE_III_OUT_DAILY),
              (usage.out_year, TYPE_III_OUT_YEARLY), field)


@decides(check_active, LimitExceeded, BalanceLimitExceeded)
def check_credit(account: Account, amount: Fen, counterparty_number: str | None,
                 usage: Usage, *, field: str | None = "body.amount") -> None:
    """May `account` receive `amount` from the account numbered `counterparty_number`? A
    refusal points at `field`, as `check_debit`'s does."""
    check_active(account)
    cls = AccountClass(account.account_class)
    if cls is AccountClass.TYPE_II and not is_bound(account, counterparty_number):
        _caps("Type II deposits from non-bound accounts", amount,
              (usage.non_bound_in_day, TYPE_II_NON_BOUND_DAILY),
              (usage.non_bound_in_year, TYPE_II_NON_BOUND_YEARLY), field)
    if cls is AccountClass.TYPE_III and account.balance_fen + amount > TYPE_III_BALANCE_CAP:
        raise BalanceLimitExceeded(
            f"A Type III account holds at most {to_yuan(TYPE_III_BALANCE_CAP)} CNY; this would "
            f"make {to_yuan(account.balance_fen + amount)} CNY.", field=field)
