"""Fixtures: a store URL per backend, a real server on a real port, partners made by the CLI.

The backend fixture runs every test that uses it twice: on SQLite and on PostgreSQL. PostgreSQL
tests read SANDBOX_TEST_POSTGRES_URL; without it they are skipped, except under CI=true, where a
missing PostgreSQL is a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

import httpx
import pytest

POSTGRES_URL = os.environ.get("SANDBOX_TEST_POSTGRES_URL")
IN_CI = os.environ.get("CI", "").lower() == "true"


def _require_postgres() -> str:
    if POSTGRES_URL:
        return POSTGRES_URL
    if IN_CI:
        pytest.fail("CI=true but SANDBOX_TEST_POSTGRES_URL is not set: .ci/run must set it")
    pytest.skip("PostgreSQL tests need SANDBOX_TEST_POSTGRES_URL (e.g. "
                "postgresql://postgres@127.0.0.1:5432/test)")


@contextlib.contextmanager
def postgres_schema():
    """A fresh schema in the test database, dropped afterwards: tests never see each other."""
    import psycopg

    base = _require_postgres()
    schema = "t_" + secrets.token_hex(6)
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options={urllib.parse.quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """A fresh, empty database of each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'sandbox.db'}"
    else:
        with postgres_schema() as url:
            yield url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cli(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run the real `openbank-sandbox` command line."""
    result = subprocess.run(
        [sys.executable, "-m", "sandbox.cli", *args],
        capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"openbank-sandbox {' '.join(args)} failed: {result.stderr}")
    return result


TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


class Server:
    """`openbank-sandbox serve` in a subprocess on a free port; with `factory`
    ("module:function", a module in tests/), uvicorn serving the app that function makes, as
    `serve` serves sandbox.app:create_app (the settings from SANDBOX_* variables)."""

    def __init__(self, db: str, *extra: str, env: dict | None = None,
                 factory: str | None = None):
        self.db = db
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile(mode="w+")
        if factory is None:
            command = [sys.executable, "-m", "sandbox.cli", "serve", "--port", str(self.port),
                       "--db", db, "--log-level", "warning", *extra]
        else:
            command = [sys.executable, "-m", "uvicorn", "--factory", factory,
                       "--app-dir", TESTS_DIR, "--host", "127.0.0.1", "--port", str(self.port),
                       "--log-level", "warning", "--lifespan", "on", *extra]
            env = {"SANDBOX_DB": db, **(env or {})}
        self.proc = subprocess.Popen(
            command, stdout=self.log, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, **(env or {})},
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                output = self.log.read()
                self.log.close()
                raise AssertionError(f"server exited: {output}")
            try:
                if httpx.get(self.url + "/contracts", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise AssertionError("server did not become ready in 30 s")

    def output(self) -> str:
        """What the server printed so far (its log)."""
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture
def start_server():
    """Start servers for a test: start_server(db, '--seed', '7'); all are stopped afterwards."""
    servers = []

    def start(db: str, *extra: str, env: dict | None = None,
              factory: str | None = None) -> Server:
        server = Server(db, *extra, env=env, factory=factory)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def create_partner(db: str, name: str, *extra: str) -> dict:
    return json.loads(cli("partner", "create", name, "--db", db, "--json", *extra).stdout)


def get_token(base_url: str, partner: dict, scope: str | None = None) -> str:
    form = {"grant_type": "client_credentials"}
    if scope is not None:
        form["scope"] = scope
    response = httpx.post(base_url + "/oauth2/token", data=form,
                          auth=(partner["client_id"], partner["client_secret"]))
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


@pytest.fixture
def server(db_url, start_server):
    return start_server(db_url)


@pytest.fixture
def partner(server):
    return create_partner(server.db, "acme")


def bank_rows(db: str, partner_id: str) -> tuple[list[dict], list[dict]]:
    """The partner's customers and accounts, read from its database (as the bank sees them),
    as rows."""
    import asyncio

    from sandbox.store import open_store

    async def read():
        async with open_store(db) as store:
            customers = await store.bank.customers(partner_id, after=0, limit=10_000)
            accounts = await store.bank.accounts(partner_id, customer_id=None, after=0,
                                                 limit=10_000)
            return [c.row() for c in customers], [a.row() for a in accounts]

    return asyncio.run(read())


def payment_row(db: str, partner_id: str, payment_id: str) -> dict | None:
    """A payment as the partner's database holds it."""
    import asyncio

    from sandbox.store import open_store

    async def read():
        async with open_store(db) as store:
            payment = await store.ledger.payment(partner_id, payment_id)
            return payment.row() if payment is not None else None

    return asyncio.run(read())


class EveryCustomerConsents(httpx.Auth):
    """A partner app whose customers have all consented to everything: each request carries the
    token of the customer it concerns (the account's holder, the payer), obtained through the
    headless consent path on first use, and the client-credentials token (every scope) where no
    customer is concerned."""

    ACCOUNT = re.compile(r"/accounts/v1/accounts/(acc_[0-9a-f]{16})")
    CUSTOMER = re.compile(r"/accounts/v1/customers/(cus_[0-9a-f]{16})")
    PAYMENT = re.compile(r"/payments/v1/payments/([^/]+)(/refund)?$")

    def __init__(self, base_url: str, db: str, partner: dict):
        self.base_url, self.db, self.partner = base_url, db, partner
        self.client_token = get_token(base_url, partner)
        self.tokens: dict[str, str] = {}
        self.holders: dict[str, str] = {}

    def holder(self, account_id: str) -> str | None:
        if account_id not in self.holders:  # accounts opened since: read the bank again
            _, accounts = bank_rows(self.db, self.partner["partner_id"])
            self.holders = {a["account_id"]: a["customer_id"] for a in accounts}
        return self.holders.get(account_id)

    def customer_of(self, request: httpx.Request) -> str | None:
        path = request.url.path
        if match := self.ACCOUNT.match(path):
            return self.holder(match[1])
        if match := self.CUSTOMER.match(path):
            return match[1]
        if path == "/accounts/v1/accounts" and "customer_id" in request.url.params:
            return request.url.params["customer_id"]
        if match := self.PAYMENT.match(path):
            # A payment is read by its payer; a refund needs the payee's say (the payer's, for
            # a payment to another bank, which gives it back).
            paid = payment_row(self.db, self.partner["partner_id"], match[1])
            if paid is None:
                return next(iter(self.holders.values()), None) or self.any_customer()
            giver = paid["creditor_account_id"] if match[2] else None
            return self.holder(giver or paid["debtor_account_id"])
        if path == "/payments/v1/transfers" and request.method == "POST":
            try:
                return self.holder(json.loads(request.content)["debtor_account_id"])
            except (ValueError, KeyError, TypeError):
                return None
        return None

    def any_customer(self) -> str:
        self.holder("")  # reads the bank
        return next(iter(self.holders.values()))

    def token_for(self, customer_id: str) -> str:
        if customer_id not in self.tokens:
            from sandbox.consent_client import customer_token

            self.tokens[customer_id] = customer_token(
                self.base_url, self.partner["client_id"], self.partner["client_secret"],
                customer_id=customer_id)["access_token"]
        return self.tokens[customer_id]

    def warm(self, account_ids) -> EveryCustomerConsents:
        """Fetch the holders' tokens now, so requests about these accounts need no I/O to
        authenticate (and the auth can serve an AsyncClient)."""
        for account_id in account_ids:
            self.token_for(self.holder(account_id))
        return self

    def auth_flow(self, request: httpx.Request):
        customer_id = self.customer_of(request)
        token = self.client_token if customer_id is None else self.token_for(customer_id)
        request.headers["Authorization"] = f"Bearer {token}"
        yield request


def partner_client(server, partner: dict) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30,
                        auth=EveryCustomerConsents(server.url, server.db, partner))


@pytest.fixture
def client(server, partner):
    """An httpx client on the server for partner acme, every customer of which has consented
    to everything (see EveryCustomerConsents)."""
    with partner_client(server, partner) as client:
        yield client


def all_pages(client: httpx.Client, path: str, **params) -> list[dict]:
    items, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = client.get(path, params=query)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json().get("next_cursor")
        if cursor is None:
            return items


@pytest.fixture
def accounts(server, partner):
    """The partner's accounts by class, and each online account's bound Type I account."""
    from sandbox.records import Account
    from sandbox.resources import account_resource

    listed = [account_resource(Account.of(row))
              for row in bank_rows(server.db, partner["partner_id"])[1]]
    by_number = {a["account_number"]: a for a in listed}
    grouped = {cls: [a for a in listed if a["account_class"] == cls]
               for cls in ("I", "II", "III", "BASIC")}
    grouped["bound"] = {a["account_id"]: by_number[a["bound_account_number"]]
                        for a in listed if a.get("bound_account_number") in by_number}
    return grouped


def balances(client: httpx.Client, account_ids) -> dict[str, int]:
    """Each account's booked balance, in fen."""
    from sandbox.money import Fen

    out = {}
    for account_id in account_ids:
        response = client.get(f"/accounts/v1/accounts/{account_id}/balance")
        assert response.status_code == 200, response.text
        out[account_id] = int(Fen.from_yuan(response.json()["booked"]["amount"]))
    return out
