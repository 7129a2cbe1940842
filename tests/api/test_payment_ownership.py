"""Whose payments a token reaches, against a real server on both backends: a customer's money
moves only with that customer's say, a customer sees only the payments of its consent's
accounts, and the partner's own configuration (the callback, its delivery log) needs the
partner's own token."""

from __future__ import annotations

import httpx
import pytest
from conftest import bank_rows, get_token
from test_accounts_api import assert_problem

from sandbox.consent_client import customer_token

pytestmark = pytest.mark.slow


def holder_of(server, partner, account_id) -> str:
    _, accounts = bank_rows(server.db, partner["partner_id"])
    return next(a["customer_id"] for a in accounts if a["account_id"] == account_id)


def token_on(server, partner, account_id) -> dict:
    """A consent of the account's holder covering that account only, with every permission."""
    return customer_token(server.url, partner["client_id"], partner["client_secret"],
                          customer_id=holder_of(server, partner, account_id),
                          account_ids=[account_id])


def bearer(token: str | dict) -> dict:
    value = token["access_token"] if isinstance(token, dict) else token
    return {"Authorization": f"Bearer {value}"}


@pytest.fixture
def paid(server, partner, accounts, client):
    """A settled payment of 250.00 between two customers, and a token for each side and for a
    third customer."""
    first, second, third = (a["account_id"] for a in accounts["I"][:3])
    assert len({holder_of(server, partner, a) for a in (first, second, third)}) == 3
    payer, payee, stranger = (token_on(server, partner, a) for a in (first, second, third))
    made = client.post("/payments/v1/transfers", headers={"X-Request-ID": "own-1"}, json={
        "debtor_account_id": first, "creditor": {"account_id": second},
        "amount": {"amount": "250.00", "currency": "CNY"}})
    assert made.status_code == 201, made.text
    return {"payment": made.json(), "payer": payer, "payee": payee, "stranger": stranger,
            "debtor": first, "creditor": second}


def booked(server, account_id, token) -> str:
    answer = server_get(server, f"/accounts/v1/accounts/{account_id}/balance", token)
    return answer.json()["booked"]["amount"]


def server_get(server, path, token):
    return httpx.get(server.url + path, headers=bearer(token), timeout=30)


def server_post(server, path, token, headers=None, **kwargs):
    return httpx.post(server.url + path, headers={**bearer(token), **(headers or {})},
                      timeout=30, **kwargs)


def test_a_refund_needs_the_payees_consent(server, partner, paid):
    """A refund debits the payee: neither the partner's own token, nor the payer's, nor a
    stranger's consent may take the money out of the payee's account."""
    path = f"/payments/v1/payments/{paid['payment']['payment_id']}/refund"
    before = (booked(server, paid["debtor"], paid["payer"]),
              booked(server, paid["creditor"], paid["payee"]))
    client_token = get_token(server.url, partner)
    assert_problem(server_post(server, path, client_token, headers={"X-Request-ID": "r-1"}),
                   403, "CONSENT_REQUIRED")
    assert_problem(server_post(server, path, paid["stranger"], headers={"X-Request-ID": "r-2"}),
                   404, "PAYMENT_NOT_FOUND", "path.payment_id")
    refused = server_post(server, path, paid["payer"], headers={"X-Request-ID": "r-3"})
    assert_problem(refused, 403, "ACCOUNT_NOT_IN_CONSENT")
    assert (booked(server, paid["debtor"], paid["payer"]),
            booked(server, paid["creditor"], paid["payee"])) == before
    done = server_post(server, path, paid["payee"], headers={"X-Request-ID": "r-4"})
    assert done.status_code == 200 and done.json()["status"] == "refunded", done.text


def test_a_payment_is_seen_only_by_the_consents_of_its_accounts(server, partner, paid):
    path = f"/payments/v1/payments/{paid['payment']['payment_id']}"
    for side in ("payer", "payee"):
        seen = server_get(server, path, paid[side])
        assert seen.status_code == 200 and seen.json() == paid["payment"], side
    hidden = server_get(server, path, paid["stranger"])
    assert_problem(hidden, 404, "PAYMENT_NOT_FOUND", "path.payment_id")
    for name in (paid["creditor"], paid["debtor"], paid["payment"]["creditor"]["name"]):
        assert name not in hidden.text
    assert_problem(server_get(server, path, get_token(server.url, partner)), 403,
                   "CONSENT_REQUIRED")


def test_the_callback_and_its_delivery_log_need_the_partners_own_token(server, partner, paid):
    client_token = get_token(server.url, partner)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        registered = http.put("/payments/v1/callback", headers=bearer(client_token),
                              json={"url": "http://127.0.0.1:9/hook"})
        assert registered.status_code == 200, registered.text
        made = http.post("/payments/v1/transfers", headers={
            **bearer(paid["payer"]), "X-Request-ID": "own-2"}, json={
            "debtor_account_id": paid["debtor"], "creditor": {"account_id": paid["creditor"]},
            "amount": {"amount": "1.00", "currency": "CNY"}})
        assert made.status_code == 201, made.text
        customer = bearer(paid["payer"])
        for method, path, extra in (
                ("GET", "/payments/v1/callback", {}),
                ("PUT", "/payments/v1/callback", {"json": {"url": "http://127.0.0.1:9/other"}}),
                ("DELETE", "/payments/v1/callback", {}),
                ("GET", "/payments/v1/notifications", {})):
            refused = http.request(method, path, headers=customer, **extra)
            assert_problem(refused, 403, "PARTNER_TOKEN_REQUIRED")
            assert "whsec_" not in refused.text
        assert http.get("/payments/v1/callback",
                        headers=bearer(client_token)).json() == registered.json()
        log = http.get("/payments/v1/notifications", headers=bearer(client_token))
        assert log.status_code == 200 and log.json()["items"], log.text
        event_id = log.json()["items"][0]["event_id"]
        for method, path in (("GET", f"/payments/v1/notifications/{event_id}"),
                             ("POST", f"/payments/v1/notifications/{event_id}/redeliver")):
            assert_problem(http.request(method, path, headers=customer), 403,
                           "PARTNER_TOKEN_REQUIRED")
        assert http.get(f"/payments/v1/notifications/{event_id}",
                        headers=bearer(client_token)).status_code == 200


def test_a_request_id_another_customer_used_names_nothing_of_theirs(server, partner, paid):
    """Request ids are the partner's (DESIGN): another customer's id is refused, but the 409
    says nothing of the payment it made."""
    stranger_account = server_get(server, "/accounts/v1/accounts", paid["stranger"]).json()
    mine = stranger_account["items"][0]["account_id"]
    for body_amount in ("250.00", "1.00"):
        refused = server_post(server, "/payments/v1/transfers", paid["stranger"],
                              headers={"X-Request-ID": "own-1"}, json={
                                  "debtor_account_id": mine,
                                  "creditor": {"account_id": paid["creditor"]},
                                  "amount": {"amount": body_amount, "currency": "CNY"}})
        assert_problem(refused, 409, "IDEMPOTENCY_CONFLICT", "header.X-Request-ID")
        for secret in (paid["payment"]["payment_id"], paid["debtor"]):
            assert secret not in refused.text
    # The payer itself still hears which payment its id made.
    again = server_post(server, "/payments/v1/transfers", paid["payer"],
                        headers={"X-Request-ID": "own-1"}, json={
                            "debtor_account_id": paid["debtor"],
                            "creditor": {"account_id": paid["creditor"]},
                            "amount": {"amount": "9.00", "currency": "CNY"}})
    assert_problem(again, 409, "IDEMPOTENCY_CONFLICT")
    assert paid["payment"]["payment_id"] in again.text
