"""Notifications without a network: the signature, and the dispatcher's schedule, leases and
log over a real SQLite store, a movable clock and httpx's MockTransport for the receiver."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox import mint, notify, payments
from sandbox.bank import load_profile
from sandbox.clock import Clock
from sandbox.ledger import Booking
from sandbox.partners import create_partner
from sandbox.security.callbacks import CallbackPolicy
from sandbox.store import open_store
from sandbox.store.ledger import write

SMALL = load_profile(Path(__file__).resolve().parents[2] / "fixtures", "small")
SECRET = "whsec_" + "ab" * 24
NOW = 1_764_216_000
# What receiver.test resolves to: a public address (the mock transport answers; nothing is
# contacted). There is no DNS here: every test names its resolver.
RECEIVER_ADDRESS = "93.184.215.14"


# -- the signature ----------------------------------------------------------------------------

@given(body=st.binary(max_size=2000), timestamp=st.integers(NOW - 300, NOW + 300))
def test_a_signed_body_verifies(body, timestamp):
    notify.verify(SECRET, body, notify.sign(SECRET, body, timestamp), now=NOW)


@given(body=st.binary(min_size=1, max_size=500), data=st.data())
def test_changing_any_byte_of_the_body_breaks_the_signature(body, data):
    header = notify.sign(SECRET, body, NOW)
    index = data.draw(st.integers(0, len(body) - 1))
    flip = data.draw(st.integers(1, 255))
    tampered = body[:index] + bytes([body[index] ^ flip]) + body[index + 1:]
    with pytest.raises(notify.SignatureError, match="does not match"):
        notify.verify(SECRET, tampered, header, now=NOW)


@pytest.mark.parametrize(("header", "message"), (
    ("", "malformed"),
    ("t=abc,v1=00", "malformed"),
    ("v1=" + "0" * 64, "malformed"),
    (f"t={NOW - 301},v1=" + "0" * 64, "away"),
    (f"t={NOW},v1=" + "0" * 64, "does not match"),
))
def test_bad_signature_headers_are_refused_with_a_reason(header, message):
    with pytest.raises(notify.SignatureError, match=message):
        notify.verify(SECRET, b"{}", header, now=NOW)


def test_another_secret_or_timestamp_does_not_verify():
    header = notify.sign(SECRET, b'{"a":1}', NOW)
    with pytest.raises(notify.SignatureError):
        notify.verify("whsec_" + "cd" * 24, b'{"a":1}', header, now=NOW)
    moved = header.replace(f"t={NOW}", f"t={NOW + 1}")
    with pytest.raises(notify.SignatureError):
        notify.verify(SECRET, b'{"a":1}', moved, now=NOW)


# -- the dispatcher -----------------------------------------------------------------------------

class Bench:
    """A store with one partner and a callback, a clock tests move, and a scripted receiver."""

    def __init__(self, tmp_path, answers, backoff=(10.0, 60.0, 300.0),
                 resolve=lambda host: [RECEIVER_ADDRESS]):
        self.tmp_path = tmp_path
        self.resolve = resolve
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.received_at: list[float] = []  # the receiver's clock at each request
        self.clock = Clock()
        self.backoff = backoff

    async def __aenter__(self):
        self.store = open_store(f"sqlite:///{self.tmp_path / 'notify.db'}")
        await self.store.open()
        self.partner_id = (await create_partner(self.store, "acme", SMALL, seed=7))["partner_id"]
        await self.store.outbox.set_callback(self.partner_id, "http://receiver.test/hook",
                                             SECRET, self.clock.now().isoformat())

        def answer(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            self.received_at.append(self.clock.timestamp())
            status = self.answers.pop(0) if self.answers else 200
            if status == 0:
                raise httpx.ConnectError("connection refused", request=request)
            if 300 <= status < 400:
                return httpx.Response(status, headers={"Location": "http://10.0.0.1/inside"})
            return httpx.Response(status)

        self.dispatcher = notify.Dispatcher(
            self.store, self.clock, self.backoff, timeout=5,
            client=httpx.AsyncClient(transport=httpx.MockTransport(answer)),
            policy=CallbackPolicy(resolve=self.resolve))
        return self

    async def __aexit__(self, *exc):
        await self.dispatcher.close()
        await self.store.close()

    async def event(self) -> str | None:
        """An event written as a payment's booking writes it: its id, if it was queued."""
        event = notify.event(mint.record_id("evt"), "payment.settled",
                             {"payment_id": "pay_" + "0" * 16}, self.clock.now())
        async with self.store.transaction() as tx:
            await write(tx, self.partner_id, Booking(events=(event,)))
        return event.event_id if await self.row(event.event_id) else None

    def after(self, seconds: float) -> None:
        self.clock.move(dt.timedelta(seconds=seconds))

    async def row(self, event_id):
        return await self.store.outbox.notification(self.partner_id, event_id)


def run(coro):
    return asyncio.run(coro)


def test_retries_follow_the_schedule_until_acknowledged(tmp_path):
    async def scenario():
        async with Bench(tmp_path, [500, 0, 503, 200]) as bench:
            event_id = await bench.event()
            assert await bench.dispatcher.deliver_due() == 1  # attempt 1, at once: 500
            for wait, due in ((9.9, 0), (0.2, 1), (59.8, 0), (0.3, 1), (299, 0), (1.1, 1)):
                bench.after(wait)
                assert await bench.dispatcher.deliver_due() == due, (wait, due)
            row = await bench.row(event_id)
            assert row["status"] == "delivered" and row["attempts"] == 4
            log = await bench.store.outbox.deliveries([event_id])
            assert [(d["attempt"], d["status_code"]) for d in log] == [
                (1, 500), (2, None), (3, 503), (4, 200)]
            assert "ConnectError" in log[1]["error"]
            sent = [(r.headers["x-sandbox-event-id"], r.headers["x-sandbox-delivery-attempt"])
                    for r in bench.requests]
            assert sent == [(event_id, "1"), (event_id, "2"), (event_id, "3"), (event_id, "4")]
            for request, received_at in zip(bench.requests, bench.received_at, strict=True):
                notify.verify(SECRET, request.content, request.headers["x-sandbox-signature"],
                              now=received_at)
            bench.after(10_000)
            assert await bench.dispatcher.deliver_due() == 0  # delivered: never again

    run(scenario())


def test_after_the_last_wait_the_event_fails_and_a_redelivery_starts_over(tmp_path):
    async def scenario():
        async with Bench(tmp_path, [500, 500, 500, 200], backoff=(10.0,)) as bench:
            event_id = await bench.event()
            await bench.dispatcher.deliver_due()
            bench.after(10.1)
            await bench.dispatcher.deliver_due()
            assert (await bench.row(event_id))["status"] == "failed"
            bench.after(10**6)
            assert await bench.dispatcher.deliver_due() == 0
            assert await bench.store.outbox.redeliver(bench.partner_id, event_id,
                                               int(bench.clock.timestamp() * 1000))
            assert await bench.dispatcher.deliver_due() == 1  # attempt 3: 500
            row = await bench.row(event_id)
            assert row["status"] == "pending"  # a fresh schedule: one wait of 10 s to go
            bench.after(10.1)
            assert await bench.dispatcher.deliver_due() == 1  # attempt 4: 200
            assert (await bench.row(event_id))["status"] == "delivered"
            assert not await bench.store.outbox.redeliver("someone-else", event_id, 0)

    run(scenario())


def test_a_leased_attempt_is_not_taken_twice_and_a_lost_one_is_retried_as_the_next(tmp_path):
    async def scenario():
        async with Bench(tmp_path, []) as bench:
            event_id = await bench.event()
            now_ms = int(bench.clock.timestamp() * 1000)
            [claimed] = await bench.store.outbox.claim_notifications(now_ms, now_ms + 15_000, 10)
            assert claimed["attempts"] == 1 and claimed["url"] == "http://receiver.test/hook"
            # Another process looking now finds nothing: the lease holds it.
            assert await bench.store.outbox.claim_notifications(now_ms, now_ms + 15_000, 10) == []
            # The holder dies without recording; once the lease runs out the event is taken
            # again, as attempt 2: attempt 1 is never sent a second time.
            bench.after(15.1)
            assert await bench.dispatcher.deliver_due() == 1
            assert [r.headers["x-sandbox-delivery-attempt"] for r in bench.requests] == ["2"]
            # The dead holder's late report of attempt 1 is ignored.
            await bench.store.outbox.record_delivery(
                {"event_id": event_id, "attempt": 1, "url": "x", "attempted_at": "x",
                 "status_code": 500, "error": None, "duration_ms": 1},
                status="pending", next_attempt_ms=0, delivered_at=None)
            row = await bench.row(event_id)
            assert row["status"] == "delivered" and row["attempts"] == 2
            assert [d["attempt"] for d in await bench.store.outbox.deliveries([event_id])] == [2]

    run(scenario())


def test_a_payment_queues_its_event_only_while_a_callback_is_registered(tmp_path):
    async def scenario():
        async with Bench(tmp_path, []) as bench:
            rows = await bench.store.fetchall(
                "SELECT account_id FROM accounts WHERE partner_id = ?"
                " ORDER BY balance_fen DESC LIMIT 2", (bench.partner_id,))
            payer, payee = (row["account_id"] for row in rows)

            async def pay(request_id: str) -> list:
                body = {"debtor_account_id": payer, "creditor": {"account_id": payee},
                        "amount": {"amount": "0.01", "currency": "CNY"}}
                payment, _ = await payments.post_transfer(
                    bench.store, bench.clock, bench.partner_id, request_id, body,
                    consent_accounts=frozenset({payer}))
                return await bench.store.outbox.notifications(
                    bench.partner_id, payment_id=payment.payment_id, status=None,
                    before_us=None, limit=10)

            assert [n["type"] for n in await pay("with-callback")] == ["payment.settled"]
            assert await bench.store.outbox.delete_callback(bench.partner_id)
            assert await pay("without-callback") == []

    run(scenario())


def test_a_url_no_client_can_use_is_a_failed_attempt_not_a_stuck_event(tmp_path):
    async def scenario():
        async with Bench(tmp_path, [], backoff=()) as bench:
            bench.dispatcher.client = httpx.AsyncClient()  # a real client, no mock
            await bench.store.outbox.set_callback(bench.partner_id, "http://[::1/hook", SECRET,
                                                  "x")
            event_id = await bench.event()
            assert await bench.dispatcher.deliver_due() == 1
            row = await bench.row(event_id)
            assert row["status"] == "failed" and row["lease_until_ms"] == 0
            [attempt] = await bench.store.outbox.deliveries([event_id])
            assert attempt["status_code"] is None
            assert attempt["error"].startswith("not sent: The URL cannot be delivered to")

    run(scenario())


# -- where a delivery goes ----------------------------------------------------------------------

def test_a_delivery_connects_to_the_address_checked_and_sends_the_partners_host(tmp_path):
    async def scenario():
        async with Bench(tmp_path, []) as bench:
            url = "https://receiver.test:8443/hook?x=1"
            await bench.store.outbox.set_callback(bench.partner_id, url, SECRET, "x")
            event_id = await bench.event()
            assert await bench.dispatcher.deliver_due() == 1
            [request] = bench.requests
            # Nothing resolves the name again between the check and the connection.
            assert str(request.url) == f"https://{RECEIVER_ADDRESS}:8443/hook?x=1"
            assert request.headers["host"] == "receiver.test:8443"
            assert request.extensions["sni_hostname"] == "receiver.test"  # TLS checks the name
            [attempt] = await bench.store.outbox.deliveries([event_id])
            assert attempt["url"] == url  # the log shows the URL as the partner gave it

    run(scenario())


def test_a_name_that_resolves_inside_by_delivery_time_is_never_contacted(tmp_path):
    """DNS rebinding: the name was public when registered, points at the private network now."""
    async def scenario():
        async with Bench(tmp_path, [], resolve=lambda host: ["10.0.0.1"]) as bench:
            event_id = await bench.event()
            assert await bench.dispatcher.deliver_due() == 1
            assert bench.requests == []
            [attempt] = await bench.store.outbox.deliveries([event_id])
            assert attempt["status_code"] is None
            assert attempt["error"].startswith(
                "not sent: Callbacks are not sent to receiver.test, which resolves to 10.0.0.1, "
                "a private address")

    run(scenario())


def test_the_log_of_a_refused_address_reads_the_same_for_an_open_and_a_closed_port(tmp_path):
    async def scenario():
        async with Bench(tmp_path, [0], resolve=lambda host: ["169.254.169.254"]) as bench:
            errors = []
            for port in (22, 9):  # on a real host: one open, one closed
                await bench.store.outbox.set_callback(bench.partner_id,
                                                      f"http://receiver.test:{port}/", SECRET, "x")
                event_id = await bench.event()
                await bench.dispatcher.deliver_due()
                [attempt] = await bench.store.outbox.deliveries([event_id])
                errors.append((attempt["status_code"], attempt["error"]))
            assert bench.requests == []
            assert errors[0] == errors[1] and errors[0][0] is None
            assert "metadata" in errors[0][1]

    run(scenario())


def test_a_redirect_is_a_failed_attempt_and_is_not_followed(tmp_path):
    async def scenario():
        async with Bench(tmp_path, [302, 200]) as bench:
            event_id = await bench.event()
            assert await bench.dispatcher.deliver_due() == 1
            assert [r.url.host for r in bench.requests] == [RECEIVER_ADDRESS]  # not 10.0.0.1
            assert (await bench.row(event_id))["status"] == "pending"  # retried on the schedule
            [attempt] = await bench.store.outbox.deliveries([event_id])
            assert attempt["status_code"] == 302 and "redirect, not followed" in attempt["error"]

    run(scenario())
