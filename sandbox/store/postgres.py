"""PostgreSQL backend: many server processes on many hosts over one database."""

from __future__ import annotations

import contextlib
import functools
import typing as t

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from sandbox.store.base import (
    ConstraintError,
    Database,
    DuplicateError,
    Row,
    StoreError,
    Transaction,
)
from sandbox.store.schema import create_tables


@functools.lru_cache(maxsize=512)
def _pg(sql: str) -> str:
    """The store writes qmark placeholders once; PostgreSQL wants %s."""
    return sql.replace("%", "%%").replace("?", "%s")


class _PostgresTransaction(Transaction):
    def __init__(self, conn: psycopg.AsyncConnection):
        self.conn = conn

    async def execute(self, sql: str, params: t.Sequence = ()) -> None:
        await self.conn.execute(_pg(sql), params)

    async def executemany(self, sql: str, rows: t.Iterable[t.Sequence]) -> None:
        async with self.conn.cursor() as cur:
            await cur.executemany(_pg(sql), list(rows))

    async def fetchone(self, sql: str, params: t.Sequence = ()) -> Row | None:
        cur = await self.conn.execute(_pg(sql), params)
        return await cur.fetchone()

    async def fetchall(self, sql: str, params: t.Sequence = ()) -> list[Row]:
        cur = await self.conn.execute(_pg(sql), params)
        return await cur.fetchall()


class PostgresDatabase(Database):
    for_update = " FOR UPDATE"
    skip_locked = " FOR UPDATE SKIP LOCKED"
    dialect = "postgresql"

    def __init__(self, url: str, *, max_size: int = 8):
        self.url = url
        self.max_size = max_size
        self.pool: AsyncConnectionPool | None = None

    async def open(self) -> None:
        self.pool = AsyncConnectionPool(
            self.url,
            min_size=1,
            max_size=self.max_size,
            kwargs={"row_factory": dict_row, "autocommit": True},
            open=False,
        )
        try:
            await self.pool.open(wait=True, timeout=10)
        except Exception as exc:
            await self.pool.close()
            raise StoreError(f"cannot connect to PostgreSQL at {self.url!r}: {exc}") from exc
        try:
            async with self.pool.connection() as conn:
                # Serialise schema creation between processes starting at once.
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock(20260101)")
                    await create_tables(_PostgresTransaction(conn), self.dialect)
        except StoreError:
            await self.close()
            raise

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
            self.pool = None

    @contextlib.asynccontextmanager
    async def transaction(self) -> t.AsyncIterator[Transaction]:
        async with self.pool.connection() as conn:
            try:
                async with conn.transaction():
                    yield _PostgresTransaction(conn)
            except psycopg.errors.UniqueViolation as exc:
                raise DuplicateError(str(exc)) from exc
            except psycopg.errors.IntegrityError as exc:  # a check, a foreign key, a trigger
                raise ConstraintError(str(exc)) from exc

    async def fetchall(self, sql: str, params: t.Sequence = ()) -> list[Row]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(_pg(sql), params)
            return await cur.fetchall()

    async def fetchone(self, sql: str, params: t.Sequence = ()) -> Row | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(_pg(sql), params)
            return await cur.fetchone()

