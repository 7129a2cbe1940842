"""Accounts contract: customers, accounts, balances, transactions, online account opening."""

from __future__ import annotations

import random

from connexion import request
from starlette.responses import Response

from sandbox import consents, ids
from sandbox.bank.generate import SANDBOX_BIN
from sandbox.handlers import respond
from sandbox.money import to_yuan
from sandbox.pagination import decode_cursor, page
from sandbox.problems import NotFound, Unprocessable
from sandbox.rules.account_class import AccountClass
from sandbox.security.tokens import new_secret

BASE_PATH = "/accounts/v1"


def _money(fen: int, currency: str = "CNY") -> dict:
    return {"amount": to_yuan(fen), "currency": currency}


def customer_resource(row: dict) -> dict:
    out = {"customer_id": row["customer_id"], "kind": row["kind"], "name": row["name"]}
    for key in ("resident_id", "uscc", "birth_date", "gender"):
        if row[key] is not None:
            out[key] = row[key]
    out["mobile"] = row["mobile"]
    out["address"] = row["address"]
    if row["external_card"]:
        out["other_bank_card"] = {
            "card_number": row["external_card"], "bank_name": row["external_bank"],
        }
    return out


def account_resource(row: dict) -> dict:
    out = {
        "account_id": row["account_id"], "customer_id": row["customer_id"],
        "account_number": row["account_number"], "account_class": row["account_class"],
        "product_name": row["product_name"], "currency": row["currency"],
        "status": row["status"], "opened_on": row["opened_on"],
    }
    if row["bound_account_number"]:
        out["bound_account_number"] = row["bound_account_number"]
    return out


def transaction_resource(row: dict, currency: str = "CNY") -> dict:
    counterparty = {"name": row["counterparty_name"]}
    if row["counterparty_account"]:
        counterparty["account_number"] = row["counterparty_account"]
    return {
        "transaction_id": row["transaction_id"], "account_id": row["account_id"],
        "booked_at": row["booked_at"], "booking_date": row["booking_date"],
        "credit_debit_indicator": row["direction"],
        "amount": _money(row["amount_fen"], currency),
        "balance_after": _money(row["balance_after_fen"], currency),
        "description": row["description"], "counterparty": counterparty,
        "channel": row["channel"],
    }


async def _account(partner_id: str, account_id: str) -> dict:
    row = await request.state.store.account(partner_id, account_id)
    if row is None:
        # The same answer whether the id is unknown or another partner's: nothing leaks.
        raise NotFound("ACCOUNT_NOT_FOUND", f"No account {account_id} for this partner.",
                       field="path.account_id")
    return row


def _consent(token_info: dict, permission: str, **scope) -> dict:
    return consents.require(token_info, request.state.clock, permission, **scope)


def _check_customer(consent: dict, customer_id: str, field: str) -> None:
    if customer_id != consent["customer_id"]:
        raise consents.ConsentRefusal(
            "CUSTOMER_NOT_IN_CONSENT", f"Customer {customer_id} did not give consent "
            f"{consent['consent_id']}.", field=field)


async def list_customers(token_info: dict, limit: int = 20, cursor: str | None = None) -> Response:
    consent = _consent(token_info, "ReadAccounts")
    after = decode_cursor(cursor) or 0
    row = await request.state.store.customer(token_info["sub"], consent["customer_id"])
    rows = [row] if row["ordinal"] > after else []
    return respond(page([customer_resource(r) for r in rows], limit,
                        lambda item: row["ordinal"]))


async def get_customer(token_info: dict, customer_id: str) -> Response:
    row = await request.state.store.customer(token_info["sub"], customer_id)
    if row is None:
        raise NotFound("CUSTOMER_NOT_FOUND", f"No customer {customer_id} for this partner.",
                       field="path.customer_id")
    _check_customer(_consent(token_info, "ReadAccounts"), customer_id, "path.customer_id")
    return respond(customer_resource(row))


async def list_accounts(
    token_info: dict, customer_id: str | None = None, limit: int = 20, cursor: str | None = None
) -> Response:
    consent = _consent(token_info, "ReadAccounts")
    if customer_id is not None:
        _check_customer(consent, customer_id, "query.customer_id")
    after = decode_cursor(cursor) or 0
    rows = await request.state.store.accounts(
        token_info["sub"], customer_id=consent["customer_id"], after=after, limit=1000)
    rows = [r for r in rows if r["account_id"] in consent["account_ids"]][:limit + 1]
    ordinals = {r["account_id"]: r["ordinal"] for r in rows}
    return respond(page([account_resource(r) for r in rows], limit,
                lambda item: ordinals[item["account_id"]]))


async def get_account(token_info: dict, account_id: str) -> Response:
    row = await _account(token_info["sub"], account_id)
    _consent(token_info, "ReadAccounts", account_id=account_id)
    return respond(account_resource(row))


async def get_balance(token_info: dict, account_id: str) -> Response:
    row = await _account(token_info["sub"], account_id)
    _consent(token_info, "ReadBalances", account_id=account_id)
    money = _money(row["balance_fen"], row["currency"])
    return respond({
        "account_id": account_id, "booked": money, "available": money,
        "as_of": request.state.clock.now().isoformat(timespec="seconds"),
    })


async def list_transactions(
    token_info: dict,
    account_id: str,
    from_date=None,
    to_date=None,
    limit: int = 20,
    cursor: str | None = None,
) -> Response:
    from_date = from_date.isoformat() if hasattr(from_date, "isoformat") else from_date
    to_date = to_date.isoformat() if hasattr(to_date, "isoformat") else to_date
    if from_date and to_date and from_date > to_date:
        raise Unprocessable("INVALID_DATE_RANGE",
                            f"from_date {from_date} is after to_date {to_date}.",
                            field="query.from_date")
    account = await _account(token_info["sub"], account_id)
    consent = _consent(token_info, "ReadTransactions", account_id=account_id,
                       from_date=from_date, to_date=to_date)
    # Without dates, the consent's window (if it has one) is the range.
    from_date = from_date or consent["transaction_from_date"]
    to_date = to_date or consent["transaction_to_date"]
    rows = await request.state.store.transactions(
        token_info["sub"], account_id, from_date=from_date, to_date=to_date,
        before_seq=decode_cursor(cursor), limit=limit + 1,
    )
    seqs = {r["transaction_id"]: r["seq"] for r in rows}
    return respond(page([transaction_resource(r, account["currency"]) for r in rows], limit,
                lambda item: seqs[item["transaction_id"]]))


async def open_account(token_info: dict, body: dict) -> Response:
    partner_id = token_info["sub"]
    if not ids.is_valid_resident_id(body["resident_id"]):
        raise Unprocessable("INVALID_RESIDENT_ID", "The resident ID fails the GB 11643 check "
                         "(area code, birth date or check digit).", field="body.resident_id")
    if not ids.is_valid_unionpay_card(body["bound_card_number"]):
        raise Unprocessable("INVALID_CARD_NUMBER", "The card number fails the Luhn check.",
                         field="body.bound_card_number")
    if body["bound_card_number"].startswith(SANDBOX_BIN):
        raise Unprocessable("BOUND_CARD_SAME_BANK", "Online accounts are bound to a card of "
                            "another bank; this card is ours.", field="body.bound_card_number")
    store = request.state.store
    person = await store.customer_by_resident_id(partner_id, body["resident_id"])
    if person is None or (person["name"], person["mobile"], person["external_card"]) != (
        body["name"], body["mobile"], body["bound_card_number"]
    ):
        raise Unprocessable("FOUR_FACTOR_MISMATCH", "Name, resident ID, card and mobile number "
                            "do not belong to one person (four-factor check).")
    cls = AccountClass(body["account_class"])
    # A fresh account number: random, since the request (not the seed) creates this account.
    rng = random.Random(new_secret())
    account = {
        "account_id": f"acc_{rng.getrandbits(64):016x}",
        "customer_id": person["customer_id"],
        "account_number": ids.generate_unionpay_card(rng, length=19, bin_prefix=SANDBOX_BIN),
        "account_class": cls.value,
        "product_name": "二类电子账户" if cls is AccountClass.TYPE_II else "三类电子账户",
        "currency": "CNY",
        "status": "active",
        "opened_on": request.state.clock.now().date().isoformat(),
        "bound_account_number": body["bound_card_number"],
        "balance_fen": 0,
    }
    row = await store.open_account(partner_id, account)
    location = f"{request.scope.get('root_path', '')}{BASE_PATH}/accounts/{row['account_id']}"
    return respond(account_resource(row), 201, {"Location": location})
