"""What a database backend provides: transactions and queries, nothing about the bank.

    StoreError
    └── ConstraintError     the database refused a write that breaks one of its rules (an
        │                   unbalanced journal entry, a missing foreign row)
        └── DuplicateError  a unique key (partner name, request id) exists already

Backends (sqlite.py, postgres.py) only run SQL; the topic modules beside them (partners,
consents, bank, ledger, outbox, control) are the only ones that write it, with `?`
placeholders. Every query names its partner: there is no way to read another partner's rows.

One transaction convention: a method that works inside its caller's transaction takes it as
its first argument (`tx`) and never opens one; every other method opens its own.
"""

from __future__ import annotations

import abc
import contextlib
import functools
import typing as t

Row = dict[str, t.Any]


class StoreError(Exception):
    """The store could not do what was asked."""


class ConstraintError(StoreError):
    """The database refused a write that breaks one of its rules."""


class DuplicateError(ConstraintError):
    """A row with that unique key exists already."""


class Transaction(abc.ABC):
    """One atomic unit of work; commits when its block ends, rolls back if it raises."""

    @abc.abstractmethod
    async def execute(self, sql: str, params: t.Sequence = ()) -> None: ...

    @abc.abstractmethod
    async def executemany(self, sql: str, rows: t.Iterable[t.Sequence]) -> None: ...

    @abc.abstractmethod
    async def fetchone(self, sql: str, params: t.Sequence = ()) -> Row | None: ...

    @abc.abstractmethod
    async def fetchall(self, sql: str, params: t.Sequence = ()) -> list[Row]: ...


class Database(abc.ABC):
    """A SQLite file or a PostgreSQL server: transactions, and reads outside them."""

    #: appended to a SELECT that must lock the rows it reads until the transaction ends
    for_update = ""
    #: the same, passing over rows another transaction holds (work queues)
    skip_locked = ""
    #: which dialect's triggers the schema installs ("sqlite" or "postgresql")
    dialect = ""

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    def transaction(self) -> contextlib.AbstractAsyncContextManager[Transaction]: ...

    @abc.abstractmethod
    async def fetchall(self, sql: str, params: t.Sequence = ()) -> list[Row]: ...

    @abc.abstractmethod
    async def fetchone(self, sql: str, params: t.Sequence = ()) -> Row | None: ...


class Topic:
    """One topic's queries over the database."""

    def __init__(self, db: Database):
        self.db = db


async def insert(tx: Transaction, table: str, rows: t.Sequence[Row]) -> None:
    """Rows of one shape into `table`, in one statement run for each."""
    if rows:
        columns = tuple(rows[0])
        await tx.executemany(insert_sql(table, columns),
                             [tuple(row[c] for c in columns) for row in rows])


async def insert_records(tx: Transaction, records: t.Sequence) -> None:
    """Records of one kind (`sandbox.records`) into their table."""
    if records:
        kind = type(records[0])
        await tx.executemany(insert_sql(kind.TABLE, kind.columns()),
                             [record.values() for record in records])


@functools.cache
def insert_sql(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks(columns)})"


@functools.cache
def update_sql(table: str, columns: tuple[str, ...], key: tuple[str, ...]) -> str:
    return (f"UPDATE {table} SET {', '.join(f'{c} = ?' for c in columns)}"
            f" WHERE {' AND '.join(f'{k} = ?' for k in key)}")


def marks(values: t.Sized) -> str:
    """`?, ?, ?` for an IN list of `values`."""
    return ", ".join("?" * len(values))
