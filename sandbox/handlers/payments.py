"""Payments contract: transfers between accounts and to other banks, refunds, the directory."""

from __future__ import annotations

from connexion import request
from starlette.responses import Response

from sandbox import payments
from sandbox.bank.directory import BANKS
from sandbox.handlers import respond
from sandbox.money import to_yuan
from sandbox.problems import NotFound

BASE_PATH = "/payments/v1"


def payment_resource(row: dict) -> dict:
    creditor = {"account_number": row["creditor_account_number"],
                "bank_code": row["creditor_bank_code"], "name": row["creditor_name"]}
    if row["creditor_account_id"]:
        creditor = {"account_id": row["creditor_account_id"], **creditor}
    out = {
        "payment_id": row["payment_id"], "status": row["status"],
        "debtor_account_id": row["debtor_account_id"], "creditor": creditor,
        "amount": {"amount": to_yuan(row["amount_fen"]), "currency": row["currency"]},
        "created_at": row["created_at"],
    }
    if row["remittance_information"]:
        out["remittance_information"] = row["remittance_information"]
    if row["refunded_at"]:
        out["refunded_at"] = row["refunded_at"]
    return out


def _answer(payment: dict, replayed: bool, status: int) -> Response:
    location = f"{BASE_PATH}/payments/{payment['payment_id']}"
    return respond(payment_resource(payment), status,
                   {"Location": location, "Idempotent-Replayed": "true" if replayed else "false"})


async def create_transfer(token_info: dict, body: dict) -> Response:
    state = request.state
    payment, replayed = await payments.post_transfer(
        state.store, state.clock, token_info["sub"], request.headers["x-request-id"], body)
    return _answer(payment, replayed, 201)


async def get_payment(token_info: dict, payment_id: str) -> Response:
    payment = await request.state.store.payment(token_info["sub"], payment_id)
    if payment is None:
        raise NotFound("PAYMENT_NOT_FOUND", f"No payment {payment_id} for this partner.",
                       field="path.payment_id")
    return respond(payment_resource(payment))


async def refund_payment(token_info: dict, payment_id: str) -> Response:
    state = request.state
    payment, replayed = await payments.refund_payment(
        state.store, state.clock, token_info["sub"], payment_id, request.headers["x-request-id"])
    return _answer(payment, replayed, 200)


async def list_banks(token_info: dict) -> Response:
    return respond({"items": [{"bank_code": code, "name": name, "short_name": short}
                              for code, name, short in BANKS]})
