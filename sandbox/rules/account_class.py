"""PBOC personal account classes (银发〔2016〕302号) and the caps each class carries."""

from __future__ import annotations

import enum

from sandbox.money import Fen


class AccountClass(enum.StrEnum):
    TYPE_I = "I"  # full-function account, opened in person; no class caps
    TYPE_II = "II"  # online account bound to a Type I account; capped with non-bound parties
    TYPE_III = "III"  # small-payments online account; balance and outflow capped
    BASIC = "BASIC"  # a company's basic deposit account (单位基本存款账户)


# Type II: payments to, and deposits from, accounts other than the bound one.
TYPE_II_NON_BOUND_DAILY = Fen.from_yuan("10000")
TYPE_II_NON_BOUND_YEARLY = Fen.from_yuan("200000")
# Type III: balance at any moment, and everything going out.
TYPE_III_BALANCE_CAP = Fen.from_yuan("2000")
TYPE_III_OUT_DAILY = Fen.from_yuan("2000")
TYPE_III_OUT_YEARLY = Fen.from_yuan("50000")

ONLINE_CLASSES = (AccountClass.TYPE_II, AccountClass.TYPE_III)
