"""The synthetic bank's bytes, pinned: the README promises "the same bank, byte for byte, on any
day", and partners' recorded tests rely on it.

A partner created from seed 1 (and a small one from seed 7) is read back from the database it
was written to: every customer, every account, every statement line and every journal leg, in
a fixed order and a fixed set of columns. The SHA-256 of that text is fixed here. A change that
moves it changes every partner's bank: a new Faker release, a change in how histories are
simulated, or in how the core books them. If the change is meant, say so in the README and
update the hash; if not, it is a bug.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest

from sandbox.bank import load_profile
from sandbox.partners import create_partner
from sandbox.store import open_store

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"

COLUMNS = {
    "customers": ("customer_id", "ordinal", "kind", "name", "resident_id", "uscc", "birth_date",
                  "gender", "mobile", "address", "external_card", "external_bank"),
    "accounts": ("account_id", "ordinal", "customer_id", "account_number", "account_class",
                 "product_name", "currency", "status", "opened_on", "bound_account_number",
                 "balance_fen"),
    "transactions": ("account_id", "seq", "transaction_id", "movement_id", "booked_at",
                     "booking_date", "direction", "amount_fen", "balance_after_fen",
                     "description", "counterparty_name", "counterparty_account", "channel"),
    "postings": ("movement_id", "leg", "ledger_account", "amount_fen", "booked_at"),
}
ORDER = {"customers": "ordinal", "accounts": "ordinal", "transactions": "account_id, seq",
         "postings": "movement_id, leg"}

GOLDEN = (
    # (seed, partner, profile, rows per table, SHA-256 of the bank)
    (1, "acme", "default", {"customers": 15, "accounts": 24, "transactions": 1159,
                            "postings": 2282},
     "132f2ced8750f09fa86b308284e03535766cc84739b9557bea8bd76d4e42eaa6"),
    (7, "globex", "small", {"customers": 4, "accounts": 8, "transactions": 98,
                            "postings": 186},
     "3af2381534cdb6be037698d73078b894cb1ef468d6cbe673d5eb067c8b2c3bf9"),
)


def bank_bytes(db: str, seed: int, name: str, profile: str) -> tuple[dict[str, int], bytes]:
    async def read():
        async with open_store(db) as store:
            partner = await create_partner(store, name, load_profile(FIXTURES, profile),
                                           seed=seed)
            tables = {}
            for table, columns in COLUMNS.items():
                rows = await store.fetchall(
                    f"SELECT {', '.join(columns)} FROM {table} WHERE partner_id = ?"
                    f" ORDER BY {ORDER[table]}", (partner["partner_id"],))
                tables[table] = [[row[c] for c in columns] for row in rows]
            return tables

    tables = asyncio.run(read())
    text = json.dumps(tables, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return {table: len(rows) for table, rows in tables.items()}, text.encode("utf-8")


@pytest.mark.parametrize(("seed", "name", "profile", "counts", "expected"), GOLDEN)
def test_a_seeded_partners_bank_is_byte_for_byte_the_pinned_one(tmp_path, seed, name, profile,
                                                                counts, expected):
    found, text = bank_bytes(f"sqlite:///{tmp_path / 'golden.db'}", seed, name, profile)
    assert found == counts
    assert hashlib.sha256(text).hexdigest() == expected
