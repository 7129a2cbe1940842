"""SQLite backend: the embedded default, one file (or :memory:), nothing to install."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import typing as t

from sandbox.store.base import (
    ConstraintError,
    Database,
    DuplicateError,
    Row,
    StoreError,
    Transaction,
)
from sandbox.store.schema import create_tables


def _dict_row(cursor: sqlite3.Cursor, row: tuple) -> Row:
    return {d[0]: v for d, v in zip(cursor.description, row, strict=True)}


class _SqliteTransaction(Transaction):
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    async def execute(self, sql: str, params: t.Sequence = ()) -> None:
        self.conn.execute(sql, params)

    async def executemany(self, sql: str, rows: t.Iterable[t.Sequence]) -> None:
        self.conn.executemany(sql, rows)

    async def fetchone(self, sql: str, params: t.Sequence = ()) -> Row | None:
        return self.conn.execute(sql, params).fetchone()

    async def fetchall(self, sql: str, params: t.Sequence = ()) -> list[Row]:
        return self.conn.execute(sql, params).fetchall()


def _refused(exc: sqlite3.IntegrityError) -> ConstraintError:
    if str(exc).startswith("UNIQUE constraint failed"):
        return DuplicateError(str(exc))
    return ConstraintError(str(exc))


class SqliteDatabase(Database):
    """Queries are short and local, so they run on the event loop: no thread hop per request.
    WAL lets other processes (uvicorn workers, the CLI) read while one writes.

    Group commit: a transaction is a savepoint inside a batch that stays open until the
    transactions already waiting for the write lock have run; one COMMIT (one fsync, run off
    the loop) then makes the whole batch durable, and only then does each transaction's
    `async with` return, so nothing is acknowledged before it is on disk. A transaction that
    fails rolls back to its savepoint and leaves the others in the batch alone (a deferred
    constraint, the journal's legs-without-an-entry guard, is checked only at the COMMIT and
    so fails the whole batch: only a bug can trip it). Reads outside a transaction use a
    second connection, which sees committed data only."""

    dialect = "sqlite"

    def __init__(self, path: str):
        self.path = path
        self.conn: sqlite3.Connection | None = None
        self.reader: sqlite3.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._batch: asyncio.Future | None = None  # resolved when the open batch is durable
        self._committer: asyncio.Task | None = None

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database {self.path!r}: {exc}") from exc
        conn.row_factory = _dict_row
        conn.execute("PRAGMA busy_timeout = 10000")
        if self.path != ":memory:":
            conn.execute("PRAGMA journal_mode = WAL")
        # FULL: a commit is on disk before a 2xx acknowledges it.
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        # Each transaction is a savepoint in a batch: its undo records (the sub-journal) stay
        # in memory instead of a temporary file written on every first change to a page.
        conn.execute("PRAGMA temp_store = MEMORY")
        # Up to 64 MiB of pages kept per connection (SQLite's default is 2 MiB): a booking
        # updates indexes all over the file, and each page not held is read again first.
        conn.execute("PRAGMA cache_size = -65536")
        return conn

    async def open(self) -> None:
        self.conn = self._connect()
        try:
            async with self.transaction() as tx:
                await create_tables(tx, self.dialect)
        except StoreError:
            await self.close()
            raise
        # An in-memory database exists once per connection: it reads where it writes.
        self.reader = self.conn if self.path == ":memory:" else self._connect()

    async def close(self) -> None:
        if self._committer is not None:
            await asyncio.shield(self._committer)
        if self.reader is not None and self.reader is not self.conn:
            self.reader.close()
        if self.conn is not None:
            self.conn.close()
        self.conn = self.reader = None

    @contextlib.asynccontextmanager
    async def transaction(self) -> t.AsyncIterator[Transaction]:
        async with self._write_lock:
            conn = self.conn
            if self._batch is not None and not conn.in_transaction:
                # SQLite rolled the whole batch back on an error of its own: fail it.
                self._fail_batch(StoreError("the transaction was rolled back by SQLite"))
            if self._batch is None:
                conn.execute("BEGIN IMMEDIATE")
                self._batch = asyncio.get_running_loop().create_future()
                self._committer = asyncio.get_running_loop().create_task(self._commit())
            batch = self._batch
            conn.execute("SAVEPOINT request")
            try:
                yield _SqliteTransaction(conn)
            except sqlite3.IntegrityError as exc:
                self._undo(conn)
                raise _refused(exc) from exc
            except BaseException:
                self._undo(conn)
                raise
            conn.execute("RELEASE request")
        # Durable before the caller answers anyone.
        await asyncio.shield(batch)

    @staticmethod
    def _undo(conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            conn.execute("ROLLBACK TO request")
            conn.execute("RELEASE request")

    def _fail_batch(self, exc: BaseException) -> None:
        batch, self._batch = self._batch, None
        if not batch.done():
            batch.set_exception(exc)
            batch.exception()  # retrieved here: a batch nobody waits for is not an error

    async def _commit(self) -> None:
        # Queued behind the transactions already waiting for the lock: they join this batch.
        async with self._write_lock:
            batch = self._batch
            if batch is None or batch.done():
                return
            self._batch = None
            try:
                await asyncio.get_running_loop().run_in_executor(None, self.conn.execute,
                                                                 "COMMIT")
            except BaseException as exc:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                self._batch = batch
                kind = ConstraintError if isinstance(exc, sqlite3.IntegrityError) else StoreError
                self._fail_batch(kind(f"commit failed: {exc}"))
                if not isinstance(exc, Exception):
                    raise
            else:
                batch.set_result(None)

    async def fetchall(self, sql: str, params: t.Sequence = ()) -> list[Row]:
        return self.reader.execute(sql, params).fetchall()

    async def fetchone(self, sql: str, params: t.Sequence = ()) -> Row | None:
        return self.reader.execute(sql, params).fetchone()
