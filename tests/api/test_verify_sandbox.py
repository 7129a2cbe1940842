"""`openbank-sandbox verify` against the sandbox itself, over every contract it serves: the
sandbox conforms to its own contracts as any partner would check them, from outside, with only
the credentials each contract asks for."""

from __future__ import annotations

import base64
import json

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
                 "--junit-xml", str(report), check=False)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "result: conforms" in result.stdout
    assert report.exists()
