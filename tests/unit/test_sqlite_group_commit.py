"""SQLite group commit: transactions that meet at the write lock share one COMMIT, and none of
them returns before that COMMIT is on disk; one that fails rolls back alone."""

from __future__ import annotations

import asyncio
import sqlite3

from sandbox.store.base import DuplicateError
from sandbox.store.sqlite import SqliteDatabase


def rows(path) -> set[str]:
    """What another process sees: committed rows only."""
    with sqlite3.connect(path) as conn:
        return {key for (key,) in conn.execute("SELECT key FROM meta WHERE key LIKE 'k%'")}


async def write(store: SqliteDatabase, key: str, seen_on_return: dict, *, fail: str | None = None):
    async with store.transaction() as tx:
        await tx.execute("INSERT INTO meta (key, value) VALUES (?, 'v')", (key,))
        await asyncio.sleep(0)  # let the others reach the lock: they join this batch
        if fail == "error":
            raise RuntimeError("refused")
        if fail == "duplicate":
            await tx.execute("INSERT INTO meta (key, value) VALUES (?, 'v')", (key,))
    seen_on_return[key] = key in rows(store.path)


def test_concurrent_transactions_share_commits_and_return_only_when_durable(tmp_path):
    path = str(tmp_path / "group.db")
    commits = []

    async def main():
        store = SqliteDatabase(path)
        await store.open()
        store.conn.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
        seen: dict[str, bool] = {}
        outcomes = await asyncio.gather(
            *(write(store, f"k{i}", seen,
                    fail={3: "error", 7: "duplicate"}.get(i)) for i in range(40)),
            return_exceptions=True)
        await store.close()
        return outcomes, seen

    outcomes, seen = asyncio.run(main())
    assert isinstance(outcomes[3], RuntimeError)
    assert isinstance(outcomes[7], DuplicateError)
    assert all(outcome is None for i, outcome in enumerate(outcomes) if i not in (3, 7))
    # Every transaction that returned was already visible to another connection.
    assert seen == {f"k{i}": True for i in range(40) if i not in (3, 7)}
    assert rows(path) == {f"k{i}" for i in range(40) if i not in (3, 7)}
    assert 1 <= len(commits) < 40 / 4, f"{len(commits)} commits for 40 transactions"


def test_a_failed_commit_fails_every_transaction_of_its_batch(tmp_path):
    path = str(tmp_path / "full.db")

    async def main():
        store = SqliteDatabase(path)
        await store.open()
        # The batch's COMMIT fails: as on a full disk. No transaction of it may succeed.
        store.conn.execute("PRAGMA foreign_keys = OFF")
        store.conn.execute("CREATE TABLE child (key TEXT REFERENCES meta (key)"
                           " DEFERRABLE INITIALLY DEFERRED)")
        store.conn.execute("PRAGMA foreign_keys = ON")

        async def orphan():
            async with store.transaction() as tx:
                await tx.execute("INSERT INTO child (key) VALUES ('nobody')")
                await asyncio.sleep(0)

        outcomes = await asyncio.gather(orphan(), write(store, "k1", {}),
                                        return_exceptions=True)
        after = await asyncio.gather(write(store, "k2", {}), return_exceptions=True)
        await store.close()
        return outcomes, after

    outcomes, after = asyncio.run(main())
    assert all(isinstance(outcome, Exception) for outcome in outcomes), outcomes
    assert after == [None]  # the next batch commits
    assert rows(path) == {"k2"}


def test_in_memory_database_reads_what_it_wrote():
    async def main():
        store = SqliteDatabase(":memory:")
        await store.open()
        async with store.transaction() as tx:
            await tx.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
        found = await store.fetchone("SELECT value FROM meta WHERE key = 'k'")
        await store.close()
        return found

    assert asyncio.run(main()) == {"value": "v"}
