"""Signed callbacks as a partner meets them: a real server on both backends posting to a real
Flask receiver that fails on purpose, the delivery log, redelivery, and delivery that outlives a
SIGKILL of the server."""

from __future__ import annotations

import collections
import json

import httpx
import pytest
from conftest import EveryCustomerConsents, bank_rows, create_partner, free_port, get_token
from receiver import Receiver, signature_verifies, wait_for
from test_accounts_api import assert_problem
from test_payments_api import balance, fen, ledger_is_balanced, new_id, pay

pytestmark = pytest.mark.slow

ICBC = "102100099996"
# Fast enough for tests: retries after 0.3 s, 0.6 s and 1.2 s, then "failed".
FAST = {"SANDBOX_NOTIFY_BACKOFF": "0.3,0.6,1.2", "SANDBOX_INTERBANK_DELAY": "0.5"}


@pytest.fixture
def receivers():
    started = []

    def start(script=None, port=None, **options) -> Receiver:
        receiver = Receiver(port or free_port(), script, **options)
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop()


@pytest.fixture
def server(db_url, start_server):
    return start_server(db_url, env=FAST)


def register(client, url) -> dict:
    response = client.put("/payments/v1/callback", json={"url": url})
    assert response.status_code == 200, response.text
    return response.json()


def notification(client, event_id) -> dict:
    response = client.get(f"/payments/v1/notifications/{event_id}")
    assert response.status_code == 200, response.text
    return response.json()


def delivered(client, event_id):
    found = notification(client, event_id)
    return found if found["status"] == "delivered" else None


def events_of(client, payment_id) -> list[dict]:
    response = client.get("/payments/v1/notifications", params={"payment_id": payment_id})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_a_settled_payment_is_notified_signed_after_the_receiver_fails_twice(
        client, accounts, receivers):
    receiver = receivers(script=[503, 500])
    callback = register(client, receiver.url)
    assert callback["retry_schedule_s"] == [0.3, 0.6, 1.2]
    debtor, creditor = accounts["I"][0]["account_id"], accounts["I"][1]["account_id"]
    payment = pay(client, debtor, {"account_id": creditor}, "12.34").json()

    [got] = wait_for(receiver.acknowledged, what="an acknowledged notification")
    attempts = [r for r in receiver.received if r.event_id == got.event_id]
    assert [(r.attempt, r.answered) for r in attempts] == [(1, 503), (2, 500), (3, 200)]
    event = json.loads(got.body)
    assert event["type"] == "payment.settled" and got.headers["X-Sandbox-Event-Type"] == event[
        "type"]
    assert event["event_id"] == got.event_id and event["data"]["payment"] == payment

    secret, header = callback["signing_secret"], got.headers["X-Sandbox-Signature"]
    assert signature_verifies(secret, header, got.body)
    # Each attempt is signed afresh, and every one verifies.
    assert all(signature_verifies(secret, r.headers["X-Sandbox-Signature"], r.body)
               for r in attempts)
    tampered = got.body.replace(b"12.34", b"99.34")
    assert tampered != got.body and not signature_verifies(secret, header, tampered)
    assert not signature_verifies("whsec_" + "0" * 48, header, got.body)
    stamp, digest = header.split(",")
    assert not signature_verifies(secret, f"t={int(stamp[2:]) + 1},{digest}", got.body)

    log = wait_for(lambda: delivered(client, got.event_id), what="the log to say delivered")
    assert log["attempts"] == 3 and log["payment_id"] == payment["payment_id"]
    assert [(d["attempt"], d["status_code"]) for d in log["deliveries"]] == [
        (1, 503), (2, 500), (3, 200)]
    assert all(d["url"] == receiver.url for d in log["deliveries"])
    assert log["event"] == event


def test_a_payment_to_another_bank_is_pending_then_settles_or_fails_and_both_are_told(
        client, accounts, receivers, server, partner):
    receiver = receivers()
    register(client, receiver.url)
    debtor = accounts["I"][0]["account_id"]
    before = fen(balance(client, debtor))
    good = pay(client, debtor, {"account_number": "6212269458073021579", "bank_code": ICBC,
                                "name": "王芳"}, "100.00").json()
    bad = pay(client, debtor, {"account_number": "6212269458073020000", "bank_code": ICBC,
                               "name": "李雷"}, "50.00").json()
    assert good["status"] == bad["status"] == "pending"
    assert fen(balance(client, debtor)) == before - 15000  # both left at once

    def status(payment):
        return client.get(f"/payments/v1/payments/{payment['payment_id']}").json()

    settled = wait_for(lambda: status(good) if status(good)["status"] != "pending" else None)
    failed = wait_for(lambda: status(bad) if status(bad)["status"] != "pending" else None)
    assert settled["status"] == "settled" and "settled_at" in settled
    assert failed["status"] == "failed"
    assert failed["failure"]["code"] == "CREDITOR_ACCOUNT_NOT_FOUND"
    assert fen(balance(client, debtor)) == before - 10000  # the failed 50.00 came back
    lines = client.get(f"/accounts/v1/accounts/{debtor}/transactions").json()["items"]
    assert lines[0]["credit_debit_indicator"] == "credit" and "退汇" in lines[0]["description"]

    wait_for(lambda: len(receiver.acknowledged()) == 2, what="two notifications")
    told = {json.loads(r.body)["data"]["payment"]["payment_id"]: json.loads(r.body)
            for r in receiver.acknowledged()}
    assert told[good["payment_id"]]["type"] == "payment.settled"
    assert told[good["payment_id"]]["data"]["payment"] == settled
    assert told[bad["payment_id"]]["type"] == "payment.failed"
    assert told[bad["payment_id"]]["data"]["payment"] == failed
    refused = client.post(f"/payments/v1/payments/{bad['payment_id']}/refund",
                          headers={"X-Request-ID": new_id()})
    assert_problem(refused, 409, "PAYMENT_NOT_SETTLED")
    ledger_is_balanced(server.db, partner["partner_id"])


def test_a_refund_is_notified_and_a_redelivery_sends_the_same_event_again(
        client, accounts, receivers):
    receiver = receivers()
    register(client, receiver.url)
    debtor, creditor = accounts["I"][0]["account_id"], accounts["I"][1]["account_id"]
    payment = pay(client, debtor, {"account_id": creditor}, "8.00").json()
    refund = client.post(f"/payments/v1/payments/{payment['payment_id']}/refund",
                         headers={"X-Request-ID": new_id()})
    assert refund.status_code == 200
    wait_for(lambda: len(receiver.acknowledged()) == 2, what="settled and refunded")
    kinds = [json.loads(r.body)["type"] for r in receiver.acknowledged()]
    assert sorted(kinds) == ["payment.refunded", "payment.settled"]
    events = events_of(client, payment["payment_id"])
    assert len({e["event_id"] for e in events}) == 2  # unique event ids
    refunded = next(e for e in events if e["type"] == "payment.refunded")
    assert refunded["event"]["data"]["payment"] == refund.json()

    again = client.post(f"/payments/v1/notifications/{refunded['event_id']}/redeliver")
    assert again.status_code == 202 and again.json()["event_id"] == refunded["event_id"]
    wait_for(lambda: len(receiver.acknowledged()) == 3, what="the redelivery")
    last = receiver.acknowledged()[-1]
    assert last.event_id == refunded["event_id"] and last.attempt == 2
    assert json.loads(last.body) == refunded["event"]  # the same event, byte for byte in JSON


def test_a_notification_nobody_acknowledges_fails_after_the_schedule_then_redelivers(
        client, accounts, receivers):
    receiver = receivers(script=[500, 500, 500, 500])  # every attempt of the schedule
    register(client, receiver.url)
    debtor, creditor = accounts["I"][0]["account_id"], accounts["I"][1]["account_id"]
    payment = pay(client, debtor, {"account_id": creditor}, "1.00").json()
    [event] = wait_for(lambda: events_of(client, payment["payment_id"]))
    failed = wait_for(lambda: (n := notification(client, event["event_id"]))["status"]
                      == "failed" and n, what="the schedule to run out")
    assert [d["status_code"] for d in failed["deliveries"]] == [500, 500, 500, 500]
    assert client.get("/payments/v1/notifications",
                      params={"status": "failed"}).json()["items"][0]["event_id"] == event[
        "event_id"]
    # Gaps between attempts follow the schedule (0.3, 0.6, 1.2 s), with slack for a busy box.
    assert len(receiver.received) == 4

    response = client.post(f"/payments/v1/notifications/{event['event_id']}/redeliver")
    assert response.status_code == 202
    done = wait_for(lambda: delivered(client, event["event_id"]), what="redelivery")
    assert [d["attempt"] for d in done["deliveries"]] == [1, 2, 3, 4, 5]
    assert done["deliveries"][-1]["status_code"] == 200


def test_the_callback_registration_keeps_its_secret_and_refuses_bad_urls(client, accounts):
    none = client.get("/payments/v1/callback")
    assert_problem(none, 404, "CALLBACK_NOT_REGISTERED")
    for url in ("ftp://example.com/hook", "not a url", "http://"):
        assert_problem(client.put("/payments/v1/callback", json={"url": url}), 400,
                       "VALIDATION_FAILED", "body.url")
    first = register(client, "http://127.0.0.1:9/a")
    moved = register(client, "http://127.0.0.1:9/b")
    assert moved["signing_secret"] == first["signing_secret"] and moved["url"].endswith("/b")
    assert client.get("/payments/v1/callback").json() == moved
    assert client.delete("/payments/v1/callback").status_code == 204
    assert_problem(client.delete("/payments/v1/callback"), 404, "CALLBACK_NOT_REGISTERED")
    # Without a registration no event is recorded.
    debtor, creditor = accounts["I"][0]["account_id"], accounts["I"][1]["account_id"]
    payment = pay(client, debtor, {"account_id": creditor}, "1.00").json()
    assert events_of(client, payment["payment_id"]) == []
    assert register(client, "http://127.0.0.1:9/c")["signing_secret"] != first["signing_secret"]


def test_a_callback_aimed_behind_the_sandbox_is_refused_and_nothing_is_stored(client):
    before = register(client, "http://127.0.0.1:9/hook")
    for url, code in (
        ("http://169.254.169.254/latest/meta-data/", "CALLBACK_ADDRESS_REFUSED"),
        ("http://10.0.0.1/", "CALLBACK_ADDRESS_REFUSED"),
        ("http://[::ffff:169.254.169.254]/", "CALLBACK_ADDRESS_REFUSED"),
        ("http://[fd00:ec2::254]/", "CALLBACK_ADDRESS_REFUSED"),
        ("http://metadata.google.internal/computeMetadata/v1/", "CALLBACK_ADDRESS_REFUSED"),
        ("http://0x7f000001/", "INVALID_CALLBACK_URL"),
        ("http://2130706433:9/", "INVALID_CALLBACK_URL"),
        ("http://a..b/", "INVALID_CALLBACK_URL"),
    ):
        refused = client.put("/payments/v1/callback", json={"url": url})
        assert_problem(refused, 422, code, "body.url")
    assert client.get("/payments/v1/callback").json() == before


def test_a_sandbox_listening_beyond_loopback_refuses_loopback_unless_callback_allow_admits_it(
        tmp_path, start_server):
    loopback, private, metadata = ("http://127.0.0.1:9/hook", "http://10.1.2.3/hook",
                                   "http://169.254.169.254/")
    for flags, answers in (
        ((), {loopback: 422, private: 422, metadata: 422}),
        (("--callback-allow", "127.0.0.0/8", "--callback-allow", "10.0.0.0/8"),
         {loopback: 200, private: 200, metadata: 422}),
    ):
        server = start_server(f"sqlite:///{tmp_path / f'{len(flags)}.db'}", "--host", "0.0.0.0",
                              *flags)
        token = get_token(server.url, create_partner(server.db, "acme"))
        with httpx.Client(base_url=server.url,
                          headers={"Authorization": f"Bearer {token}"}) as client:
            for url, status in answers.items():
                response = client.put("/payments/v1/callback", json={"url": url})
                assert response.status_code == status, (flags, url, response.text)
                if status == 422:
                    assert response.json()["code"] == "CALLBACK_ADDRESS_REFUSED"


def test_a_receiver_that_redirects_fails_the_attempt_and_the_target_is_not_contacted(
        client, accounts, receivers):
    target = receivers()
    redirecting = receivers(script=[302], location=target.url)
    register(client, redirecting.url)
    debtor, creditor = accounts["I"][0]["account_id"], accounts["I"][1]["account_id"]
    payment = pay(client, debtor, {"account_id": creditor}, "1.00").json()
    [event] = wait_for(lambda: events_of(client, payment["payment_id"]))
    done = wait_for(lambda: delivered(client, event["event_id"]), what="the retry to deliver")
    first, second = done["deliveries"]
    assert first["status_code"] == 302 and "redirect, not followed" in first["error"]
    assert second["status_code"] == 200  # the retry goes to the registered URL again
    assert target.received == [] and len(redirecting.received) == 2


def test_a_receiver_named_by_a_host_name_gets_its_host_header(client, accounts, receivers):
    receiver = receivers(host="localhost")  # resolved from the hosts file: no DNS needed
    register(client, receiver.url)
    debtor, creditor = accounts["I"][0]["account_id"], accounts["I"][1]["account_id"]
    pay(client, debtor, {"account_id": creditor}, "1.00")
    [got] = wait_for(receiver.acknowledged, what="the notification")
    assert got.headers["Host"] == f"localhost:{receiver.port}"


def test_another_partners_notification_is_not_found(client, accounts, server):
    register(client, "http://127.0.0.1:9/hook")
    debtor, creditor = accounts["I"][0]["account_id"], accounts["I"][1]["account_id"]
    payment = pay(client, debtor, {"account_id": creditor}, "1.00").json()
    [event] = events_of(client, payment["payment_id"])
    other = create_partner(server.db, "globex")
    headers = {"Authorization": f"Bearer {get_token(server.url, other)}"}
    with httpx.Client(base_url=server.url, headers=headers) as theirs:
        for response in (theirs.get(f"/payments/v1/notifications/{event['event_id']}"),
                         theirs.post(f"/payments/v1/notifications/{event['event_id']}/redeliver")):
            assert_problem(response, 404, "NOTIFICATION_NOT_FOUND", "path.event_id")
        assert theirs.get("/payments/v1/notifications").json()["items"] == []


def test_due_notifications_survive_a_kill_and_no_attempt_is_sent_twice(
        db_url, start_server, receivers):
    """Notifications queued while the receiver is down; the server is SIGKILLed; two new server
    processes share the database while the receiver comes up: every event arrives, and no
    (event, attempt) pair arrives twice."""
    slow = {"SANDBOX_NOTIFY_BACKOFF": "1,1,1,1,1,1,1,1,1,1"}
    first = start_server(db_url, env=slow)
    partner = create_partner(db_url, "acme")
    debtor, creditor = [a["account_id"] for a in bank_rows(db_url, partner["partner_id"])[1]
                        if a["account_class"] == "I"][:2]
    auth = EveryCustomerConsents(first.url, db_url, partner).warm([debtor])
    port = free_port()  # the receiver's, not listening yet: every attempt is refused
    with httpx.Client(base_url=first.url, auth=auth) as client:
        register(client, f"http://127.0.0.1:{port}/hooks/payments")
        paid = [pay(client, debtor, {"account_id": creditor}, "1.00").json()["payment_id"]
                for _ in range(20)]
        queued = client.get("/payments/v1/notifications", params={"limit": 100}).json()
        assert len(queued["items"]) == 20
        wait_for(lambda: all(n["deliveries"] for n in client.get(
            "/payments/v1/notifications", params={"limit": 100}).json()["items"]),
            what="a refused first attempt of each")
    first.proc.kill()
    first.proc.wait()

    receiver = receivers(port=port)
    second, third = start_server(db_url, env=slow), start_server(db_url, env=slow)
    with httpx.Client(base_url=second.url, auth=auth) as client:
        wait_for(lambda: len({r.event_id for r in receiver.acknowledged()}) == 20,
                 timeout=60, what="all 20 events after the restart")
        items = client.get("/payments/v1/notifications", params={"limit": 100}).json()["items"]
    assert sorted(n["payment_id"] for n in items) == sorted(paid)
    assert all(n["status"] == "delivered" for n in items)
    sent = collections.Counter((r.event_id, r.attempt) for r in receiver.received)
    assert max(sent.values()) == 1, "an attempt was sent twice"
    assert third.proc.poll() is None
