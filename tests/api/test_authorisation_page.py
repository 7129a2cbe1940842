"""The customer's authorisation page as a browser meets it: it cannot be framed (clickjacking),
leaks no referrer, runs nothing it did not ship, and a bad link is a readable page, not JSON."""

from __future__ import annotations

import base64
import hashlib
import re

import httpx
import pytest
from conftest import create_partner, get_token
from test_accounts_api import assert_problem

from sandbox.security.pkce import new_pkce

pytestmark = pytest.mark.slow

REDIRECT = "http://127.0.0.1:8080/callback"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture
def flow(tmp_path, start_server):
    """(server, the query string a partner sends the customer's browser with)."""
    server = start_server(f"sqlite:///{tmp_path / 'sandbox.db'}")
    partner = create_partner(server.db, "acme")
    token = get_token(server.url, partner, scope="consents")
    consent = httpx.post(server.url + "/consents/v1/consents",
                         headers={"Authorization": f"Bearer {token}"},
                         json={"permissions": ["ReadAccounts"]}).json()
    _, challenge = new_pkce()
    return server, {"response_type": "code", "client_id": partner["client_id"],
                    "redirect_uri": REDIRECT, "consent_id": consent["consent_id"],
                    "state": "s-1", "code_challenge": challenge, "code_challenge_method": "S256"}


def assert_guarded(response: httpx.Response) -> None:
    assert response.headers["x-frame-options"] == "DENY"
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"
    # The page's own inline style is allowed by its hash, and nothing else inline is.
    for style in re.findall(r"<style>(.*?)</style>", response.text, re.S):
        digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy
    assert "unsafe-inline" not in policy


def test_the_page_cannot_be_framed_and_leaks_no_referrer(flow):
    server, query = flow
    page = httpx.get(server.url + "/oauth2/authorize", params=query, headers={"Accept": BROWSER})
    assert page.status_code == 200 and "password" in page.text
    assert_guarded(page)
    assert page.headers["cache-control"] == "no-store"
    signed_in = httpx.post(server.url + "/oauth2/authorize", headers={"Accept": BROWSER},
                           data={**query, "username": "nobody", "password": "wrong"})
    assert signed_in.status_code == 200
    assert_guarded(signed_in)


@pytest.mark.parametrize(("change", "code", "says"), (
    ({"client_id": "cli_nosuch"}, "CLIENT_NOT_FOUND", "cli_nosuch"),
    ({"redirect_uri": "http://evil.example/cb"}, "INVALID_REDIRECT_URI", "evil.example"),
))
def test_a_bad_link_is_a_page_for_a_browser_and_a_problem_for_an_api_client(
        flow, change, code, says):
    server, query = flow
    browser = httpx.get(server.url + "/oauth2/authorize", params={**query, **change},
                        headers={"Accept": BROWSER})
    assert browser.status_code == 422
    assert browser.headers["content-type"].startswith("text/html")
    assert browser.text.startswith("<!doctype html>")
    assert code in browser.text and says in browser.text
    assert "location" not in browser.headers  # never redirected to an unregistered URI
    assert_guarded(browser)
    api = httpx.get(server.url + "/oauth2/authorize", params={**query, **change},
                    headers={"Accept": "application/json"})
    assert_problem(api, 422, code)


def test_a_browser_missing_a_parameter_gets_a_page_too(flow):
    server, query = flow
    del query["client_id"]
    browser = httpx.get(server.url + "/oauth2/authorize", params=query,
                        headers={"Accept": BROWSER})
    assert browser.status_code == 400
    assert browser.headers["content-type"].startswith("text/html")
    assert "client_id" in browser.text
    assert_guarded(browser)
