"""Accounts contract: customers, accounts, balances, transactions, online account opening."""

from __future__ import annotations

from connexion import request
from starlette.responses import Response

from sandbox.context import Context
from sandbox.handlers import respond
from sandbox.mint import IdSource
from sandbox.pagination import decode_cursor, page
from sandbox.records import Account
from sandbox.refusals import AccountNotFound, CustomerNotFound, InvalidDateRange, decides, found
from sandbox.resources import (
    account_resource,
    customer_resource,
    money,
    transaction_resource,
)
from sandbox.rules.accounts import decide_opening
from sandbox.rules.consents import check_customer, require

BASE_PATH = "/accounts/v1"


@decides(AccountNotFound)
async def _account(ctx: Context, partner_id: str, account_id: str) -> Account:
    # The same answer whether the id is unknown or another partner's: nothing leaks.
    return found(await ctx.store.bank.account(partner_id, account_id), AccountNotFound,
                 f"No account {account_id} for this partner.", field="path.account_id")


@decides(require, decode_cursor)
async def list_customers(ctx: Context, token_info: dict, limit: int = 20,
                         cursor: str | None = None) -> Response:
    consent = ctx.consent(token_info, "ReadAccounts")
    after = decode_cursor(cursor) or 0
    customer = await ctx.store.bank.customer(token_info["sub"], consent.customer_id)
    customers = [customer] if customer.ordinal > after else []
    return respond(page([customer_resource(c) for c in customers], limit,
                        lambda item: customer.ordinal))


@decides(CustomerNotFound, require, check_customer)
async def get_customer(ctx: Context, token_info: dict, customer_id: str) -> Response:
    customer = found(await ctx.store.bank.customer(token_info["sub"], customer_id),
                     CustomerNotFound, f"No customer {customer_id} for this partner.",
                     field="path.customer_id")
    check_customer(ctx.consent(token_info, "ReadAccounts"), customer_id, "path.customer_id")
    return respond(customer_resource(customer))


@decides(require, check_customer, decode_cursor)
async def list_accounts(ctx: Context, token_info: dict, customer_id: str | None = None,
                        limit: int = 20, cursor: str | None = None) -> Response:
    consent = ctx.consent(token_info, "ReadAccounts")
    if customer_id is not None:
        check_customer(consent, customer_id, "query.customer_id")
    after = decode_cursor(cursor) or 0
    accounts = await ctx.store.bank.accounts(token_info["sub"], customer_id=consent.customer_id,
                                             after=after, limit=1000)
    accounts = [a for a in accounts if a.account_id in consent.account_id_list][:limit + 1]
    ordinals = {a.account_id: a.ordinal for a in accounts}
    return respond(page([account_resource(a) for a in accounts], limit,
                        lambda item: ordinals[item["account_id"]]))


@decides(_account, require)
async def get_account(ctx: Context, token_info: dict, account_id: str) -> Response:
    account = await _account(ctx, token_info["sub"], account_id)
    ctx.consent(token_info, "ReadAccounts", account_id=account_id)
    return respond(account_resource(account))


@decides(_account, require)
async def get_balance(ctx: Context, token_info: dict, account_id: str) -> Response:
    account = await _account(ctx, token_info["sub"], account_id)
    ctx.consent(token_info, "ReadBalances", account_id=account_id)
    booked = money(account.balance_fen, account.currency)
    return respond({"account_id": account_id, "booked": booked, "available": booked,
                    "as_of": ctx.clock.now().isoformat(timespec="seconds")})


@decides(InvalidDateRange, _account, require, decode_cursor)
async def list_transactions(ctx: Context, token_info: dict, account_id: str, from_date=None,
                            to_date=None, limit: int = 20, cursor: str | None = None) -> Response:
    from_date = from_date.isoformat() if hasattr(from_date, "isoformat") else from_date
    to_date = to_date.isoformat() if hasattr(to_date, "isoformat") else to_date
    if from_date and to_date and from_date > to_date:
        raise InvalidDateRange(f"from_date {from_date} is after to_date {to_date}.",
                               field="query.from_date")
    account = await _account(ctx, token_info["sub"], account_id)
    consent = ctx.consent(token_info, "ReadTransactions", account_id=account_id,
                          from_date=from_date, to_date=to_date)
    lines = await ctx.store.bank.transactions(
        token_info["sub"], account_id,
        # Without dates, the consent's window (if it has one) is the range.
        from_date=from_date or consent.transaction_from_date,
        to_date=to_date or consent.transaction_to_date,
        before_seq=decode_cursor(cursor), limit=limit + 1)
    seqs = {line.transaction_id: line.seq for line in lines}
    return respond(page([transaction_resource(line, account.currency) for line in lines], limit,
                        lambda item: seqs[item["transaction_id"]]))


@decides(decide_opening)
async def open_account(ctx: Context, token_info: dict, body: dict) -> Response:
    partner_id = token_info["sub"]
    today, ids = ctx.clock.now().date().isoformat(), IdSource.fresh()
    booking = await ctx.store.ledger.carry_out(
        partner_id, lambda tx: ctx.store.ledger.opening_facts(tx, partner_id, body["resident_id"]),
        lambda facts: decide_opening(body, facts, partner_id=partner_id, today=today, ids=ids))
    account = booking.result
    location = f"{request.scope.get('root_path', '')}{BASE_PATH}/accounts/{account.account_id}"
    return respond(account_resource(account), 201, {"Location": location})
