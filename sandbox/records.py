"""Typed rows: the records handlers and rules read, one dataclass per table row.

The store turns rows into these (`Account.of(row)`) and these back into rows. (Rows only the
store and one handler touch, callbacks, notifications, codes and operators, stay plain.)
Money columns are integer fen (`*_fen`); times are ISO 8601 text in Beijing time, as stored.
A change to a record is a new record (`changed`), never an assignment: the store writes the
difference between the two (`changes_from`). (Not frozen: frozen dataclasses cost several
times as much to make, and rows are made on every request.)
"""

from __future__ import annotations

import dataclasses
import functools
import operator
import typing as t

T = t.TypeVar("T")


class _Record:
    __slots__ = ()
    TABLE: t.ClassVar[str]
    KEY: t.ClassVar[tuple[str, ...]]
    #: Fields read with the record but kept elsewhere (joined from another table).
    JOINED: t.ClassVar[tuple[str, ...]] = ()

    @classmethod
    def of(cls: type[T], row: t.Mapping[str, t.Any]) -> T:
        return cls(*map(row.__getitem__, _names(cls)))  # type: ignore

    def row(self) -> dict[str, t.Any]:
        """The record as its table's row."""
        return dict(zip(_columns(type(self)), _values(type(self))(self), strict=True))

    @classmethod
    def columns(cls) -> tuple[str, ...]:
        """Its table's columns, in the order `values` gives them."""
        return _columns(cls)

    def values(self) -> tuple:
        return _values(type(self))(self)

    def changed(self: T, **changes: t.Any) -> T:
        """This record with `changes`: a new one."""
        record = type(self)(*_every_value(type(self))(self))
        for name, value in changes.items():
            setattr(record, name, value)
        return record

    def changes_from(self, before: _Record) -> dict[str, t.Any]:
        """The columns that differ from `before` (the same record as it was)."""
        values = _values(type(self))
        return {name: now for name, now, then
                in zip(_columns(type(self)), values(self), values(before), strict=True)
                if now != then}


# Per class, computed once: these run for every row the store reads or writes.
@functools.cache
def _names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


@functools.cache
def _columns(cls: type) -> tuple[str, ...]:
    return tuple(name for name in _names(cls) if name not in cls.JOINED)


@functools.cache
def _every_value(cls: type) -> t.Callable[[t.Any], tuple]:
    return operator.attrgetter(*_names(cls))


@functools.cache
def _values(cls: type) -> t.Callable[[t.Any], tuple]:
    return operator.attrgetter(*_columns(cls))


@dataclasses.dataclass(slots=True)
class Partner(_Record):
    TABLE = "partners"
    KEY = ("partner_id",)

    partner_id: str
    name: str
    client_id: str
    secret_hash: str
    seed: int
    profile: str
    created_at: str
    redirect_uris: str  # space-separated
    clock_offset_s: int  # the operator's time travel for this partner

    @property
    def redirect_uri_list(self) -> list[str]:
        return self.redirect_uris.split()


@dataclasses.dataclass(slots=True)
class Customer(_Record):
    TABLE = "customers"
    KEY = ("partner_id", "customer_id")

    partner_id: str
    customer_id: str
    ordinal: int
    kind: str  # "individual" | "company"
    name: str
    resident_id: str | None
    uscc: str | None
    birth_date: str | None
    gender: str | None
    mobile: str
    address: str
    external_card: str | None  # a card at another bank: the fourth factor of online opening
    external_bank: str | None


@dataclasses.dataclass(slots=True)
class Account(_Record):
    TABLE = "accounts"
    KEY = ("partner_id", "account_id")

    partner_id: str
    account_id: str
    ordinal: int
    customer_id: str
    account_number: str
    account_class: str  # AccountClass
    product_name: str
    currency: str
    status: str  # "active" | "frozen"
    opened_on: str
    bound_account_number: str | None
    balance_fen: int
    last_seq: int  # the seq of its newest statement line


@dataclasses.dataclass(slots=True)
class Payment(_Record):
    TABLE = "payments"
    KEY = ("partner_id", "payment_id")

    partner_id: str
    payment_id: str
    request_id: str
    request_hash: str
    status: str  # held | pending | settled | failed | refunded
    debtor_account_id: str
    creditor_account_id: str | None  # None: an account at another bank
    creditor_account_number: str
    creditor_bank_code: str
    creditor_name: str
    amount_fen: int
    currency: str
    remittance_information: str | None
    created_at: str
    movement_id: str
    refund_request_id: str | None = None
    refund_movement_id: str | None = None
    refunded_at: str | None = None
    settles_at_ms: int | None = None  # when the other bank answers a pending payment
    settled_at: str | None = None
    failure_code: str | None = None
    failure_detail: str | None = None
    return_movement_id: str | None = None


@dataclasses.dataclass(slots=True)
class Consent(_Record):
    """A customer's permission for a partner, read with its partner's clock offset (expiry is
    judged by the partner's clock)."""

    TABLE = "consents"
    KEY = ("consent_id",)
    JOINED = ("clock_offset_s",)

    consent_id: str
    partner_id: str
    status: str
    permissions: str  # space-separated
    customer_id: str | None
    account_ids: str  # space-separated
    expires_at: str
    transaction_from_date: str | None
    transaction_to_date: str | None
    created_at: str
    status_updated_at: str
    clock_offset_s: int = 0

    @property
    def permission_list(self) -> list[str]:
        return self.permissions.split()

    @property
    def account_id_list(self) -> list[str]:
        return self.account_ids.split()


@dataclasses.dataclass(slots=True)
class Token(_Record):
    TABLE = "tokens"
    KEY = ("token_hash",)

    token_hash: str
    partner_id: str
    scopes: str  # space-separated
    consent_id: str | None  # a customer's token: the consent it is bound to
    customer_id: str | None
    code_hash: str | None  # the authorization code it came from, if any
    expires_at: int  # Unix seconds; 0: revoked


@dataclasses.dataclass(slots=True)
class Controls(_Record):
    """What an operator set for a partner (subject "partner") or one of its accounts."""

    TABLE = "controls"
    KEY = ("partner_id", "subject")

    partner_id: str
    subject: str
    payments_closed: int
    single_limit_fen: int | None
    daily_limit_fen: int | None
    large_amount_fen: int | None
    velocity_count: int | None
    velocity_window_s: int | None
    risk_action: str  # "refuse" | "hold"
    updated_at: str


@dataclasses.dataclass(slots=True)
class RiskEvent(_Record):
    TABLE = "risk_events"
    KEY = ("partner_id", "event_id")

    partner_id: str
    event_id: str
    account_id: str
    rule: str
    action: str  # "refused" | "held"
    amount_fen: int
    request_id: str
    detail: str
    created_at: str
    payment_id: str | None
