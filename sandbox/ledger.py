"""Double-entry ledger: how money moves, as plain values. The store only writes what this makes.

A journal entry (`Entry`) is two or more legs in integer fen that sum to zero per currency; one
that does not cannot be constructed (and the database refuses one as well). A leg's amount is
signed from its ledger account's point of view: positive raises the balance (a credit to a
customer account), negative lowers it. Customer accounts are ledger accounts under their
account_id; the bank's own side of a movement lands on internal accounts, so the legs of a
partner's bank sum to zero, always.

`Books` is the accounts one decision moves money between, as loaded. Each `move` is one entry,
applied at once: its statement lines (with each account's next seq and balance after), the
accounts' new balances, and the usage totals the class caps read (`limits.tracks_usage`).
`booking()` gives all of it, with the records and notifications the decision adds, as one
`Booking` for the store to write atomically.

    facts ──decide──▶ Books.move(...) … ──▶ Booking ──store.ledger.write──▶ rows
"""

from __future__ import annotations

import dataclasses
import operator
import typing as t

from sandbox.mint import IdSource
from sandbox.money import Fen
from sandbox.records import Account, _Record
from sandbox.rules.limits import Usage, tracks_usage, usage_change

CLEARING = "internal:interbank-clearing"  # money to and from other banks and merchants
HELD = "internal:held-for-review"  # payments a risk rule holds until an operator decides
BANK_EQUITY = "internal:bank-equity"  # opening balances brought forward, interest paid


class UnbalancedEntry(ValueError):
    """Legs that do not sum to zero: a bug, never a partner's fault."""


@dataclasses.dataclass(frozen=True, slots=True)
class Leg:
    ledger_account: str
    amount: Fen
    currency: str = "CNY"


def transfer(debtor: str, creditor: str, amount: Fen) -> list[Leg]:
    """The two legs that move `amount` from one ledger account to another."""
    return [Leg(debtor, Fen(-amount)), Leg(creditor, Fen(amount))]


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """One movement of money: its legs, in the order they are numbered."""

    movement_id: str
    booked_at: str
    legs: tuple[Leg, ...]

    def __post_init__(self) -> None:
        check_balanced(self.legs)


def check_balanced(legs: t.Sequence[Leg]) -> None:
    """Raises UnbalancedEntry unless `legs` are two or more non-zero Fen amounts summing to
    zero in each currency."""
    totals: dict[str, int] = {}
    for leg in legs:
        if not isinstance(leg.amount, Fen) or leg.amount == 0:
            raise UnbalancedEntry(f"a leg moves a non-zero Fen amount, not {leg!r}")
        totals[leg.currency] = totals.get(leg.currency, 0) + int(leg.amount)
    if len(legs) < 2 or any(totals.values()):
        raise UnbalancedEntry(f"legs do not balance: {legs!r}")


@dataclasses.dataclass(slots=True)
class Narrative:
    """What a customer's statement says of a movement."""

    description: str
    counterparty_name: str
    counterparty_account: str | None
    channel: str = "online"


@dataclasses.dataclass(slots=True)
class StatementLine:
    account_id: str
    seq: int
    transaction_id: str
    movement_id: str
    booked_at: str
    booking_date: str
    direction: str  # "credit" | "debit"
    amount_fen: int
    balance_after_fen: int
    description: str
    counterparty_name: str
    counterparty_account: str | None
    channel: str


LINE_COLUMNS = tuple(field.name for field in dataclasses.fields(StatementLine))
line_values = operator.attrgetter(*LINE_COLUMNS)  # a line's values, as LINE_COLUMNS names them


@dataclasses.dataclass(slots=True)
class UsageChange:
    """Amounts to add to an account's totals for a period: a day ("2026-11-27") or a year."""

    account_id: str
    period: str
    out_fen: int
    non_bound_out_fen: int
    non_bound_in_fen: int


@dataclasses.dataclass(slots=True)
class Save:
    """A record made (`before` is None) or changed by a booking."""

    record: _Record
    before: _Record | None = None


@dataclasses.dataclass(slots=True)
class Event:
    """A notification for the partner's callback, if it has one registered when written."""

    event_id: str
    type: str
    payment_id: str
    body: str  # the JSON POSTed, as sent
    created_at: str
    created_us: int


@dataclasses.dataclass(frozen=True)
class Booking:
    """Everything one decision writes, atomically: entries, statement lines, usage totals,
    records made or changed (accounts' balances among them) and notifications; and `result`,
    the record the operation answers with (`replayed`: made by an earlier try, nothing to
    write)."""

    entries: tuple[Entry, ...] = ()
    lines: tuple[StatementLine, ...] = ()
    usage: tuple[UsageChange, ...] = ()
    saves: tuple[Save, ...] = ()
    events: tuple[Event, ...] = ()
    result: t.Any = None
    replayed: bool = False

    def __post_init__(self) -> None:
        for entry in self.entries:
            if not isinstance(entry, Entry):
                raise UnbalancedEntry(f"not an entry: {entry!r}")


Totals = dict[tuple[str, str], tuple[int, int, int]]  # (account, period) → out, nb out, nb in
NO_USAGE = Usage()


@dataclasses.dataclass(slots=True)
class _Move:
    legs: tuple[Leg, ...]
    # (account_id, seq, direction, amount, balance after, narrative), in leg order
    lines: list[tuple[str, int, str, int, int, Narrative]]
    booked_at: str | None
    movement_id: str | None
    transaction_ids: t.Sequence[str] | None


class Books:
    """The customer accounts one decision may move money between, as loaded (locked), with
    their usage totals of the periods it needs; `move` books an entry against them at once."""

    def __init__(self, accounts: t.Iterable[Account], ids: IdSource | None, *,
                 totals: Totals | None = None):
        self.ids = ids
        self._loaded = {a.account_id: a for a in accounts}
        # Each account's balance and last seq as moves go; its record is remade when asked.
        self._state = {a.account_id: [a.balance_fen, a.last_seq] for a in self._loaded.values()}
        self._made = dict(self._loaded)
        self._totals: dict[tuple[str, str], list[int]] = {
            key: list(value) for key, value in (totals or {}).items()}
        self._changes: dict[tuple[str, str], list[int]] = {}
        self._moves: list[_Move] = []

    def account(self, account_id: str) -> Account:
        """The account as it stands after the moves so far."""
        account = self._made.get(account_id)
        if account is None:
            balance, seq = self._state[account_id]
            account = self._made[account_id] = self._loaded[account_id].changed(
                balance_fen=balance, last_seq=seq)
        return account

    def usage(self, account_id: str, day: str) -> Usage:
        """What the account sent and received on `day` and in its year, moves so far included."""
        today = self._totals.get((account_id, day))
        year = self._totals.get((account_id, day[:4]))
        if today is None and year is None:
            return NO_USAGE
        today, year = today or (0, 0, 0), year or (0, 0, 0)
        return Usage(out_day=Fen(today[0]), out_year=Fen(year[0]),
                     non_bound_out_day=Fen(today[1]), non_bound_out_year=Fen(year[1]),
                     non_bound_in_day=Fen(today[2]), non_bound_in_year=Fen(year[2]))

    def move(self, legs: t.Sequence[Leg], narratives: t.Mapping[str, Narrative], *,
             booked_at: str | None = None, day: str | None = None,
             movement_id: str | None = None,
             transaction_ids: t.Sequence[str] | None = None) -> _Move:
        """One entry: `legs` sum to zero; every leg on a customer account (one of these
        books) has its `narratives` line. Without `booked_at` the entry waits for `stamp`
        (its `day` given): the history generator decides a day's events before it draws their
        times."""
        entry_legs = tuple(legs)
        # Everything is checked before anything moves: a refused move leaves the books alone.
        check_balanced(entry_legs)
        day = booked_at[:10] if booked_at is not None else day
        if day is None:
            raise ValueError("a move needs its booked_at, or the day it will be stamped with")
        for leg in entry_legs:
            if leg.ledger_account in self._loaded:
                if leg.ledger_account not in narratives:
                    raise ValueError(f"no statement line for {leg.ledger_account}'s leg")
            elif not leg.ledger_account.startswith("internal:"):
                raise ValueError(f"{leg.ledger_account} is not among the accounts loaded")
        lines = []
        for leg in entry_legs:
            account = self._loaded.get(leg.ledger_account)
            if account is None:
                continue  # an internal account: journal only
            narrative = narratives[account.account_id]
            state = self._state[account.account_id]
            state[0] += int(leg.amount)
            state[1] += 1
            balance, seq = state
            self._made.pop(account.account_id, None)
            direction = "credit" if leg.amount > 0 else "debit"
            amount = abs(int(leg.amount))
            if tracks_usage(account):
                change = usage_change(account, direction, amount, narrative.counterparty_account)
                for period in (day, day[:4]):
                    for book in (self._totals, self._changes):
                        sums = book.setdefault((account.account_id, period), [0, 0, 0])
                        for i, value in enumerate(change):
                            sums[i] += value
            lines.append((account.account_id, seq, direction, amount, balance, narrative))
        move = _Move(entry_legs, lines, None, movement_id, transaction_ids)
        if booked_at is not None:
            self.stamp(move, booked_at)
        self._moves.append(move)
        return move

    def stamp(self, move: _Move, booked_at: str, *, movement_id: str | None = None,
              transaction_ids: t.Sequence[str] | None = None) -> None:
        """Gives a move its time and, if given, its ids (else they are drawn from `ids`)."""
        if self.ids is None and not (movement_id and transaction_ids):
            raise ValueError("these books draw no ids: give the move its ids")
        move.booked_at = booked_at
        move.movement_id = movement_id or move.movement_id or self.ids.next("mov", ordered=True)
        move.transaction_ids = (transaction_ids or move.transaction_ids
                                or [self.ids.next("txn") for _ in move.lines])

    def booking(self, *, saves: t.Iterable[Save] = (), events: t.Iterable[Event] = (),
                result: t.Any = None, new_accounts: bool = False) -> Booking:
        """All the moves, the accounts' new balances and the usage they add, with `saves` and
        `events`. `new_accounts`: the accounts are being opened by this booking (inserted
        with their final balances) rather than changed."""
        entries, lines = [], []
        for move in self._moves:
            if move.booked_at is None:
                raise ValueError("a move was never stamped with its time")
            entries.append(Entry(move.movement_id, move.booked_at, move.legs))
            for (account_id, seq, direction, amount, balance, narrative), transaction_id in zip(
                    move.lines, move.transaction_ids, strict=True):
                lines.append(StatementLine(
                    account_id=account_id, seq=seq, transaction_id=transaction_id,
                    movement_id=move.movement_id, booked_at=move.booked_at,
                    booking_date=move.booked_at[:10], direction=direction, amount_fen=amount,
                    balance_after_fen=balance, description=narrative.description,
                    counterparty_name=narrative.counterparty_name,
                    counterparty_account=narrative.counterparty_account,
                    channel=narrative.channel))
        accounts = [Save(self.account(account_id), None if new_accounts else loaded)
                    for account_id, loaded in self._loaded.items()
                    if new_accounts or self._state[account_id] != [loaded.balance_fen,
                                                                   loaded.last_seq]]
        usage = [UsageChange(account_id, period, *sums)
                 for (account_id, period), sums in self._changes.items()]
        return Booking(entries=tuple(entries), lines=tuple(lines), usage=tuple(usage),
                       saves=(*accounts, *saves) if not new_accounts else (*saves, *accounts),
                       events=tuple(events), result=result)
