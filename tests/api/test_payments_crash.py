"""A payment acknowledged is a payment kept, even when the server is killed mid-burst.

A server takes a steady burst of transfers (about thirty in flight) when it is killed with
SIGKILL: no shutdown, no flush, transactions cut wherever they were. Three times over, a new
server on the same database then shows, on both store backends:

* every payment whose 201 reached the client before the kill is there, as it was answered;
* the journal balances, every balance equals its legs and its statement's last line, and the
  accounts still hold, together, what they held before (the transfers are all internal);
* every movement in the journal belongs to a stored payment and every payment has its movement:
  no order was half booked;
* an order whose answer was lost to the kill may or may not have been booked, but a retry with
  the same request id gets that one payment if it was (`Idempotent-Replayed: true`), and books
  it now (once) if it was not. A retry of an acknowledged order gets its payment back.
"""

from __future__ import annotations

import asyncio
import random
import threading

import httpx
import pytest
from conftest import EveryCustomerConsents, balances, bank_rows, create_partner

from sandbox.money import to_yuan
from sandbox.store import open_store

pytestmark = pytest.mark.slow

IN_FLIGHT = 32
KILL_AFTER = 150  # acknowledged payments before each kill
KILLS = 3
MAX_ORDERS = 5000


class Burst(threading.Thread):
    """Transfers among `account_ids`, IN_FLIGHT at a time, until the server stops answering.

    `answers` maps each request id to its body and what came back: the 201 payment, a 422, or
    the transport error the kill caused."""

    def __init__(self, url: str, auth: httpx.Auth, account_ids: list[str], prefix: str):
        super().__init__(daemon=True)
        self.url, self.auth, self.account_ids, self.prefix = url, auth, account_ids, prefix
        self.orders: dict[str, dict] = {}
        self.acknowledged: dict[str, dict] = {}
        self.refused: set[str] = set()
        self.lost: dict[str, str] = {}  # request id → the error instead of an answer
        self.enough = threading.Event()  # KILL_AFTER payments acknowledged
        self.dead = threading.Event()  # a request failed for want of a server
        self.failure: BaseException | None = None

    def run(self):
        try:
            asyncio.run(self.burst())
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.failure = exc

    async def burst(self):
        rng = random.Random(self.prefix)
        async with httpx.AsyncClient(base_url=self.url, timeout=30, auth=self.auth,
                                     limits=httpx.Limits(max_connections=IN_FLIGHT)) as client:

            async def worker():
                while not self.dead.is_set() and len(self.orders) < MAX_ORDERS:
                    request_id = f"{self.prefix}-{len(self.orders):05d}"
                    debtor, creditor = rng.sample(self.account_ids, 2)
                    body = {"debtor_account_id": debtor, "creditor": {"account_id": creditor},
                            "amount": {"amount": to_yuan(rng.randint(1, 100_000)),
                                       "currency": "CNY"}}
                    self.orders[request_id] = body
                    try:
                        response = await client.post("/payments/v1/transfers", json=body,
                                                     headers={"X-Request-ID": request_id})
                    except httpx.TransportError as exc:
                        self.lost[request_id] = repr(exc)
                        self.dead.set()
                        continue
                    if response.status_code == 201:
                        self.acknowledged[request_id] = response.json()
                        if len(self.acknowledged) >= KILL_AFTER:
                            self.enough.set()
                    elif response.status_code == 422:
                        self.refused.add(request_id)
                    else:
                        raise AssertionError(f"{response.status_code}: {response.text}")

            await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))


async def movements_and_payments(db: str, partner_id: str) -> dict:
    async with open_store(db) as store:
        movements = await store.fetchall(
            "SELECT DISTINCT movement_id FROM postings WHERE partner_id = ?", (partner_id,))
        payments = await store.fetchall(
            "SELECT request_id, payment_id, movement_id FROM payments WHERE partner_id = ?",
            (partner_id,))
        statements = await store.fetchall(
            """SELECT a.account_id, a.balance_fen, t.balance_after_fen FROM accounts a
               JOIN transactions t ON t.partner_id = a.partner_id AND t.account_id = a.account_id
               WHERE a.partner_id = ? AND t.seq = (SELECT MAX(seq) FROM transactions l
                 WHERE l.partner_id = a.partner_id AND l.account_id = a.account_id)""",
            (partner_id,))
        return {"movements": {row["movement_id"] for row in movements},
                "payments": {row["request_id"]: row for row in payments},
                "statements": statements,
                "check": await store.ledger.check(partner_id)}


def test_payments_acknowledged_before_a_kill_survive_it_and_retries_find_the_rest(
        db_url, start_server):
    server = start_server(db_url)
    partner = create_partner(db_url, "acme")
    account_ids = [a["account_id"] for a in bank_rows(db_url, partner["partner_id"])[1]
                   if a["account_class"] == "I" and a["status"] == "active"][:10]
    assert len(account_ids) == 10
    # Every payer's token, fetched up front; tokens outlive the server (they are in the db).
    auth = EveryCustomerConsents(server.url, db_url, partner).warm(account_ids)
    with httpx.Client(base_url=server.url, auth=auth) as client:
        start = balances(client, account_ids)
    history = asyncio.run(movements_and_payments(db_url, partner["partner_id"]))["movements"]

    # Killed a few times over: the kill rarely lands between a commit and its answer, and
    # each round gives it another chance to.
    for round_ in range(KILLS):
        burst = Burst(server.url, auth, account_ids, f"kill{round_}")
        burst.start()
        assert burst.enough.wait(60), burst.failure or "the burst never got going"
        server.proc.kill()  # SIGKILL, in the middle of the burst
        server.proc.wait(10)
        burst.join(60)
        assert not burst.is_alive() and burst.failure is None, burst.failure
        assert burst.lost, "the kill should have cut some requests off"
        after_kill = asyncio.run(movements_and_payments(db_url, partner["partner_id"]))

        server = start_server(db_url)
        with httpx.Client(base_url=server.url, auth=auth) as client:
            assert_survived(client, burst, after_kill, history)

    with httpx.Client(base_url=server.url, auth=auth) as client:
        end = balances(client, account_ids)
    final = asyncio.run(movements_and_payments(db_url, partner["partner_id"]))
    assert final["check"]["total_fen"] == 0
    assert final["check"]["accounts_off"] == 0
    assert final["check"]["unbalanced_movements"] == 0
    assert final["movements"] - history == {p["movement_id"] for p in final["payments"].values()}
    for row in final["statements"]:
        assert row["balance_fen"] == row["balance_after_fen"], row["account_id"]
    assert sum(end.values()) == sum(start.values())
    assert min(end.values()) >= 0


def assert_survived(client: httpx.Client, burst: Burst, after_kill: dict, history: set) -> None:
    """What the restarted server must show of a burst cut off by a kill."""
    # Every acknowledged payment is there, as it was answered.
    for request_id, payment in burst.acknowledged.items():
        found = client.get(f"/payments/v1/payments/{payment['payment_id']}")
        assert found.status_code == 200, (request_id, found.text)
        assert found.json() == payment

    # Nothing half booked: the journal's new movements are exactly the payments'.
    stored = {request_id: payment for request_id, payment in after_kill["payments"].items()
              if request_id in burst.orders}
    assert after_kill["movements"] - history == {
        p["movement_id"] for p in after_kill["payments"].values()}
    assert set(burst.acknowledged) <= set(stored) <= set(burst.acknowledged) | set(burst.lost)
    check = after_kill["check"]
    assert (check["total_fen"], check["accounts_off"], check["unbalanced_movements"]) == (0, 0, 0)
    for row in after_kill["statements"]:
        assert row["balance_fen"] == row["balance_after_fen"], row["account_id"]

    # A retry of an order whose answer was lost finds its payment if it was booked, and
    # books it (once) if it was not.
    for request_id in sorted(burst.lost):
        retry = client.post("/payments/v1/transfers", json=burst.orders[request_id],
                            headers={"X-Request-ID": request_id})
        assert retry.status_code in (201, 422), retry.text
        if request_id in stored:
            assert retry.status_code == 201, retry.text
            assert retry.json()["payment_id"] == stored[request_id]["payment_id"]
            assert retry.headers["Idempotent-Replayed"] == "true"
        elif retry.status_code == 201:
            assert retry.headers["Idempotent-Replayed"] == "false"
    # A retry of an acknowledged order gets its payment back from the new server.
    for request_id in sorted(burst.acknowledged)[::10]:
        retry = client.post("/payments/v1/transfers", json=burst.orders[request_id],
                            headers={"X-Request-ID": request_id})
        assert retry.status_code == 201, retry.text
        assert retry.json()["payment_id"] == burst.acknowledged[request_id]["payment_id"]
        assert retry.headers["Idempotent-Replayed"] == "true"
