"""Bad input gets a clear 4xx problem, never a 500, from a real server: with the fast path and
without it (SANDBOX_FAST_PATH=0), the same answer, naming the field, and nothing booked.

Also the limits below the app (`sandbox.protocol`), felt through a raw socket: a request head
over SANDBOX_MAX_HEADER_BYTES is 431, one that dribbles in past SANDBOX_HEADER_TIMEOUT is 408,
so is a body that stops for SANDBOX_BODY_TIMEOUT, and a connection that says nothing is closed.
"""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest
from conftest import Server, cli, create_partner, partner_client
from test_accounts_api import assert_problem
from test_payments_api import balance, fen

from sandbox.settings import Settings, SettingsError

pytestmark = pytest.mark.slow

#: Amounts that are not the contract's `^(0|[1-9][0-9]{0,14})\.[0-9]{2}$`, read as ECMA-262
#: reads it: Python's `$` matched before the final newline of the first two, and the money
#: parser then failed with a 500.
LINE_BROKEN = ["1.00\n", "1.00\r\n", "\n1.00"]
CONTROL_AMOUNTS = ["single_limit", "daily_limit", "large_amount"]


@pytest.fixture(scope="module", params=["1", "0"], ids=["fast-path", "chain"])
def sandbox(request, tmp_path_factory):
    """A server (with the fast path, or without), its partner, and an operator's key."""
    db = f"sqlite:///{tmp_path_factory.mktemp('bad-input') / 'sandbox.db'}"
    partner = create_partner(db, "acme")
    key = json.loads(cli("operator", "create", "ops", "--db", db, "--json").stdout)
    server = Server(db, env={"SANDBOX_FAST_PATH": request.param})
    yield server, partner, key["operator_key"]
    server.stop()


@pytest.fixture(scope="module")
def client(sandbox):
    server, partner, _ = sandbox
    with partner_client(server, partner) as client:
        yield client


@pytest.fixture(scope="module")
def payer_and_payee(sandbox, client):
    from conftest import bank_rows

    server, partner, _ = sandbox
    basic = [a for a in bank_rows(server.db, partner["partner_id"])[1]
             if a["account_class"] == "BASIC"]
    payee = next(a for a in basic if a["customer_id"] != basic[0]["customer_id"])
    return basic[0]["account_id"], payee["account_id"]


def post_json(client, path: str, body, request_id: str | None = None, **headers):
    """`body` as JSON with every non-ASCII character escaped (so a lone surrogate goes as
    `\\ud800`, which httpx's own encoder cannot send)."""
    headers = {"Content-Type": "application/json", **headers}
    if request_id:
        headers["X-Request-ID"] = request_id
    return client.post(path, content=json.dumps(body).encode(), headers=headers)


def transfer(payer: str, payee: str, amount: str = "1.00", **extra) -> dict:
    return {"debtor_account_id": payer, "creditor": {"account_id": payee},
            "amount": {"amount": amount, "currency": "CNY"}, **extra}


@pytest.mark.parametrize("amount", LINE_BROKEN)
def test_an_amount_with_a_line_break_is_refused_naming_the_field(sandbox, client,
                                                                 payer_and_payee, amount):
    server, partner, key = sandbox
    payer, payee = payer_and_payee
    before = fen(balance(client, payer))
    answer = post_json(client, "/payments/v1/transfers", transfer(payer, payee, amount),
                       request_id=f"nl-{len(amount)}-{amount.index('1')}")
    assert_problem(answer, 400, "VALIDATION_FAILED", "body.amount.amount")
    base = f"{server.url}/sandbox/v1/partners/{partner['partner_id']}"
    operator = {"X-Operator-Key": key}
    for path in (f"{base}/controls", f"{base}/accounts/{payer}/controls"):
        for field in CONTROL_AMOUNTS:
            answer = httpx.put(path, headers=operator, json={field: "0.00" + amount[4:]})
            assert_problem(answer, 400, "VALIDATION_FAILED", f"body.{field}")
    # Nothing was booked, and no limit of 0.00 was set: a good transfer goes through.
    assert fen(balance(client, payer)) == before
    booked = post_json(client, "/payments/v1/transfers", transfer(payer, payee),
                       request_id=f"ok-{len(amount)}-{amount.index('1')}")
    assert booked.status_code == 201, booked.text
    assert fen(balance(client, payer)) == before - 100


def test_text_that_is_not_unicode_is_refused_naming_the_field(sandbox, client,
                                                              payer_and_payee):
    server, partner, _ = sandbox
    payer, payee = payer_and_payee
    before = fen(balance(client, payer))
    lone = "rent \ud800"
    cases = [
        (transfer(payer, payee, remittance_information=lone), "body.remittance_information"),
        ({**transfer(payer, payee), "creditor": {
            "account_number": "6212269458073021579", "bank_code": "102100099996",
            "name": lone}}, "body.creditor.name"),
    ]
    for number, (body, field) in enumerate(cases):
        answer = post_json(client, "/payments/v1/transfers", body, request_id=f"sur-{number}")
        assert_problem(answer, 400, "VALIDATION_FAILED", field)
    assert fen(balance(client, payer)) == before
    # A consent's authorisation: its `state`.
    token = client.auth.client_token
    bearer = {"Authorization": f"Bearer {token}"}
    consent = post_json(client, "/consents/v1/consents", {"permissions": ["ReadAccounts"]},
                        **bearer)
    assert consent.status_code == 201, consent.text
    answer = post_json(client, f"/consents/v1/consents/{consent.json()['consent_id']}"
                       "/authorisation", {"decision": "approve", "state": lone}, **bearer)
    assert_problem(answer, 400, "VALIDATION_FAILED", "body.state")
    assert client.get(f"/consents/v1/consents/{consent.json()['consent_id']}",
                      headers=bearer).json()["status"] != "authorised"


def test_a_body_without_a_content_type_is_415(sandbox, client, payer_and_payee):
    server, partner, key = sandbox
    payer, payee = payer_and_payee
    before = fen(balance(client, payer))
    answer = client.post("/payments/v1/transfers", headers={"X-Request-ID": "no-type"},
                         content=json.dumps(transfer(payer, payee)).encode())
    assert_problem(answer, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert "application/json" in answer.json()["detail"]
    assert fen(balance(client, payer)) == before
    controls = f"{server.url}/sandbox/v1/partners/{partner['partner_id']}/controls"
    answer = httpx.put(controls, headers={"X-Operator-Key": key},
                       content=b'{"payments_closed": true}')
    assert_problem(answer, 415, "UNSUPPORTED_MEDIA_TYPE")
    token = httpx.post(server.url + "/oauth2/token", content=b"grant_type=client_credentials",
                       auth=(partner["client_id"], partner["client_secret"]))
    body = assert_problem(token, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert body["error"] == "invalid_request"
    # payments were not closed
    assert post_json(client, "/payments/v1/transfers", transfer(payer, payee),
                     request_id="typed").status_code == 201


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def test_forms_over_their_limits_are_refused(sandbox):
    server, partner, _ = sandbox
    credentials = (partner["client_id"], partner["client_secret"])
    many = httpx.post(server.url + "/oauth2/token", headers=FORM, auth=credentials,
                      content=b"grant_type=client_credentials" + b"&scope=accounts" * 1001)
    assert_problem(many, 400, "VALIDATION_FAILED", "body")
    limit = Settings.max_form_bytes
    large = httpx.post(server.url + "/oauth2/token", headers=FORM, auth=credentials,
                       content=b"grant_type=client_credentials&scope=" + b"a" * limit)
    problem = assert_problem(large, 413, "PAYLOAD_TOO_LARGE")
    assert f"{limit} bytes" in problem["detail"] and "SANDBOX_MAX_FORM_BYTES" in problem["detail"]


def test_a_form_field_over_a_megabyte_is_refused_when_the_limits_allow_it(tmp_path,
                                                                         start_server):
    db = f"sqlite:///{tmp_path / 'sandbox.db'}"
    partner = create_partner(db, "acme")
    four_mib = str(4 << 20)
    server = start_server(db, env={"SANDBOX_MAX_BODY_BYTES": four_mib,
                                   "SANDBOX_MAX_FORM_BYTES": four_mib})
    answer = httpx.post(server.url + "/oauth2/token", headers=FORM, timeout=30,
                        auth=(partner["client_id"], partner["client_secret"]),
                        content=b"grant_type=client_credentials&scope=" + b"a" * (3 << 19))
    assert_problem(answer, 400, "INVALID_SCOPE", "body.scope")


# -- below the app: the request head -------------------------------------------------------------


def exchange(port: int, head: bytes, timeout: float = 10) -> bytes:
    """Send `head` on a new connection; everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(head)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before reading it all
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
            if b"connection: close" not in received.lower() and b"\r\n\r\n" in received:
                break  # a kept-alive answer
        return received


def head_with(header_bytes: int) -> bytes:
    return (b"GET /contracts HTTP/1.1\r\nHost: sandbox\r\nX-Padding: "
            + b"a" * header_bytes + b"\r\n\r\n")


def test_a_request_head_over_the_limit_is_431(sandbox):
    server, _, _ = sandbox
    limit = Settings.max_header_bytes
    assert exchange(server.port, head_with(limit - 200)).startswith(b"HTTP/1.1 200 ")
    for size in (limit + 1, 1 << 20):
        answer = exchange(server.port, head_with(size))
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
        head, _, body = answer.partition(b"\r\n\r\n")
        assert b"content-type: application/problem+json" in head
        problem = json.loads(body)
        assert problem["code"] == "HEADER_FIELDS_TOO_LARGE" and problem["status"] == 431
        assert "SANDBOX_MAX_HEADER_BYTES" in problem["detail"]
    assert httpx.get(server.url + "/contracts").status_code == 200


def test_slow_and_silent_clients_are_disconnected(tmp_path, start_server):
    server = start_server(f"sqlite:///{tmp_path / 'sandbox.db'}",
                          env={"SANDBOX_HEADER_TIMEOUT": "1", "SANDBOX_BODY_TIMEOUT": "1",
                               "SANDBOX_KEEP_ALIVE_TIMEOUT": "1"})

    def closed_after(sock, dribble: bytes = b"") -> tuple[bytes, float]:
        started, received = time.monotonic(), b""
        sock.settimeout(0.2)
        for byte in dribble:
            sock.sendall(bytes([byte]))
            try:
                received += sock.recv(65536)
                break
            except TimeoutError:
                continue
        sock.settimeout(10)
        while chunk := sock.recv(65536):
            received += chunk
        return received, time.monotonic() - started

    # Says nothing: closed, with nothing to say.
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        answer, took = closed_after(sock)
        assert answer == b"" and took < 4
    # Dribbles a request line a byte at a time: 408, closed.
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        answer, took = closed_after(sock, dribble=b"GET /contracts HTTP/1.1\r\nHost: x" * 4)
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["code"] == "REQUEST_TIMEOUT"
        assert took < 4
    # Sends its headers and the start of a body, then stops: 408, closed.
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\n\r\ngrant_type=")
        answer, took = closed_after(sock)
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert b"SANDBOX_BODY_TIMEOUT" in answer and took < 4
    # Answered, then idle: closed after the keep-alive timeout.
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET /contracts HTTP/1.1\r\nHost: x\r\n\r\n")
        answer, took = closed_after(sock)
        assert answer.startswith(b"HTTP/1.1 200 ") and took < 4
    # A request whose head takes a little while, within the limit, is answered.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /contracts HTTP/1.1\r\n")
        time.sleep(0.5)
        sock.sendall(b"Host: x\r\nConnection: close\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 200 ")


@pytest.mark.parametrize(("name", "raw"), [
    ("SANDBOX_MAX_HEADER_BYTES", "16k"), ("SANDBOX_MAX_FORM_BYTES", "0"),
    ("SANDBOX_HEADER_TIMEOUT", "soon"), ("SANDBOX_BODY_TIMEOUT", "-1"),
    ("SANDBOX_KEEP_ALIVE_TIMEOUT", "0")])
def test_unreadable_limits_are_refused_at_start(name, raw):
    with pytest.raises(SettingsError, match=name.removeprefix("SANDBOX_").lower() + "|" + name):
        Settings.from_env({name: raw})


@pytest.mark.postgres
def test_a_client_id_with_a_nul_is_an_unknown_client_on_postgresql(start_server):
    """PostgreSQL's text holds no NUL: looking up a client id with one (in the token form, in
    HTTP Basic credentials, on the authorisation page) was a 500 there (SQLite found nobody)."""
    from conftest import postgres_schema

    with postgres_schema() as db:
        create_partner(db, "acme")
        server = start_server(db)
        token = server.url + "/oauth2/token"
        answer = httpx.post(token, headers=FORM, content=b"grant_type=client_credentials"
                            b"&client_id=acme%00&client_secret=x")
        assert_problem(answer, 401, "INVALID_CLIENT")
        answer = httpx.post(token, data={"grant_type": "client_credentials"},
                            auth=("acme\u0000", "x"))
        assert_problem(answer, 401, "INVALID_CLIENT")
        answer = httpx.get(server.url + "/oauth2/authorize", params={
            "response_type": "code", "client_id": "acme\u0000",
            "consent_id": "csn_0000000000000000", "redirect_uri": "http://127.0.0.1/cb"})
        assert answer.status_code < 500, answer.text
