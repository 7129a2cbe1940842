"""Records as partners see them: the JSON of answers and notifications, in one place.

Amounts go out as `{"amount": "1024.50", "currency": "CNY"}`; optional members are left out
rather than sent as null, as the contracts say.
"""

from __future__ import annotations

import datetime as dt

from sandbox.ledger import StatementLine
from sandbox.money import to_yuan
from sandbox.records import Account, Consent, Controls, Customer, Payment, RiskEvent
from sandbox.rules.consents import effective_status


def money(fen: int, currency: str = "CNY") -> dict:
    return {"amount": to_yuan(fen), "currency": currency}


def customer_resource(row: Customer) -> dict:
    out = {"customer_id": row.customer_id, "kind": row.kind, "name": row.name}
    for key in ("resident_id", "uscc", "birth_date", "gender"):
        if getattr(row, key) is not None:
            out[key] = getattr(row, key)
    out["mobile"] = row.mobile
    out["address"] = row.address
    if row.external_card:
        out["other_bank_card"] = {"card_number": row.external_card,
                                  "bank_name": row.external_bank}
    return out


def account_resource(row: Account) -> dict:
    out = {
        "account_id": row.account_id, "customer_id": row.customer_id,
        "account_number": row.account_number, "account_class": row.account_class,
        "product_name": row.product_name, "currency": row.currency,
        "status": row.status, "opened_on": row.opened_on,
    }
    if row.bound_account_number:
        out["bound_account_number"] = row.bound_account_number
    return out


def transaction_resource(row: StatementLine, currency: str = "CNY") -> dict:
    counterparty = {"name": row.counterparty_name}
    if row.counterparty_account:
        counterparty["account_number"] = row.counterparty_account
    return {
        "transaction_id": row.transaction_id, "account_id": row.account_id,
        "booked_at": row.booked_at, "booking_date": row.booking_date,
        "credit_debit_indicator": row.direction,
        "amount": money(row.amount_fen, currency),
        "balance_after": money(row.balance_after_fen, currency),
        "description": row.description, "counterparty": counterparty,
        "channel": row.channel,
    }


def payment_resource(row: Payment) -> dict:
    creditor = {"account_number": row.creditor_account_number,
                "bank_code": row.creditor_bank_code, "name": row.creditor_name}
    if row.creditor_account_id:
        creditor = {"account_id": row.creditor_account_id, **creditor}
    out = {
        "payment_id": row.payment_id, "status": row.status,
        "debtor_account_id": row.debtor_account_id, "creditor": creditor,
        "amount": money(row.amount_fen, row.currency), "created_at": row.created_at,
    }
    for name in ("remittance_information", "settled_at", "refunded_at"):
        if getattr(row, name):
            out[name] = getattr(row, name)
    if row.failure_code:
        out["failure"] = {"code": row.failure_code, "detail": row.failure_detail}
    return out


def consent_resource(row: Consent, now: dt.datetime) -> dict:
    """The consent with its status as of `now` (its partner's clock)."""
    out = {"consent_id": row.consent_id, "status": effective_status(row, now),
           "permissions": row.permission_list, "account_ids": row.account_id_list,
           "expires_at": row.expires_at, "created_at": row.created_at,
           "status_updated_at": row.status_updated_at}
    if row.customer_id:
        out["customer_id"] = row.customer_id
    for key in ("transaction_from_date", "transaction_to_date"):
        if getattr(row, key):
            out[key] = getattr(row, key)
    return out


def controls_resource(row: Controls) -> dict:
    out = {"payments_closed": bool(row.payments_closed)}
    for key in ("single_limit", "daily_limit", "large_amount"):
        if getattr(row, f"{key}_fen") is not None:
            out[key] = to_yuan(getattr(row, f"{key}_fen"))
    if row.velocity_count:
        out["velocity"] = {"count": row.velocity_count, "window_seconds": row.velocity_window_s}
    out["risk_action"] = row.risk_action
    out["updated_at"] = row.updated_at
    return out


def risk_event_resource(row: RiskEvent) -> dict:
    out = {"event_id": row.event_id, "account_id": row.account_id, "rule": row.rule,
           "action": row.action, "amount": money(row.amount_fen), "request_id": row.request_id,
           "detail": row.detail, "created_at": row.created_at}
    if row.payment_id:
        out["payment_id"] = row.payment_id
    return out
