"""The synthetic bank as read: customers, accounts and statements. Money is written only by
bookings (`store.ledger`)."""

from __future__ import annotations

from sandbox.ledger import StatementLine
from sandbox.records import Account, Customer
from sandbox.store.base import Topic

_LINE = ("SELECT account_id, seq, transaction_id, movement_id, booked_at, booking_date,"
         " direction, amount_fen, balance_after_fen, description, counterparty_name,"
         " counterparty_account, channel FROM transactions")


class Bank(Topic):
    async def customers(self, partner_id: str, *, after: int, limit: int) -> list[Customer]:
        rows = await self.db.fetchall(
            "SELECT * FROM customers WHERE partner_id = ? AND ordinal > ?"
            " ORDER BY ordinal LIMIT ?", (partner_id, after, limit))
        return [Customer.of(row) for row in rows]

    async def customer(self, partner_id: str, customer_id: str) -> Customer | None:
        row = await self.db.fetchone(
            "SELECT * FROM customers WHERE partner_id = ? AND customer_id = ?",
            (partner_id, customer_id))
        return Customer.of(row) if row else None

    async def customer_by_mobile(self, partner_id: str, mobile: str) -> Customer | None:
        row = await self.db.fetchone(
            "SELECT * FROM customers WHERE partner_id = ? AND mobile = ? ORDER BY ordinal"
            " LIMIT 1", (partner_id, mobile))
        return Customer.of(row) if row else None

    async def accounts(self, partner_id: str, *, customer_id: str | None, after: int,
                       limit: int) -> list[Account]:
        holder, params = ("", ()) if customer_id is None else (" AND customer_id = ?",
                                                              (customer_id,))
        rows = await self.db.fetchall(
            f"SELECT * FROM accounts WHERE partner_id = ?{holder} AND ordinal > ?"
            " ORDER BY ordinal LIMIT ?", (partner_id, *params, after, limit))
        return [Account.of(row) for row in rows]

    async def account(self, partner_id: str, account_id: str) -> Account | None:
        row = await self.db.fetchone(
            "SELECT * FROM accounts WHERE partner_id = ? AND account_id = ?",
            (partner_id, account_id))
        return Account.of(row) if row else None

    async def transactions(self, partner_id: str, account_id: str, *, from_date: str | None,
                           to_date: str | None, before_seq: int | None,
                           limit: int) -> list[StatementLine]:
        """Newest first; `before_seq` continues a page, dates are inclusive Beijing dates."""
        where = ["partner_id = ?", "account_id = ?"]
        params: list = [partner_id, account_id]
        for clause, value in (("booking_date >= ?", from_date), ("booking_date <= ?", to_date),
                              ("seq < ?", before_seq)):
            if value is not None:
                where.append(clause)
                params.append(value)
        rows = await self.db.fetchall(
            f"{_LINE} WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT ?", (*params, limit))
        return [StatementLine(**row) for row in rows]
