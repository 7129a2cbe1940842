"""Partners: tenants, their client credentials and clocks, and the seed their banks come from."""

from __future__ import annotations

from sandbox.ledger import Booking
from sandbox.records import Partner
from sandbox.store.base import DuplicateError, StoreError, Topic, insert_records
from sandbox.store.ledger import write


class Partners(Topic):
    async def bank_seed(self, requested: int | None) -> int:
        """The seed this database's banks are generated from, fixed when it is first used.

        A database keeps one seed for life, so a partner created later by another process gets a
        bank from the same seed. Asking for a different one is an error, not a silent mix.
        """
        async with self.db.transaction() as tx:
            row = await tx.fetchone("SELECT value FROM meta WHERE key = 'seed'"
                                    + self.db.for_update)
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

    async def add_with_bank(self, partner: Partner, bank: Booking) -> None:
        """The partner and its whole synthetic bank (a booking whose saves are its customers and
        accounts), in one transaction: all of it or none."""
        async with self.db.transaction() as tx:
            if await tx.fetchone(
                "SELECT partner_id FROM partners WHERE name = ? OR partner_id = ?",
                (partner.name, partner.partner_id),
            ):
                raise DuplicateError(f"a partner named {partner.name!r} exists already")
            await insert_records(tx, [partner])
            await write(tx, partner.partner_id, bank)

    async def get(self, partner_id: str) -> Partner | None:
        row = await self.db.fetchone("SELECT * FROM partners WHERE partner_id = ?", (partner_id,))
        return Partner.of(row) if row else None

    async def by_client_id(self, client_id: str) -> Partner | None:
        if "\x00" in client_id:  # no client id holds one, and PostgreSQL's text cannot
            return None
        row = await self.db.fetchone("SELECT * FROM partners WHERE client_id = ?", (client_id,))
        return Partner.of(row) if row else None

    async def set_clock_offset(self, partner_id: str, seconds: int) -> None:
        async with self.db.transaction() as tx:
            await tx.execute("UPDATE partners SET clock_offset_s = ? WHERE partner_id = ?",
                             (seconds, partner_id))

    # -- failed secret and password checks ----------------------------------------------------

    async def failures(self, subject: str) -> tuple[int, int]:
        """(failures, when their window started, epoch seconds) counted for `subject`."""
        row = await self.db.fetchone(
            "SELECT failures, window_start FROM failed_attempts WHERE subject = ?", (subject,))
        return (row["failures"], row["window_start"]) if row else (0, 0)

    async def count_failure(self, subject: str, now: int, window_s: int) -> tuple[int, int]:
        """Counts one more failure for `subject` in its window (a new window if the last one
        ended), in one statement, so that processes failing at once each count; the new
        (failures, window start). A row per client or customer at most: only known ones are
        counted (`security/throttle.py`), so the table needs no pruning."""
        ended = now - window_s
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO failed_attempts (subject, window_start, failures) VALUES (?, ?, 1)"
                " ON CONFLICT (subject) DO UPDATE SET"
                " failures = CASE WHEN failed_attempts.window_start > ?"
                " THEN failed_attempts.failures + 1 ELSE 1 END,"
                " window_start = CASE WHEN failed_attempts.window_start > ?"
                " THEN failed_attempts.window_start ELSE excluded.window_start END",
                (subject, now, ended, ended))
            row = await tx.fetchone("SELECT failures, window_start FROM failed_attempts"
                                    " WHERE subject = ?", (subject,))
        return row["failures"], row["window_start"]
