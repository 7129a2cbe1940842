"""Consents, and the credentials issued on them: access and refresh tokens, authorization codes.

A consent is always read with its partner's clock offset (`Consent.clock_offset_s`): its expiry
is judged by that clock.
"""

from __future__ import annotations

import typing as t

from sandbox.records import Consent, Token
from sandbox.store.base import Row, Topic, Transaction, insert, insert_records

_CONSENT = ("SELECT c.*, p.clock_offset_s FROM consents c JOIN partners p"
            " ON p.partner_id = c.partner_id")


class Consents(Topic):
    async def add(self, consent: Consent) -> None:
        async with self.db.transaction() as tx:
            await insert_records(tx, [consent])

    async def get(self, partner_id: str, consent_id: str) -> Consent | None:
        row = await self.db.fetchone(_CONSENT + " WHERE c.partner_id = ? AND c.consent_id = ?",
                                     (partner_id, consent_id))
        return Consent.of(row) if row else None

    async def list(self, partner_id: str, *, status: str | None, limit: int) -> list[Consent]:
        """Newest first (by the stored status; expiry is judged by the caller)."""
        where, params = ["c.partner_id = ?"], [partner_id]
        if status is not None:
            where.append("c.status = ?")
            params.append(status)
        rows = await self.db.fetchall(
            f"{_CONSENT} WHERE {' AND '.join(where)}"
            " ORDER BY c.created_at DESC, c.consent_id LIMIT ?", (*params, limit))
        return [Consent.of(row) for row in rows]

    async def change(self, partner_id: str, consent_id: str,
                     decide: t.Callable[[Consent], Consent]) -> Consent | None:
        """Locks the consent and writes what `decide(consent)` makes of it (it may refuse);
        the new consent, or None if there is no such consent."""
        async with self.db.transaction() as tx:
            row = await tx.fetchone(
                _CONSENT + " WHERE c.partner_id = ? AND c.consent_id = ?"
                + self.db.for_update.replace("UPDATE", "UPDATE OF c"), (partner_id, consent_id))
            if row is None:
                return None
            before = Consent.of(row)
            after = decide(before)
            changes = after.changes_from(before)
            if changes:
                columns = ", ".join(f"{name} = ?" for name in changes)
                await tx.execute(f"UPDATE consents SET {columns} WHERE consent_id = ?",
                                 (*changes.values(), consent_id))
            return after

    # -- tokens --------------------------------------------------------------------------------

    async def add_token(self, token: Token, refresh: Row | None = None) -> None:
        """An access token, and the refresh token issued with it."""
        async with self.db.transaction() as tx:
            await insert_records(tx, [token])
            if refresh is not None:
                await insert(tx, "refresh_tokens", [refresh])

    async def token_and_consent(self, token_hash: str) -> tuple[Token, Consent | None] | None:
        """The token and, for a customer's token, its consent, in one query: every call with
        a customer's token needs both."""
        row = await self.db.fetchone(
            "SELECT t.token_hash AS t_token_hash, t.partner_id AS t_partner_id,"
            " t.scopes AS t_scopes, t.consent_id AS t_consent_id,"
            " t.customer_id AS t_customer_id, t.code_hash AS t_code_hash,"
            " t.expires_at AS t_expires_at, c.*, p.clock_offset_s"
            " FROM tokens t JOIN partners p ON p.partner_id = t.partner_id"
            " LEFT JOIN consents c ON c.partner_id = t.partner_id"
            " AND c.consent_id = t.consent_id WHERE t.token_hash = ?", (token_hash,))
        if row is None:
            return None
        token = Token.of({name[2:]: row[name] for name in row if name.startswith("t_")})
        return token, (Consent.of(row) if row["consent_id"] is not None else None)

    async def refresh_token(self, token_hash: str) -> Row | None:
        return await self.db.fetchone("SELECT * FROM refresh_tokens WHERE token_hash = ?",
                                      (token_hash,))

    async def rotate_refresh(self, token_hash: str, token: Token, refresh: Row) -> str:
        """Spends a refresh token on its successors (`token` and `refresh`), at most once:
        "rotated"; or "revoked" (it was revoked, nothing written); or "reused": it was spent
        before, so someone holds a copy, and its whole family (every token from the same
        code) is revoked (RFC 9700 §4.14.2)."""
        async with self.db.transaction() as tx:
            row = await tx.fetchone("SELECT revoked, used, code_hash FROM refresh_tokens"
                                    " WHERE token_hash = ?" + self.db.for_update, (token_hash,))
            if row is None or row["revoked"]:
                return "revoked"
            if row["used"]:
                await _revoke_family(tx, row["code_hash"])
                return "reused"
            await _spend(tx, "refresh_tokens", "token_hash", token_hash, token, refresh)
            return "rotated"

    # -- authorization codes -------------------------------------------------------------------

    async def add_code(self, code: Row) -> None:
        async with self.db.transaction() as tx:
            await insert(tx, "authorization_codes", [code])

    async def code(self, code_hash: str) -> Row | None:
        """The code's row, as it is: read before it is taken, so that a wrong presentation
        (another client, redirect URI or verifier) changes nothing."""
        return await self.db.fetchone("SELECT * FROM authorization_codes WHERE code_hash = ?",
                                      (code_hash,))

    async def take_code(self, code_hash: str, token: Token, refresh: Row) -> str:
        """Spends the code on `token` and `refresh`, at most once: "taken"; or "reused": it was
        spent before, and every token of its family is revoked (RFC 6749 §4.1.2)."""
        async with self.db.transaction() as tx:
            row = await tx.fetchone("SELECT used FROM authorization_codes WHERE code_hash = ?"
                                    + self.db.for_update, (code_hash,))
            if row is None or row["used"]:
                await _revoke_family(tx, code_hash)
                return "reused"
            await _spend(tx, "authorization_codes", "code_hash", code_hash, token, refresh)
            return "taken"

    async def revoke_family(self, code_hash: str) -> None:
        async with self.db.transaction() as tx:
            await _revoke_family(tx, code_hash)


async def _spend(tx: Transaction, table: str, key: str, value: str, token: Token,
                 refresh: Row) -> None:
    """A code or refresh token marked used, and the tokens it was spent on stored with it."""
    await tx.execute(f"UPDATE {table} SET used = 1 WHERE {key} = ?", (value,))
    await insert_records(tx, [token])
    await insert(tx, "refresh_tokens", [refresh])


async def _revoke_family(tx: Transaction, code_hash: str) -> None:
    """Every access and refresh token descended from one code: what its tokens gave, and what
    their refresh tokens gave in turn, carry the code's digest."""
    await tx.execute("UPDATE tokens SET expires_at = 0 WHERE code_hash = ?", (code_hash,))
    await tx.execute("UPDATE refresh_tokens SET revoked = 1 WHERE code_hash = ?", (code_hash,))
