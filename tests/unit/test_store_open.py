"""Opening a store on a database a running server is writing to: a `partner create` beside a
busy PostgreSQL server must neither wait for its transactions nor deadlock with them."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from conftest import postgres_schema

from sandbox.store import open_store

pytestmark = pytest.mark.postgres


def test_opening_a_current_database_takes_no_lock_a_booking_holds():
    async def scenario(url: str) -> None:
        async with open_store(url):  # makes the tables
            pass
        # A server's booking in flight: it holds the lock every write of accounts takes.
        with psycopg.connect(url) as busy:
            busy.execute("LOCK TABLE accounts IN ROW EXCLUSIVE MODE")
            store = open_store(url)
            try:
                await asyncio.wait_for(store.open(), timeout=5)
            finally:
                await store.close()
            busy.rollback()

    with postgres_schema() as url:
        asyncio.run(scenario(url))
