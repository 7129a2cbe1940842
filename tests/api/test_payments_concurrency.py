"""Money is conserved when many transfers race through two server processes on one database.

Two `openbank-sandbox serve` processes share one store (a SQLite file, or PostgreSQL). Five
hundred transfers among ten accounts, many of them larger than the debtor holds by the time
they run, are sent about two dozen at a time, alternating between the servers, and some are
sent again with the same request id (to the same or to the other server), sometimes while the
first try is still running. Whatever the interleaving:

* no request fails with a 5xx; an order is either booked (201) or refused for funds (422);
* every try of one request id that is answered 201 names the same payment, and exactly one of
  those answers says it made it (`Idempotent-Replayed: false`);
* each request id booked at most one payment, and the store holds exactly those payments;
* the ten balances still add up to what they held before, to the fen, and each one equals its
  start plus the credits minus the debits of the payments made; none is below zero;
* the journal balances (`ledger_check` all zero).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import random

import httpx
import pytest
from conftest import EveryCustomerConsents, balances, bank_rows, create_partner

from sandbox.money import Fen, to_yuan
from sandbox.store import open_store

pytestmark = pytest.mark.slow

ORDERS = 500
IN_FLIGHT = 24
RETRY_SHARE = 0.3
PLAN_SEED = 20261127


def plan_orders(rng: random.Random, start: dict[str, int]) -> list[tuple[str, dict]]:
    """(request id, body) for each order: mostly small amounts, and a good share of amounts
    near or above what the debtor held at the start, so funds run out under contention."""
    ids = list(start)
    orders = []
    for number in range(ORDERS):
        debtor, creditor = rng.sample(ids, 2)
        if rng.random() < 0.35:
            amount = max(1, int(start[debtor] * rng.uniform(0.3, 1.5)))
        else:
            amount = rng.randint(1, 500_000)
        orders.append((f"race-{number:04d}", {
            "debtor_account_id": debtor, "creditor": {"account_id": creditor},
            "amount": {"amount": to_yuan(amount), "currency": "CNY"}}))
    return orders


def plan_sends(rng: random.Random, orders) -> list[tuple[int, int]]:
    """(order index, server index) in sending order: every order once on alternating servers,
    and a retry of some orders a few places later (so often while the first try is running),
    on either server."""
    sends = [(index, index % 2) for index in range(len(orders))]
    for index in range(len(orders)):
        if rng.random() < RETRY_SHARE:
            position = min(len(sends), index + rng.randint(0, 2 * IN_FLIGHT))
            sends.insert(position, (index, rng.randrange(2)))
    return sends


async def fire(urls: list[str], auth: httpx.Auth, orders,
               sends) -> list[tuple[int, httpx.Response]]:
    """Send everything with at most IN_FLIGHT requests open; (order index, response) each.
    `auth` gives each transfer the token of its payer's consent."""
    gate = asyncio.Semaphore(IN_FLIGHT)
    timeout = httpx.Timeout(60)
    limits = httpx.Limits(max_connections=IN_FLIGHT)
    async with (httpx.AsyncClient(base_url=urls[0], auth=auth, timeout=timeout,
                                  limits=limits) as first,
                httpx.AsyncClient(base_url=urls[1], auth=auth, timeout=timeout,
                                  limits=limits) as second):
        clients = (first, second)

        async def send(index: int, server: int):
            request_id, body = orders[index]
            async with gate:
                response = await clients[server].post(
                    "/payments/v1/transfers", json=body, headers={"X-Request-ID": request_id})
                await response.aread()
                return index, response

        # The semaphore wakes its waiters first come, first served: sends start in plan order.
        return await asyncio.gather(*(send(index, server) for index, server in sends))


async def ledger_check(db: str, partner_id: str) -> dict:
    async with open_store(db) as store:
        payments = await store.fetchall(
            "SELECT payment_id, request_id, amount_fen, debtor_account_id, creditor_account_id"
            " FROM payments WHERE partner_id = ?", (partner_id,))
        return {"check": await store.ledger.check(partner_id), "payments": payments}


@dataclasses.dataclass
class TwoServers:
    servers: list
    partner: dict
    auth: EveryCustomerConsents  # holds every payer's token, fetched up front
    client: httpx.Client  # on the second server
    account_ids: list[str]  # ten accounts without class caps, Type I first


@pytest.fixture
def two_servers(db_url, start_server):
    servers = [start_server(db_url), start_server(db_url)]
    partner = create_partner(db_url, "acme")
    uncapped = [a for a in bank_rows(db_url, partner["partner_id"])[1]
                if a["account_class"] in ("I", "BASIC") and a["status"] == "active"]
    assert len(uncapped) >= 10
    # Mostly Type I accounts, whose balances are small enough to run dry.
    chosen = [a["account_id"] for a in sorted(uncapped,
                                              key=lambda a: a["account_class"] != "I")[:10]]
    # Tokens from the first server, used on both: one database, one truth.
    auth = EveryCustomerConsents(servers[0].url, db_url, partner).warm(chosen)
    with httpx.Client(base_url=servers[1].url, auth=auth) as client:
        yield TwoServers(servers, partner, auth, client, chosen)


def test_five_hundred_concurrent_transfers_on_two_servers_conserve_money(db_url, two_servers):
    servers, partner, auth = two_servers.servers, two_servers.partner, two_servers.auth
    client, account_ids = two_servers.client, two_servers.account_ids
    start = balances(client, account_ids)
    rng = random.Random(PLAN_SEED)
    orders = plan_orders(rng, start)
    sends = plan_sends(rng, orders)
    assert len(sends) > ORDERS
    results = asyncio.run(fire([s.url for s in servers], auth, orders, sends))
    end = balances(client, account_ids)

    by_request = collections.defaultdict(list)
    for index, response in results:
        assert response.status_code < 500, response.text
        assert response.status_code in (201, 422), response.text
        if response.status_code == 422:
            assert response.json()["code"] == "INSUFFICIENT_FUNDS", response.text
        by_request[orders[index][0]].append(response)

    made = {}  # request id → the payment it made
    for request_id, answers in by_request.items():
        booked = [r for r in answers if r.status_code == 201]
        if not booked:
            continue
        assert len({r.json()["payment_id"] for r in booked}) == 1, request_id
        assert [r.headers["Idempotent-Replayed"] for r in booked].count("false") == 1, request_id
        made[request_id] = booked[0].json()
    assert len({p["payment_id"] for p in made.values()}) == len(made)
    assert 50 < len(made) < ORDERS, "the plan should both book and refuse plenty of orders"

    stored = asyncio.run(ledger_check(db_url, partner["partner_id"]))
    assert stored["check"]["total_fen"] == 0
    assert stored["check"]["accounts_off"] == 0
    assert stored["check"]["unbalanced_movements"] == 0
    assert {p["payment_id"]: p["request_id"] for p in stored["payments"]} == {
        p["payment_id"]: request_id for request_id, p in made.items()}

    assert sum(end.values()) == sum(start.values())
    expected = dict(start)
    for payment in made.values():
        amount = int(Fen.from_yuan(payment["amount"]["amount"]))
        expected[payment["debtor_account_id"]] -= amount
        expected[payment["creditor"]["account_id"]] += amount
    assert end == expected
    assert min(end.values()) >= 0


def test_tries_of_one_order_racing_on_two_servers_all_answer_with_its_one_payment(two_servers):
    # Each order spends 60% of what the debtor holds, so a try that waited for the first one
    # and then looked at the funds would find them gone: it must answer with the payment made.
    debtor, creditor = two_servers.account_ids[:2]
    urls = [server.url for server in two_servers.servers]
    for number in range(8):
        start = balances(two_servers.client, [debtor, creditor])
        amount = start[debtor] * 6 // 10
        order = (f"same-{number}", {
            "debtor_account_id": debtor, "creditor": {"account_id": creditor},
            "amount": {"amount": to_yuan(amount), "currency": "CNY"}})
        tries = asyncio.run(fire(urls, two_servers.auth, [order], [(0, n % 2) for n in range(6)]))
        answers = [response for _, response in tries]
        assert [r.status_code for r in answers] == [201] * 6, [r.text for r in answers]
        assert len({r.json()["payment_id"] for r in answers}) == 1
        assert sorted(r.headers["Idempotent-Replayed"] for r in answers) == ["false"] + ["true"] * 5
        assert balances(two_servers.client, [debtor, creditor]) == {
            debtor: start[debtor] - amount, creditor: start[creditor] + amount}


def test_the_partners_daily_limit_holds_for_payments_arriving_at_once_on_two_servers(
        db_url, two_servers):
    """Ten payments from ten accounts at the same moment, on two servers, with room under the
    partner's daily limit for one: one is made, nine are refused."""
    import json

    from conftest import cli

    debtors = two_servers.account_ids
    client = two_servers.client
    assert client.post("/payments/v1/transfers", headers={"X-Request-ID": "first"}, json={
        "debtor_account_id": debtors[0], "creditor": {"account_id": debtors[1]},
        "amount": {"amount": "1.00", "currency": "CNY"}}).status_code == 201
    key = json.loads(cli("operator", "create", "ops", "--db", db_url, "--json").stdout)
    controls = httpx.put(
        f"{two_servers.servers[0].url}/sandbox/v1/partners/"
        f"{two_servers.partner['partner_id']}/controls",
        headers={"X-Operator-Key": key["operator_key"]}, json={"daily_limit": "11.00"})
    assert controls.status_code == 200
    orders = [(f"at-once-{n}", {
        "debtor_account_id": debtor, "creditor": {"account_id": debtors[(n + 1) % 10]},
        "amount": {"amount": "10.00", "currency": "CNY"}}) for n, debtor in enumerate(debtors)]
    before = balances(client, debtors)
    results = asyncio.run(fire([s.url for s in two_servers.servers], two_servers.auth, orders,
                               [(n, n % 2) for n in range(len(orders))]))
    answers = [response for _, response in results]
    assert sorted(a.status_code for a in answers) == [201] + [422] * 9, [a.text for a in answers]
    assert {a.json()["code"] for a in answers if a.status_code == 422} == {"LIMIT_EXCEEDED"}
    assert sum(balances(client, debtors).values()) == sum(before.values())
