"""The store interface: every query the sandbox makes, written once over two small backends.

    StoreError
    └── DuplicateError      a unique key (partner name, client id) already exists

Backends (sqlite.py, postgres.py) only know how to run SQL; this module is the only one that
writes it. Every query names its partner: there is no way to read another partner's rows.
"""

from __future__ import annotations

import abc
import contextlib
import typing as t

from sandbox.store.schema import SCHEMA_VERSION, TABLES

Row = dict[str, t.Any]


class StoreError(Exception):
    """The store could not do what was asked."""


class DuplicateError(StoreError):
    """A row with that unique key exists already."""


class Transaction(abc.ABC):
    """One atomic unit of work; commits when its block ends, rolls back if it raises."""

    @abc.abstractmethod
    async def execute(self, sql: str, params: t.Sequence = ()) -> None: ...

    @abc.abstractmethod
    async def executemany(self, sql: str, rows: t.Iterable[t.Sequence]) -> None: ...

    @abc.abstractmethod
    async def fetchone(self, sql: str, params: t.Sequence = ()) -> Row | None: ...

    @abc.abstractmethod
    async def fetchall(self, sql: str, params: t.Sequence = ()) -> list[Row]: ...


class Store(abc.ABC):
    """Partners, tokens and each partner's synthetic bank, over SQLite or PostgreSQL."""

    #: appended to a SELECT that must lock the rows it reads until the transaction ends
    for_update = ""
    #: the same, passing over rows another transaction holds (work queues)
    skip_locked = ""

    # -- what a backend provides -------------------------------------------------------------

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    def transaction(self) -> contextlib.AbstractAsyncContextManager[Transaction]: ...

    @abc.abstractmethod
    async def fetchall(self, sql: str, params: t.Sequence = ()) -> list[Row]: ...

    @abc.abstractmethod
    async def fetchone(self, sql: str, params: t.Sequence = ()) -> Row | None: ...

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # -- schema and settings kept in the database ----------------------------------------------

    async def create_schema(self) -> None:
        async with self.transaction() as tx:
            await create_tables(tx)

    async def bank_seed(self, requested: int | None) -> int:
        """The seed this database's banks are generated from, fixed when it is first used.

        A database keeps one seed for life, so a partner created later by another process gets a
        bank from the same seed. Asking for a different one is an error, not a silent mix.
        """
        async with self.transaction() as tx:
            row = await tx.fetchone("SELECT value FROM meta WHERE key = 'seed'" + self.for_update)
            if row is None:
                seed = 1 if requested is None else requested
                await tx.execute("INSERT INTO meta (key, value) VALUES ('seed', ?)", (str(seed),))
                return seed
            seed = int(row["value"])
            if requested is not None and requested != seed:
                raise StoreError(
                    f"this database was created with seed {seed}; pass --seed {seed} "
                    f"(or SANDBOX_SEED={seed}), or use a new --db for seed {requested}"
                )
            return seed

    # -- partners and tokens ---------------------------------------------------------------

    async def partner_by_name(self, name: str) -> Row | None:
        return await self.fetchone("SELECT * FROM partners WHERE name = ?", (name,))

    async def partner_by_client_id(self, client_id: str) -> Row | None:
        return await self.fetchone("SELECT * FROM partners WHERE client_id = ?", (client_id,))

    async def add_token(self, token: Row, refresh: Row | None = None) -> None:
        """An access token, and the refresh token issued with it."""
        async with self.transaction() as tx:
            await _insert(tx, "tokens", [token])
            if refresh is not None:
                await _insert(tx, "refresh_tokens", [refresh])

    async def token(self, token_hash: str) -> Row | None:
        return await self.fetchone("SELECT * FROM tokens WHERE token_hash = ?", (token_hash,))

    async def token_and_consent(self, token_hash: str) -> tuple[Row, Row | None] | None:
        """The token and, for a customer's token, its consent as `consent` returns it, in one
        query: every call with a customer's token needs both."""
        row = await self.fetchone(
            "SELECT t.partner_id AS t_partner_id, t.scopes AS t_scopes,"
            " t.consent_id AS t_consent_id, t.code_hash AS t_code_hash,"
            " t.expires_at AS t_expires_at, c.*, p.clock_offset_s"
            " FROM tokens t JOIN partners p ON p.partner_id = t.partner_id"
            " LEFT JOIN consents c ON c.partner_id = t.partner_id"
            " AND c.consent_id = t.consent_id WHERE t.token_hash = ?", (token_hash,))
        if row is None:
            return None
        token = {name[2:]: row.pop(name) for name in list(row) if name.startswith("t_")}
        return token, (row if row["consent_id"] is not None else None)

    # -- consents and the authorization-code flow ----------------------------------------------

    async def add_consent(self, consent: Row) -> None:
        async with self.transaction() as tx:
            await _insert(tx, "consents", [consent])

    async def consent(self, partner_id: str, consent_id: str) -> Row | None:
        """The consent, with its partner's clock offset (expiry is judged by that clock)."""
        return await self.fetchone(
            "SELECT c.*, p.clock_offset_s FROM consents c JOIN partners p"
            " ON p.partner_id = c.partner_id WHERE c.partner_id = ? AND c.consent_id = ?",
            (partner_id, consent_id))

    async def consents(self, partner_id: str, *, status: str | None, limit: int) -> list[Row]:
        """Newest first (by the stored status; expiry is judged by the caller)."""
        where, params = ["c.partner_id = ?"], [partner_id]
        if status is not None:
            where.append("c.status = ?")
            params.append(status)
        return await self.fetchall(
            "SELECT c.*, p.clock_offset_s FROM consents c JOIN partners p"
            f" ON p.partner_id = c.partner_id WHERE {' AND '.join(where)}"
            " ORDER BY c.created_at DESC, c.consent_id LIMIT ?", (*params, limit))

    async def change_consent(self, partner_id: str, consent_id: str, decide) -> Row | None:
        """Locks the consent and applies `decide(row) -> {column: value}` (which may raise to
        refuse); the updated row, or None if there is no such consent."""
        async with self.transaction() as tx:
            row = await tx.fetchone(
                "SELECT c.*, p.clock_offset_s FROM consents c JOIN partners p"
                " ON p.partner_id = c.partner_id WHERE c.partner_id = ? AND c.consent_id = ?"
                + self.for_update.replace("UPDATE", "UPDATE OF c"),
                (partner_id, consent_id))
            if row is None:
                return None
            changes = decide(row)
            if changes:
                columns = ", ".join(f"{name} = ?" for name in changes)
                await tx.execute(f"UPDATE consents SET {columns} WHERE consent_id = ?",
                                 (*changes.values(), consent_id))
            return {**row, **changes}

    async def add_authorization_code(self, code: Row) -> None:
        async with self.transaction() as tx:
            await _insert(tx, "authorization_codes", [code])

    async def take_authorization_code(self, code_hash: str) -> Row | None:
        """The code's row, marked used from now on; `used` says whether it was used before.
        A reused code also revokes every token issued from it (RFC 6749 §4.1.2)."""
        async with self.transaction() as tx:
            row = await tx.fetchone("SELECT * FROM authorization_codes WHERE code_hash = ?"
                                    + self.for_update, (code_hash,))
            if row is None:
                return None
            if row["used"]:
                await tx.execute("UPDATE tokens SET expires_at = 0 WHERE code_hash = ?",
                                 (code_hash,))
                await tx.execute("UPDATE refresh_tokens SET revoked = 1 WHERE code_hash = ?",
                                 (code_hash,))
            else:
                await tx.execute("UPDATE authorization_codes SET used = 1 WHERE code_hash = ?",
                                 (code_hash,))
            return row

    async def refresh_token(self, token_hash: str) -> Row | None:
        return await self.fetchone("SELECT * FROM refresh_tokens WHERE token_hash = ?",
                                   (token_hash,))

    async def set_clock_offset(self, partner_id: str, seconds: int) -> None:
        async with self.transaction() as tx:
            await tx.execute("UPDATE partners SET clock_offset_s = ? WHERE partner_id = ?",
                             (seconds, partner_id))


    async def add_partner_with_bank(
        self, partner: Row, customers: list[Row], accounts: list[Row], transactions: list[Row],
        journal: list[Row],
    ) -> None:
        """The partner and its whole synthetic bank, in one transaction: all of it or none."""
        async with self.transaction() as tx:
            if await tx.fetchone(
                "SELECT partner_id FROM partners WHERE name = ? OR partner_id = ?",
                (partner["name"], partner["partner_id"]),
            ):
                raise DuplicateError(f"a partner named {partner['name']!r} exists already")
            await _insert(tx, "partners", [partner])
            await _insert(tx, "customers", customers)
            await _insert(tx, "accounts", accounts)
            await _insert(tx, "transactions", transactions)
            await _insert(tx, "postings", journal)

    # -- the synthetic bank ------------------------------------------------------------------

    async def customers(self, partner_id: str, *, after: int, limit: int) -> list[Row]:
        return await self.fetchall(
            "SELECT * FROM customers WHERE partner_id = ? AND ordinal > ?"
            " ORDER BY ordinal LIMIT ?",
            (partner_id, after, limit),
        )

    async def customer(self, partner_id: str, customer_id: str,
                       tx: Transaction | None = None) -> Row | None:
        # Inside a transaction, read on its connection: asking the pool for a second one while
        # holding the first starves the pool once every connection is held by a transaction.
        sql = "SELECT * FROM customers WHERE partner_id = ? AND customer_id = ?"
        if tx is None:
            return await self.fetchone(sql, (partner_id, customer_id))
        return await tx.fetchone(sql, (partner_id, customer_id))

    async def customer_names(self, tx: Transaction, partner_id: str,
                             customer_ids: t.Collection[str]) -> dict[str, str]:
        rows = await tx.fetchall(
            f"SELECT customer_id, name FROM customers WHERE partner_id = ? AND customer_id IN "
            f"({', '.join('?' * len(customer_ids))})", (partner_id, *customer_ids))
        return {row["customer_id"]: row["name"] for row in rows}

    async def customer_by_mobile(self, partner_id: str, mobile: str) -> Row | None:
        return await self.fetchone(
            "SELECT * FROM customers WHERE partner_id = ? AND mobile = ? ORDER BY ordinal"
            " LIMIT 1", (partner_id, mobile))

    async def customer_by_resident_id(self, partner_id: str, resident_id: str) -> Row | None:
        return await self.fetchone(
            "SELECT * FROM customers WHERE partner_id = ? AND resident_id = ?",
            (partner_id, resident_id),
        )

    async def accounts(
        self, partner_id: str, *, customer_id: str | None, after: int, limit: int
    ) -> list[Row]:
        if customer_id is None:
            return await self.fetchall(
                "SELECT * FROM accounts WHERE partner_id = ? AND ordinal > ?"
                " ORDER BY ordinal LIMIT ?",
                (partner_id, after, limit),
            )
        return await self.fetchall(
            "SELECT * FROM accounts WHERE partner_id = ? AND customer_id = ? AND ordinal > ?"
            " ORDER BY ordinal LIMIT ?",
            (partner_id, customer_id, after, limit),
        )

    async def account(self, partner_id: str, account_id: str) -> Row | None:
        return await self.fetchone(
            "SELECT * FROM accounts WHERE partner_id = ? AND account_id = ?",
            (partner_id, account_id),
        )

    async def transactions(
        self,
        partner_id: str,
        account_id: str,
        *,
        from_date: str | None,
        to_date: str | None,
        before_seq: int | None,
        limit: int,
    ) -> list[Row]:
        """Newest first; `before_seq` continues a page, dates are inclusive Beijing dates."""
        where = ["partner_id = ?", "account_id = ?"]
        params: list = [partner_id, account_id]
        if from_date is not None:
            where.append("booking_date >= ?")
            params.append(from_date)
        if to_date is not None:
            where.append("booking_date <= ?")
            params.append(to_date)
        if before_seq is not None:
            where.append("seq < ?")
            params.append(before_seq)
        params.append(limit)
        return await self.fetchall(
            f"SELECT * FROM transactions WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT ?",
            params,
        )

    async def open_account(self, partner_id: str, account: Row) -> Row:
        """A newly opened account, its ordinal assigned here."""
        async with self.transaction() as tx:
            # Lock the partner row so concurrent openings take distinct ordinals.
            await tx.fetchone(
                "SELECT partner_id FROM partners WHERE partner_id = ?" + self.for_update,
                (partner_id,),
            )
            row = await tx.fetchone(
                "SELECT COALESCE(MAX(ordinal), 0) AS last FROM accounts WHERE partner_id = ?",
                (partner_id,),
            )
            account = {**account, "partner_id": partner_id, "ordinal": row["last"] + 1}
            await _insert(tx, "accounts", [account])
            return account


    # -- payments and the ledger (called inside `transaction()`, which they lock within) ------

    async def payment_by_request(self, tx: Transaction, partner_id: str,
                                 request_id: str) -> Row | None:
        return await tx.fetchone(
            "SELECT * FROM payments WHERE partner_id = ? AND request_id = ?",
            (partner_id, request_id),
        )

    async def payment(self, partner_id: str, payment_id: str, tx: Transaction | None = None,
                      *, lock: bool = False) -> Row | None:
        sql = "SELECT * FROM payments WHERE partner_id = ? AND payment_id = ?"
        if tx is None:
            return await self.fetchone(sql, (partner_id, payment_id))
        return await tx.fetchone(sql + (self.for_update if lock else ""),
                                 (partner_id, payment_id))

    async def lock_accounts(self, tx: Transaction, partner_id: str,
                            account_ids: t.Iterable[str]) -> dict[str, Row]:
        """The accounts, locked until the transaction ends; in id order, so two transfers
        between the same accounts never wait on each other in a circle."""
        found = {}
        for account_id in sorted(set(account_ids)):
            row = await tx.fetchone(
                "SELECT * FROM accounts WHERE partner_id = ? AND account_id = ?"
                + self.for_update, (partner_id, account_id))
            if row is not None:
                found[account_id] = row
        return found

    async def account_id_by_number(self, tx: Transaction, partner_id: str,
                                   number: str) -> str | None:
        row = await tx.fetchone(
            "SELECT account_id FROM accounts WHERE partner_id = ? AND account_number = ?",
            (partner_id, number))
        return row["account_id"] if row else None

    async def usage(self, tx: Transaction, partner_id: str, account: Row, day: str) -> Row:
        """Sums (fen) of what `account` sent and received on `day` and in its year, in total
        and with parties other than its bound account. Call with the account locked."""
        year = day[:4]
        rows = await tx.fetchall(
            "SELECT * FROM usage_totals WHERE partner_id = ? AND account_id = ?"
            " AND period IN (?, ?)", (partner_id, account["account_id"], day, year))
        found = {row["period"]: row for row in rows}
        for period in (day, year):
            if period not in found:
                found[period] = await self._sum_usage(tx, partner_id, account, period)
        today, this_year = found[day], found[year]
        return {
            "out_day": int(today["out_fen"]), "out_year": int(this_year["out_fen"]),
            "non_bound_out_day": int(today["non_bound_out_fen"]),
            "non_bound_out_year": int(this_year["non_bound_out_fen"]),
            "non_bound_in_day": int(today["non_bound_in_fen"]),
            "non_bound_in_year": int(this_year["non_bound_in_fen"]),
        }

    async def _sum_usage(self, tx: Transaction, partner_id: str, account: Row,
                         period: str) -> Row:
        """A period's totals summed from the statement, and kept from now on (see `book`)."""
        first, last = (period, period) if len(period) == 10 else (f"{period}-01-01",
                                                                  f"{period}-12-31")
        bound = account["bound_account_number"] or ""
        row = await tx.fetchone(
            """SELECT
                 COALESCE(SUM(CASE WHEN direction = 'debit' THEN amount_fen ELSE 0 END), 0)
                   AS out_fen,
                 COALESCE(SUM(CASE WHEN direction = 'debit'
                              AND COALESCE(counterparty_account, '') <> ?
                              THEN amount_fen ELSE 0 END), 0) AS non_bound_out_fen,
                 COALESCE(SUM(CASE WHEN direction = 'credit'
                              AND COALESCE(counterparty_account, '') <> ?
                              THEN amount_fen ELSE 0 END), 0) AS non_bound_in_fen
               FROM transactions
               WHERE partner_id = ? AND account_id = ? AND booking_date BETWEEN ? AND ?""",
            (bound, bound, partner_id, account["account_id"], first, last),
        )
        totals = {"partner_id": partner_id, "account_id": account["account_id"],
                  "period": period, **{key: int(value) for key, value in row.items()}}
        await tx.execute(
            "INSERT INTO usage_totals (partner_id, account_id, period, out_fen,"
            " non_bound_out_fen, non_bound_in_fen) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING", tuple(totals.values()))
        return totals

    async def book(self, tx: Transaction, partner_id: str, movement_id: str, booked_at: str,
                   legs: list, lines: dict[str, Row], accounts: dict[str, Row]) -> None:
        """Write one balanced movement: its legs to the journal, and for each customer
        account (locked in `accounts`) a statement line and its new balance."""
        journal = []
        for number, leg in enumerate(legs, start=1):
            journal.append({"partner_id": partner_id, "movement_id": movement_id, "leg": number,
                            "ledger_account": leg.ledger_account, "amount_fen": int(leg.amount),
                            "booked_at": booked_at})
            account = accounts.get(leg.ledger_account)
            if account is None:
                continue  # an internal account: journal only
            balance = account["balance_fen"] + int(leg.amount)
            last = await tx.fetchone(
                "SELECT COALESCE(MAX(seq), 0) AS seq FROM transactions"
                " WHERE partner_id = ? AND account_id = ?", (partner_id, leg.ledger_account))
            await _insert(tx, "transactions", [{
                "partner_id": partner_id, "account_id": leg.ledger_account,
                "seq": last["seq"] + 1, "movement_id": movement_id,
                "booked_at": booked_at, "booking_date": booked_at[:10],
                "direction": "credit" if leg.amount > 0 else "debit",
                "amount_fen": abs(int(leg.amount)), "balance_after_fen": balance,
                **lines[leg.ledger_account],
            }])
            await tx.execute(
                "UPDATE accounts SET balance_fen = ? WHERE partner_id = ? AND account_id = ?",
                (balance, partner_id, leg.ledger_account))
            # The running totals `usage` reads, for the periods already summed (a period
            # not summed yet is summed from the statement, this line included, when asked).
            debit = leg.amount < 0
            non_bound = (lines[leg.ledger_account]["counterparty_account"] or "") != (
                account["bound_account_number"] or "")
            amount = abs(int(leg.amount))
            await tx.execute(
                "UPDATE usage_totals SET out_fen = out_fen + ?,"
                " non_bound_out_fen = non_bound_out_fen + ?,"
                " non_bound_in_fen = non_bound_in_fen + ?"
                " WHERE partner_id = ? AND account_id = ? AND period IN (?, ?)",
                (amount if debit else 0, amount if debit and non_bound else 0,
                 amount if not debit and non_bound else 0, partner_id, leg.ledger_account,
                 booked_at[:10], booked_at[:4]))
            accounts[leg.ledger_account] = {**account, "balance_fen": balance}
        await _insert(tx, "postings", journal)

    async def add_payment(self, tx: Transaction, payment: Row) -> None:
        await _insert(tx, "payments", [payment])

    async def update_payment(self, tx: Transaction, partner_id: str, payment_id: str,
                             **fields) -> None:
        columns = ", ".join(f"{name} = ?" for name in fields)
        await tx.execute(
            f"UPDATE payments SET {columns} WHERE partner_id = ? AND payment_id = ?",
            (*fields.values(), partner_id, payment_id))

    async def ledger_check(self, partner_id: str) -> Row:
        """The invariants, as figures: the journal's total (0), accounts whose balance differs
        from their legs (0), and movements whose legs do not sum to zero (0)."""
        total = await self.fetchone(
            "SELECT COALESCE(SUM(amount_fen), 0) AS total, COUNT(*) AS legs FROM postings"
            " WHERE partner_id = ?", (partner_id,))
        drift = await self.fetchone(
            """SELECT COUNT(*) AS accounts FROM accounts a WHERE a.partner_id = ? AND
                 a.balance_fen <> (SELECT COALESCE(SUM(p.amount_fen), 0) FROM postings p
                                   WHERE p.partner_id = a.partner_id
                                   AND p.ledger_account = a.account_id)""", (partner_id,))
        unbalanced = await self.fetchone(
            """SELECT COUNT(*) AS movements FROM (SELECT movement_id FROM postings
                 WHERE partner_id = ? GROUP BY movement_id HAVING SUM(amount_fen) <> 0) m""",
            (partner_id,))
        payments = await self.fetchone(
            "SELECT COUNT(*) AS payments FROM payments WHERE partner_id = ?", (partner_id,))
        return {"total_fen": int(total["total"]), "legs": int(total["legs"]),
                "accounts_off": int(drift["accounts"]),
                "unbalanced_movements": int(unbalanced["movements"]),
                "payments": int(payments["payments"])}


    async def due_settlements(self, now_ms: int, limit: int) -> list[Row]:
        """Payments to other banks whose settlement time has come (oldest first)."""
        return await self.fetchall(
            "SELECT partner_id, payment_id FROM payments WHERE status = 'pending'"
            " AND settles_at_ms <= ? ORDER BY settles_at_ms LIMIT ?", (now_ms, limit))

    # -- callbacks and the notification outbox ----------------------------------------------

    async def callback(self, partner_id: str, tx: Transaction | None = None) -> Row | None:
        sql = "SELECT * FROM callbacks WHERE partner_id = ?"
        if tx is None:
            return await self.fetchone(sql, (partner_id,))
        return await tx.fetchone(sql, (partner_id,))

    async def set_callback(self, partner_id: str, url: str, new_secret: str, now: str) -> Row:
        """Registers or moves the partner's callback; a registration keeps its secret."""
        async with self.transaction() as tx:
            row = await tx.fetchone(
                "SELECT * FROM callbacks WHERE partner_id = ?" + self.for_update, (partner_id,))
            if row is None:
                row = {"partner_id": partner_id, "url": url, "secret": new_secret,
                       "created_at": now, "updated_at": now}
                await _insert(tx, "callbacks", [row])
                return row
            await tx.execute("UPDATE callbacks SET url = ?, updated_at = ? WHERE partner_id = ?",
                             (url, now, partner_id))
            return {**row, "url": url, "updated_at": now}

    async def delete_callback(self, partner_id: str) -> bool:
        async with self.transaction() as tx:
            found = await tx.fetchone("SELECT partner_id FROM callbacks WHERE partner_id = ?",
                                      (partner_id,))
            await tx.execute("DELETE FROM callbacks WHERE partner_id = ?", (partner_id,))
            return found is not None

    async def add_notification(self, tx: Transaction, notification: Row) -> None:
        await _insert(tx, "notifications", [notification])

    async def claim_notifications(self, now_ms: int, lease_until_ms: int,
                                  limit: int) -> list[Row]:
        """Due notifications, each with its next attempt number taken and a lease on it, and
        the callback to send it to. Only one process can hold a notification's lease, and a
        taken attempt number is never taken again: no attempt is sent twice."""
        due_sql = ("SELECT event_id FROM notifications WHERE status = 'pending'"
                   " AND next_attempt_ms <= ? AND lease_until_ms <= ?")
        if await self.fetchone(due_sql + " LIMIT 1", (now_ms, now_ms)) is None:
            return []  # the usual case, answered without a write transaction
        async with self.transaction() as tx:
            due = await tx.fetchall(
                due_sql + " ORDER BY next_attempt_ms LIMIT ?" + self.skip_locked,
                (now_ms, now_ms, limit))
            claimed = []
            for row in due:
                await tx.execute(
                    "UPDATE notifications SET attempts = attempts + 1, lease_until_ms = ?"
                    " WHERE event_id = ?", (lease_until_ms, row["event_id"]))
                claimed.append(await tx.fetchone(
                    "SELECT n.*, c.url, c.secret FROM notifications n"
                    " LEFT JOIN callbacks c ON c.partner_id = n.partner_id"
                    " WHERE n.event_id = ?", (row["event_id"],)))
            return claimed

    async def record_delivery(self, delivery: Row, *, status: str, next_attempt_ms: int,
                              delivered_at: str | None) -> None:
        """One attempt's outcome, and what the notification does next; ignored if the lease
        was lost and another process has taken a later attempt meanwhile."""
        async with self.transaction() as tx:
            row = await tx.fetchone(
                "SELECT attempts FROM notifications WHERE event_id = ?" + self.for_update,
                (delivery["event_id"],))
            if row is None or row["attempts"] != delivery["attempt"]:
                return
            await _insert(tx, "deliveries", [delivery])
            await tx.execute(
                "UPDATE notifications SET status = ?, next_attempt_ms = ?, lease_until_ms = 0,"
                " delivered_at = COALESCE(?, delivered_at) WHERE event_id = ?",
                (status, next_attempt_ms, delivered_at, delivery["event_id"]))

    async def notifications(self, partner_id: str, *, payment_id: str | None,
                            status: str | None, before_us: int | None,
                            limit: int) -> list[Row]:
        """Newest first; `before_us` continues a page."""
        where, params = ["partner_id = ?"], [partner_id]
        for column, value in (("payment_id", payment_id), ("status", status)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if before_us is not None:
            where.append("created_us < ?")
            params.append(before_us)
        return await self.fetchall(
            f"SELECT * FROM notifications WHERE {' AND '.join(where)}"
            " ORDER BY created_us DESC LIMIT ?", (*params, limit))

    async def notification(self, partner_id: str, event_id: str) -> Row | None:
        return await self.fetchone(
            "SELECT * FROM notifications WHERE partner_id = ? AND event_id = ?",
            (partner_id, event_id))

    async def deliveries(self, event_ids: t.Sequence[str]) -> list[Row]:
        if not event_ids:
            return []
        marks = ", ".join("?" * len(event_ids))
        return await self.fetchall(
            f"SELECT * FROM deliveries WHERE event_id IN ({marks}) ORDER BY event_id, attempt",
            tuple(event_ids))

    async def redeliver(self, partner_id: str, event_id: str, now_ms: int) -> bool:
        """Due again now, with a fresh back-off schedule; False if there is no such event."""
        async with self.transaction() as tx:
            row = await tx.fetchone(
                "SELECT attempts FROM notifications WHERE partner_id = ? AND event_id = ?"
                + self.for_update, (partner_id, event_id))
            if row is None:
                return False
            await tx.execute(
                "UPDATE notifications SET status = 'pending', next_attempt_ms = ?,"
                " retry_base = attempts WHERE event_id = ?", (now_ms, event_id))
            return True

    # -- the control plane: operators, controls, account status, risk events ----------------

    async def add_operator(self, operator: Row) -> None:
        async with self.transaction() as tx:
            if await tx.fetchone("SELECT operator_id FROM operators WHERE name = ?",
                                 (operator["name"],)):
                raise DuplicateError(f"an operator named {operator['name']!r} exists already")
            await _insert(tx, "operators", [operator])

    async def operator_by_key_hash(self, key_hash: str) -> Row | None:
        return await self.fetchone("SELECT * FROM operators WHERE key_hash = ?", (key_hash,))

    async def partner(self, partner_id: str) -> Row | None:
        return await self.fetchone("SELECT * FROM partners WHERE partner_id = ?", (partner_id,))

    async def controls(self, tx: Transaction, partner_id: str,
                       subjects: t.Sequence[str]) -> dict[str, Row]:
        """What the operator set for the partner (subject "partner") or accounts, by subject;
        a subject without controls is absent."""
        rows = await tx.fetchall(
            f"SELECT * FROM controls WHERE partner_id = ? AND subject IN "
            f"({', '.join('?' * len(subjects))})", (partner_id, *subjects))
        return {row["subject"]: row for row in rows}

    async def set_controls(self, partner_id: str, subject: str, controls: Row) -> Row:
        row = {"partner_id": partner_id, "subject": subject, **controls}
        async with self.transaction() as tx:
            await tx.execute("DELETE FROM controls WHERE partner_id = ? AND subject = ?",
                             (partner_id, subject))
            await _insert(tx, "controls", [row])
        return row

    async def set_account_status(self, partner_id: str, account_id: str,
                                 status: str) -> Row | None:
        async with self.transaction() as tx:
            await tx.execute(
                "UPDATE accounts SET status = ? WHERE partner_id = ? AND account_id = ?",
                (status, partner_id, account_id))
            return await tx.fetchone(
                "SELECT * FROM accounts WHERE partner_id = ? AND account_id = ?",
                (partner_id, account_id))

    async def debits_since(self, tx: Transaction, partner_id: str, account_id: str,
                           since: str) -> int:
        row = await tx.fetchone(
            "SELECT COUNT(*) AS n FROM transactions WHERE partner_id = ? AND account_id = ?"
            " AND direction = 'debit' AND booked_at >= ?", (partner_id, account_id, since))
        return int(row["n"])

    async def partner_paid_today(self, tx: Transaction, partner_id: str, day: str) -> int:
        row = await tx.fetchone(
            "SELECT COALESCE(SUM(amount_fen), 0) AS paid FROM payments"
            " WHERE partner_id = ? AND created_at >= ?", (partner_id, day))
        return int(row["paid"])

    async def add_risk_event(self, event: Row, tx: Transaction | None = None) -> None:
        if tx is not None:
            await _insert(tx, "risk_events", [event])
            return
        async with self.transaction() as tx:
            await _insert(tx, "risk_events", [event])

    async def risk_events(self, partner_id: str, *, limit: int) -> list[Row]:
        return await self.fetchall(
            "SELECT * FROM risk_events WHERE partner_id = ? ORDER BY created_at DESC, event_id"
            " LIMIT ?", (partner_id, limit))


async def create_tables(tx: Transaction) -> None:
    """Every table, unless this database was made by a sandbox with tables of another shape."""
    await tx.execute(TABLES[0])  # meta, where the version is kept
    row = await tx.fetchone("SELECT value FROM meta WHERE key = 'schema'")
    found = row["value"] if row else None
    if found is None and await tx.fetchone("SELECT key FROM meta WHERE key = 'seed'"):
        found = "1"
    if found not in (None, SCHEMA_VERSION):
        raise StoreError(
            f"this database was made by another version of the sandbox (schema {found}, this "
            f"one needs {SCHEMA_VERSION}); serve a new --db: its banks are regenerated from "
            "the seed")
    if found is None:
        await tx.execute("INSERT INTO meta (key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,))
    for ddl in TABLES[1:]:
        await tx.execute(ddl)


async def _insert(tx: Transaction, table: str, rows: list[Row]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    await tx.executemany(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
        [tuple(row[c] for c in columns) for row in rows],
    )


def open_store(url: str) -> Store:
    """A store for a SQLAlchemy-style URL: sqlite:///rel.db, sqlite:////abs.db, sqlite://:memory:,
    postgresql://user@host/db. Call `await store.open()` (or `async with`) before use."""
    if url.startswith("sqlite:"):
        from sandbox.store.sqlite import SqliteStore

        return SqliteStore(sqlite_path(url))
    if url.startswith(("postgresql:", "postgres:")):
        from sandbox.store.postgres import PostgresStore

        return PostgresStore(url)
    raise StoreError(f"unsupported database URL {url!r}: use sqlite:///FILE or postgresql://...")


def sqlite_path(url: str) -> str:
    """sqlite:///rel.db → 'rel.db', sqlite:////abs.db → '/abs.db', sqlite:// → ':memory:'."""
    rest = url[len("sqlite:"):]
    if rest in ("", "//", "///:memory:", "//:memory:"):
        return ":memory:"
    if not rest.startswith("///"):
        raise StoreError(f"a SQLite URL is sqlite:///relative.db or sqlite:////abs.db, got {url!r}")
    return rest[3:]
