"""The database itself refuses an unbalanced journal entry, on SQLite and on PostgreSQL, and
nothing of the transaction that tried is committed.

`Entry` cannot be constructed unbalanced, so a bug would have to get past it: these tests do
that on purpose (forging an entry, or writing rows with SQL) and check that the store's own
triggers and constraints still stop it. What is checked afterwards is what a partner would
see: balances, statement lines, payments and the ledger check.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from sandbox import ledger
from sandbox.bank import load_profile
from sandbox.ledger import Booking, Entry, Leg, StatementLine
from sandbox.money import Fen
from sandbox.partners import create_partner
from sandbox.settings import Settings
from sandbox.store import ConstraintError, open_store
from sandbox.store.ledger import write

SMALL = load_profile(Settings.from_env({}).fixtures_dir, "small")


def forged(movement_id: str, legs: list[Leg]) -> Entry:
    """An entry made without its constructor's check, as a bug might make one."""
    entry = object.__new__(Entry)
    for name, value in (("movement_id", movement_id), ("booked_at", "2026-11-30T12:00:00+08:00"),
                        ("legs", tuple(legs))):
        object.__setattr__(entry, name, value)
    return entry


async def snapshot(store, partner_id: str) -> dict:
    accounts = await store.bank.accounts(partner_id, customer_id=None, after=0, limit=1000)
    lines = await store.fetchall("SELECT COUNT(*) AS n FROM transactions WHERE partner_id = ?",
                                 (partner_id,))
    return {"balances": {a.account_id: a.balance_fen for a in accounts},
            "lines": lines[0]["n"], "check": await store.ledger.check(partner_id)}


async def bank(db_url: str):
    store = open_store(db_url)
    await store.open()
    partner = await create_partner(store, "acme", SMALL, seed=7)
    accounts = await store.bank.accounts(partner["partner_id"], customer_id=None, after=0,
                                         limit=1000)
    return store, partner["partner_id"], [a for a in accounts if a.balance_fen > 10_000]


@pytest.mark.parametrize(("name", "legs"), (
    ("legs that do not sum to zero", lambda a, b: [Leg(a, Fen(-500)), Leg(b, Fen(400))]),
    ("a single leg", lambda a, b: [Leg(a, Fen(-500))]),
    ("balanced overall, not per currency",
     lambda a, b: [Leg(a, Fen(-500)), Leg(ledger.CLEARING, Fen(500), "USD")]),
))
def test_the_database_refuses_an_unbalanced_entry_and_commits_nothing(db_url, name, legs):
    async def scenario():
        store, partner_id, (payer, payee, *_) = await bank(db_url)
        try:
            before = await snapshot(store, partner_id)
            entry = forged("mov_" + "f" * 16, legs(payer.account_id, payee.account_id))
            # The rest of the booking is well formed: a statement line and a new balance.
            line = StatementLine(
                account_id=payer.account_id, seq=payer.last_seq + 1, transaction_id="txn_1",
                movement_id=entry.movement_id, booked_at=entry.booked_at,
                booking_date=entry.booked_at[:10], direction="debit", amount_fen=500,
                balance_after_fen=payer.balance_fen - 500, description="forged",
                counterparty_name="nobody", counterparty_account=None, channel="online")
            moved = dataclasses.replace(payer, balance_fen=payer.balance_fen - 500,
                                        last_seq=payer.last_seq + 1)
            booking = Booking(entries=(entry,), lines=(line,),
                              saves=(ledger.Save(moved, payer),))
            with pytest.raises(ConstraintError, match="unbalanced journal entry"):
                async with store.transaction() as tx:
                    await write(tx, partner_id, booking)
            assert await snapshot(store, partner_id) == before
        finally:
            await store.close()

    asyncio.run(scenario())


def test_legs_without_their_entry_are_refused_when_the_transaction_commits(db_url):
    async def scenario():
        store, partner_id, (payer, payee, *_) = await bank(db_url)
        try:
            before = await snapshot(store, partner_id)
            with pytest.raises(ConstraintError):
                async with store.transaction() as tx:
                    await tx.executemany(
                        "INSERT INTO postings (partner_id, movement_id, leg, ledger_account,"
                        " amount_fen, currency, booked_at) VALUES (?, ?, ?, ?, ?, 'CNY', ?)",
                        [(partner_id, "mov_orphan", 1, payer.account_id, -700, "2026-11-30"),
                         (partner_id, "mov_orphan", 2, payee.account_id, 500, "2026-11-30")])
            assert await snapshot(store, partner_id) == before
        finally:
            await store.close()

    asyncio.run(scenario())


def test_an_entry_once_written_takes_no_more_legs_and_its_legs_never_change(db_url):
    async def scenario():
        store, partner_id, (payer, *_) = await bank(db_url)
        try:
            [row] = await store.fetchall(
                "SELECT movement_id FROM postings WHERE partner_id = ? AND ledger_account = ?"
                " ORDER BY movement_id LIMIT 1", (partner_id, payer.account_id))
            before = await snapshot(store, partner_id)
            with pytest.raises(ConstraintError, match="already written"):
                async with store.transaction() as tx:
                    await tx.execute(
                        "INSERT INTO postings (partner_id, movement_id, leg, ledger_account,"
                        " amount_fen, currency, booked_at) VALUES (?, ?, 99, ?, 100, 'CNY', ?)",
                        (partner_id, row["movement_id"], payer.account_id, "2026-11-30"))
            with pytest.raises(ConstraintError, match="never changed"):
                async with store.transaction() as tx:
                    await tx.execute("UPDATE postings SET amount_fen = amount_fen + 1"
                                     " WHERE partner_id = ? AND movement_id = ?",
                                     (partner_id, row["movement_id"]))
            assert await snapshot(store, partner_id) == before
        finally:
            await store.close()

    asyncio.run(scenario())


def test_a_leg_goes_only_with_its_whole_entry(db_url):
    async def scenario():
        store, partner_id, (payer, *_) = await bank(db_url)
        try:
            [row] = await store.fetchall(
                "SELECT movement_id FROM postings WHERE partner_id = ? AND ledger_account = ?"
                " ORDER BY movement_id LIMIT 1", (partner_id, payer.account_id))
            entry = (partner_id, row["movement_id"])
            before = await snapshot(store, partner_id)
            with pytest.raises(ConstraintError, match="goes only with its entry"):
                async with store.transaction() as tx:
                    await tx.execute("DELETE FROM postings WHERE partner_id = ?"
                                     " AND movement_id = ? AND leg = 1", entry)
            with pytest.raises(ConstraintError):  # the header alone: its legs are left over
                async with store.transaction() as tx:
                    await tx.execute("DELETE FROM journal_entries WHERE partner_id = ?"
                                     " AND movement_id = ?", entry)
            assert await snapshot(store, partner_id) == before
            async with store.transaction() as tx:  # the header, then every leg: the entry goes
                await tx.execute("DELETE FROM journal_entries WHERE partner_id = ?"
                                 " AND movement_id = ?", entry)
                await tx.execute("DELETE FROM postings WHERE partner_id = ?"
                                 " AND movement_id = ?", entry)
            check = (await snapshot(store, partner_id))["check"]
            assert check["legs"] < before["check"]["legs"]
            assert check["unbalanced_movements"] == 0
        finally:
            await store.close()

    asyncio.run(scenario())
