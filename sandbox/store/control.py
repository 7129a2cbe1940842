"""The control plane's state: operators, the controls they set, account status, risk events."""

from __future__ import annotations

from sandbox.records import Account, Controls, RiskEvent
from sandbox.store.base import DuplicateError, Row, Topic, insert, insert_records


class Control(Topic):
    async def add_operator(self, operator: Row) -> None:
        async with self.db.transaction() as tx:
            if await tx.fetchone("SELECT operator_id FROM operators WHERE name = ?",
                                 (operator["name"],)):
                raise DuplicateError(f"an operator named {operator['name']!r} exists already")
            await insert(tx, "operators", [operator])

    async def operator_by_key_hash(self, key_hash: str) -> Row | None:
        return await self.db.fetchone("SELECT * FROM operators WHERE key_hash = ?", (key_hash,))

    async def set_controls(self, controls: Controls) -> Controls:
        """Replaces what was set for the same subject (in one statement: operators setting it
        at once each win in turn, none fails)."""
        row = controls.row()
        kept = [c for c in row if c not in Controls.KEY]
        async with self.db.transaction() as tx:
            await tx.execute(
                f"INSERT INTO controls ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})"
                f" ON CONFLICT (partner_id, subject) DO UPDATE SET "
                + ", ".join(f"{c} = excluded.{c}" for c in kept), tuple(row.values()))
        return controls

    async def set_account_status(self, partner_id: str, account_id: str,
                                 status: str) -> Account | None:
        async with self.db.transaction() as tx:
            await tx.execute(
                "UPDATE accounts SET status = ? WHERE partner_id = ? AND account_id = ?",
                (status, partner_id, account_id))
            row = await tx.fetchone(
                "SELECT * FROM accounts WHERE partner_id = ? AND account_id = ?",
                (partner_id, account_id))
        return Account.of(row) if row else None

    async def add_risk_event(self, event: RiskEvent) -> None:
        """A refusal's event, kept although the order it refused was rolled back."""
        async with self.db.transaction() as tx:
            await insert_records(tx, [event])

    async def risk_events(self, partner_id: str, *, limit: int) -> list[RiskEvent]:
        rows = await self.db.fetchall(
            "SELECT * FROM risk_events WHERE partner_id = ? ORDER BY created_at DESC, event_id"
            " LIMIT ?", (partner_id, limit))
        return [RiskEvent.of(row) for row in rows]
