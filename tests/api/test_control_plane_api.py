"""A bank operator at work, against a real server on both backends: freezes, closed payment
permissions, limits and real-time risk rules, each felt at once by the partner's payments."""

from __future__ import annotations

import json

import httpx
import pytest
from conftest import cli
from test_accounts_api import assert_problem
from test_payments_api import balance, fen, ledger_is_balanced, pay

pytestmark = pytest.mark.slow


@pytest.fixture
def operator(server):
    """An httpx client on the control plane, authenticated as a new operator."""
    created = json.loads(cli("operator", "create", "ops", "--db", server.db, "--json").stdout)
    assert created["operator_key"].startswith("opk_")
    with httpx.Client(base_url=server.url + "/sandbox/v1",
                      headers={"X-Operator-Key": created["operator_key"]}) as client:
        yield client


def test_the_control_plane_wants_an_operator_key_not_a_partner_token(server, client, partner,
                                                                     operator):
    path = f"/sandbox/v1/partners/{partner['partner_id']}/risk-events"
    assert_problem(httpx.get(server.url + path), 401, "UNAUTHENTICATED")
    assert_problem(httpx.get(server.url + path, headers={"X-Operator-Key": "opk_guess"}), 401,
                   "INVALID_OPERATOR_KEY")
    partner_token = client.auth.client_token
    assert_problem(httpx.get(server.url + path, headers={"X-Operator-Key": partner_token}), 401,
                   "INVALID_OPERATOR_KEY")
    assert operator.get(path.removeprefix("/sandbox/v1")).status_code == 200


def test_a_frozen_account_neither_pays_nor_is_paid_until_unfrozen(client, partner, operator,
                                                                  accounts):
    one, two = accounts["I"][0]["account_id"], accounts["I"][1]["account_id"]
    base = f"/partners/{partner['partner_id']}/accounts/{one}"
    frozen = operator.post(base + "/freeze")
    assert frozen.status_code == 200 and frozen.json()["status"] == "frozen"
    assert client.get(f"/accounts/v1/accounts/{one}").json()["status"] == "frozen"
    before = balance(client, one), balance(client, two)
    assert_problem(pay(client, one, {"account_id": two}, "1.00"), 422, "ACCOUNT_FROZEN")
    assert_problem(pay(client, two, {"account_id": one}, "1.00"), 422, "ACCOUNT_FROZEN")
    assert (balance(client, one), balance(client, two)) == before
    assert operator.post(base + "/unfreeze").json()["status"] == "active"
    assert pay(client, one, {"account_id": two}, "1.00").status_code == 201


def test_closing_payments_for_an_account_and_for_the_partner(client, partner, operator,
                                                             accounts):
    one, two, three = (a["account_id"] for a in accounts["I"][:3])
    account_controls = f"/partners/{partner['partner_id']}/accounts/{one}/controls"
    closed = operator.put(account_controls, json={"payments_closed": True})
    assert closed.status_code == 200 and closed.json()["payments_closed"] is True
    assert_problem(pay(client, one, {"account_id": two}, "1.00"), 422, "PAYMENTS_CLOSED")
    assert_problem(pay(client, two, {"account_id": one}, "1.00"), 422, "PAYMENTS_CLOSED")
    assert pay(client, two, {"account_id": three}, "1.00").status_code == 201
    operator.put(account_controls, json={"payments_closed": False})
    assert pay(client, one, {"account_id": two}, "1.00").status_code == 201

    partner_controls = f"/partners/{partner['partner_id']}/controls"
    operator.put(partner_controls, json={"payments_closed": True})
    assert_problem(pay(client, two, {"account_id": three}, "1.00"), 422, "PAYMENTS_CLOSED")
    operator.put(partner_controls, json={})
    assert pay(client, two, {"account_id": three}, "1.00").status_code == 201


def test_limits_per_payment_and_per_day(client, partner, operator, accounts):
    one, two = accounts["I"][0]["account_id"], accounts["I"][1]["account_id"]
    operator.put(f"/partners/{partner['partner_id']}/accounts/{one}/controls",
                 json={"single_limit": "500.00", "daily_limit": "800.00"})
    assert_problem(pay(client, one, {"account_id": two}, "500.01"), 422, "LIMIT_EXCEEDED")
    assert pay(client, one, {"account_id": two}, "500.00").status_code == 201
    assert_problem(pay(client, one, {"account_id": two}, "300.01"), 422, "LIMIT_EXCEEDED")
    assert pay(client, one, {"account_id": two}, "300.00").status_code == 201
    # A partner-wide daily limit counts every account's payments of today.
    operator.put(f"/partners/{partner['partner_id']}/controls", json={"daily_limit": "900.00"})
    assert_problem(pay(client, two, {"account_id": one}, "100.01"), 422, "LIMIT_EXCEEDED")
    assert pay(client, two, {"account_id": one}, "100.00").status_code == 201


def test_risk_rules_refuse_and_record_why(client, partner, operator, accounts):
    one, two = accounts["I"][0]["account_id"], accounts["I"][1]["account_id"]
    controls = f"/partners/{partner['partner_id']}/controls"
    set_rules = operator.put(controls, json={"large_amount": "1000.00",
                                             "velocity": {"count": 3, "window_seconds": 600}})
    assert set_rules.json()["velocity"] == {"count": 3, "window_seconds": 600}
    before = balance(client, one)
    large = pay(client, one, {"account_id": two}, "1000.00", request_id="big-1")
    assert "large-amount" in assert_problem(large, 422, "RISK_REFUSED")["detail"]
    assert balance(client, one) == before
    for _ in range(3):
        assert pay(client, one, {"account_id": two}, "1.00").status_code == 201
    fast = pay(client, one, {"account_id": two}, "1.00", request_id="fast-4")
    assert "velocity" in assert_problem(fast, 422, "RISK_REFUSED")["detail"]
    events = operator.get(f"/partners/{partner['partner_id']}/risk-events").json()["items"]
    assert [(e["rule"], e["request_id"], e["account_id"]) for e in events] == [
        ("VELOCITY", "fast-4", one), ("LARGE_AMOUNT", "big-1", one)]
    assert events[1]["amount"] == {"amount": "1000.00", "currency": "CNY"}
    assert all(e["action"] == "refused" for e in events)


def test_a_held_payment_waits_for_the_operator_to_release_or_reject_it(
        client, partner, operator, accounts, server):
    one, two = accounts["I"][0]["account_id"], accounts["I"][1]["account_id"]
    pid = partner["partner_id"]
    rules = operator.put(f"/partners/{pid}/accounts/{one}/controls",
                         json={"large_amount": "500.00", "risk_action": "hold"})
    assert rules.status_code == 200 and rules.json()["risk_action"] == "hold"
    client.put("/payments/v1/callback", json={"url": "http://127.0.0.1:9/hook"})
    before = balance(client, one), balance(client, two)
    held = pay(client, one, {"account_id": two}, "600.00", request_id="big-held")
    assert held.status_code == 201 and held.json()["status"] == "held"
    # The money has left the payer and not reached the payee.
    assert fen(balance(client, one)) == fen(before[0]) - 60000
    assert balance(client, two) == before[1]
    assert pay(client, one, {"account_id": two}, "600.00",
               request_id="big-held").json() == held.json()  # a retry: the same held payment
    event = operator.get(f"/partners/{pid}/risk-events").json()["items"][0]
    assert (event["action"], event["rule"], event["payment_id"]) == (
        "held", "LARGE_AMOUNT", held.json()["payment_id"])
    payment = f"/payments/v1/payments/{held.json()['payment_id']}"
    assert_problem(client.post(payment + "/refund", headers={"X-Request-ID": "r-held"}), 409,
                   "PAYMENT_NOT_SETTLED")

    released = operator.post(f"/partners/{pid}/payments/{held.json()['payment_id']}/release")
    assert released.status_code == 200 and released.json()["status"] == "settled"
    assert client.get(payment).json() == released.json()
    assert fen(balance(client, two)) == fen(before[1]) + 60000
    assert_problem(operator.post(f"/partners/{pid}/payments/{held.json()['payment_id']}"
                                 "/reject"), 409, "PAYMENT_NOT_HELD")

    second = pay(client, one, {"account_id": two}, "700.00").json()
    rejected = operator.post(f"/partners/{pid}/payments/{second['payment_id']}/reject")
    assert rejected.status_code == 200 and rejected.json()["status"] == "failed"
    assert rejected.json()["failure"]["code"] == "RISK_REJECTED"
    assert fen(balance(client, one)) == fen(before[0]) - 60000  # the 700.00 came back
    assert fen(balance(client, two)) == fen(before[1]) + 60000
    told = client.get("/payments/v1/notifications").json()["items"]
    assert {(n["payment_id"], n["type"]) for n in told} == {
        (held.json()["payment_id"], "payment.settled"), (second["payment_id"], "payment.failed")}
    # A creditor that cannot take the money now: the release is refused, the payment stays held.
    third = pay(client, one, {"account_id": two}, "800.00").json()
    operator.post(f"/partners/{pid}/accounts/{two}/freeze")
    refused = operator.post(f"/partners/{pid}/payments/{third['payment_id']}/release")
    assert "stays held" in assert_problem(refused, 409, "ACCOUNT_FROZEN")["detail"]
    assert client.get(f"/payments/v1/payments/{third['payment_id']}").json()["status"] == "held"
    ledger_is_balanced(server.db, pid)


def test_unknown_partners_and_accounts_are_404(partner, operator):
    assert_problem(operator.get("/partners/ptn_0000000000000000/risk-events"), 404,
                   "PARTNER_NOT_FOUND")
    assert_problem(operator.post(f"/partners/{partner['partner_id']}/accounts/"
                                 "acc_0000000000000000/freeze"), 404, "ACCOUNT_NOT_FOUND")


def test_the_ledger_check_counts_payments_and_stays_balanced(client, partner, operator,
                                                             accounts):
    path = f"/partners/{partner['partner_id']}/ledger"
    before = operator.get(path).json()
    assert before["balanced"] is True and before["journal_total"] == "0.00"
    assert before["accounts_off"] == before["unbalanced_movements"] == 0
    one, two = accounts["I"][0]["account_id"], accounts["I"][1]["account_id"]
    assert pay(client, one, {"account_id": two}, "12.34").status_code == 201
    assert_problem(pay(client, one, {"account_id": two}, "99999999.00"), 422,
                   "INSUFFICIENT_FUNDS")
    after = operator.get(path).json()
    assert after["payments"] == before["payments"] + 1  # a refused order records nothing
    assert after["legs"] == before["legs"] + 2
    assert after["balanced"] is True and after["journal_total"] == "0.00"
    assert_problem(operator.get("/partners/ptn_0000000000000000/ledger"), 404,
                   "PARTNER_NOT_FOUND")


def test_operators_setting_the_same_controls_at_once_each_win_in_turn(server, partner, operator):
    import concurrent.futures

    path = f"/partners/{partner['partner_id']}/controls"
    limits = [f"{n}.00" for n in range(100, 120)]

    def put(limit):
        with httpx.Client(base_url=operator.base_url, headers=operator.headers) as each:
            return each.put(path, json={"daily_limit": limit})

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(put, limits))
    assert [a.status_code for a in answers] == [200] * len(limits)
    assert {a.json()["daily_limit"] for a in answers} == set(limits)
