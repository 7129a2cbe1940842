"""When the sandbox itself fails, the partner gets a problem, never a stack trace, and the
failure is logged with its trace."""

from __future__ import annotations

import asyncio
import logging

from starlette.testclient import TestClient

from sandbox.app import create_app
from sandbox.bank import load_profile
from sandbox.partners import create_partner
from sandbox.settings import Settings
from sandbox.store import open_store
from sandbox.store.bank import Bank


def test_an_unhandled_error_is_a_500_problem_and_is_logged(tmp_path, monkeypatch, caplog):
    settings = Settings(db=f"sqlite:///{tmp_path / 'x.db'}")

    async def provision():
        async with open_store(settings.db) as store:
            return await create_partner(store, "acme", load_profile(settings.fixtures_dir,
                                                                    "small"))

    partner = asyncio.run(provision())

    async def broken(self, partner_id, account_id):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Bank, "account", broken)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        token = client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                            auth=(partner["client_id"], partner["client_secret"])).json()
        with caplog.at_level(logging.ERROR):
            response = client.get(
                "/accounts/v1/accounts/acc_0123456789abcdef/balance",
                headers={"Authorization": f"Bearer {token['access_token']}"},
            )
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "INTERNAL_ERROR"
    assert "disk on fire" not in response.text and "Traceback" not in response.text
    assert "disk on fire" in caplog.text
