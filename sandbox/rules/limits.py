"""Whether an account may send or receive an amount: funds, status, and its class's caps.

Plain functions over account rows and usage figures; a refusal is a `Refusal` with a stable code,
which the API turns into a 422 problem.
"""

from __future__ import annotations

import dataclasses

from sandbox.money import Fen, to_yuan
from sandbox.rules import Refusal
from sandbox.rules.account_class import (
    TYPE_II_NON_BOUND_DAILY,
    TYPE_II_NON_BOUND_YEARLY,
    TYPE_III_BALANCE_CAP,
    TYPE_III_OUT_DAILY,
    TYPE_III_OUT_YEARLY,
    AccountClass,
)


@dataclasses.dataclass(frozen=True)
class Usage:
    """What an account already sent and received, today and this calendar year (Beijing)."""

    out_day: Fen = Fen(0)
    out_year: Fen = Fen(0)
    non_bound_out_day: Fen = Fen(0)
    non_bound_out_year: Fen = Fen(0)
    non_bound_in_day: Fen = Fen(0)
    non_bound_in_year: Fen = Fen(0)


def _cap(code: str, what: str, used: Fen, amount: Fen, cap: Fen) -> None:
    if used + amount > cap:
        raise Refusal(code, f"{what} would reach {to_yuan(used + amount)} CNY; the cap is "
                            f"{to_yuan(cap)} CNY ({to_yuan(max(cap - used, 0))} CNY left).",
                      field="body.amount")


def _is_bound(account: dict, counterparty_number: str | None) -> bool:
    return counterparty_number is not None and counterparty_number == account[
        "bound_account_number"]


def check_active(account: dict) -> None:
    if account["status"] == "frozen":
        raise Refusal("ACCOUNT_FROZEN", f"Account {account['account_id']} is frozen.")
    if account["status"] != "active":
        raise Refusal("ACCOUNT_NOT_ACTIVE",
                      f"Account {account['account_id']} is {account['status']}.")


def needs_usage(account: dict, controls: dict | None = None) -> bool:
    """Whether the checks below (and an operator's daily limit) read `account`'s usage: only
    Type II and III accounts have class caps, so without a daily limit the others' history is
    not summed."""
    return (AccountClass(account["account_class"]) in (AccountClass.TYPE_II,
                                                       AccountClass.TYPE_III)
            or (controls is not None and controls["daily_limit_fen"] is not None))


def check_debit(account: dict, amount: Fen, counterparty_number: str | None,
                usage: Usage) -> None:
    """May `account` send `amount` to the account numbered `counterparty_number`?"""
    check_active(account)
    if account["balance_fen"] < amount:
        raise Refusal("INSUFFICIENT_FUNDS",
                      f"Account {account['account_id']} holds {to_yuan(account['balance_fen'])} "
                      f"CNY; the order needs {to_yuan(amount)} CNY.", field="body.amount")
    cls = AccountClass(account["account_class"])
    bound = _is_bound(account, counterparty_number)
    if cls is AccountClass.TYPE_II and not bound:
        _cap("LIMIT_EXCEEDED", "Type II payments to non-bound accounts today",
             usage.non_bound_out_day, amount, TYPE_II_NON_BOUND_DAILY)
        _cap("LIMIT_EXCEEDED", "Type II payments to non-bound accounts this year",
             usage.non_bound_out_year, amount, TYPE_II_NON_BOUND_YEARLY)
    if cls is AccountClass.TYPE_III:
        _cap("LIMIT_EXCEEDED", "Type III payments today", usage.out_day, amount,
             TYPE_III_OUT_DAILY)
        _cap("LIMIT_EXCEEDED", "Type III payments this year", usage.out_year, amount,
             TYPE_III_OUT_YEARLY)


def check_credit(account: dict, amount: Fen, counterparty_number: str | None,
                 usage: Usage) -> None:
    """May `account` receive `amount` from the account numbered `counterparty_number`?"""
    check_active(account)
    cls = AccountClass(account["account_class"])
    bound = _is_bound(account, counterparty_number)
    if cls is AccountClass.TYPE_II and not bound:
        _cap("LIMIT_EXCEEDED", "Type II deposits from non-bound accounts today",
             usage.non_bound_in_day, amount, TYPE_II_NON_BOUND_DAILY)
        _cap("LIMIT_EXCEEDED", "Type II deposits from non-bound accounts this year",
             usage.non_bound_in_year, amount, TYPE_II_NON_BOUND_YEARLY)
    if cls is AccountClass.TYPE_III and account["balance_fen"] + amount > TYPE_III_BALANCE_CAP:
        raise Refusal("BALANCE_LIMIT_EXCEEDED",
                      f"A Type III account holds at most {to_yuan(TYPE_III_BALANCE_CAP)} CNY; "
                      f"this would make {to_yuan(account['balance_fen'] + amount)} CNY.",
                      field="body.amount")
