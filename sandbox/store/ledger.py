"""Money in the store: the facts a decision reads, loaded in one call with the accounts locked;
the booking it returns, written in one call; and the ledger check.

`carry_out(partner_id, load, decide)` is the one way money moves: one transaction that loads the
facts, lets a pure function decide (a refusal rolls everything back) and writes its booking.
Accounts are locked in id order, so two transfers between the same accounts never wait on
each other in a circle.
"""

from __future__ import annotations

import datetime as dt
import itertools
import typing as t

from sandbox.bank.directory import SANDBOX_BANK_CODE
from sandbox.ledger import LINE_COLUMNS, Booking, line_values
from sandbox.money import Fen
from sandbox.records import Account, Controls, Customer, Payment
from sandbox.rules.accounts import OpeningFacts
from sandbox.rules.limits import Usage, tracks_usage
from sandbox.rules.payments import Order, PaymentFacts, TransferFacts
from sandbox.store.base import (
    Row,
    Topic,
    Transaction,
    insert_records,
    insert_sql,
    marks,
    update_sql,
)

_UPSERT_USAGE = (
    "INSERT INTO usage_totals (partner_id, account_id, period, out_fen, non_bound_out_fen,"
    " non_bound_in_fen) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (partner_id, account_id, period)"
    " DO UPDATE SET out_fen = usage_totals.out_fen + excluded.out_fen,"
    " non_bound_out_fen = usage_totals.non_bound_out_fen + excluded.non_bound_out_fen,"
    " non_bound_in_fen = usage_totals.non_bound_in_fen + excluded.non_bound_in_fen")
_LEGS = insert_sql("postings", ("partner_id", "movement_id", "leg", "ledger_account",
                               "amount_fen", "currency", "booked_at"))
_ENTRIES = insert_sql("journal_entries", ("partner_id", "movement_id", "booked_at"))
_NOTIFY = (
    "INSERT INTO notifications (event_id, partner_id, type, payment_id, body, status, attempts,"
    " retry_base, next_attempt_ms, lease_until_ms, created_at, created_us, delivered_at)"
    " VALUES (?, ?, ?, ?, ?, 'pending', 0, 0, ?, 0, ?, ?, NULL)")


async def write(tx: Transaction, partner_id: str, booking: Booking) -> None:
    """Everything the booking makes or changes. Each entry's legs go before its header, whose
    trigger refuses legs that do not balance."""
    for (table, new), group in itertools.groupby(
            booking.saves, key=lambda s: (s.record.TABLE, s.before is None)):
        if new:
            await insert_records(tx, [save.record for save in group])
            continue
        for save in group:
            changes = save.record.changes_from(save.before)
            if changes:
                key = save.record.KEY
                await tx.execute(update_sql(table, tuple(changes), key),
                                 (*changes.values(), *map(save.record.__getattribute__, key)))
    if booking.lines:
        await tx.executemany(insert_sql("transactions", ("partner_id", *LINE_COLUMNS)),
                             [(partner_id, *line_values(line)) for line in booking.lines])
    if booking.entries:
        await tx.executemany(_LEGS, [
            (partner_id, entry.movement_id, number, leg.ledger_account, int(leg.amount),
             leg.currency, entry.booked_at)
            for entry in booking.entries for number, leg in enumerate(entry.legs, start=1)])
        await tx.executemany(_ENTRIES, [(partner_id, entry.movement_id, entry.booked_at)
                                        for entry in booking.entries])
    if booking.usage:
        await tx.executemany(_UPSERT_USAGE, [
            (partner_id, u.account_id, u.period, u.out_fen, u.non_bound_out_fen,
             u.non_bound_in_fen) for u in booking.usage])
    # A decision makes notifications only for a partner with a callback (its facts say).
    if booking.events:
        await tx.executemany(_NOTIFY, [
            (event.event_id, partner_id, event.type, event.payment_id, event.body,
             event.created_us // 1000, event.created_at, event.created_us)
            for event in booking.events])


def _holders(rows: list[Row]) -> dict[str, str]:
    """Customers' names by customer id, from rows of `Ledger._locked_accounts`."""
    return {row["customer_id"]: row["holder_name"] for row in rows
            if row["holder_name"] is not None}


def _has_callback(rows: list[Row]) -> bool:
    """Whether the partner has a callback registered, read where the booking is written: its
    notifications are kept only then (rows of `Ledger._locked_accounts`; every row says the
    same, and without an account there is nothing to notify)."""
    return bool(rows) and bool(rows[0]["has_callback"])


class Ledger(Topic):
    async def carry_out(self, partner_id: str, load: t.Callable[[Transaction], t.Awaitable],
                        decide: t.Callable[[t.Any], Booking | None]) -> Booking | None:
        """Load → decide → write, atomically; the booking (None: nothing to decide)."""
        async with self.db.transaction() as tx:
            booking = decide(await load(tx))
            if booking is not None and not booking.replayed:
                await write(tx, partner_id, booking)
        return booking

    # -- facts -----------------------------------------------------------------------------

    async def transfer_facts(self, tx: Transaction, order: Order,
                             now: dt.datetime) -> TransferFacts:
        partner_id, creditor = order.partner_id, order.creditor
        ids = [order.debtor_account_id]
        number = None
        if "account_id" in creditor:
            ids.append(creditor["account_id"])
        elif creditor.get("bank_code") == SANDBOX_BANK_CODE:
            number = creditor["account_number"]
        by_number = "" if number is None else " OR a.account_number = ?"
        rows = await self._locked_accounts(
            tx, f"(a.account_id IN ({marks(ids)}){by_number})",
            (partner_id, *ids, *([number] if number else [])), request_id=order.request_id)
        # The request id made a payment already (or no account matched, and a retry that
        # names another debtor must still be told so): that payment decides.
        if not rows or rows[0]["replayed"]:
            existing = await self.payment_by_request(tx, partner_id, order.request_id)
            if existing is not None:
                return TransferFacts(existing, None, None, {}, {}, {})
        accounts = {row["account_id"]: Account.of(row) for row in rows}
        debtor = accounts.get(order.debtor_account_id)
        target = (accounts.get(creditor["account_id"]) if "account_id" in creditor
                  else next((a for a in accounts.values() if a.account_number == number), None))
        if debtor is None or (target is None and (number or "account_id" in creditor)):
            return TransferFacts(existing=None, debtor=debtor, creditor=target, controls={},
                                 totals={}, names={})
        subjects = ["partner", debtor.account_id] + ([target.account_id] if target else [])
        controls = (await self.controls(tx, partner_id, subjects) if rows[0]["has_controls"]
                    else {})
        today = now.date().isoformat()
        totals = await self._totals(tx, partner_id, [a.account_id for a in (debtor, target)
                                                     if a is not None and tracks_usage(a)], today)
        limit = controls.get(debtor.account_id)
        if limit is not None and limit.daily_limit_fen is not None and not tracks_usage(debtor):
            # An operator's daily limit on an account without running totals: today's debits,
            # summed from its statement.
            row = await tx.fetchone(
                "SELECT COALESCE(SUM(amount_fen), 0) AS out FROM transactions WHERE"
                " partner_id = ? AND account_id = ? AND booking_date = ? AND direction = 'debit'",
                (partner_id, debtor.account_id, today))
            totals[(debtor.account_id, today)] = (int(row["out"]), 0, 0)
        facts = {"totals": totals, "names": _holders(rows), "callback": _has_callback(rows)}
        if "partner" in controls:  # summed only when the operator set controls for it
            # Locked (after the accounts, always in that order): concurrent payments of the
            # partner wait here, so its daily limit holds across processes.
            await tx.fetchone("SELECT partner_id FROM partners WHERE partner_id = ?"
                              + self.db.for_update, (partner_id,))
            row = await tx.fetchone(
                "SELECT COALESCE(SUM(amount_fen), 0) AS paid FROM payments"
                " WHERE partner_id = ? AND created_at >= ?", (partner_id, today))
            facts["partner_paid_today"] = Fen(int(row["paid"]))
        recent = {}
        for rules in controls.values():
            if rules.subject in ("partner", debtor.account_id) and rules.velocity_count:
                since = now - dt.timedelta(seconds=rules.velocity_window_s)
                row = await tx.fetchone(
                    "SELECT COUNT(*) AS n FROM transactions WHERE partner_id = ?"
                    " AND account_id = ? AND direction = 'debit' AND booked_at >= ?",
                    (partner_id, debtor.account_id, since.isoformat(timespec="seconds")))
                recent[rules.velocity_window_s] = int(row["n"])
        return TransferFacts(existing=None, debtor=debtor, creditor=target, controls=controls,
                             recent_debits=recent, **facts)

    async def payment_facts(self, tx: Transaction, partner_id: str, payment_id: str,
                            today: str) -> PaymentFacts:
        """The payment and its accounts in this bank, locked, for any later step of it."""
        row = await tx.fetchone("SELECT * FROM payments WHERE partner_id = ? AND payment_id = ?"
                                + self.db.for_update, (partner_id, payment_id))
        if row is None:
            return PaymentFacts(payment_id, None, {}, {}, {})
        payment = Payment.of(row)
        ids = [i for i in (payment.debtor_account_id, payment.creditor_account_id) if i]
        rows = await self._locked_accounts(tx, f"a.account_id IN ({marks(ids)})",
                                           (partner_id, *ids))
        accounts = [Account.of(row) for row in rows]
        return PaymentFacts(
            payment_id, payment, {a.account_id: a for a in accounts},
            await self._totals(tx, partner_id,
                               [a.account_id for a in accounts if tracks_usage(a)], today),
            _holders(rows), _has_callback(rows))

    async def _locked_accounts(self, tx: Transaction, which: str, params: tuple, *,
                               request_id: str | None = None) -> list[Row]:
        """The partner's accounts `which` selects (over `accounts a`), locked in id order,
        each with what else a booking needs to know, in the same statement: its holder's name
        (`holder_name`), whether the partner has a callback registered (`has_callback`) or
        any operator controls (`has_controls`), and whether `request_id` made a payment
        already (`replayed`)."""
        replayed = (", EXISTS (SELECT 1 FROM payments p WHERE p.partner_id = a.partner_id"
                    " AND p.request_id = ?) AS replayed" if request_id is not None else "")
        return await tx.fetchall(
            "SELECT a.*, c.name AS holder_name,"
            " EXISTS (SELECT 1 FROM callbacks b WHERE b.partner_id = a.partner_id)"
            " AS has_callback,"
            " EXISTS (SELECT 1 FROM controls k WHERE k.partner_id = a.partner_id)"
            f" AS has_controls{replayed}"
            " FROM accounts a LEFT JOIN customers c"
            " ON c.partner_id = a.partner_id AND c.customer_id = a.customer_id"
            f" WHERE a.partner_id = ? AND {which} ORDER BY a.account_id"
            + self.db.for_update.replace("UPDATE", "UPDATE OF a"),
            (*([request_id] if request_id is not None else []), *params))

    async def controls(self, tx: Transaction, partner_id: str,
                       subjects: t.Sequence[str]) -> dict[str, Controls]:
        """What the operator set for the partner (subject "partner") or accounts, by subject;
        a subject without controls is absent."""
        rows = await tx.fetchall(
            f"SELECT * FROM controls WHERE partner_id = ? AND subject IN ({marks(subjects)})",
            (partner_id, *subjects))
        return {row["subject"]: Controls.of(row) for row in rows}

    async def _totals(self, tx: Transaction, partner_id: str, ids: list[str],
                      day: str) -> dict[tuple[str, str], tuple[int, int, int]]:
        if not ids:
            return {}
        rows = await tx.fetchall(
            f"SELECT * FROM usage_totals WHERE partner_id = ? AND account_id IN ({marks(ids)})"
            " AND period IN (?, ?)", (partner_id, *ids, day, day[:4]))
        return {(r["account_id"], r["period"]): (int(r["out_fen"]), int(r["non_bound_out_fen"]),
                                                 int(r["non_bound_in_fen"])) for r in rows}

    async def opening_facts(self, tx: Transaction, partner_id: str,
                            resident_id: str) -> OpeningFacts:
        """The person with that resident id, and the next account ordinal (the partner's row is
        locked, so concurrent openings take distinct ordinals)."""
        await tx.fetchone("SELECT partner_id FROM partners WHERE partner_id = ?"
                          + self.db.for_update, (partner_id,))
        row = await tx.fetchone(
            "SELECT COALESCE(MAX(ordinal), 0) AS last FROM accounts WHERE partner_id = ?",
            (partner_id,))
        person = await tx.fetchone(
            "SELECT * FROM customers WHERE partner_id = ? AND resident_id = ?",
            (partner_id, resident_id))
        return OpeningFacts(Customer.of(person) if person else None, int(row["last"]) + 1)

    async def usage(self, tx: Transaction, partner_id: str, account_id: str, day: str) -> Usage:
        """What the account sent and received on `day` and in its year."""
        totals = await self._totals(tx, partner_id, [account_id], day)
        today = totals.get((account_id, day), (0, 0, 0))
        year = totals.get((account_id, day[:4]), (0, 0, 0))
        return Usage(*(Fen(v) for v in (today[0], year[0], today[1], year[1], today[2],
                                         year[2])))

    # -- payments --------------------------------------------------------------------------

    async def payment_by_request(self, tx: Transaction, partner_id: str,
                                 request_id: str) -> Payment | None:
        row = await tx.fetchone("SELECT * FROM payments WHERE partner_id = ? AND request_id = ?",
                                (partner_id, request_id))
        return Payment.of(row) if row else None

    async def payment(self, partner_id: str, payment_id: str) -> Payment | None:
        row = await self.db.fetchone(
            "SELECT * FROM payments WHERE partner_id = ? AND payment_id = ?",
            (partner_id, payment_id))
        return Payment.of(row) if row else None

    async def due_settlements(self, now_ms: int, limit: int) -> list[Row]:
        """Payments to other banks whose answer is due (oldest first)."""
        return await self.db.fetchall(
            "SELECT partner_id, payment_id FROM payments WHERE status = 'pending'"
            " AND settles_at_ms <= ? ORDER BY settles_at_ms LIMIT ?", (now_ms, limit))

    async def check(self, partner_id: str) -> Row:
        """The invariants, as figures: the journal's total (0), accounts whose balance differs
        from their legs (0), and movements whose legs do not sum to zero (0)."""
        total = await self.db.fetchone(
            "SELECT COALESCE(SUM(amount_fen), 0) AS total, COUNT(*) AS legs FROM postings"
            " WHERE partner_id = ?", (partner_id,))
        drift = await self.db.fetchone(
            """SELECT COUNT(*) AS accounts FROM accounts a WHERE a.partner_id = ? AND
                 a.balance_fen <> (SELECT COALESCE(SUM(p.amount_fen), 0) FROM postings p
                                   WHERE p.partner_id = a.partner_id
                                   AND p.ledger_account = a.account_id)""", (partner_id,))
        unbalanced = await self.db.fetchone(
            """SELECT COUNT(*) AS movements FROM (SELECT movement_id FROM postings
                 WHERE partner_id = ? GROUP BY movement_id HAVING SUM(amount_fen) <> 0) m""",
            (partner_id,))
        payments = await self.db.fetchone(
            "SELECT COUNT(*) AS payments FROM payments WHERE partner_id = ?", (partner_id,))
        return {"total_fen": int(total["total"]), "legs": int(total["legs"]),
                "accounts_off": int(drift["accounts"]),
                "unbalanced_movements": int(unbalanced["movements"]),
                "payments": int(payments["payments"])}
