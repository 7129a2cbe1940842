"""`openbank-sandbox verify` against the sandbox itself, over every contract it serves: the
sandbox conforms to its own contracts as any partner would check them, from outside, with only
the credentials each contract asks for, writes included (--unsafe). Without --unsafe, a run
leaves the partner's callback, money and notifications as it found them."""

from __future__ import annotations

import base64
import json
import sqlite3

import httpx
import pytest
from conftest import Server, cli, create_partner, get_token

from sandbox.consent_client import customer_token
from sandbox.contracts import load_contracts
from sandbox.settings import Settings

pytestmark = pytest.mark.slow

CONTRACTS = [c.name for c in load_contracts(Settings.contracts_dir)]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    db = f"sqlite:///{tmp_path_factory.mktemp('verify') / 'sandbox.db'}"
    server = Server(db)
    try:
        partner = create_partner(db, "acme")
        # Fuzzing the consents revokes the consents it lists: a partner of its own for that.
        consenter = create_partner(db, "consenter")
        operator = json.loads(cli("operator", "create", "ops", "--db", db, "--json").stdout)
        token = customer_token(server.url, partner["client_id"],
                               partner["client_secret"])["access_token"]
        basic = base64.b64encode(
            f"{partner['client_id']}:{partner['client_secret']}".encode()).decode()
        credentials = {
            "accounts": f"Authorization: Bearer {token}",
            "payments": f"Authorization: Bearer {token}",
            "consents": f"Authorization: Bearer {get_token(server.url, consenter)}",
            "sandbox": f"X-Operator-Key: {operator['operator_key']}",
            "platform": f"Authorization: Basic {basic}",
        }
        yield server, credentials
    finally:
        server.stop()


def test_every_contract_is_covered():
    assert set(CONTRACTS) == {"accounts", "payments", "consents", "sandbox", "platform"}


@pytest.mark.parametrize("name", CONTRACTS)
def test_the_sandbox_conforms_to_its_own_contract(sandbox, name, tmp_path):
    server, credentials = sandbox
    base_path = next(c for c in httpx.get(server.url + "/contracts").json()
                     if c["name"] == name)["base_path"].rstrip("/")
    report = tmp_path / "verify.xml"
    result = cli("verify", "--contract", name, "--base-url", server.url + base_path,
                 "--header", credentials[name], "--seed", "20261127", "--max-examples", "25",
                 "--junit-xml", str(report), "--unsafe", check=False)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "result: conforms" in result.stdout
    assert report.exists()


# What a run that changed the partner would have changed: its callback, money and notifications.
STATE_TABLES = ("callbacks", "payments", "journal_entries", "postings", "transactions",
                "accounts", "notifications", "deliveries")


def state(db: str) -> dict[str, list[tuple]]:
    with sqlite3.connect(db.removeprefix("sqlite:///")) as connection:
        return {table: sorted(connection.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
                for table in STATE_TABLES}


def test_a_run_without_unsafe_leaves_the_partner_as_it_found_it(sandbox):
    server, _ = sandbox
    partner = create_partner(server.db, "bystander")
    token = customer_token(server.url, partner["client_id"],
                           partner["client_secret"])["access_token"]
    registered = httpx.put(server.url + "/payments/v1/callback",  # the partner's own
                           json={"url": "http://127.0.0.1:9/hooks/payments"},
                           headers={"Authorization": f"Bearer {get_token(server.url, partner)}"})
    assert registered.status_code == 200, registered.text
    before = state(server.db)
    result = cli("verify", "--contract", "payments", "--base-url", server.url + "/payments/v1",
                 "--header", f"Authorization: Bearer {token}", "--seed", "20261127",
                 "--max-examples", "5", check=False)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert state(server.db) == before
    assert ("skipped: 5 unsafe operations (use --unsafe to include them): DELETE /callback, "
            "POST /notifications/{event_id}/redeliver, POST /payments/{payment_id}/refund, "
            "POST /transfers, PUT /callback") in result.stdout
