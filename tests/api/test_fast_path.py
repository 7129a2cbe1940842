"""The fast path (sandbox.fastpath) answers exactly as Connexion's chain does.

Two real servers over two databases made from the same seed hold the same bank, ids and all:
one serves with the fast path, one with SANDBOX_FAST_PATH=0, both with a user middleware
(CORS) added the way Connexion documents it. The same requests, good and bad, go to both, and
every answer must match: status, every header, and body, once the ids and times each server
makes up for itself are masked.

Also here: the body limit (SANDBOX_MAX_BODY_BYTES), that the token is checked before a byte of
the body is read, and that a middleware the fast path would skip turns it off.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
from pathlib import Path

import httpx
import pytest
from conftest import balances, bank_rows, cli, create_partner, get_token, partner_client
from connexion.middleware import MiddlewarePosition
from connexion.middleware.routing import RoutingMiddleware
from cors_app import ORIGIN

from sandbox.app import create_app
from sandbox.middleware import FastPathMiddleware
from sandbox.partners import partner_id_for
from sandbox.settings import Settings, SettingsError

MADE_UP = re.compile(r"\b(pay|txn|mov|evt|rsk|csn)_[0-9a-f]{16}\b|http://127\.0\.0\.1:\d+"
                     r"|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)?")
LIMIT = Settings.max_body_bytes
# `date` is the second the answer left; `content-length` is checked apart (see `masked`).
UNCOMPARED = {"date", "content-length"}


def masked(response: httpx.Response) -> tuple:
    """What must be the same with and without the fast path: status, media type, every header
    but `date` (name, value and order; values masked like the body), and the masked body.

    `content-length` must be the length of the body on each server; the two are compared in
    `same_answer`, except where the bodies' lengths differ only in what was made up (a port
    number, a time whose fraction of a second is left out when it is zero): masking those
    makes the bodies the same but not their lengths."""
    media = response.headers.get("content-type", "").split(";")[0]
    headers = [(k, MADE_UP.sub("*", v)) for k, v in response.headers.multi_items()
               if k not in UNCOMPARED]
    if "content-length" in response.headers:
        assert int(response.headers["content-length"]) == len(response.content)
    return response.status_code, media, headers, MADE_UP.sub("*", response.text)


def same_answer(request, fast: httpx.Response, chain: httpx.Response) -> None:
    got, expected = masked(fast), masked(chain)
    assert got == expected, f"{request}: fast path {got} != Connexion {expected}"
    if len(fast.content) == len(chain.content):
        assert fast.headers.get("content-length") == chain.headers.get("content-length"), request


def chunks(total: int, fill: bytes = b" ", size: int = 1 << 20):
    """`total` bytes of `fill`, a MiB at a time: a body sent without Content-Length (chunked)
    that the test never holds whole."""
    block = fill * size
    for start in range(0, total, size):
        yield block[:min(size, total - start)]


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
        headers = {"Content-Type": content_type} if content_type else {}
        if request_id is not None:
            headers["X-Request-ID"] = request_id
        content = raw if raw is not None else json.dumps(body).encode()
        return ("POST", "/payments/v1/transfers", {"headers": headers, "content": content},
                "customer")

    def chunked(body, request_id, auth):
        content = iter([body]) if isinstance(body, bytes) else body
        return ("POST", "/payments/v1/transfers", {"headers": {
            "Content-Type": "application/json", "X-Request-ID": request_id},
            "content": content}, auth)

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
        post(transfer, request_id="fp-20", content_type=None),  # 415, not the raw bytes
        # ECMA-262 `$`, as jsonschema-rs reads it, on both: not before a final newline.
        post({**transfer, "amount": {"amount": "1.00\n", "currency": "CNY"}},
             request_id="fp-21"),
        post({**transfer, "amount": {"amount": "1.00\r\n", "currency": "CNY"}},
             request_id="fp-22"),
        # A lone surrogate (sent escaped): orjson refuses it, Connexion names the field.
        post({**transfer, "remittance_information": "\ud800"}, request_id="fp-23"),
        post({**transfer, "creditor": {"account_number": "6212269458073021579",
                                       "bank_code": "102100099996", "name": "\udfff"}},
             request_id="fp-24"),
        post(None, request_id="fp-7", raw=b'{"debtor_account_id": '),
        post(None, request_id="fp-8", raw=b""),
        post(None, request_id="fp-9", raw=b"null"),
        ("GET", "/payments/v1/payments/pay_0000000000000000", {}, "customer"),
        ("GET", "/payments/v1/banks", {}, "customer"),
        ("GET", "/contracts", {}, "none"),
        # A CORS preflight: the user's middleware answers it, on both servers.
        ("OPTIONS", "/payments/v1/transfers", {"headers": {
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-request-id"}},
         "none"),
        # Over the body limit with a Content-Length: refused before the body is read.
        post(None, request_id="fp-16", raw=json.dumps(transfer).encode() + b" " * LIMIT),
        # Chunked (no Content-Length): Connexion refuses a required body sent so, unread.
        chunked(json.dumps(transfer).encode(), "fp-17", "customer:payer"),
        chunked(chunks(LIMIT + (1 << 10), fill=b"\n"), "fp-18", "customer:payer"),
        chunked(chunks(2 * LIMIT), "fp-19", "none"),
    ]


@pytest.fixture
def twins(tmp_path, start_server):
    """The same bank served twice: with the fast path, and with Connexion's chain only; both
    apps with a CORS middleware added through Connexion's add_middleware (tests/cors_app.py)."""
    servers = []
    for name, flag in (("fast", "1"), ("chain", "0")):
        db = f"sqlite:///{tmp_path / name}.db"
        partner = create_partner(db, "acme", "--seed", "5")
        create_partner(db, "globex", "--seed", "5")  # its ids must be out of acme's reach
        servers.append((start_server(db, factory="cors_app:create_app",
                                     env={"SANDBOX_SEED": "5", "SANDBOX_FAST_PATH": flag}),
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
                headers = {"Origin": ORIGIN, **kwargs.pop("headers", {})}
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
                response.read()
                seen.append(((method, path, auth), response))
        answers.append(seen)
    fast_answers, chain_answers = answers
    for (request, got), (_, expected) in zip(fast_answers, chain_answers, strict=True):
        same_answer(request, got, expected)
        # The user's middleware saw every answer, the fast path's included.
        assert got.headers["access-control-allow-origin"] == ORIGIN, request
    statuses = {got.status_code for _, got in fast_answers}
    failed = [request for request, got in fast_answers if got.status_code >= 500]
    assert not failed, f"bad input answered with a server error: {failed}"
    assert {200, 201, 400, 401, 403, 404, 405, 409, 413, 415, 422} <= statuses
    too_large = [got for _, got in fast_answers if got.status_code == 413]
    assert [got.json()["code"] for got in too_large] == ["PAYLOAD_TOO_LARGE"]


def test_fast_path_takes_plain_operations_and_leaves_the_rest():
    app = create_app(Settings.from_env({}))
    fast = set(app.fast_path.operations)
    assert {"getBalance", "listTransactions", "createTransfer", "getPayment"} <= fast
    # A form body (the token endpoint), an operator key, array parameters: Connexion's.
    assert "issueToken" not in fast
    assert not {"createPartner", "resetPartner"} & fast
    assert create_app(Settings.from_env({"SANDBOX_FAST_PATH": "0"})).fast_path is None


def customer_bearer(client, partner: dict, customer_id: str | None = None
                    ) -> tuple[dict, list[dict]]:
    """A consenting customer's bearer header on a test client, and the customer's accounts."""
    from sandbox.consent_client import customer_token

    token = customer_token("http://testserver", partner["client_id"], partner["client_secret"],
                           customer_id=customer_id, client=client)
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    return bearer, client.get("/accounts/v1/accounts", headers=bearer).json()["items"]


def test_fast_path_serves_good_requests_and_hands_the_rest_to_connexion(tmp_path, monkeypatch):
    db = f"sqlite:///{tmp_path / 'sandbox.db'}"
    partner = create_partner(db, "acme")
    app = create_app(Settings.from_env({}, db=db))
    through_chain, route = [], RoutingMiddleware.__call__

    async def spy(self, scope, receive, send):
        if scope["type"] == "http":
            through_chain.append(scope["path"])
        await route(self, scope, receive, send)

    monkeypatch.setattr(RoutingMiddleware, "__call__", spy)
    with app.test_client() as client:
        bearer, accounts = customer_bearer(client, partner)
        through_chain.clear()
        balance = f"/accounts/v1/accounts/{accounts[0]['account_id']}/balance"
        assert client.get(balance, headers=bearer).status_code == 200
        assert client.get(balance + "?limit=1", headers=bearer).status_code == 400
        assert client.get(balance).status_code == 401
        assert through_chain == [balance, balance]


class Stamp:
    """A user's middleware: marks every answer that passed through it."""

    def __init__(self, app, name: str = "stamp"):
        self.app, self.name = app, name.encode()

    async def __call__(self, scope, receive, send):
        async def stamped(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-stamp", self.name)]
            await send(message)

        await self.app(scope, receive, stamped)


def stack(app) -> list:
    return [m for m in app.middleware.middleware_stack if isinstance(m, FastPathMiddleware)]


@pytest.mark.parametrize("position", [MiddlewarePosition.BEFORE_SECURITY,
                                      MiddlewarePosition.BEFORE_VALIDATION,
                                      MiddlewarePosition.BEFORE_CONTEXT, None])
def test_a_middleware_after_routing_turns_the_fast_path_off(tmp_path, caplog, position):
    db = f"sqlite:///{tmp_path / 'sandbox.db'}"
    partner = create_partner(db, "acme")
    app = create_app(Settings.from_env({}, db=db))
    if position is None:
        app.add_middleware(Stamp)  # add_middleware's default position: BEFORE_CONTEXT
    else:
        app.add_middleware(Stamp, position=position)
    basic = [a for a in bank_rows(db, partner["partner_id"])[1] if a["account_class"] == "BASIC"]
    payee = next(a for a in basic if a["customer_id"] != basic[0]["customer_id"])
    with caplog.at_level(logging.WARNING, logger="sandbox.middleware"):
        with app.test_client() as client:
            bearer, _ = customer_bearer(client, partner, basic[0]["customer_id"])
            balance = f"/accounts/v1/accounts/{basic[0]['account_id']}/balance"
            answer = client.get(balance, headers=bearer)
            assert answer.status_code == 200
            assert answer.headers["x-stamp"] == "stamp"  # it was not skipped
            transfer = client.post("/payments/v1/transfers", headers={
                **bearer, "X-Request-ID": "stamped"}, json={
                "debtor_account_id": basic[0]["account_id"],
                "creditor": {"account_id": payee["account_id"]},
                "amount": {"amount": "1.00", "currency": "CNY"}})
            assert transfer.status_code == 201, transfer.text
            assert transfer.headers["x-stamp"] == "stamp"
    warnings = [r.getMessage() for r in caplog.records if r.name == "sandbox.middleware"]
    assert len(warnings) == 1
    assert "fast path off" in warnings[0] and "test_fast_path.Stamp" in warnings[0]
    (layer,) = stack(app)
    assert layer.fast_path is None and layer.max_body_bytes == LIMIT  # the limit stays


def test_middleware_before_routing_wraps_the_fast_path(tmp_path, caplog, monkeypatch):
    db = f"sqlite:///{tmp_path / 'sandbox.db'}"
    partner = create_partner(db, "acme")
    app = create_app(Settings.from_env({}, db=db))
    for position in (MiddlewarePosition.BEFORE_EXCEPTION, MiddlewarePosition.BEFORE_SWAGGER,
                     MiddlewarePosition.BEFORE_ROUTING):
        app.add_middleware(Stamp, position=position, name=position.name)
    routed = []
    route = RoutingMiddleware.__call__

    async def spy(self, scope, receive, send):
        if scope["type"] == "http":
            routed.append(scope["path"])
        await route(self, scope, receive, send)

    monkeypatch.setattr(RoutingMiddleware, "__call__", spy)
    with caplog.at_level(logging.WARNING, logger="sandbox.middleware"):
        with app.test_client() as client:
            bearer, accounts = customer_bearer(client, partner)
            routed.clear()
            balance = f"/accounts/v1/accounts/{accounts[0]['account_id']}/balance"
            answer = client.get(balance, headers=bearer)
            assert answer.status_code == 200 and routed == []  # the fast path answered
            assert answer.headers.get_list("x-stamp") == [
                "BEFORE_ROUTING", "BEFORE_SWAGGER", "BEFORE_EXCEPTION"]
    assert not [r for r in caplog.records if r.name == "sandbox.middleware"]
    (layer,) = stack(app)
    assert layer.fast_path is app.fast_path
    # Outermost first: the user's, Connexion's before routing, the fast path, the router.
    names = [type(m).__name__ for m in app.middleware.middleware_stack]
    at = names.index("FastPathMiddleware")
    assert names[at - 1:at + 2] == ["Stamp", "FastPathMiddleware", "RoutingMiddleware"]
    assert names.index("ExceptionMiddleware") < names.index("_SwaggerUI") < at


class ReceiveSpy:
    """Counts the body messages the app below it reads."""

    def __init__(self, app, reads: list):
        self.app, self.reads = app, reads

    async def __call__(self, scope, receive, send):
        async def counted():
            self.reads.append(scope.get("path"))
            return await receive()

        await self.app(scope, counted if scope["type"] == "http" else receive, send)


def test_the_token_is_checked_before_a_byte_of_the_body_is_read(tmp_path):
    db = f"sqlite:///{tmp_path / 'sandbox.db'}"
    partner = create_partner(db, "acme")
    app = create_app(Settings.from_env({}, db=db))
    reads = []
    app.add_middleware(ReceiveSpy, position=MiddlewarePosition.BEFORE_EXCEPTION, reads=reads)
    with app.test_client() as client:
        bearer, accounts = customer_bearer(client, partner)
        accounts_only = client.post("/oauth2/token", data={
            "grant_type": "client_credentials", "scope": "accounts"},
            auth=(partner["client_id"], partner["client_secret"])).json()["access_token"]
        body = {"debtor_account_id": accounts[0]["account_id"],
                "creditor": {"account_id": accounts[-1]["account_id"]},
                "amount": {"amount": "1.00", "currency": "CNY"}}
        reads.clear()
        for authorization, status in ((None, 401), ("Bearer not-a-token", 401),
                                      ("Basic dXNlcjpwYXNz", 401),
                                      (f"Bearer {accounts_only}", 403)):
            headers = {"X-Request-ID": "unread"}
            if authorization:
                headers["Authorization"] = authorization
            answer = client.post("/payments/v1/transfers", headers=headers, json=body)
            assert answer.status_code == status, answer.text
        assert reads == []  # neither the fast path nor Connexion read the body
        answer = client.post("/payments/v1/transfers",
                             headers={**bearer, "X-Request-ID": "read"}, json=body)
        assert answer.status_code in (201, 422) and reads, answer.text


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


@pytest.mark.slow
@pytest.mark.parametrize(("framing", "status"), [("content-length", 413), ("chunked", 401)])
def test_unauthenticated_100_mb_bodies_leave_the_server_memory_alone(tmp_path, start_server,
                                                                     framing, status):
    """Refused by its Content-Length before a byte is read, or, chunked, by the missing token
    before a byte is read: the server holds none of the three bodies."""
    server = start_server(f"sqlite:///{tmp_path / 'sandbox.db'}")

    def send(size: int) -> httpx.Response:
        headers = {"Content-Type": "application/json", "X-Request-ID": "big"}
        if framing == "content-length":
            headers["Content-Length"] = str(size)
        return httpx.post(server.url + "/payments/v1/transfers", headers=headers,
                          content=chunks(size, fill=b"x"), timeout=120)

    assert send(2 * LIMIT).status_code == status  # warm: the same path, a small body
    before = rss_mib(server.proc.pid)
    for _ in range(3):
        answer = send(100 << 20)
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == ("PAYLOAD_TOO_LARGE" if status == 413 else "UNAUTHENTICATED")
    grown = rss_mib(server.proc.pid) - before
    assert grown < 20, f"the server's resident memory grew by {grown:.1f} MiB"


@pytest.mark.slow
def test_a_body_over_the_limit_is_refused_and_nothing_is_booked(server, partner, client,
                                                                 accounts):
    """Over the limit with a Content-Length: 413 PAYLOAD_TOO_LARGE, on a fast operation and on
    a form one (Connexion's). Chunked, with a valid token: Connexion's own 400 for a required
    body without a Content-Length, the body unread (the 413 of a chunked body that something
    does read is tests/unit/test_body_limit.py's)."""
    basic = accounts["BASIC"]
    payer = basic[0]
    payee = next(a for a in basic if a["customer_id"] != payer["customer_id"])
    ids = [payer["account_id"], payee["account_id"]]
    before = balances(client, ids)
    transfer = json.dumps({"debtor_account_id": payer["account_id"],
                           "creditor": {"account_id": payee["account_id"]},
                           "amount": {"amount": "1.00", "currency": "CNY"}}).encode()
    headers = {"Authorization": f"Bearer {client.auth.token_for(payer['customer_id'])}",
               "Content-Type": "application/json", "X-Request-ID": "too-large"}
    form_headers = {"Content-Type": "application/x-www-form-urlencoded"}
    form = b"grant_type=client_credentials&scope=accounts&pad="
    credentials = (partner["client_id"], partner["client_secret"])
    requests = [  # (path, headers, body, auth, status, code)
        ("/payments/v1/transfers", headers, transfer + b" " * LIMIT, None,
         413, "PAYLOAD_TOO_LARGE"),
        ("/oauth2/token", form_headers, form + b"x" * LIMIT, credentials,
         413, "PAYLOAD_TOO_LARGE"),
        # Without a Content-Length a required body is taken as missing (sandbox.validation).
        ("/payments/v1/transfers", headers, itertools.chain([transfer], chunks(LIMIT)), None,
         400, "VALIDATION_FAILED"),
        ("/oauth2/token", form_headers, itertools.chain([form], chunks(LIMIT, fill=b"x")),
         credentials, 400, "VALIDATION_FAILED"),
    ]
    with httpx.Client(base_url=server.url, timeout=60) as raw:
        for path, request_headers, body, auth, status, code in requests:
            answer = raw.post(path, headers=request_headers, content=body, auth=auth)
            assert answer.status_code == status, (path, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            problem = answer.json()
            assert problem["code"] == code and problem["status"] == status
            if status == 413:  # a form has a lower limit of its own
                limit = Settings.max_form_bytes if path == "/oauth2/token" else LIMIT
                assert f"the {limit} bytes" in problem["detail"]
        assert balances(client, ids) == before
        # The order was never recorded: the same request id under the limit is a new order.
        booked = raw.post("/payments/v1/transfers", headers=headers, content=transfer)
        assert booked.status_code == 201, booked.text
        assert booked.headers["idempotent-replayed"] == "false"
        # Exactly at the limit is not over it: the same order again, replayed.
        exact = raw.post("/payments/v1/transfers", headers=headers,
                         content=transfer + b" " * (LIMIT - len(transfer)))
        assert exact.status_code == 201, exact.text
        assert exact.headers["idempotent-replayed"] == "true"
    after = balances(client, ids)
    assert after[payer["account_id"]] == before[payer["account_id"]] - 100


def test_an_unreadable_fast_path_setting_is_refused_at_start():
    with pytest.raises(SettingsError, match="SANDBOX_FAST_PATH must be 1 or 0, got 'maybe'"):
        Settings.from_env({"SANDBOX_FAST_PATH": "maybe"})
    assert Settings.from_env({"SANDBOX_FAST_PATH": "off"}).fast_path is False


@pytest.mark.parametrize("raw", ["1MB", "", "0", "-5", "1.5"])
def test_an_unreadable_body_limit_is_refused_at_start(raw):
    with pytest.raises(SettingsError, match=f"SANDBOX_MAX_BODY_BYTES must be .*{raw!r}"):
        Settings.from_env({"SANDBOX_MAX_BODY_BYTES": raw})
    assert Settings.from_env({}).max_body_bytes == 1_048_576
    assert Settings.from_env({"SANDBOX_MAX_BODY_BYTES": "2048"}).max_body_bytes == 2048


def test_serve_refuses_an_unreadable_body_limit(tmp_path):
    result = cli("serve", "--db", f"sqlite:///{tmp_path / 'sandbox.db'}",
                 env={"SANDBOX_MAX_BODY_BYTES": "lots"}, check=False)
    assert result.returncode == 2
    assert "SANDBOX_MAX_BODY_BYTES must be a whole number, got 'lots'" in result.stderr
