"""Consents as a partner meets them, against a real server on both backends: the headless path,
the authorization-code exchange with PKCE and its failures, refresh tokens, revocation, expiry
by the partner's clock, and a consent's reach: its customer, its accounts, its partner."""

from __future__ import annotations

import json
import urllib.parse

import httpx
import pytest
from conftest import bank_rows, cli, create_partner, get_token
from test_accounts_api import assert_problem

from sandbox.consent_client import authorised_code, customer_token
from sandbox.security.pkce import new_pkce

pytestmark = pytest.mark.slow

REDIRECT = "http://127.0.0.1:8080/callback"


@pytest.fixture
def partner_client(server, partner):
    """The partner's own client: client-credentials token with every scope."""
    token = get_token(server.url, partner)
    with httpx.Client(base_url=server.url,
                      headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def new_consent(client, **request) -> dict:
    response = client.post("/consents/v1/consents",
                           json={"permissions": ["ReadAccounts", "ReadBalances"], **request})
    assert response.status_code == 201, response.text
    return response.json()


def exchange(server, partner, **form) -> httpx.Response:
    return httpx.post(server.url + "/oauth2/token",
                      auth=(partner["client_id"], partner["client_secret"]),
                      data={"grant_type": "authorization_code", **form})


def s256() -> dict:
    """A PKCE challenge, as the headless path requires."""
    return {"code_challenge": new_pkce()[1], "code_challenge_method": "S256"}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_the_headless_path_gives_a_token_bound_to_the_customer_and_consent(
        server, partner, partner_client):
    consent = new_consent(partner_client)
    assert consent["status"] == "AWAITING_AUTHORISATION" and consent["account_ids"] == []
    customers, accounts = bank_rows(server.db, partner["partner_id"])
    customer = customers[1]["customer_id"]
    theirs = [a["account_id"] for a in accounts if a["customer_id"] == customer]
    verifier, challenge = new_pkce()
    answer = partner_client.post(f"/consents/v1/consents/{consent['consent_id']}/authorisation",
                                 json={"customer_id": customer, "decision": "approve",
                                       "state": "abc", "code_challenge": challenge,
                                       "code_challenge_method": "S256"})
    assert answer.status_code == 200, answer.text
    result = answer.json()
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(result["redirect_to"]).query)
    assert query["code"] == [result["code"]] and query["state"] == ["abc"]
    assert result["redirect_uri"] == REDIRECT and result["customer_id"] == customer

    token = exchange(server, partner, code=result["code"], redirect_uri=REDIRECT,
                     code_verifier=verifier)
    assert token.status_code == 200, token.text
    body = token.json()
    assert (body["consent_id"], body["customer_id"], body["scope"]) == (
        consent["consent_id"], customer, "accounts")
    assert body["refresh_token"] and token.headers["cache-control"] == "no-store"
    listed = httpx.get(server.url + "/accounts/v1/accounts",
                       headers=bearer(body["access_token"])).json()["items"]
    assert sorted(a["account_id"] for a in listed) == sorted(theirs)
    read = partner_client.get(f"/consents/v1/consents/{consent['consent_id']}").json()
    assert read["status"] == "AUTHORISED" and read["customer_id"] == customer
    assert sorted(read["account_ids"]) == sorted(theirs)


def test_the_token_command_prints_a_customer_token(server, partner):
    result = cli("token", "--client-id", partner["client_id"], "--client-secret",
                 partner["client_secret"], "--permissions", "ReadAccounts,ReadBalances",
                 "--base-url", server.url, "--json")
    printed = json.loads(result.stdout)
    assert set(printed) == {"access_token", "refresh_token", "consent_id", "customer_id"}
    first = bank_rows(server.db, partner["partner_id"])[0][0]["customer_id"]
    assert printed["customer_id"] == first  # the first customer, unless named
    account = httpx.get(server.url + "/accounts/v1/accounts",
                        headers=bearer(printed["access_token"])).json()["items"][0]
    balance = httpx.get(server.url + f"/accounts/v1/accounts/{account['account_id']}/balance",
                        headers=bearer(printed["access_token"]))
    assert balance.status_code == 200
    transactions = httpx.get(
        server.url + f"/accounts/v1/accounts/{account['account_id']}/transactions",
        headers=bearer(printed["access_token"]))
    assert_problem(transactions, 403, "PERMISSION_NOT_GRANTED")
    wrong = cli("token", "--client-id", partner["client_id"], "--client-secret", "wrong",
                "--base-url", server.url, check=False)
    assert wrong.returncode == 1 and "INVALID_CLIENT" in wrong.stderr
    unknown = cli("token", "--client-id", "x", "--client-secret", "y", "--permissions",
                  "ReadEverything", check=False)
    assert unknown.returncode == 2 and "ReadEverything" in unknown.stderr


@pytest.mark.parametrize(("verifier", "why"), (
    (None, "no verifier"),
    ("wrong-" + "x" * 43, "a verifier that does not match"),
))
def test_pkce_failures_get_no_token(server, partner, verifier, why):
    with httpx.Client(base_url=server.url) as client:
        code = authorised_code(client, partner["client_id"], partner["client_secret"])
    form = {"code": code["code"], "redirect_uri": code["redirect_uri"]}
    if verifier:
        form["code_verifier"] = verifier
    refused = exchange(server, partner, **form)
    assert assert_problem(refused, 400, "INVALID_GRANT", "body.code_verifier")["error"] == (
        "invalid_grant"), why


def test_the_authorisation_page_requires_pkce_and_a_registered_redirect_uri(
        server, partner, partner_client):
    consent = new_consent(partner_client)
    query = {"response_type": "code", "client_id": partner["client_id"],
             "redirect_uri": REDIRECT, "consent_id": consent["consent_id"], "state": "s-1"}
    # Without a challenge: back to the partner with the OAuth2 error, state echoed.
    no_pkce = httpx.get(server.url + "/oauth2/authorize", params=query)
    assert no_pkce.status_code == 302
    back = urllib.parse.urlsplit(no_pkce.headers["location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == REDIRECT
    assert urllib.parse.parse_qs(back.query)["error"] == ["invalid_request"]
    assert urllib.parse.parse_qs(back.query)["state"] == ["s-1"]
    # A redirect URI the partner did not register is never redirected to.
    _, challenge = new_pkce()
    elsewhere = httpx.get(server.url + "/oauth2/authorize", params={
        **query, "code_challenge": challenge, "redirect_uri": "http://evil.example/cb"})
    assert_problem(elsewhere, 422, "INVALID_REDIRECT_URI", "query.redirect_uri")
    assert "location" not in elsewhere.headers
    page = httpx.get(server.url + "/oauth2/authorize",
                     params={**query, "code_challenge": challenge, "code_challenge_method": "S256"})
    assert page.status_code == 200 and "acme" in page.text and "password" in page.text


def test_a_code_is_refused_with_another_redirect_uri_and_works_once(server, partner):
    with httpx.Client(base_url=server.url) as client:
        code = authorised_code(client, partner["client_id"], partner["client_secret"])
    form = {"code": code["code"], "code_verifier": code["code_verifier"]}
    wrong = exchange(server, partner, redirect_uri="http://127.0.0.1:8080/other", **form)
    assert_problem(wrong, 400, "INVALID_GRANT", "body.redirect_uri")
    # Only a correct presentation spends the code: the right one works, once.
    right = exchange(server, partner, redirect_uri=code["redirect_uri"], **form)
    assert right.status_code == 200, right.text
    again = exchange(server, partner, redirect_uri=code["redirect_uri"], **form)
    assert "used already" in assert_problem(again, 400, "INVALID_GRANT")["detail"]


def test_a_reused_code_is_refused_and_revokes_what_it_gave(server, partner):
    with httpx.Client(base_url=server.url) as client:
        code = authorised_code(client, partner["client_id"], partner["client_secret"])
    form = {"code": code["code"], "redirect_uri": code["redirect_uri"],
            "code_verifier": code["code_verifier"]}
    first = exchange(server, partner, **form)
    assert first.status_code == 200
    access, refresh = first.json()["access_token"], first.json()["refresh_token"]
    assert httpx.get(server.url + "/accounts/v1/accounts",
                     headers=bearer(access)).status_code == 200
    again = exchange(server, partner, **form)
    assert "used already" in assert_problem(again, 400, "INVALID_GRANT")["detail"]
    assert_problem(httpx.get(server.url + "/accounts/v1/accounts", headers=bearer(access)),
                   401, "TOKEN_REVOKED")
    renewed = httpx.post(server.url + "/oauth2/token",
                         auth=(partner["client_id"], partner["client_secret"]),
                         data={"grant_type": "refresh_token", "refresh_token": refresh})
    assert_problem(renewed, 400, "INVALID_GRANT", "body.refresh_token")


def test_a_refresh_token_renews_access_until_the_consent_is_revoked(
        server, partner, partner_client):
    token = customer_token(server.url, partner["client_id"], partner["client_secret"])
    renew = {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]}
    auth = (partner["client_id"], partner["client_secret"])
    renewed = httpx.post(server.url + "/oauth2/token", auth=auth, data=renew)
    assert renewed.status_code == 200 and renewed.json()["consent_id"] == token["consent_id"]
    fresh = renewed.json()["access_token"]
    assert httpx.get(server.url + "/accounts/v1/accounts", headers=bearer(fresh)).status_code == 200

    revoked = partner_client.post(f"/consents/v1/consents/{token['consent_id']}/revoke")
    assert revoked.status_code == 200 and revoked.json()["status"] == "REVOKED"
    for access in (token["access_token"], fresh):
        assert_problem(httpx.get(server.url + "/accounts/v1/accounts", headers=bearer(access)),
                       401, "CONSENT_REVOKED")
    assert_problem(httpx.post(server.url + "/oauth2/token", auth=auth, data=renew), 400,
                   "INVALID_GRANT")
    # Statuses never move back.
    assert_problem(partner_client.post(f"/consents/v1/consents/{token['consent_id']}/revoke"), 409,
                   "CONSENT_STATUS_CONFLICT")
    again = partner_client.post(f"/consents/v1/consents/{token['consent_id']}/authorisation",
                                json={"decision": "approve", **s256()})
    assert_problem(again, 409, "CONSENT_STATUS_CONFLICT")


def test_a_consent_expires_when_the_partners_clock_passes_its_end(server, partner,
                                                                  partner_client):
    created = json.loads(cli("operator", "create", "ops", "--db", server.db, "--json").stdout)
    token = customer_token(server.url, partner["client_id"], partner["client_secret"])
    consent = partner_client.get(f"/consents/v1/consents/{token['consent_id']}").json()
    assert consent["status"] == "AUTHORISED"
    account = httpx.get(server.url + "/accounts/v1/accounts",
                        headers=bearer(token["access_token"])).json()["items"][0]["account_id"]
    moved = httpx.put(server.url + f"/sandbox/v1/partners/{partner['partner_id']}/clock",
                      headers={"X-Operator-Key": created["operator_key"]},
                      json={"offset_seconds": 91 * 24 * 3600})  # past the 90-day default
    assert moved.status_code == 200, moved.text
    assert_problem(httpx.get(server.url + f"/accounts/v1/accounts/{account}/balance",
                             headers=bearer(token["access_token"])), 401, "CONSENT_EXPIRED")
    assert partner_client.get(f"/consents/v1/consents/{token['consent_id']}").json()[
        "status"] == "EXPIRED"
    renewed = httpx.post(server.url + "/oauth2/token",
                         auth=(partner["client_id"], partner["client_secret"]),
                         data={"grant_type": "refresh_token",
                               "refresh_token": token["refresh_token"]})
    assert_problem(renewed, 400, "INVALID_GRANT")


def test_a_token_reaches_only_its_consents_accounts_and_dates(server, partner, partner_client):
    customers, accounts = bank_rows(server.db, partner["partner_id"])
    holder = next(c["customer_id"] for c in customers
                  if sum(a["customer_id"] == c["customer_id"] for a in accounts) >= 2)
    mine = [a["account_id"] for a in accounts if a["customer_id"] == holder]
    other = next(a["account_id"] for a in accounts if a["customer_id"] != holder)
    consent = new_consent(partner_client, permissions=["ReadAccounts", "ReadTransactions"],
                          transaction_from_date="2026-10-01")
    verifier, challenge = new_pkce()
    result = partner_client.post(
        f"/consents/v1/consents/{consent['consent_id']}/authorisation",
        json={"customer_id": holder, "decision": "approve", "account_ids": mine[:1],
              "code_challenge": challenge, "code_challenge_method": "S256"}).json()
    token = exchange(server, partner, code=result["code"], redirect_uri=REDIRECT,
                     code_verifier=verifier).json()["access_token"]
    with httpx.Client(base_url=server.url + "/accounts/v1", headers=bearer(token)) as client:
        assert [a["account_id"] for a in client.get("/accounts").json()["items"]] == mine[:1]
        for account in (mine[1], other):  # not picked; another customer's
            assert_problem(client.get(f"/accounts/{account}"), 403, "ACCOUNT_NOT_IN_CONSENT",
                           "path.account_id")
        assert_problem(client.get(f"/accounts/{mine[0]}/balance"), 403,
                       "PERMISSION_NOT_GRANTED")
        history = client.get(f"/accounts/{mine[0]}/transactions", params={"limit": 100})
        assert all(t["booking_date"] >= "2026-10-01" for t in history.json()["items"])
        early = client.get(f"/accounts/{mine[0]}/transactions",
                           params={"from_date": "2026-09-01"})
        assert_problem(early, 403, "OUTSIDE_CONSENT_PERIOD", "query.from_date")
        assert_problem(client.get(f"/customers/{customers[-1]['customer_id']}"), 403,
                       "CUSTOMER_NOT_IN_CONSENT")
    # A read-only consent cannot pay: its token has no payments scope.
    pay = httpx.post(server.url + "/payments/v1/transfers", headers={
        **bearer(token), "X-Request-ID": "no-pay"}, json={
        "debtor_account_id": mine[0], "creditor": {"account_id": other},
        "amount": {"amount": "1.00", "currency": "CNY"}})
    assert_problem(pay, 403, "INSUFFICIENT_SCOPE")


def test_a_consent_of_partner_a_is_nothing_to_partner_b(server, partner, partner_client):
    other = create_partner(server.db, "globex")
    a_token = customer_token(server.url, partner["client_id"], partner["client_secret"])
    with httpx.Client(base_url=server.url) as client:
        a_code = authorised_code(client, partner["client_id"], partner["client_secret"])
    b_headers = bearer(get_token(server.url, other))
    # B cannot see, revoke or authorise A's consent.
    for response in (
            httpx.get(server.url + f"/consents/v1/consents/{a_token['consent_id']}",
                      headers=b_headers),
            httpx.post(server.url + f"/consents/v1/consents/{a_token['consent_id']}/revoke",
                       headers=b_headers),
            httpx.post(server.url + f"/consents/v1/consents/{a_code['consent_id']}"
                       "/authorisation", headers=b_headers,
                       json={"decision": "approve", **s256()})):
        assert_problem(response, 404, "CONSENT_NOT_FOUND", "path.consent_id")
    # B cannot exchange A's code, nor refresh A's token.
    stolen = exchange(server, other, code=a_code["code"], redirect_uri=a_code["redirect_uri"],
                      code_verifier=a_code["code_verifier"])
    assert_problem(stolen, 400, "INVALID_GRANT")
    refreshed = httpx.post(server.url + "/oauth2/token",
                           auth=(other["client_id"], other["client_secret"]),
                           data={"grant_type": "refresh_token",
                                 "refresh_token": a_token["refresh_token"]})
    assert_problem(refreshed, 400, "INVALID_GRANT")
    # A's customer token reads nothing of B's bank.
    b_account = bank_rows(server.db, other["partner_id"])[1][0]["account_id"]
    assert_problem(httpx.get(server.url + f"/accounts/v1/accounts/{b_account}",
                             headers=bearer(a_token["access_token"])), 404, "ACCOUNT_NOT_FOUND")
    assert partner_client.get(f"/consents/v1/consents/{a_token['consent_id']}").status_code == 200


def test_bad_consent_requests_are_refused_and_create_nothing(partner_client):
    """400 for what breaks the contract's schema, 422 for what keeps it but cannot be."""
    for request, status, code, field in (
            ({"permissions": ["ReadAccounts"], "expires_at": "2020-01-01T00:00:00+08:00"},
             422, "INVALID_EXPIRY", "body.expires_at"),
            ({"permissions": ["ReadAccounts"], "transaction_from_date": "2026-10-02",
              "transaction_to_date": "2026-10-01"}, 422, "INVALID_DATE_RANGE",
             "body.transaction_from_date"),
            ({"permissions": []}, 400, "VALIDATION_FAILED", "body.permissions"),
            ({"permissions": ["ReadEverything"]}, 400, "VALIDATION_FAILED",
             "body.permissions.0")):
        assert_problem(partner_client.post("/consents/v1/consents", json=request), status,
                       code, field)
    assert partner_client.get("/consents/v1/consents").json()["items"] == []
