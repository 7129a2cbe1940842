"""SQLite backend: the embedded default, one file (or :memory:), nothing to install."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import typing as t

from sandbox.store.base import DuplicateError, Row, Store, StoreError, Transaction


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


class SqliteStore(Store):
    """Queries are short and local, so they run on the event loop: no thread hop per request.
    WAL lets other processes (uvicorn workers, the CLI) read while one writes."""

    def __init__(self, path: str):
        self.path = path
        self.conn: sqlite3.Connection | None = None
        self._write_lock = asyncio.Lock()

    async def open(self) -> None:
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
        self.conn = conn
        try:
            await self.create_schema()
        except StoreError:
            await self.close()
            raise

    async def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    @contextlib.asynccontextmanager
    async def transaction(self) -> t.AsyncIterator[Transaction]:
        async with self._write_lock:
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteTransaction(conn)
            except sqlite3.IntegrityError as exc:
                conn.execute("ROLLBACK")
                raise DuplicateError(str(exc)) from exc
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")

    async def fetchall(self, sql: str, params: t.Sequence = ()) -> list[Row]:
        return self.conn.execute(sql, params).fetchall()

    async def fetchone(self, sql: str, params: t.Sequence = ()) -> Row | None:
        return self.conn.execute(sql, params).fetchone()
