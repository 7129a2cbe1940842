"""Same seed, same partner name: the same bank, byte for byte, whichever server and backend."""

from __future__ import annotations

import pytest
from conftest import all_pages, bank_rows, cli, create_partner, partner_client, postgres_schema

pytestmark = pytest.mark.slow


def snapshot(server, name: str = "acme") -> dict:
    """Everything partner `name` can read with its customers' consents, as the wire shows it."""
    partner = create_partner(server.db, name)
    customer_ids = [c["customer_id"] for c in bank_rows(server.db, partner["partner_id"])[0]]
    with partner_client(server, partner) as client:
        accounts = [a for customer_id in customer_ids
                    for a in all_pages(client, "/accounts/v1/accounts", limit=100,
                                       customer_id=customer_id)]
        return {
            "customers": [client.get(f"/accounts/v1/customers/{customer_id}").json()
                          for customer_id in customer_ids],
            "accounts": accounts,
            "transactions": {
                a["account_id"]: all_pages(
                    client, f"/accounts/v1/accounts/{a['account_id']}/transactions", limit=100
                )
                for a in accounts
            },
        }


def test_two_servers_with_the_same_seed_serve_identical_banks(tmp_path, start_server):
    first = start_server(f"sqlite:///{tmp_path / 'a.db'}", "--seed", "42")
    second = start_server(f"sqlite:///{tmp_path / 'b.db'}", "--seed", "42")
    one, two = snapshot(first), snapshot(second)
    assert one == two
    assert sum(len(t) for t in one["transactions"].values()) > 100


def test_a_different_seed_serves_a_different_bank(tmp_path, start_server):
    first = start_server(f"sqlite:///{tmp_path / 'a.db'}", "--seed", "42")
    other = start_server(f"sqlite:///{tmp_path / 'c.db'}", "--seed", "43")
    one, three = snapshot(first), snapshot(other)
    assert [a["account_id"] for a in one["accounts"]] != [a["account_id"]
                                                            for a in three["accounts"]]
    assert [c["name"] for c in one["customers"]] != [c["name"] for c in three["customers"]]


@pytest.mark.postgres
def test_sqlite_and_postgresql_serve_the_same_bank_for_the_same_seed(tmp_path, start_server):
    with postgres_schema() as url:
        on_postgres = start_server(url, "--seed", "42")
        on_sqlite = start_server(f"sqlite:///{tmp_path / 'a.db'}", "--seed", "42")
        assert snapshot(on_postgres) == snapshot(on_sqlite)


def test_a_database_keeps_the_seed_it_was_created_with(tmp_path):
    db = f"sqlite:///{tmp_path / 'a.db'}"
    create_partner(db, "acme", "--seed", "42")
    refused = cli("partner", "create", "globex", "--db", db, "--seed", "43", check=False)
    assert refused.returncode == 1 and "created with seed 42" in refused.stderr
    assert create_partner(db, "globex")["seed"] == 42
