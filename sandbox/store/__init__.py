"""State behind one small interface: `open_store(url)` gives a `Store` over SQLite or PostgreSQL,
its queries grouped by topic.

    store.partners   partners, their credentials and clocks; the bank seed; failed sign-ins
    store.consents   consents, access and refresh tokens, authorization codes
    store.bank       customers, accounts and statements, as read
    store.ledger     money: facts for decisions, bookings written atomically, the ledger check
    store.outbox     callbacks, the notification outbox and its delivery log
    store.control    operators, controls, account status, risk events
"""

from __future__ import annotations

import contextlib
import os
import typing as t
from urllib.parse import urlsplit

from sandbox.store.bank import Bank
from sandbox.store.base import (
    ConstraintError,
    Database,
    DuplicateError,
    Row,
    StoreError,
    Transaction,
)
from sandbox.store.consents import Consents
from sandbox.store.control import Control
from sandbox.store.ledger import Ledger
from sandbox.store.outbox import Outbox
from sandbox.store.partners import Partners

__all__ = ["ConstraintError", "DuplicateError", "Store", "StoreError", "Transaction",
           "database_name", "open_store"]


class Store:
    """The sandbox's state, by topic, over one database. Open it before use (`async with`)."""

    def __init__(self, db: Database):
        self.db = db
        self.partners = Partners(db)
        self.consents = Consents(db)
        self.bank = Bank(db)
        self.ledger = Ledger(db)
        self.outbox = Outbox(db)
        self.control = Control(db)

    async def open(self) -> None:
        await self.db.open()

    async def close(self) -> None:
        await self.db.close()

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Transaction]:
        return self.db.transaction()

    async def fetchall(self, sql: str, params: t.Sequence = ()) -> list[Row]:
        """A read outside any topic: for tests and checks that look at the tables as such."""
        return await self.db.fetchall(sql, params)

    async def fetchone(self, sql: str, params: t.Sequence = ()) -> Row | None:
        return await self.db.fetchone(sql, params)


def open_store(url: str) -> Store:
    """A store for a SQLAlchemy-style URL: sqlite:///rel.db, sqlite:////abs.db, sqlite://:memory:,
    postgresql://user@host/db. Call `await store.open()` (or `async with`) before use."""
    if url.startswith("sqlite:"):
        from sandbox.store.sqlite import SqliteDatabase

        return Store(SqliteDatabase(sqlite_path(url)))
    if url.startswith(("postgresql:", "postgres:")):
        from sandbox.store.postgres import PostgresDatabase

        return Store(PostgresDatabase(url))
    raise StoreError(f"unsupported database URL {url!r}: use sqlite:///FILE or postgresql://...")


def sqlite_path(url: str) -> str:
    """sqlite:///rel.db → 'rel.db', sqlite:////abs.db → '/abs.db', sqlite:// → ':memory:'."""
    rest = url[len("sqlite:"):]
    if rest in ("", "//", "///:memory:", "//:memory:"):
        return ":memory:"
    if not rest.startswith("///"):
        raise StoreError(f"a SQLite URL is sqlite:///relative.db or sqlite:////abs.db, got {url!r}")
    return rest[3:]


def database_name(url: str, *, full: bool = True) -> str:
    """Which database a URL means, said to people. A relative SQLite URL resolves against the
    working directory, so the same `sqlite:///sandbox.db` run from two folders is two databases:
    `full` gives the file's absolute path (for the command line and the server's own log);
    otherwise only the file's name, which a server may tell a remote caller without showing its
    directories. PostgreSQL: host and database, never the user or password."""
    if url.startswith("sqlite:"):
        try:
            path = sqlite_path(url)
        except StoreError:  # opening it says what is wrong
            return url
        if path == ":memory:":
            return "an in-memory SQLite database"
        return os.path.abspath(path) if full else os.path.basename(path)
    parts = urlsplit(url)
    name = parts.path.lstrip("/") or "postgres"
    if not full:
        return f"PostgreSQL database {name!r}"
    return f"PostgreSQL database {name!r} on {parts.hostname or 'localhost'}"
