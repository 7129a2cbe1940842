"""A partner opens GET /contracts, follows the accounts contract's docs_url, and sees its Swagger
UI rendered in a real headless browser (Debian's chromium)."""

from __future__ import annotations

import os
import shutil
import subprocess

import httpx
import pytest
from conftest import IN_CI

pytestmark = pytest.mark.slow
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium")


def render(url: str, profile_dir, *extra: str) -> subprocess.CompletedProcess:
    if not CHROMIUM:
        if IN_CI:
            pytest.fail("CI=true but chromium is not installed: .ci/run must install it")
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile_dir}", "--virtual-time-budget=10000",
         *extra, url],
        capture_output=True, text=True, timeout=90,
    )


def test_docs_url_of_the_accounts_contract_shows_its_operations(tmp_path, start_server):
    server = start_server(f"sqlite:///{tmp_path / 'ui.db'}")
    entries = httpx.get(server.url + "/contracts").json()
    accounts = next(e for e in entries if e["name"] == "accounts")

    dom = render(server.url + accounts["docs_url"], tmp_path / "profile", "--dump-dom").stdout

    # Swagger UI fetched the spec and rendered one block per operation.
    assert "swagger-ui" in dom and accounts["title"] in dom
    for path in ("/accounts", "/accounts/{account_id}", "/accounts/{account_id}/balance",
                 "/accounts/{account_id}/transactions", "/account-openings"):
        assert f'data-path="{path}"' in dom
    assert "Authorize" in dom  # the OAuth2 client-credentials flow is offered


def test_every_listed_contract_has_a_working_docs_page(tmp_path, start_server):
    server = start_server(f"sqlite:///{tmp_path / 'ui.db'}")
    for entry in httpx.get(server.url + "/contracts").json():
        dom = render(server.url + entry["docs_url"], tmp_path / entry["name"], "--dump-dom").stdout
        assert entry["title"] in dom, entry["name"]
