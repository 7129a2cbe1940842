"""Every decision, for any facts the store could load: pure, deterministic, and balanced.

Money moves as load → decide → write, and everything between the load and the write is a
decision function: facts in, a `Booking` (or a refusal) out. Hypothesis generates the facts the
store would load for each of them — accounts of every class and status, balances from nothing to
billions, usage totals at and around the class caps, an operator's controls and risk rules, a
payment in every status, creditors inside the bank and at other banks — each time aimed at one
rule that could stop the decision, with the facts put on that rule's edge, and holds each
decision to this:

* it is pure: run again while every door it must not use raises (the store and its databases,
  the clock, the system's time, every minting of ids and secrets), it returns the same outcome
  and touches none of them, and it leaves its facts as they were;
* it is deterministic: the same facts, `now` and `IdSource(seed)` give an equal booking, or a
  refusal of the same class, code, detail and field;
* it refuses only with what it declares (`refusals.decides`);
* every booking balances: each entry's legs sum to zero per currency; each leg on a customer
  account has its statement line (same amount, same direction); each account's lines continue
  its `last_seq` one by one with the running balance; each account saved holds its old balance
  plus its legs; the usage totals grow by what the lines add; no balance ends below zero and no
  Type III account above 2000.00 CNY (money coming back excepted: see the last test).

The consent rules return `Consent` records, not bookings: they are held to purity, determinism
and their declarations. A separate, derandomised test shows the generated facts reach every
outcome each decision declares, and every way it books — a strategy that never reaches a branch
proves nothing — and the oracle tests after it hold `Entry` and `Books` to balance on their own
(a refused `Books.move` leaves the books as they were).
"""

from __future__ import annotations

import collections
import contextlib
import copy
import dataclasses
import datetime as dt
import functools
import os
import random
import re
import secrets
import time
import typing as t
import uuid

import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

import sandbox.store.postgres  # noqa: F401  (its database and transaction classes get sealed)
import sandbox.store.sqlite  # noqa: F401
from sandbox import ids as identifiers
from sandbox import ledger, mint
from sandbox.bank.directory import BY_CODE, SANDBOX_BANK_CODE
from sandbox.bank.generate import SANDBOX_BIN
from sandbox.clock import BEIJING, Clock
from sandbox.ledger import Booking, Books, Entry, Leg, Narrative, UnbalancedEntry
from sandbox.mint import IdSource
from sandbox.money import Fen
from sandbox.records import Account, Consent, Controls, Customer, Payment
from sandbox.refusals import BalanceLimitExceeded, Refusal, RiskRefused, StateConflict
from sandbox.rules import account_class, consents
from sandbox.rules.account_class import ONLINE_CLASSES, AccountClass
from sandbox.rules.accounts import OpeningFacts, decide_opening
from sandbox.rules.limits import is_bound, tracks_usage
from sandbox.rules.payments import (
    UNKNOWN_AT_OTHER_BANK,
    Order,
    PaymentFacts,
    TransferFacts,
    decide_answer,
    decide_refund,
    decide_reject,
    decide_release,
    decide_transfer,
)
from sandbox.store import Store
from sandbox.store.base import Database, Topic, Transaction

PARTNER = "ptn_5eed5eed5eed5eed"
OTHER_BANKS = tuple(code for code in BY_CODE if code != SANDBOX_BANK_CODE)
NOT_IN_DIRECTORY = ("999100000002", "102100099990", "000000000000")
NAMES = ("王芳", "李伟", "张敏", "刘洋", "陈静", "杭州西湖茶业有限公司")
NOTES = (None, "房租 November rent", "午饭")
NOW = st.datetimes(min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2027, 12, 31),
                   timezones=st.just(BEIJING))
# The class caps, in fen: Type II with non-bound parties (a day, a year); Type III's balance,
# and what it sends (a day, a year).
II_DAY, II_YEAR = (int(account_class.TYPE_II_NON_BOUND_DAILY),
                   int(account_class.TYPE_II_NON_BOUND_YEARLY))
III_CAP, III_DAY, III_YEAR = (int(account_class.TYPE_III_BALANCE_CAP),
                              int(account_class.TYPE_III_OUT_DAILY),
                              int(account_class.TYPE_III_OUT_YEARLY))
PAYMENT_STATUSES = ("held", "pending", "settled", "failed", "refunded")
# Fen no class cap limits (Type I and BASIC accounts; what Type II sends its bound account).
UNCAPPED = 10**12


# -- the world a decision must not touch -------------------------------------------------------

class ForbiddenCall(AssertionError):
    """A decision reached for the store, the clock or a source of ids or randomness."""


TOUCHED: list[str] = []  # what the decision running in the sealed world reached for


def forbidden(where: str) -> t.Callable[..., t.NoReturn]:
    def touch(*args: t.Any, **kwargs: t.Any) -> t.NoReturn:
        TOUCHED.append(where)
        raise ForbiddenCall(f"a decision used {where}: what it needs is one of its inputs")
    return touch


class SealedDatetime(dt.datetime):
    now = staticmethod(forbidden("datetime.datetime.now"))
    utcnow = staticmethod(forbidden("datetime.datetime.utcnow"))
    today = staticmethod(forbidden("datetime.datetime.today"))


class SealedDate(dt.date):
    today = staticmethod(forbidden("datetime.date.today"))


class SealedRandom:
    """mint's process-wide generator, sealed: any draw from it raises."""

    def __getattr__(self, name: str) -> t.Any:
        return forbidden(f"sandbox.mint._random.{name}")


def subclasses(cls: type) -> t.Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)


def sealed_classes() -> set[type]:
    """The store, its topics, every database and transaction backend, and every clock."""
    return {Store, Clock, *subclasses(Clock), *subclasses(Database), *subclasses(Transaction),
            *subclasses(Topic)}


@contextlib.contextmanager
def sealed_world() -> t.Iterator[None]:
    """Every door a decision must not use raises (and is recorded) while the block runs."""
    TOUCHED.clear()
    with pytest.MonkeyPatch.context() as patch:
        for cls in sealed_classes():
            for name, member in list(vars(cls).items()):
                if name.startswith("__") and name not in ("__aenter__", "__aexit__"):
                    continue
                if callable(member) or isinstance(member, (staticmethod, classmethod)):
                    patch.setattr(cls, name, forbidden(f"{cls.__qualname__}.{name}"))
        for module, names in (
                (time, ("time", "time_ns")),
                (mint, ("record_id", "secret", "hex_secret")),
                (secrets, ("token_bytes", "token_hex", "token_urlsafe", "randbits", "choice",
                           "randbelow")),
                (os, ("urandom",)),
                (uuid, ("uuid1", "uuid4")),
                (random, ("random", "randrange", "randint", "choice", "choices", "shuffle",
                          "sample", "getrandbits", "uniform", "randbytes"))):
            for name in names:
                patch.setattr(module, name, forbidden(f"{module.__name__}.{name}"))
        patch.setattr(IdSource, "fresh", forbidden("IdSource.fresh"))
        patch.setattr(mint, "_random", SealedRandom())
        patch.setattr(dt, "datetime", SealedDatetime)
        patch.setattr(dt, "date", SealedDate)
        yield
    assert not TOUCHED, f"the decision reached for {TOUCHED} (and swallowed the error)"


# -- decisions, their calls and their outcomes -------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Call:
    """One decision on generated facts: `fn(*args, **kwargs, ids=IdSource(seed))`."""

    fn: t.Callable
    args: tuple
    kwargs: dict
    seed: int | None = None  # None: a consent rule, which draws no ids
    loaded: dict[str, Account] = dataclasses.field(default_factory=dict)  # accounts in facts
    money_back: bool = False  # its only credit returns money the account sent

    def __call__(self) -> t.Any:
        ids = {} if self.seed is None else {"ids": IdSource(self.seed)}
        return self.fn(*self.args, **self.kwargs, **ids)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What a decision returned, or how it refused (class, status, code, detail, field, extra,
    risk rule, cause): equal outcomes are the same answer."""

    value: t.Any = None
    refusal: tuple | None = None
    error: Refusal | None = dataclasses.field(default=None, compare=False)


def decide(call: Call) -> Outcome:
    try:
        return Outcome(value=call())
    except Refusal as refusal:
        cause = getattr(refusal, "cause", None)
        return Outcome(refusal=(type(refusal), refusal.status, refusal.code, refusal.detail,
                                refusal.field, refusal.extra, getattr(refusal, "rule", None),
                                type(cause), cause and cause.detail),
                       error=refusal)


def branch(refusal: Refusal) -> str:
    """Which rule said no, where one code has several: the risk rule, or the class cap or the
    operator's limit a LIMIT_EXCEEDED names."""
    refusal = getattr(refusal, "cause", refusal)
    if isinstance(refusal, RiskRefused):
        return refusal.rule
    if refusal.code == "LIMIT_EXCEEDED":
        cap = re.match(r"(Type .+?) would reach", refusal.detail)
        if cap:
            return cap[1]
        limit = re.match(r"The bank limits (a payment|payments) of (this partner|account)",
                         refusal.detail)
        if limit:
            return (f"{'single' if limit[1] == 'a payment' else 'daily'} limit of "
                    f"{'the partner' if limit[2] == 'this partner' else 'the account'}")
    return ""


def label(call: Call, outcome: Outcome) -> str:
    """The outcome in words, for `event` and for the reach of the strategies."""
    if outcome.error is not None:
        refusal = outcome.error
        where = branch(refusal)
        return f"{refusal.status} {refusal.code}" + (f": {where}" if where else "")
    value = outcome.value
    if call.fn in (consents.covers, consents.require):
        return "covered"
    if value is None:
        return "nothing to decide"
    if isinstance(value, Consent):
        return value.status
    if value.replayed:
        return "replayed"
    if isinstance(value.result, Account):
        return f"opened {value.result.account_class}"
    payment = value.result
    return f"booked: {payment.status}" + (", another bank" if payment.creditor_account_id is None
                                          else "")


# -- strategies: the bank's pieces -------------------------------------------------------------
# The pieces are drawn by helpers that take `draw` and return values; the strategies they draw
# from are built once, here (building a strategy per draw costs more than the decision).

T = t.TypeVar("T")
OUT, NON_BOUND_OUT, NON_BOUND_IN = 0, 1, 2  # the columns of a usage total
# The class caps on a usage column, a day and a year; Type III's balance cap stands apart.
CAPS = {("II", NON_BOUND_OUT): (II_DAY, II_YEAR), ("II", NON_BOUND_IN): (II_DAY, II_YEAR),
        ("III", OUT): (III_DAY, III_YEAR)}
BIG = st.integers(0, 2**64 - 1)
SEEDS = BIG  # an IdSource's
VELOCITY_COUNTS = st.integers(1, 10)
BOOLEANS = st.booleans()
PER_MILLE = st.integers(0, 1000)
SHORT_OF = st.integers(0, 100_000)  # fen short of a cap
BALANCES = st.one_of(st.integers(0, 10**6), st.integers(10**6, 10**10),
                     st.integers(10**10, UNCAPPED))  # fen: up to ten billion yuan
AMOUNTS = st.one_of(st.integers(1, 10_000), st.integers(10_000, 10**6),
                    st.integers(10**6, 10**10))
LIMITS = st.integers(0, 10**10)
COUNTS = st.integers(0, 20)
OUR_DIGITS = st.integers(0, 10**13 - 1)
THEIR_DIGITS = st.integers(0, 10**9 - 1)
TAILS = st.integers(1, 9999)
LAST_SEQS = st.integers(0, 100_000)
LATER = st.integers(0, 10**7)  # seconds between a payment and a later step of it
ORDINALS = st.integers(1, 10**5)
BIRTH_DATES = st.dates(min_value=dt.date(1940, 1, 1), max_value=dt.date(2008, 12, 31))
CARD_LENGTHS = st.integers(16, 19)
RNG_SEEDS = st.integers(0, 2**32)
DELAYS = st.sampled_from((2.0, 0.5, 30.0))


@functools.cache
def indexes(n: int) -> st.SearchStrategy[int]:
    return st.integers(0, n - 1)


def pick(draw: t.Callable, options: t.Sequence[T]) -> T:
    return options[draw(indexes(len(options)))]


def one_in(draw: t.Callable, n: int) -> bool:
    """True about once in `n` draws (on the middle of the range: Hypothesis favours its ends,
    and shrinks to the start, the common case)."""
    return draw(indexes(n)) == n // 2


def record_id(draw: t.Callable, prefix: str) -> str:
    return f"{prefix}_{draw(BIG):016x}"


def our_number(draw: t.Callable) -> str:
    """An account number of this bank: its BIN and 13 digits."""
    return f"{SANDBOX_BIN}{draw(OUR_DIGITS):013d}"


def their_number(draw: t.Callable) -> str:
    """A card of another bank; half of them end in 0000, which no other bank has."""
    tail = UNKNOWN_AT_OTHER_BANK if draw(BOOLEANS) else f"{draw(TAILS):04d}"
    return f"{pick(draw, identifiers.UNIONPAY_BINS)}{draw(THEIR_DIGITS):09d}{tail}"


def external_number(draw: t.Callable, debtor: Account) -> str:
    """A number at another bank: any card, or now and then the debtor's bound card there."""
    bound = debtor.bound_account_number
    if bound and not bound.startswith(SANDBOX_BIN) and draw(BOOLEANS):
        return bound
    return their_number(draw)


def spent(draw: t.Callable, cap: int) -> int:
    """A figure of at most `cap`: nothing, some, or nearly all of it."""
    how = pick(draw, ("nothing", "some", "some", "nearly all"))
    if how == "nothing":
        return 0
    if how == "some":
        return cap * draw(PER_MILLE) // 1000
    return max(0, cap - draw(SHORT_OF))


def account(draw: t.Callable, account_id: str, customer_id: str, number: str,
            cls: AccountClass | None = None) -> Account:
    """A customer account of any class (or `cls`), mostly active; a Type II or III account is
    bound to an account here or a card of another bank; a Type III one holds at most its cap."""
    cls = cls or pick(draw, tuple(AccountClass))
    online = cls in ONLINE_CLASSES
    return Account(
        partner_id=PARTNER, account_id=account_id, ordinal=draw(ORDINALS),
        customer_id=customer_id, account_number=number, account_class=cls.value,
        product_name=f"{cls.value} 类账户", currency="CNY",
        status="frozen" if one_in(draw, 12) else "active", opened_on="2024-03-01",
        bound_account_number=(our_number(draw) if draw(BOOLEANS) else their_number(draw))
        if online else None,
        balance_fen=spent(draw, III_CAP) if cls is AccountClass.TYPE_III
        else draw(BALANCES),
        last_seq=draw(LAST_SEQS))


def two_accounts(draw: t.Callable, classes: tuple[AccountClass | None, AccountClass | None]
                 ) -> tuple[Account, Account]:
    """A debtor and another account of the partner (of `classes`, where given), of the same
    customer or another; a Type II or III one of them sometimes bound to the other (as the
    bank binds a customer's online accounts to their Type I account)."""
    first = our_number(draw)
    second = our_number(draw)
    second = second if second != first else f"{SANDBOX_BIN}{(int(first[6:]) + 1) % 10**13:013d}"
    debtor = account(draw, "acc_00000000000000d1", "cus_00000000000000c1", first, classes[0])
    other = account(draw, "acc_00000000000000c2",
                    pick(draw, ("cus_00000000000000c1", "cus_00000000000000c2")), second,
                    classes[1])
    if debtor.bound_account_number and draw(BOOLEANS):
        debtor = dataclasses.replace(debtor, bound_account_number=other.account_number)
    if other.bound_account_number and draw(BOOLEANS):
        other = dataclasses.replace(other, bound_account_number=debtor.account_number)
    return debtor, other


Figures = dict[tuple[str, str], list[int]]  # (account, period) → out, non-bound out, in


def usage(draw: t.Callable, account: Account, day: str) -> Figures:
    """What the usage table holds for `account` today and this year, within its class's caps
    (the bank enforced them), often close to them."""
    cls = account.account_class
    out_caps = CAPS.get((cls, OUT), (UNCAPPED, 10 * UNCAPPED))
    non_bound_out_caps = CAPS.get((cls, NON_BOUND_OUT), out_caps)
    in_caps = CAPS.get((cls, NON_BOUND_IN), (UNCAPPED, 10 * UNCAPPED))
    non_bound_out_day = spent(draw, non_bound_out_caps[0])
    out_day = non_bound_out_day + spent(draw, out_caps[0] - non_bound_out_day)
    more_non_bound = spent(draw, min(non_bound_out_caps[1] - non_bound_out_day,
                                     out_caps[1] - out_day))
    more_out = more_non_bound + spent(draw, out_caps[1] - out_day - more_non_bound)
    in_day = spent(draw, in_caps[0])
    in_year = in_day + spent(draw, in_caps[1] - in_day)
    return {(account.account_id, day): [out_day, non_bound_out_day, in_day],
            (account.account_id, day[:4]): [out_day + more_out,
                                            non_bound_out_day + more_non_bound, in_year]}


def on_edge(figures: Figures, account: Account, day: str, column: int, period: str,
            amount: int, over: int) -> None:
    """Puts the account's usage where `amount` more reaches its class cap of `period` exactly,
    or (`over`) goes a fen beyond; the other period's figure lets the amount through."""
    day_cap, year_cap = CAPS[(account.account_class, column)]
    today = figures[(account.account_id, day)]
    year = figures[(account.account_id, day[:4])]
    if period == "day":
        today[column] = day_cap - amount + over
    else:
        year[column] = year_cap - amount + over
        today[column] = min(today[column], day_cap - amount, year[column])
    for each in (OUT, NON_BOUND_OUT, NON_BOUND_IN):  # a year holds its day
        year[each] = max(year[each], today[each])
    for figure in (today, year):  # what goes out to non-bound parties is part of what goes out
        if account.account_class == AccountClass.TYPE_III:
            figure[NON_BOUND_OUT] = min(figure[NON_BOUND_OUT], figure[OUT])
        else:
            figure[OUT] = max(figure[OUT], figure[NON_BOUND_OUT])


def loaded_totals(figures: Figures, wanted: t.Iterable[Account]) -> ledger.Totals:
    """The totals the store loads for the accounts it wants, as it loads them: no row for a
    period without movements."""
    ids = {account.account_id for account in wanted}
    return {key: tuple(value) for key, value in figures.items() if key[0] in ids and any(value)}


def needs_class(aim: tuple) -> AccountClass | None:
    """The class of account an aim at a class cap needs."""
    if aim[0] == "cap":
        return AccountClass.TYPE_III if aim[2] == OUT else AccountClass.TYPE_II
    return AccountClass.TYPE_III if aim[0] == "balance cap" else None


def not_bound(account: Account, counterparty: str) -> Account:
    """The account, bound to another account than `counterparty` if it was bound to it."""
    if not is_bound(account, counterparty):
        return account
    return dataclasses.replace(account, bound_account_number=counterparty[:-1] + str(
        (int(counterparty[-1]) + 1) % 10))


def largest_payment(debtor: Account, payee: Account | None, number: str) -> int:
    """The most one payment from `debtor` to the account numbered `number` could have been."""
    caps = [UNCAPPED]
    if debtor.account_class == AccountClass.TYPE_III:
        caps.append(III_DAY)
    if debtor.account_class == AccountClass.TYPE_II and not is_bound(debtor, number):
        caps.append(II_DAY)
    if payee is not None and payee.account_class == AccountClass.TYPE_III:
        caps.append(III_CAP)
    if (payee is not None and payee.account_class == AccountClass.TYPE_II
            and not is_bound(payee, debtor.account_number)):
        caps.append(II_DAY)
    return min(caps)


def no_controls(subject: str, risk_action: str = "refuse") -> Controls:
    return Controls(partner_id=PARTNER, subject=subject, payments_closed=0,
                    single_limit_fen=None, daily_limit_fen=None, large_amount_fen=None,
                    velocity_count=None, velocity_window_s=None, risk_action=risk_action,
                    updated_at="2025-01-01T09:00:00+08:00")


def controls(draw: t.Callable, subject: str) -> Controls:
    """What an operator set: now and then payments closed, each limit and rule on or off."""
    def maybe(strategy: st.SearchStrategy[int]) -> int | None:
        return draw(strategy) if pick(draw, ("on", "off", "off")) == "on" else None

    window = pick(draw, (60, 600, 3600))
    count = maybe(VELOCITY_COUNTS)
    return dataclasses.replace(
        no_controls(subject, pick(draw, ("refuse", "hold"))),
        payments_closed=int(one_in(draw, 10)), single_limit_fen=maybe(LIMITS),
        daily_limit_fen=maybe(LIMITS), large_amount_fen=maybe(LIMITS), velocity_count=count,
        velocity_window_s=window if count else None)


def payment(draw: t.Callable, *, debtor: Account, payee: Account | None, number: str,
            bank_code: str, creditor_name: str, amount: int, status: str,
            now: dt.datetime) -> Payment:
    """A payment as the store keeps it, with the fields its status has."""
    created = now - dt.timedelta(seconds=draw(LATER))
    at = created.isoformat(timespec="seconds")
    fields: dict[str, t.Any] = {}
    if status == "pending":
        fields = {"settles_at_ms": int(created.timestamp() * 1000) + 2000}
    elif status in ("settled", "refunded"):
        fields = {"settled_at": at}
    if status == "refunded":
        fields |= {"refund_request_id": record_id(draw, "req"),
                   "refund_movement_id": record_id(draw, "mov"), "refunded_at": at}
    if status == "failed":
        returned = payee is None and number.endswith(UNKNOWN_AT_OTHER_BANK)
        fields = {"failure_code": "CREDITOR_ACCOUNT_NOT_FOUND" if returned else "RISK_REJECTED",
                  "failure_detail": "The amount came back.",
                  "return_movement_id": record_id(draw, "mov")}
    return Payment(
        partner_id=PARTNER, payment_id=record_id(draw, "pay"), request_id=record_id(draw, "req"),
        request_hash=pick(draw, ("a1", "b2")), status=status,
        debtor_account_id=debtor.account_id,
        creditor_account_id=payee.account_id if payee else None,
        creditor_account_number=number, creditor_bank_code=bank_code, creditor_name=creditor_name,
        amount_fen=amount, currency="CNY", remittance_information=pick(draw, NOTES),
        created_at=at, movement_id=record_id(draw, "mov"), **fields)


def names(draw: t.Callable, *present: Account | None) -> dict[str, str]:
    """A name for each customer of the accounts present."""
    return {customer: pick(draw, NAMES) for customer in sorted(
        {account.customer_id for account in present if account is not None})}


# -- strategies: each decision's calls ---------------------------------------------------------
# Each draws the facts the store would load, aimed: it picks one rule that could stop the
# decision (a balance, a class cap, an operator's limit, a risk rule), draws accounts of the
# class the rule needs and puts the facts on its edge, exactly at it or (`over`) a fen or a
# payment beyond, so that both sides of every rule are tried; an aim at "anything" leaves the
# facts as drawn.

PAYABLE = ("an account by id", "an account by number", "another bank")
UNPAYABLE = ("itself by id", "itself by number", "no account with that id",
             "no account with that number", "a bank not in the directory")
TRANSFER_AIMS = (
    ("anything",), ("anything",), ("anything",),
    *(("creditor", kind) for kind in UNPAYABLE), ("retried",), ("no such debtor",),
    ("nothing to pay",), ("funds",),
    ("cap", "debtor", NON_BOUND_OUT, "day"), ("cap", "debtor", NON_BOUND_OUT, "year"),
    ("cap", "debtor", OUT, "day"), ("cap", "debtor", OUT, "year"),
    ("cap", "creditor", NON_BOUND_IN, "day"), ("cap", "creditor", NON_BOUND_IN, "year"),
    ("balance cap", "creditor"),
    ("closed", "partner"), ("closed", "debtor"), ("closed", "creditor"),
    *((limit, whose) for limit in ("single limit", "daily limit")
      for whose in ("debtor", "partner")),
    *((rule, whose, action) for rule in ("large amount", "velocity")
      for whose in ("debtor", "partner") for action in ("refuse", "hold")))


@st.composite
def transfers(draw, aim: tuple | None = None) -> Call:
    """An order, and the facts `store.ledger.transfer_facts` loads for it."""
    now = draw(NOW)
    day = now.date().isoformat()
    aim, over = aim or pick(draw, TRANSFER_AIMS), int(draw(BOOLEANS))
    ruled = aim[0] not in ("anything", "creditor", "retried", "no such debtor",
                           "nothing to pay", "funds")  # a rule beyond the debtor's funds
    whose = aim[1] if ruled else None
    if aim[0] == "cap" and whose == "debtor":
        debtor_class = needs_class(aim)
    else:  # the aim lies beyond the debtor's class caps: none stands first
        debtor_class = pick(draw, (AccountClass.TYPE_I, AccountClass.BASIC)) if ruled else None
    debtor, other = two_accounts(draw, (debtor_class,
                                        needs_class(aim) if whose == "creditor" else None))
    # The creditor: one the aim names, or one the debtor may pay (on the creditor's account
    # when a rule on it is aimed at), or (aimed at anything) any.
    kind = (aim[1] if aim[0] == "creditor" else pick(draw, PAYABLE[:2]) if whose == "creditor"
            else pick(draw, PAYABLE * 3 + UNPAYABLE) if aim[0] == "anything"
            else pick(draw, PAYABLE))
    name = pick(draw, NAMES)
    if kind in ("an account by id", "itself by id", "no account with that id"):
        creditor = {"account_id": (debtor if kind.startswith("itself") else other).account_id}
    elif kind in ("an account by number", "itself by number", "no account with that number"):
        creditor = {"account_number": (debtor if kind.startswith("itself") else other
                                       ).account_number,
                    "bank_code": SANDBOX_BANK_CODE, "name": name}
    else:
        creditor = {"account_number": external_number(draw, debtor), "name": name,
                    "bank_code": pick(draw, OTHER_BANKS if kind == "another bank"
                                      else NOT_IN_DIRECTORY)}
    counterparty = (other.account_number if kind.startswith("an account")
                    else creditor.get("account_number", ""))
    figures = usage(draw, debtor, day) | usage(draw, other, day)
    amount = draw(AMOUNTS)
    paid_today = draw(LIMITS)
    subjects = {"partner": "partner", "debtor": debtor.account_id,
                "creditor": other.account_id if kind.startswith("an account") else None}
    rules = {subject: controls(draw, subject) for subject in subjects.values()
             if subject and one_in(draw, 4)}
    recent: dict[int, int] = {}
    if debtor.account_class == AccountClass.TYPE_III:
        amount = min(amount, III_CAP)
    if ruled:  # the debtor can pay it: the aim is further on
        debtor = dataclasses.replace(debtor, balance_fen=max(debtor.balance_fen, amount))
    if aim[0] == "funds":
        debtor = dataclasses.replace(debtor, balance_fen=amount - over)
    elif aim[0] in ("cap", "balance cap"):
        if whose == "debtor":
            debtor = edged = not_bound(debtor, counterparty)
        else:
            other = edged = not_bound(other, debtor.account_number)
        amount = min(amount, CAPS[(edged.account_class, aim[2])][0] if aim[0] == "cap"
                     else III_CAP)
        if aim[0] == "cap":
            on_edge(figures, edged, day, aim[2], aim[3], amount, over)
        else:
            other = dataclasses.replace(other, balance_fen=III_CAP - amount + over)
    elif aim[0] == "closed":
        subject = subjects[whose]
        rules[subject] = dataclasses.replace(rules.get(subject) or no_controls(subject),
                                             payments_closed=over)
    elif ruled:
        subject = subjects[whose]
        set_before = rules.get(subject) or no_controls(subject)
        out_today = paid_today if whose == "partner" else figures[(debtor.account_id, day)][OUT]
        if aim[0] == "single limit":
            change = {"single_limit_fen": amount - over}
        elif aim[0] == "daily limit":
            change = {"daily_limit_fen": out_today + amount - over}
        elif aim[0] == "large amount":
            change = {"large_amount_fen": amount + 1 - over, "risk_action": aim[2]}
        else:
            change = {"velocity_count": draw(VELOCITY_COUNTS), "risk_action": aim[2],
                      "velocity_window_s": pick(draw, (60, 600, 3600))}
            recent[change["velocity_window_s"]] = change["velocity_count"] - 1 + over
        rules[subject] = dataclasses.replace(set_before, **change)
    target = {"an account by id": other, "an account by number": other,
              "itself by id": debtor, "itself by number": debtor}.get(kind)
    order = Order(partner_id=PARTNER, request_id=record_id(draw, "req"),
                  request_hash=pick(draw, ("a1", "b2")), debtor_account_id=debtor.account_id,
                  creditor=creditor, amount=Fen(0 if aim[0] == "nothing to pay" or (
                      aim[0] == "anything" and one_in(draw, 50)) else amount),
                  remittance_information=pick(draw, NOTES),
                  # the payer's consent, or (a request id another customer used) another's
                  consent_accounts=frozenset({record_id(draw, "acc") if one_in(draw, 8)
                                              else debtor.account_id}))
    situation = aim[0] if aim[0] in ("retried", "no such debtor") else "loaded"
    if aim[0] == "anything":
        situation = ("retried" if one_in(draw, 10) else "no such debtor" if one_in(draw, 20)
                     else "loaded")
    if situation == "retried":  # the request id made a payment already
        existing = payment(draw, debtor=debtor, payee=None, number=counterparty or "62122600001",
                           bank_code=OTHER_BANKS[0], creditor_name=name, amount=amount,
                           status=pick(draw, PAYMENT_STATUSES), now=now)
        facts = TransferFacts(dataclasses.replace(  # the same order, or (`over`) another
            existing, request_id=order.request_id,
            request_hash=order.request_hash + "-other" * over), None, None, {}, {}, {})
    elif situation == "no such debtor":  # the creditor found, unless it was the debtor
        facts = TransferFacts(None, None, target if target is other else None, {}, {}, {})
    elif kind.startswith("no account"):
        facts = TransferFacts(None, debtor, None, {}, {}, {})
    else:
        for subject in ("partner", debtor.account_id):  # counted for each rule's window
            rule = rules.get(subject)
            if rule and rule.velocity_count and rule.velocity_window_s not in recent:
                recent[rule.velocity_window_s] = draw(COUNTS)
        limit = rules[debtor.account_id].daily_limit_fen if debtor.account_id in rules else None
        # What the store loads: the totals the class caps read, and today's debits of an
        # account with an operator's daily limit.
        read = [a for a in (debtor, target) if a is not None
                and (tracks_usage(a) or (a is debtor and limit is not None))]
        facts = TransferFacts(
            existing=None, debtor=debtor, creditor=target, controls=rules,
            totals=loaded_totals(figures, read),
            names=names(draw, debtor, target),
            partner_paid_today=Fen(paid_today if "partner" in rules else 0),
            recent_debits=recent)
    return Call(decide_transfer, (order, facts),
                {"now": now, "interbank_delay_s": draw(DELAYS)},
                seed=draw(SEEDS), loaded={a.account_id: a for a in (debtor, other)})


LATER_AIMS = (("anything",), ("anything",), ("no such payment",),
              *(("status", status) for status in PAYMENT_STATUSES), ("funds", "payee"),
              ("cap", "debtor", NON_BOUND_IN, "day"), ("cap", "debtor", NON_BOUND_IN, "year"),
              ("balance cap", "debtor"), ("cap", "payee", NON_BOUND_IN, "day"),
              ("cap", "payee", NON_BOUND_IN, "year"), ("balance cap", "payee"))


def later_step(draw: t.Callable, favoured: str, aim: tuple | None
               ) -> tuple[dt.datetime, PaymentFacts]:
    """A payment in the status the step acts on (`favoured`), or another, or none, and the
    facts `store.ledger.payment_facts` loads for a later step of it. Aimed at the payee's
    funds (a refund takes the amount back), or at what the debtor (a refund, a return) or the
    payee (a release) may take."""
    now = draw(NOW)
    day = now.date().isoformat()
    aim, over = aim or pick(draw, LATER_AIMS), int(draw(BOOLEANS))
    if aim[0] == "no such payment" or aim[0] == "anything" and one_in(draw, 20):
        return now, PaymentFacts(record_id(draw, "pay"), None, {}, {}, {})
    status = (aim[1] if aim[0] == "status" else favoured if aim[0] != "anything"
              else pick(draw, (favoured,) * 5 + PAYMENT_STATUSES))
    whose = aim[1] if aim[0] in ("funds", "cap", "balance cap") else None
    debtor, other = two_accounts(draw, (needs_class(aim) if whose == "debtor" else None,
                                        needs_class(aim) if whose == "payee" else None))
    payee = None if status == "pending" or (whose != "payee" and draw(BOOLEANS)) else other
    if payee is not None:
        number, bank_code = payee.account_number, SANDBOX_BANK_CODE
    else:
        number, bank_code = external_number(draw, debtor), pick(draw, OTHER_BANKS)
    if aim[0] == "cap" and whose == "debtor":
        debtor = not_bound(debtor, number)
    elif aim[0] == "cap" and payee is not None:
        payee = not_bound(payee, debtor.account_number)
    figures = usage(draw, debtor, day) | usage(draw, other, day)
    amount = min(draw(AMOUNTS), largest_payment(debtor, payee, number))
    edged = debtor if whose == "debtor" else payee
    if aim[0] == "funds" and payee is not None:
        payee = dataclasses.replace(payee, balance_fen=amount - over)
    elif aim[0] == "cap" and edged is not None:
        amount = min(amount, CAPS[(edged.account_class, aim[2])][0])
        on_edge(figures, edged, day, aim[2], aim[3], amount, over)
    elif aim[0] == "balance cap" and edged is not None:
        edged = dataclasses.replace(edged, balance_fen=III_CAP - amount + over)
        debtor, payee = (edged, payee) if whose == "debtor" else (debtor, edged)
    if payee is not None and whose == "debtor":  # the payee can give it back
        payee = dataclasses.replace(payee, balance_fen=max(payee.balance_fen, amount))
    present = [debtor] + ([payee] if payee else [])
    names_now = names(draw, *present)
    record = payment(draw, debtor=debtor, payee=payee, number=number, bank_code=bank_code,
                     creditor_name=names_now[payee.customer_id] if payee else pick(draw, NAMES),
                     amount=amount, status=status, now=now)
    return now, PaymentFacts(record.payment_id, record, {a.account_id: a for a in present},
                             loaded_totals(figures, [a for a in present if tracks_usage(a)]),
                             names_now)


@st.composite
def answers(draw, aim: tuple | None = None) -> Call:
    now, facts = later_step(draw, "pending", aim)
    return Call(decide_answer, (facts,), {"now": now}, seed=draw(SEEDS),
                loaded=facts.accounts, money_back=True)


@st.composite
def refunds(draw, aim: tuple | None = None) -> Call:
    now, facts = later_step(draw, "settled", aim)
    earlier = facts.payment and facts.payment.refund_request_id
    request_id = earlier if earlier and draw(BOOLEANS) else record_id(draw, "req")
    return Call(decide_refund, (facts,), {"request_id": request_id, "now": now,
                                          "consent_accounts": whose_say(draw, facts.payment)},
                seed=draw(SEEDS), loaded=facts.accounts)


def whose_say(draw: t.Callable, paid: Payment | None) -> frozenset[str]:
    """The accounts of the consent a refund comes with: mostly the payee's (the payer's, for a
    payment to another bank), at times only the payer's, or none of the payment's."""
    unrelated = record_id(draw, "acc")
    if paid is None or one_in(draw, 10):
        return frozenset({unrelated})
    giver = paid.creditor_account_id or paid.debtor_account_id
    if giver != paid.debtor_account_id and one_in(draw, 9):
        return frozenset({paid.debtor_account_id, unrelated})
    return frozenset({giver, unrelated} | ({paid.debtor_account_id} if draw(BOOLEANS) else set()))


@st.composite
def releases(draw, aim: tuple | None = None) -> Call:
    now, facts = later_step(draw, "held", aim)
    return Call(decide_release, (facts,), {"now": now, "interbank_delay_s": draw(DELAYS)},
                seed=draw(SEEDS), loaded=facts.accounts)


@st.composite
def rejections(draw, aim: tuple | None = None) -> Call:
    now, facts = later_step(draw, "held", aim)
    return Call(decide_reject, (facts,), {"now": now}, seed=draw(SEEDS), loaded=facts.accounts,
                money_back=True)


def with_check_digit_broken(number: str, digits: str = "0123456789") -> str:
    return number[:-1] + next(d for d in digits if d != number[-1])


OPENING_AIMS = tuple((flaw,) for flaw in (
    "no flaw", "no flaw", "no flaw", "nobody has that resident id", "another name",
    "another mobile", "another card", "no card on file", "resident id check digit",
    "card check digit", "a card of this bank"))


@st.composite
def openings(draw, aim: tuple | None = None) -> Call:
    """An online opening request and the facts `store.ledger.opening_facts` loads: the person
    with that resident id, if any, and the partner's next ordinal."""
    now = draw(NOW)
    rng = random.Random(draw(RNG_SEEDS))
    female = draw(BOOLEANS)
    born = draw(BIRTH_DATES)
    resident_id = identifiers.generate_resident_id(rng, birth_date=born, female=female)
    card = identifiers.generate_unionpay_card(rng, length=draw(CARD_LENGTHS))
    person = Customer(
        partner_id=PARTNER, customer_id=record_id(draw, "cus"), ordinal=draw(ORDINALS),
        kind="individual", name=pick(draw, NAMES[:5]), resident_id=resident_id,
        uscc=None, birth_date=born.isoformat(), gender="F" if female else "M",
        mobile=identifiers.generate_mobile(rng), address="杭州市西湖区", external_card=card,
        external_bank="中国工商银行")
    request = {"account_class": pick(draw, ("II", "III")), "name": person.name,
               "resident_id": resident_id, "mobile": person.mobile, "bound_card_number": card}
    (flaw,) = aim or pick(draw, OPENING_AIMS)
    found: Customer | None = person
    if flaw in ("nobody has that resident id", "resident id check digit"):
        found = None  # no customer has it (nobody has an invalid one)
    if flaw == "resident id check digit":
        request["resident_id"] = with_check_digit_broken(resident_id, "0123456789X")
    elif flaw == "another name":
        request["name"] = pick(draw, [name for name in NAMES if name != person.name])
    elif flaw == "another mobile":
        request["mobile"] = with_check_digit_broken(person.mobile)
    elif flaw == "another card":
        request["bound_card_number"] = identifiers.generate_unionpay_card(rng)
    elif flaw == "no card on file":
        found = dataclasses.replace(person, external_card=None, external_bank=None)
    elif flaw == "card check digit":
        request["bound_card_number"] = with_check_digit_broken(card)
    elif flaw == "a card of this bank":
        request["bound_card_number"] = identifiers.generate_unionpay_card(
            rng, bin_prefix=SANDBOX_BIN)
    return Call(decide_opening, (request, OpeningFacts(found, draw(ORDINALS))),
                {"partner_id": PARTNER, "today": now.date().isoformat()}, seed=draw(SEEDS))


# A few accounts, so that offered, owned and picked ones overlap; a few days, so that the
# dates a read asks for fall on both sides of a consent's.
CONSENT_ACCOUNTS = tuple(f"acc_{n:016x}" for n in range(1, 6))
DAYS = st.dates(min_value=dt.date(2026, 1, 1), max_value=dt.date(2026, 1, 8)).map(
    dt.date.isoformat)
MAYBE_DAYS = st.one_of(st.none(), DAYS)
PERMISSIONS = sorted(consents.PERMISSIONS)
SOME_PERMISSIONS = st.lists(st.sampled_from(PERMISSIONS), min_size=1, unique=True)
SOME_ACCOUNTS = st.lists(st.sampled_from(CONSENT_ACCOUNTS), unique=True, max_size=4)
PICKED = st.one_of(st.none(), st.lists(st.sampled_from(CONSENT_ACCOUNTS), unique=True,
                                       min_size=1, max_size=3))
OFFSETS = (BEIJING, dt.UTC, dt.timezone(dt.timedelta(hours=-5)))
EXPIRING = st.one_of(st.integers(1, 10**7), st.integers(-10**7, 10**7),
                     st.sampled_from((-1, 0, 1)))  # seconds from now
LONGEST = int(consents.LONGEST_VALIDITY.total_seconds())
ASKED_EXPIRY = st.one_of(st.integers(-10**6, 400 * 86_400), st.sampled_from(
    (0, 1, LONGEST, LONGEST + 1)))
SCOPES = st.fixed_dictionaries({}, optional={
    "account_id": st.sampled_from(CONSENT_ACCOUNTS), "from_date": DAYS, "to_date": DAYS})
REQUESTS = st.fixed_dictionaries({"permissions": SOME_PERMISSIONS}, optional={
    "account_ids": SOME_ACCOUNTS.filter(bool)})


def consent(draw: t.Callable, now: dt.datetime, favoured: str) -> Consent:
    """A stored consent (never stored EXPIRED: expiry is judged) whose expiry is past, to the
    second, or ahead of `now`."""
    status = pick(draw, (favoured,) * 6 + consents.STATUSES[:4])
    expires_at = now + dt.timedelta(seconds=draw(EXPIRING))
    first, last = draw(MAYBE_DAYS), draw(MAYBE_DAYS)
    accounts = draw(SOME_ACCOUNTS)[:3]
    if status == consents.AUTHORISED and not accounts:
        accounts = [CONSENT_ACCOUNTS[0]]
    created = (min(now, expires_at) - dt.timedelta(days=1)).isoformat(timespec="microseconds")
    return Consent(
        consent_id=record_id(draw, "csn"), partner_id=PARTNER, status=status,
        permissions=" ".join(draw(SOME_PERMISSIONS)),
        customer_id=None if status == consents.AWAITING else "cus_0000000000000001",
        account_ids=" ".join(accounts),
        expires_at=expires_at.astimezone(pick(draw, OFFSETS)).isoformat(),
        transaction_from_date=min(first, last) if first and last else first,
        transaction_to_date=max(first, last) if first and last else last,
        created_at=created, status_updated_at=created)


def asked(draw: t.Callable, held: Consent | None) -> tuple[str, dict]:
    """The permission and scope a read asks for: as often what the consent grants as not."""
    granted = held.permission_list if held else []
    permission = pick(draw, granted if granted and draw(BOOLEANS) else PERMISSIONS)
    scope = draw(SCOPES)
    if "account_id" in scope and held and held.account_id_list and draw(BOOLEANS):
        scope["account_id"] = pick(draw, held.account_id_list)
    return permission, scope


@st.composite
def coverings(draw) -> Call:
    now = draw(NOW)
    held = consent(draw, now, consents.AUTHORISED)
    permission, scope = asked(draw, held)
    return Call(consents.covers, (held, permission, now), scope)


@st.composite
def requirements(draw) -> Call:
    """A token's consent (none for a client-credentials token, read without a clock)."""
    now = draw(NOW)
    held = consent(draw, now, consents.AUTHORISED) if not one_in(draw, 8) else None
    permission, scope = asked(draw, held)
    return Call(consents.require, (held, permission, now if held else None), scope)


@st.composite
def authorisations(draw) -> Call:
    """A customer's answer: their own accounts, and those they pick (some of their own, any,
    or none: all offered)."""
    now = draw(NOW)
    own = draw(SOME_ACCOUNTS)
    picked = pick(draw, (None, own[:1 + draw(indexes(4))] or None, draw(PICKED)))
    return Call(consents.authorise, (consent(draw, now, consents.AWAITING),), {
        "customer_id": "cus_0000000000000002", "now": now, "own_accounts": own,
        "approve": draw(BOOLEANS), "picked": picked})


@st.composite
def revocations(draw) -> Call:
    now = draw(NOW)
    return Call(consents.revoke, (consent(draw, now, consents.AUTHORISED), now), {})


@st.composite
def consent_requests(draw) -> Call:
    """What a partner asks for; its expires_at ahead or past, exactly at the longest validity
    or a second beyond, without an offset, not a date-time at all, or left out."""
    now = draw(NOW)
    request = draw(REQUESTS)
    first, last = sorted((draw(DAYS), draw(DAYS)))
    dates = pick(draw, ("none", "from", "to", "both", "reversed"))
    if dates == "reversed":
        first, last = last, first
    if dates in ("from", "both", "reversed"):
        request["transaction_from_date"] = first
    if dates in ("to", "both", "reversed"):
        request["transaction_to_date"] = last
    stamp = (now + dt.timedelta(seconds=draw(ASKED_EXPIRY))).astimezone(pick(draw, OFFSETS))
    expiry = pick(draw, ("left out", "given", "given", "given", "no offset", "not a date"))
    if expiry != "left out":
        request["expires_at"] = {"given": stamp.isoformat(),
                                 "no offset": stamp.replace(tzinfo=None).isoformat(),
                                 "not a date": "2026-13-01T00:00:00+08:00"}[expiry]
    return Call(consents.new_consent, (request,),
                {"consent_id": record_id(draw, "csn"), "partner_id": PARTNER, "now": now})


# Each decision, what generates its calls (and the aims they take, if any), and the outcomes
# its calls must reach besides every refusal it declares: each way it books, and the branches
# behind one code.
TRANSFER_LIMITS = {
    f"422 LIMIT_EXCEEDED: {where}" for where in (
        "Type II payments to non-bound accounts today",
        "Type II payments to non-bound accounts this year",
        "Type III payments today", "Type III payments this year",
        "Type II deposits from non-bound accounts today",
        "Type II deposits from non-bound accounts this year",
        "single limit of the account", "daily limit of the account",
        "single limit of the partner", "daily limit of the partner")}
UNAIMED = (None,)
DECISIONS = (
    (decide_transfer, transfers, TRANSFER_AIMS, {
        "replayed", "booked: settled", "booked: pending, another bank", "booked: held",
        "booked: held, another bank", "422 RISK_REFUSED: LARGE_AMOUNT",
        "422 RISK_REFUSED: VELOCITY", *TRANSFER_LIMITS}),
    (decide_answer, answers, LATER_AIMS, {
        "nothing to decide", "booked: settled, another bank", "booked: failed, another bank"}),
    (decide_refund, refunds, LATER_AIMS, {
        "replayed", "booked: refunded", "booked: refunded, another bank",
        "422 LIMIT_EXCEEDED: Type II deposits from non-bound accounts today",
        "422 LIMIT_EXCEEDED: Type II deposits from non-bound accounts this year"}),
    (decide_release, releases, LATER_AIMS, {
        "booked: settled", "booked: pending, another bank",
        "409 LIMIT_EXCEEDED: Type II deposits from non-bound accounts today",
        "409 LIMIT_EXCEEDED: Type II deposits from non-bound accounts this year"}),
    (decide_reject, rejections, LATER_AIMS, {"booked: failed", "booked: failed, another bank"}),
    (decide_opening, openings, OPENING_AIMS, {"opened II", "opened III"}),
    (consents.new_consent, consent_requests, UNAIMED, {consents.AWAITING}),
    (consents.authorise, authorisations, UNAIMED, {consents.AUTHORISED, consents.REJECTED}),
    (consents.revoke, revocations, UNAIMED, {consents.REVOKED}),
    (consents.covers, coverings, UNAIMED, {"covered"}),
    (consents.require, requirements, UNAIMED, {"covered"}),
)
# Declared, but no facts the store can load reach them: an account is active or frozen (the
# operator's freeze and unfreeze are the only writes of its status), so `check_active`'s
# answer for any other status cannot come out of a decision.
UNREACHABLE = {(422, "ACCOUNT_NOT_ACTIVE"), (409, "ACCOUNT_NOT_ACTIVE")}


DECISION_NAMES = [row[0].__name__ for row in DECISIONS]


# -- the books a booking must balance ----------------------------------------------------------

def signed(line: ledger.StatementLine) -> int:
    return line.amount_fen if line.direction == "credit" else -line.amount_fen


def assert_balanced(booking: Booking, loaded: dict[str, Account], *, money_back: bool) -> None:
    """Every rule of double entry and of the bank, recomputed from the legs and lines."""
    assert len({entry.movement_id for entry in booking.entries}) == len(booking.entries)
    legs_of: collections.Counter[str] = collections.Counter()
    customer_legs = []
    for entry in booking.entries:
        totals: collections.Counter[str] = collections.Counter()
        assert len(entry.legs) >= 2, entry
        for leg in entry.legs:
            assert isinstance(leg.amount, int) and leg.amount != 0, leg
            totals[leg.currency] += int(leg.amount)
            if not leg.ledger_account.startswith("internal:"):
                assert leg.ledger_account in loaded, f"{leg} moves an account not in its facts"
                legs_of[leg.ledger_account] += int(leg.amount)
                customer_legs.append((entry.movement_id, entry.booked_at, leg.ledger_account,
                                      int(leg.amount)))
        assert not any(totals.values()), f"{entry} does not balance per currency: {totals}"
    # Each leg on a customer account is one statement line, of its amount and direction.
    lines = booking.lines
    assert sorted(customer_legs) == sorted(
        (line.movement_id, line.booked_at, line.account_id, signed(line)) for line in lines)
    assert len({line.transaction_id for line in lines}) == len(lines)
    lines_of: dict[str, list[ledger.StatementLine]] = collections.defaultdict(list)
    for line in lines:
        assert line.direction in ("credit", "debit") and line.amount_fen > 0, line
        assert line.booking_date == line.booked_at[:10], line
        lines_of[line.account_id].append(line)
    # Each account's lines continue its seq one by one, with its running balance.
    for account_id, its_lines in lines_of.items():
        start = loaded[account_id]
        its_lines.sort(key=lambda line: line.seq)
        assert [line.seq for line in its_lines] == list(
            range(start.last_seq + 1, start.last_seq + 1 + len(its_lines)))
        balance = start.balance_fen
        for line in its_lines:
            balance += signed(line)
            assert line.balance_after_fen == balance, line
    # Each account moved is saved once: its old balance plus its legs, nothing else changed.
    saved = [save for save in booking.saves if isinstance(save.record, Account)]
    assert len({save.record.account_id for save in saved}) == len(saved)
    assert set(legs_of) <= {save.record.account_id for save in saved}
    for save in saved:
        new, old = save.record, save.before
        moved, count = legs_of[new.account_id], len(lines_of[new.account_id])
        if old is None:  # opened by this booking
            assert new.account_id not in loaded
            assert (new.balance_fen, new.last_seq) == (moved, count), new
        else:
            assert old == loaded[new.account_id], "a save's `before` is not the account loaded"
            assert new.balance_fen == old.balance_fen + moved, new
            assert new.last_seq == old.last_seq + count, new
            assert dataclasses.replace(new, balance_fen=old.balance_fen,
                                       last_seq=old.last_seq) == old
    # The usage totals grow by what the lines add: debits to out, non-bound ones apart; kept
    # for the accounts whose class caps read them.
    expected: dict[tuple[str, str], list[int]] = collections.defaultdict(lambda: [0, 0, 0])
    for line in (line for line in lines if tracks_usage(loaded[line.account_id])):
        bound = is_bound(loaded[line.account_id], line.counterparty_account)
        change = ((line.amount_fen, 0 if bound else line.amount_fen, 0)
                  if line.direction == "debit" else (0, 0, 0 if bound else line.amount_fen))
        for period in (line.booking_date, line.booking_date[:4]):
            for i, value in enumerate(change):
                expected[(line.account_id, period)][i] += value
    got = {(u.account_id, u.period): (u.out_fen, u.non_bound_out_fen, u.non_bound_in_fen)
           for u in booking.usage}
    assert len(got) == len(booking.usage), "one usage change per account and period"
    assert {key: value for key, value in got.items() if any(value)} == {
        key: tuple(value) for key, value in expected.items() if any(value)}
    # The bank's rules: nothing below zero, no Type III account over its cap.
    for save in saved:
        after = save.record
        assert after.balance_fen >= 0, after
        if after.account_class == AccountClass.TYPE_III and after.balance_fen > III_CAP:
            assert money_back, f"{after} holds more than a Type III account may"
            event("a return took a Type III account over its cap")
    # What the operation answers with is among what it writes.
    if booking.result is not None and not booking.replayed:
        assert any(save.record == booking.result for save in booking.saves)


# -- properties --------------------------------------------------------------------------------

@pytest.mark.parametrize(("fn", "calls", "aims", "reaches"), DECISIONS, ids=DECISION_NAMES)
@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_a_decision_is_pure_deterministic_and_its_bookings_balance(fn, calls, aims, reaches,
                                                                   data):
    call = data.draw(calls(), label="call")
    facts = copy.deepcopy((call.args, call.kwargs))
    outcome = decide(call)
    event(label(call, outcome))
    assert (call.args, call.kwargs) == facts, "the decision changed its facts"
    assert decide(call) == outcome, "the same facts and seed gave another outcome"
    with sealed_world():
        sealed = decide(call)
    assert sealed == outcome, "without the store, the clock or minting it decided otherwise"
    if outcome.error is not None:
        refusal = outcome.error
        assert (refusal.status, refusal.code) in getattr(fn, "refusals", frozenset()), refusal
    elif isinstance(outcome.value, Booking):
        assert_balanced(outcome.value, call.loaded, money_back=call.money_back)


@pytest.mark.parametrize(("fn", "calls", "aims", "reaches"), DECISIONS, ids=DECISION_NAMES)
def test_the_facts_generated_reach_every_outcome(fn, calls, aims, reaches):
    """Every refusal the decision declares (but what no store state can give), and every way
    it books: the properties above hold for facts that go everywhere. Each aim of the calls
    gets its share of the examples, so that a rare aim is not left to chance."""
    seen: collections.Counter[str] = collections.Counter()
    aims = tuple(dict.fromkeys(aims))
    for aim in aims:
        @settings(max_examples=max(40, 700 // len(aims)), derandomize=True, database=None,
                  deadline=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(call=calls(aim) if aim else calls())
        def explore(call):
            seen[label(call, decide(call))] += 1

        explore()
    declared = {f"{status} {code}" for status, code in getattr(fn, "refusals", ())
                if (status, code) not in UNREACHABLE}
    reached = set(seen) | {outcome.split(":")[0] for outcome in seen}
    missing = (declared | reaches) - reached
    assert not missing, f"never reached {sorted(missing)}; reached {dict(seen)}"


# -- the seal holds ----------------------------------------------------------------------------

@pytest.mark.parametrize(("door", "use"), (
    ("the clock", lambda: Clock().now()),
    ("a partner's clock", lambda: Clock().now_for(3600)),
    ("the system's time", lambda: time.time()),
    ("datetime's now", lambda: dt.datetime.now(BEIJING)),
    ("datetime's today", lambda: dt.date.today()),
    ("a record id", lambda: mint.record_id("pay")),
    ("a fresh id source", lambda: IdSource.fresh()),
    ("a secret", lambda: mint.secret("tok_")),
    ("a hex secret", lambda: mint.hex_secret("whsec_", 24)),
    ("the secrets module", lambda: secrets.token_hex(8)),
    ("the global generator", lambda: random.random()),
    ("the store", lambda: Store(sandbox.store.sqlite.SqliteDatabase(":memory:")).fetchone("")),
    ("a database", lambda: sandbox.store.sqlite.SqliteDatabase(":memory:").transaction()),
    ("the ledger", lambda: Store(sandbox.store.sqlite.SqliteDatabase(":memory:")).ledger
     .carry_out(PARTNER, None, None)),
))
def test_the_sealed_world_shuts_every_door(door, use):
    """The purity property proves something only if each door really is shut."""
    with pytest.raises(AssertionError, match="reached for"), sealed_world():
        with contextlib.suppress(ForbiddenCall):
            use()
    assert TOUCHED, door


def test_the_sealed_world_lets_a_decision_work():
    """What a decision may use stays open: its own IdSource, datetimes it is given."""
    with sealed_world():
        assert IdSource(7).next("pay") == IdSource(7).next("pay")
        assert IdSource(7).rng().random() == IdSource(7).rng().random()
        now = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=BEIJING)
        assert dt.datetime.fromisoformat(now.isoformat()) == now


# -- Entry and Books, on their own -------------------------------------------------------------

LOADED = Account(
    partner_id=PARTNER, account_id="acc_0000000000000001", ordinal=1,
    customer_id="cus_0000000000000001", account_number=f"{SANDBOX_BIN}0000000000001",
    account_class="I", product_name="一类账户", currency="CNY", status="active",
    opened_on="2024-03-01", bound_account_number=None, balance_fen=10_000, last_seq=3)
ACC = LOADED.account_id
NARRATIVES = {ACC: Narrative("转账", "王芳", "6212260000000000001")}
AT = "2026-01-02T10:00:00+08:00"


@pytest.mark.parametrize(("case", "legs"), (
    ("two legs not summing to zero", (Leg(ACC, Fen(-100)), Leg(ledger.CLEARING, Fen(99)))),
    ("a zero leg beside balanced ones",
     (Leg(ACC, Fen(-100)), Leg(ledger.CLEARING, Fen(100)), Leg(ledger.HELD, Fen(0)))),
    ("one leg", (Leg(ACC, Fen(100)),)),
    ("one zero leg", (Leg(ACC, Fen(0)),)),
    ("no legs", ()),
    ("balanced overall, not per currency",
     (Leg(ACC, Fen(-100), "CNY"), Leg(ledger.CLEARING, Fen(100), "USD"))),
    ("amounts that are not Fen", (Leg(ACC, -100), Leg(ledger.CLEARING, 100))),
))
def test_an_unbalanced_entry_is_neither_made_nor_moved(case, legs):
    with pytest.raises(UnbalancedEntry):
        Entry("mov_0000000000000001", AT, legs)
    books = Books([LOADED], IdSource(1))
    with pytest.raises(UnbalancedEntry):
        books.move(legs, NARRATIVES, booked_at=AT)
    assert books.account(ACC) == LOADED
    assert books.booking() == Booking()
    with pytest.raises(UnbalancedEntry):
        Booking(entries=(legs,))


LEGS = st.lists(st.builds(Leg, st.sampled_from(("internal:a", "internal:b", "internal:c")),
                          st.integers(-3, 3).map(Fen), st.sampled_from(("CNY", "USD"))),
                max_size=5)


@settings(max_examples=300, deadline=None)
@given(legs=st.one_of(LEGS, LEGS.map(lambda legs: [*legs, *(
    Leg(leg.ledger_account, Fen(-leg.amount), leg.currency) for leg in legs)])))
def test_an_entry_is_made_exactly_when_its_legs_balance(legs):
    """The oracle: two or more legs, none of zero, summing to zero in each currency."""
    sums: collections.Counter[str] = collections.Counter()
    for leg in legs:
        sums[leg.currency] += int(leg.amount)
    balanced = len(legs) >= 2 and all(leg.amount for leg in legs) and not any(sums.values())
    event("balanced" if balanced else "unbalanced")
    try:
        Entry("mov_0000000000000001", AT, tuple(legs))
    except UnbalancedEntry:
        assert not balanced, legs
    else:
        assert balanced, legs


@pytest.mark.parametrize(("case", "legs"), (
    ("a debit of an account not given", (Leg("acc_00000000000000ff", Fen(-100)),
                                         Leg(ledger.CLEARING, Fen(100)))),
    ("a credit to an account not given", (Leg(ledger.CLEARING, Fen(-100)),
                                          Leg("acc_00000000000000ff", Fen(100)))),
))
def test_books_refuse_a_leg_on_an_account_they_were_not_given(case, legs):
    with pytest.raises(ValueError, match="not among the accounts loaded"):
        Books([LOADED], IdSource(1)).move(legs, NARRATIVES, booked_at=AT)


def test_books_take_legs_on_internal_accounts_without_lines():
    books = Books([LOADED], IdSource(1))
    books.move(ledger.transfer(ledger.HELD, ledger.CLEARING, Fen(500)), {}, booked_at=AT)
    books.move(ledger.transfer(ACC, ledger.CLEARING, Fen(100)), NARRATIVES, booked_at=AT)
    booking = books.booking()
    assert len(booking.entries) == 2 and len(booking.lines) == 1
    assert_balanced(booking, {ACC: LOADED}, money_back=False)


@pytest.mark.parametrize(("legs", "narratives"), (
    # The debit of ACC comes first, the unknown account next.
    (ledger.transfer(ACC, "acc_00000000000000ff", Fen(100)), NARRATIVES),
    # An internal account first, then a loaded account's leg without its statement line.
    (ledger.transfer(ledger.CLEARING, ACC, Fen(100)), {}),
))
def test_a_refused_move_leaves_the_books_as_they_were(legs, narratives):
    books = Books([LOADED], IdSource(1))
    with pytest.raises(ValueError):
        books.move(legs, narratives, booked_at=AT)
    assert books.account(ACC) == LOADED
    assert books.booking() == Booking()


# -- money coming back -------------------------------------------------------------------------

@pytest.mark.parametrize(("decision", "status"), ((decide_answer, "pending"),
                                                  (decide_reject, "held")))
def test_money_coming_back_is_credited_past_the_type_iii_cap(decision, status):
    """A payment out of a Type III account that fails (the other bank has no such account) or
    that the bank rejects comes back whatever the account holds by then: 'no class cap
    applies' (rules.payments). So a Type III account can end above 2000.00 CNY — the one
    exception to the cap the properties above allow."""
    debtor = dataclasses.replace(LOADED, account_class="III", bound_account_number="6212260001",
                                 balance_fen=III_CAP - 100)
    paid = Payment(
        partner_id=PARTNER, payment_id="pay_0000000000000001", request_id="req-1",
        request_hash="a1", status=status, debtor_account_id=ACC, creditor_account_id=None,
        creditor_account_number="6212269458070000", creditor_bank_code=OTHER_BANKS[0],
        creditor_name="王芳", amount_fen=50_000, currency="CNY", remittance_information=None,
        created_at=AT, movement_id="mov_0000000000000001")
    facts = PaymentFacts(paid.payment_id, paid, {ACC: debtor}, {},
                         {debtor.customer_id: "李伟"})
    now = dt.datetime.fromisoformat(AT) + dt.timedelta(seconds=5)
    booking = decision(facts, now=now, ids=IdSource(1))
    assert booking.result.status == "failed"
    returned = next(save.record for save in booking.saves if isinstance(save.record, Account))
    assert returned.balance_fen == III_CAP - 100 + 50_000 > III_CAP


@pytest.mark.parametrize(("decision", "status", "refusal"), (
    (decide_refund, "settled", BalanceLimitExceeded),  # the debtor takes the refund back
    (decide_release, "held", StateConflict),  # the creditor takes the held payment
))
def test_a_cap_refusing_a_step_without_a_body_names_no_field(decision, status, refusal):
    """Refunds and releases carry no body: their refusals point at nothing in the request."""
    third = dataclasses.replace(LOADED, account_class="III", bound_account_number="6212260001",
                                balance_fen=III_CAP - 100)
    payer = dataclasses.replace(LOADED, account_id="acc_00000000000000aa",
                                customer_id="cus_00000000000000aa", balance_fen=10_000_000)
    debtor, creditor = (third, payer) if decision is decide_refund else (payer, third)
    paid = Payment(
        partner_id=PARTNER, payment_id="pay_0000000000000002", request_id="req-2",
        request_hash="a2", status=status, debtor_account_id=debtor.account_id,
        creditor_account_id=creditor.account_id, creditor_account_number=creditor.account_number,
        creditor_bank_code=SANDBOX_BANK_CODE, creditor_name="王芳", amount_fen=50_000,
        currency="CNY", remittance_information=None, created_at=AT,
        movement_id="mov_0000000000000002")
    facts = PaymentFacts(paid.payment_id, paid, {a.account_id: a for a in (debtor, creditor)},
                         {}, {a.customer_id: "李伟" for a in (debtor, creditor)})
    extra = ({"request_id": "r-2", "consent_accounts": {creditor.account_id}}
             if decision is decide_refund else {"interbank_delay_s": 2.0})
    with pytest.raises(refusal) as refused:
        decision(facts, now=dt.datetime.fromisoformat(AT), ids=IdSource(1), **extra)
    assert refused.value.code == "BALANCE_LIMIT_EXCEEDED" and refused.value.field is None
