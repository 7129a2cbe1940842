"""The notification outbox: partners' callbacks, the events waiting for them, each delivery
attempt. Events are written with the payment change they tell of (`store.ledger.write`)."""

from __future__ import annotations

import typing as t

from sandbox.store.base import Row, Topic, insert, marks


class Outbox(Topic):
    async def callback(self, partner_id: str) -> Row | None:
        return await self.db.fetchone("SELECT * FROM callbacks WHERE partner_id = ?",
                                      (partner_id,))

    async def set_callback(self, partner_id: str, url: str, new_secret: str, now: str) -> Row:
        """Registers or moves the partner's callback; a registration keeps its secret."""
        async with self.db.transaction() as tx:
            row = await tx.fetchone(
                "SELECT * FROM callbacks WHERE partner_id = ?" + self.db.for_update, (partner_id,))
            if row is None:
                row = {"partner_id": partner_id, "url": url, "secret": new_secret,
                       "created_at": now, "updated_at": now}
                await insert(tx, "callbacks", [row])
                return row
            await tx.execute("UPDATE callbacks SET url = ?, updated_at = ? WHERE partner_id = ?",
                             (url, now, partner_id))
            return {**row, "url": url, "updated_at": now}

    async def delete_callback(self, partner_id: str) -> bool:
        async with self.db.transaction() as tx:
            found = await tx.fetchone("SELECT partner_id FROM callbacks WHERE partner_id = ?",
                                      (partner_id,))
            await tx.execute("DELETE FROM callbacks WHERE partner_id = ?", (partner_id,))
            return found is not None

    async def claim_notifications(self, now_ms: int, lease_until_ms: int,
                                  limit: int) -> list[Row]:
        """Due notifications, each with its next attempt number taken and a lease on it, and
        the callback to send it to. Only one process can hold a notification's lease, and a
        taken attempt number is never taken again: no attempt is sent twice."""
        due_sql = ("SELECT event_id FROM notifications WHERE status = 'pending'"
                   " AND next_attempt_ms <= ? AND lease_until_ms <= ?")
        if await self.db.fetchone(due_sql + " LIMIT 1", (now_ms, now_ms)) is None:
            return []  # the usual case, answered without a write transaction
        async with self.db.transaction() as tx:
            due = await tx.fetchall(
                due_sql + " ORDER BY next_attempt_ms LIMIT ?" + self.db.skip_locked,
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
        async with self.db.transaction() as tx:
            row = await tx.fetchone(
                "SELECT attempts FROM notifications WHERE event_id = ?" + self.db.for_update,
                (delivery["event_id"],))
            if row is None or row["attempts"] != delivery["attempt"]:
                return
            await insert(tx, "deliveries", [delivery])
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
        return await self.db.fetchall(
            f"SELECT * FROM notifications WHERE {' AND '.join(where)}"
            " ORDER BY created_us DESC LIMIT ?", (*params, limit))

    async def notification(self, partner_id: str, event_id: str) -> Row | None:
        return await self.db.fetchone(
            "SELECT * FROM notifications WHERE partner_id = ? AND event_id = ?",
            (partner_id, event_id))

    async def deliveries(self, event_ids: t.Sequence[str]) -> list[Row]:
        if not event_ids:
            return []
        return await self.db.fetchall(
            f"SELECT * FROM deliveries WHERE event_id IN ({marks(event_ids)})"
            " ORDER BY event_id, attempt", tuple(event_ids))

    async def redeliver(self, partner_id: str, event_id: str, now_ms: int) -> bool:
        """Due again now, with a fresh back-off schedule; False if there is no such event."""
        async with self.db.transaction() as tx:
            row = await tx.fetchone(
                "SELECT attempts FROM notifications WHERE partner_id = ? AND event_id = ?"
                + self.db.for_update, (partner_id, event_id))
            if row is None:
                return False
            await tx.execute(
                "UPDATE notifications SET status = 'pending', next_attempt_ms = ?,"
                " retry_base = attempts WHERE event_id = ?", (now_ms, event_id))
            return True
