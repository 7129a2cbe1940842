"""The fast path (sandbox.fastpath) answers exactly as Connexion's chain does.

Two real servers over two databases made from the same seed hold the same bank, ids and all:
one serves with the fast path, one with SANDBOX_FAST_PATH=0. The same requests, good and bad,
go to both, and every answer must match: status, media type, and body, once the ids and times
each server makes up for itself are masked.
"""

from __future__ import annotations

import json
import re

import httpx
import pytest
from conftest import bank_rows, create_partner, get_token, partner_client

from sandbox.app import create_app
from sandbox.partners import partner_id_for
from sandbox.settings import Settings

MADE_UP = re.compile(r"\b(pay|txn|mov|evt|rsk|csn)_[0-9a-f]{16}\b|http://127\.0\.0\.1:\d+"
                     r"|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)?")


def masked(response: httpx.Response) -> tuple:
    media = response.headers.get("content-type", "").split(";")[0]
    headers = {k: MADE_UP.sub("*", response.headers[k])
               for k in ("location", "idempotent-replayed", "www-authenticate", "allow")
               if k in response.headers}
    return response.status_code, media, headers, MADE_UP.sub("*", response.text)


def requests_for(accounts: list[dict], others: list[dict]) -> list[tuple]:
    """(method, path, kwargs, auth: 'customer' | 'none' | header value) for each request;
    `others` are another partner's accounts, which this partner must not reach."""
    basic = [a for a in accounts if a["account_class"] == "BASIC"]
    foreign = others[0]["account_id"]
    payer = basic[0]["account_id"]
    payee = next(a["account_id"] for a in basic if a["customer_id"] != basic[0]["customer_id"])
    transfer = {"debtor_account_id": payer, "creditor": {"account_id": payee},
                "amount": {"amount": "1.00", "currency": "CNY"}}
    balance = f"/accounts/v1/accounts/{payer}/balance"
    statement = f"/accounts/v1/accounts/{payer}/transactions"

    def post(body, request_id="fp-1", content_type="application/json", raw=None):
        headers = {"Content-Type": content_type}
        if request_id is not None:
            headers["X-Request-ID"] = request_id
        content = raw if raw is not None else json.dumps(body).encode()
        return ("POST", "/payments/v1/transfers", {"headers": headers, "content": content},
                "customer")

    return [
        ("GET", balance, {}, "customer"),
        ("GET", balance, {}, "none"),
        ("GET", balance, {}, "Bearer not-a-token"),
        ("GET", balance, {}, "Basic dXNlcjpwYXNz"),
        ("GET", balance, {}, "Bearer"),
        ("GET", balance, {}, "scope:payments"),  # a token without the accounts scope
        ("GET", balance + "?verbose=1", {}, "customer"),
        ("GET", "/accounts/v1/accounts/acc_0000000000000000/balance", {}, "customer"),
        ("GET", "/accounts/v1/accounts/not-an-id/balance", {}, "customer"),
        ("GET", f"/accounts/v1/accounts/{foreign}/balance", {}, "customer"),
        ("GET", f"/accounts/v1/accounts/{foreign}/transactions", {}, "customer"),
        ("GET", f"/accounts/v1/accounts/{payee}/balance", {}, "customer:payer"),
        ("DELETE", balance, {}, "customer"),
        ("GET", balance + "/", {}, "customer"),
        ("GET", statement, {}, "customer"),
        ("GET", statement + "?limit=2", {}, "customer"),
        ("GET", statement + "?limit=0", {}, "customer"),
        ("GET", statement + "?limit=abc", {}, "customer"),
        ("GET", statement + "?limit=2&limit=3", {}, "customer"),
        ("GET", statement + "?limit=+2", {}, "customer"),
        ("GET", statement + "?limit=99999999999999999999999", {}, "customer"),
        ("GET", statement + "?limit=2.5", {}, "customer"),
        ("GET", statement + "?from_date=2026-13-01", {}, "customer"),
        ("GET", statement + "?cursor=garbage", {}, "customer"),
        ("GET", f"/accounts/v1/accounts?customer_id={basic[0]['customer_id']}", {}, "customer"),
        ("GET", f"/accounts/v1/customers/{basic[0]['customer_id']}", {}, "customer"),
        post(transfer),
        post(transfer),  # the same order again: replayed
        post({**transfer, "amount": {"amount": "2.00", "currency": "CNY"}}),  # same id: 409
        post(transfer, request_id=None),
        post(transfer, request_id="has spaces"),
        post({**transfer, "extra": 1}, request_id="fp-2"),
        post({**transfer, "amount": {"amount": "1.5", "currency": "CNY"}}, request_id="fp-3"),
        post({**transfer, "amount": {"amount": "99999999.00", "currency": "CNY"}},
             request_id="fp-4"),
        post({**transfer, "creditor": {"account_id": payer}}, request_id="fp-5"),
        post({k: v for k, v in transfer.items() if k != "amount"}, request_id="fp-10"),
        post({**transfer, "amount": {"amount": 1.0, "currency": "CNY"}}, request_id="fp-11"),
        post({**transfer, "amount": {"amount": "999999999999999.99", "currency": "CNY"}},
             request_id="fp-12"),
        post({**transfer, "creditor": {"account_id": foreign}}, request_id="fp-13"),
        post({**transfer, "debtor_account_id": foreign}, request_id="fp-14"),
        post({**transfer, "remittance_information": "x" * 100_000}, request_id="fp-15"),
        post(transfer, request_id="fp-6", content_type="text/plain"),
        post(None, request_id="fp-7", raw=b'{"debtor_account_id": '),
        post(None, request_id="fp-8", raw=b""),
        post(None, request_id="fp-9", raw=b"null"),
        ("GET", "/payments/v1/payments/pay_0000000000000000", {}, "customer"),
        ("GET", "/payments/v1/banks", {}, "customer"),
        ("GET", "/contracts", {}, "none"),
    ]


@pytest.fixture
def twins(tmp_path, start_server):
    """The same bank served twice: with the fast path, and with Connexion's chain only."""
    servers = []
    for name, flag in (("fast", "1"), ("chain", "0")):
        db = f"sqlite:///{tmp_path / name}.db"
        partner = create_partner(db, "acme", "--seed", "5")
        create_partner(db, "globex", "--seed", "5")  # its ids must be out of acme's reach
        servers.append((start_server(db, "--seed", "5", env={"SANDBOX_FAST_PATH": flag}),
                        partner))
    return servers


def test_fast_path_answers_as_connexion_does(twins):
    (fast, fast_partner), (chain, chain_partner) = twins
    _, accounts = bank_rows(fast.db, fast_partner["partner_id"])
    _, others = bank_rows(fast.db, partner_id_for("globex"))
    assert bank_rows(chain.db, chain_partner["partner_id"])[1] == accounts
    answers = []
    for server, partner in twins:
        seen = []
        with partner_client(server, partner) as client:
            payer_token = client.auth.token_for(
                next(a for a in accounts if a["account_class"] == "BASIC")["customer_id"])
            for method, path, kwargs, auth in requests_for(accounts, others):
                headers = dict(kwargs.pop("headers", {}))
                if auth == "none":
                    extra = {"auth": None}
                elif auth == "customer:payer":  # a customer reading another's account
                    headers["Authorization"] = f"Bearer {payer_token}"
                    extra = {"auth": None}
                elif auth == "customer":
                    extra = {}
                elif auth.startswith("scope:"):
                    token = get_token(server.url, partner, auth.removeprefix("scope:"))
                    headers["Authorization"] = f"Bearer {token}"
                    extra = {"auth": None}
                else:
                    headers["Authorization"] = auth
                    extra = {"auth": None}
                response = client.request(method, path, headers=headers, **kwargs, **extra)
                seen.append(((method, path, auth), masked(response)))
        answers.append(seen)
    fast_answers, chain_answers = answers
    for (request, got), (_, expected) in zip(fast_answers, chain_answers, strict=True):
        assert got == expected, f"{request}: fast path {got} != Connexion {expected}"
    statuses = {got[0] for _, got in fast_answers}
    assert {200, 201, 400, 401, 403, 404, 405, 409, 415, 422} <= statuses


def test_fast_path_takes_plain_operations_and_leaves_the_rest():
    app = create_app(Settings.from_env({}))
    fast = set(app.fast_path.operations)
    assert {"getBalance", "listTransactions", "createTransfer", "getPayment"} <= fast
    # A form body (the token endpoint), an operator key, array parameters: Connexion's.
    assert "issueToken" not in fast
    assert not {"createPartner", "resetPartner"} & fast
    assert create_app(Settings.from_env({"SANDBOX_FAST_PATH": "0"})).fast_path is None


def test_fast_path_serves_good_requests_and_hands_the_rest_to_connexion(tmp_path):
    from sandbox.consent_client import customer_token

    db = f"sqlite:///{tmp_path / 'sandbox.db'}"
    partner = create_partner(db, "acme")
    app = create_app(Settings.from_env({}, db=db))
    chain, through_chain = app.middleware, []

    async def spy(scope, receive, send):
        if scope["type"] == "http":
            through_chain.append(scope["path"])
        await chain(scope, receive, send)

    app.middleware = spy
    with app.test_client() as client:
        token = customer_token("http://testserver", partner["client_id"],
                               partner["client_secret"], client=client)
        bearer = {"Authorization": f"Bearer {token['access_token']}"}
        accounts = client.get("/accounts/v1/accounts", headers=bearer).json()["items"]
        through_chain.clear()
        balance = f"/accounts/v1/accounts/{accounts[0]['account_id']}/balance"
        assert client.get(balance, headers=bearer).status_code == 200
        assert client.get(balance + "?limit=1", headers=bearer).status_code == 400
        assert client.get(balance).status_code == 401
        assert through_chain == [balance, balance]


def test_an_unreadable_fast_path_setting_is_refused_at_start():
    from sandbox.settings import SettingsError

    with pytest.raises(SettingsError, match="SANDBOX_FAST_PATH must be 1 or 0, got 'maybe'"):
        Settings.from_env({"SANDBOX_FAST_PATH": "maybe"})
    assert Settings.from_env({"SANDBOX_FAST_PATH": "off"}).fast_path is False
