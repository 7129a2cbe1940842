"""Payments as a partner meets them, against a real server on both backends: money moves on both
sides, retries never pay twice, and the bank refuses what a real bank refuses."""

from __future__ import annotations

import asyncio
import itertools

import httpx
import pytest
from conftest import bank_rows, create_partner, get_token
from test_accounts_api import assert_problem

from sandbox.consent_client import customer_token
from sandbox.store import open_store

pytestmark = pytest.mark.slow
ICBC = "102100099996"
_ids = itertools.count(1)


def new_id() -> str:
    return f"req-{next(_ids)}"


def pay(client, debtor, creditor, amount, request_id=None, **extra):
    body = {"debtor_account_id": debtor, "creditor": creditor,
            "amount": {"amount": amount, "currency": "CNY"}, **extra}
    return client.post("/payments/v1/transfers", json=body,
                       headers={"X-Request-ID": request_id or new_id()})


def balance(client, account_id) -> str:
    return client.get(f"/accounts/v1/accounts/{account_id}/balance").json()["booked"]["amount"]


def fen(amount: str) -> int:
    yuan, _, cents = amount.partition(".")
    return int(yuan) * 100 + int(cents)


def ledger_is_balanced(db_url: str, partner_id: str) -> None:
    async def check():
        async with open_store(db_url) as store:
            return await store.ledger.check(partner_id)

    figures = asyncio.run(check())
    assert figures["total_fen"] == 0 and figures["accounts_off"] == 0
    assert figures["unbalanced_movements"] == 0 and figures["legs"] > 0


def test_an_internal_transfer_moves_money_on_both_sides(client, accounts, server, partner):
    debtor, creditor = accounts["I"][0], accounts["I"][1]
    before = (fen(balance(client, debtor["account_id"])),
              fen(balance(client, creditor["account_id"])))
    response = pay(client, debtor["account_id"], {"account_id": creditor["account_id"]},
                   "1024.50", remittance_information="房租")
    assert response.status_code == 201, response.text
    payment = response.json()
    assert payment["status"] == "settled" and payment["amount"]["amount"] == "1024.50"
    assert response.headers["idempotent-replayed"] == "false"
    assert client.get(response.headers["location"]).json() == payment
    after = (fen(balance(client, debtor["account_id"])),
             fen(balance(client, creditor["account_id"])))
    assert after == (before[0] - 102450, before[1] + 102450)
    out = client.get(f"/accounts/v1/accounts/{debtor['account_id']}/transactions").json()
    into = client.get(f"/accounts/v1/accounts/{creditor['account_id']}/transactions").json()
    assert out["items"][0]["credit_debit_indicator"] == "debit"
    assert out["items"][0]["counterparty"]["account_number"] == creditor["account_number"]
    assert into["items"][0]["credit_debit_indicator"] == "credit"
    assert "房租" in into["items"][0]["description"]
    ledger_is_balanced(server.db, partner["partner_id"])


def test_a_transfer_to_another_bank_debits_the_payer(client, accounts, server, partner):
    debtor = accounts["I"][0]["account_id"]
    banks = client.get("/payments/v1/banks").json()["items"]
    assert ICBC in {b["bank_code"] for b in banks}
    before = fen(balance(client, debtor))
    creditor = {"account_number": "6212269458073021579", "bank_code": ICBC, "name": "王芳"}
    response = pay(client, debtor, creditor, "88.00")
    assert response.status_code == 201
    assert response.json()["creditor"] == creditor
    assert fen(balance(client, debtor)) == before - 8800
    unknown = pay(client, debtor, {**creditor, "bank_code": "123456789012"}, "1.00")
    assert_problem(unknown, 422, "UNKNOWN_BANK", "body.creditor.bank_code")
    ledger_is_balanced(server.db, partner["partner_id"])


def test_a_retry_returns_the_same_payment_and_never_debits_twice(client, accounts):
    debtor, creditor = accounts["I"][0]["account_id"], accounts["I"][1]["account_id"]
    before = fen(balance(client, debtor))
    first = pay(client, debtor, {"account_id": creditor}, "10.00", request_id="order-1")
    again = pay(client, debtor, {"account_id": creditor}, "10.00", request_id="order-1")
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert fen(balance(client, debtor)) == before - 1000
    other = pay(client, debtor, {"account_id": creditor}, "11.00", request_id="order-1")
    assert_problem(other, 409, "IDEMPOTENCY_CONFLICT", "header.X-Request-ID")
    assert fen(balance(client, debtor)) == before - 1000
    # The same id naming another payer is the same conflict, and moves nothing either.
    payee_before = fen(balance(client, creditor))
    switched = pay(client, creditor, {"account_id": debtor}, "10.00", request_id="order-1")
    assert_problem(switched, 409, "IDEMPOTENCY_CONFLICT", "header.X-Request-ID")
    assert fen(balance(client, creditor)) == payee_before
    assert fen(balance(client, debtor)) == before - 1000


def test_insufficient_funds_is_refused_and_changes_nothing(client, accounts):
    debtor, creditor = accounts["I"][0]["account_id"], accounts["I"][1]["account_id"]
    before = balance(client, debtor)
    too_much = f"{fen(before) // 100 + 1}.00"
    assert_problem(pay(client, debtor, {"account_id": creditor}, too_much), 422,
                   "INSUFFICIENT_FUNDS")
    assert balance(client, debtor) == before


@pytest.mark.parametrize(("amount", "currency", "field"), (
    ("10.005", "CNY", "body.amount.amount"),
    ("-10.00", "CNY", "body.amount.amount"),
    ("0.00", "CNY", "body.amount.amount"),
    ("10", "CNY", "body.amount.amount"),
    ("10.00", "USD", "body.amount.currency"),
))
def test_malformed_amounts_are_400_and_change_nothing(client, accounts, amount, currency, field):
    debtor, creditor = accounts["I"][0]["account_id"], accounts["I"][1]["account_id"]
    before = balance(client, debtor)
    response = client.post("/payments/v1/transfers", headers={"X-Request-ID": new_id()}, json={
        "debtor_account_id": debtor, "creditor": {"account_id": creditor},
        "amount": {"amount": amount, "currency": currency}})
    assert_problem(response, 400, "VALIDATION_FAILED", field)
    assert balance(client, debtor) == before


def test_type_ii_payments_to_non_bound_accounts_are_capped_at_10000_a_day(client, accounts):
    second = accounts["II"][0]
    bound = accounts["bound"][second["account_id"]]
    # Transfers with the bound Type I account are not capped, either way.
    assert pay(client, bound["account_id"], {"account_id": second["account_id"]},
               "15000.00").status_code == 201
    outsider = {"account_number": "6212269458073021579", "bank_code": ICBC, "name": "王芳"}
    assert pay(client, second["account_id"], outsider, "6000.00").status_code == 201
    refused = pay(client, second["account_id"], outsider, "4000.01")
    assert "10000.00" in assert_problem(refused, 422, "LIMIT_EXCEEDED", "body.amount")["detail"]
    assert pay(client, second["account_id"], outsider, "4000.00").status_code == 201
    assert pay(client, second["account_id"], {"account_id": bound["account_id"]},
               "3000.00").status_code == 201


def test_type_iii_balance_and_daily_outflow_are_capped_at_2000(client, accounts):
    third = accounts["III"][0]
    bound = accounts["bound"][third["account_id"]]
    room = 200000 - fen(balance(client, third["account_id"]))
    over = pay(client, bound["account_id"], {"account_id": third["account_id"]},
               f"{(room + 1) // 100}.{(room + 1) % 100:02d}")
    assert_problem(over, 422, "BALANCE_LIMIT_EXCEEDED", "body.amount")
    assert pay(client, bound["account_id"], {"account_id": third["account_id"]},
               f"{room // 100}.{room % 100:02d}").status_code == 201
    assert balance(client, third["account_id"]) == "2000.00"
    assert pay(client, third["account_id"], {"account_id": bound["account_id"]},
               "1500.00").status_code == 201
    assert pay(client, bound["account_id"], {"account_id": third["account_id"]},
               "1500.00").status_code == 201
    # 1,500.00 went out today (the generated history ends before today): 500.00 is left.
    refused = pay(client, third["account_id"], {"account_id": bound["account_id"]}, "500.01")
    assert_problem(refused, 422, "LIMIT_EXCEEDED", "body.amount")
    assert pay(client, third["account_id"], {"account_id": bound["account_id"]},
               "500.00").status_code == 201


def test_a_refund_gives_the_money_back_once(client, accounts, server, partner):
    debtor, creditor = accounts["I"][0]["account_id"], accounts["I"][1]["account_id"]
    before = balance(client, debtor), balance(client, creditor)
    payment = pay(client, debtor, {"account_id": creditor}, "250.00").json()
    path = f"/payments/v1/payments/{payment['payment_id']}/refund"
    refunded = client.post(path, headers={"X-Request-ID": "refund-1"})
    assert refunded.status_code == 200 and refunded.json()["status"] == "refunded"
    assert (balance(client, debtor), balance(client, creditor)) == before
    again = client.post(path, headers={"X-Request-ID": "refund-1"})
    assert again.json() == refunded.json() and again.headers["idempotent-replayed"] == "true"
    assert_problem(client.post(path, headers={"X-Request-ID": "refund-2"}), 409,
                   "ALREADY_REFUNDED")
    assert (balance(client, debtor), balance(client, creditor)) == before
    missing = client.post("/payments/v1/payments/pay_0000000000000000/refund",
                          headers={"X-Request-ID": "refund-3"})
    assert_problem(missing, 404, "PAYMENT_NOT_FOUND", "path.payment_id")
    ledger_is_balanced(server.db, partner["partner_id"])


def test_a_transfer_needs_the_payments_scope_and_a_request_id(server, partner, accounts):
    token = get_token(server.url, partner, scope="accounts")
    with httpx.Client(base_url=server.url,
                      headers={"Authorization": f"Bearer {token}"}) as limited:
        response = pay(limited, accounts["I"][0]["account_id"],
                       {"account_id": accounts["I"][1]["account_id"]}, "1.00")
    assert_problem(response, 403, "INSUFFICIENT_SCOPE")


def test_a_missing_request_id_is_400(client, accounts):
    response = client.post("/payments/v1/transfers", json={
        "debtor_account_id": accounts["I"][0]["account_id"],
        "creditor": {"account_id": accounts["I"][1]["account_id"]},
        "amount": {"amount": "1.00", "currency": "CNY"}})
    assert_problem(response, 400, "VALIDATION_FAILED", "header.X-Request-ID")


def test_another_partners_account_cannot_pay_or_be_paid(server, client, partner, accounts):
    other = create_partner(server.db, "globex")
    foreign = bank_rows(server.db, other["partner_id"])[1][0]["account_id"]
    mine = accounts["I"][0]
    # A customer's consent can only name that customer's accounts: another partner's is not
    # among them (and looks exactly like one that does not exist).
    token = customer_token(server.url, partner["client_id"], partner["client_secret"],
                           customer_id=mine["customer_id"])["access_token"]
    with httpx.Client(base_url=server.url,
                      headers={"Authorization": f"Bearer {token}"}) as holder:
        assert_problem(pay(holder, foreign, {"account_id": mine["account_id"]}, "1.00"), 403,
                       "ACCOUNT_NOT_IN_CONSENT", "body.debtor_account_id")
    assert_problem(pay(client, mine["account_id"], {"account_id": foreign}, "1.00"), 422,
                   "ACCOUNT_NOT_FOUND", "body.creditor.account_id")
