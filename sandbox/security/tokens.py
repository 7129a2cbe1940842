"""OAuth2 access tokens: issued to partners, checked by Connexion on every secured call.

Tokens are random and stored only as SHA-256 digests (`sandbox.mint`); a stolen database yields
no usable token. A process keeps recently seen tokens in memory (tokens never change once
issued; expiry is checked against the clock on every call), so the hot path costs no query.
"""

from __future__ import annotations

import typing as t

from sandbox import mint
from sandbox.clock import Clock
from sandbox.records import Consent, Token
from sandbox.refusals import (
    ConsentExpired,
    ConsentRevoked,
    InsufficientScope,
    InvalidToken,
    TokenExpired,
    TokenRevoked,
    decides,
)
from sandbox.rules import consents
from sandbox.store import Store

CACHE_SIZE = 10_000


async def issue_token(store: Store, clock: Clock, partner_id: str, scopes: list[str],
                      ttl: int) -> dict:
    """A partner's own access token (client credentials), bound to no customer."""
    answer, token, _ = new_token(clock, partner_id, scopes, ttl)
    await store.consents.add_token(token)
    return answer


def new_token(clock: Clock, partner_id: str, scopes: list[str], ttl: int, *,
              consent: Consent | None = None,
              code_hash: str | None = None) -> tuple[dict, Token, dict | None]:
    """(the token endpoint's answer, the access token's record, the refresh token's row), not
    yet stored. Bound to a customer's consent when `consent` is given, and then with a refresh
    token (for as long as the consent lives) of the family of the code `code_hash`."""
    secret = mint.secret()
    token = Token(token_hash=mint.digest(secret), partner_id=partner_id, scopes=" ".join(scopes),
                  consent_id=consent.consent_id if consent else None,
                  customer_id=consent.customer_id if consent else None, code_hash=code_hash,
                  expires_at=int(clock.timestamp()) + ttl)
    answer = {"access_token": secret, "token_type": "Bearer", "expires_in": ttl,
              "scope": token.scopes}
    if consent is None:
        return answer, token, None
    answer["consent_id"], answer["customer_id"] = consent.consent_id, consent.customer_id
    refresh_token = mint.secret("rt_")
    answer["refresh_token"] = refresh_token
    return answer, token, {
        "token_hash": mint.digest(refresh_token), "partner_id": partner_id,
        "consent_id": consent.consent_id, "customer_id": consent.customer_id,
        "scopes": token.scopes, "code_hash": code_hash or "", "revoked": 0, "used": 0}


class TokenCache:
    """token digest → (partner_id, scopes, expires_at, consent_id), bounded; oldest go first."""

    def __init__(self, size: int = CACHE_SIZE):
        self.size = size
        self.entries: dict[str, tuple[str, list[str], int, str | None]] = {}

    def get(self, key: str):
        return self.entries.get(key)

    def put(self, key: str, value) -> None:
        if len(self.entries) >= self.size:
            self.entries.pop(next(iter(self.entries)))
        self.entries[key] = value


_CONSENT_ENDED = {consents.REVOKED: ConsentRevoked, consents.EXPIRED: ConsentExpired}


@decides(InvalidToken, TokenRevoked, TokenExpired, ConsentRevoked, ConsentExpired)
async def token_info(token: str, request) -> dict:
    """Connexion's x-tokenInfoFunc: the token's partner and scopes (and, for a customer's
    token, its consent), or a refusal."""
    ctx = request.state.ctx
    key = mint.digest(token)
    entry = ctx.tokens.get(key)
    consent = None
    if entry is None:
        found = await ctx.store.consents.token_and_consent(key)
        if found is None:
            raise InvalidToken("The access token is not one this sandbox issued.")
        row, consent = found
        entry = (row.partner_id, row.scopes.split(), int(row.expires_at), row.consent_id)
        if not row.code_hash:  # a token from a code can be revoked by the code's reuse
            ctx.tokens.put(key, entry)
    partner_id, scopes, expires_at, consent_id = entry
    if expires_at == 0:
        raise TokenRevoked("The access token was revoked: the code it came from, or a "
                           "refresh token of its family, was used twice.")
    if ctx.clock.timestamp() >= expires_at:
        raise TokenExpired("The access token has expired; get a new one from POST "
                           "/oauth2/token.")
    info = {"sub": partner_id, "scope": scopes}
    if consent_id is not None:
        # Read on every call (with the token, in one query, unless the token was cached): a
        # revoked or expired consent stops its tokens at once, in every server process.
        consent = consent or await ctx.store.consents.get(partner_id, consent_id)
        status = consents.effective_status(consent, ctx.now_for(consent.clock_offset_s))
        if status != consents.AUTHORISED:
            raise _CONSENT_ENDED.get(status, ConsentRevoked)(
                f"The token's consent {consent_id} is {status}; the customer must authorise a "
                "new one.")
        info["consent"] = consent
    return info


@decides(InsufficientScope)
def validate_scope(required_scopes: t.Sequence[str], token_scopes: t.Sequence[str]) -> bool:
    """Connexion's x-scopeValidateFunc: refused, naming what is missing."""
    missing = sorted(set(required_scopes) - set(token_scopes))
    if missing:
        raise InsufficientScope(
            f"This operation needs the scope(s) {', '.join(missing)}; the token has "
            f"{', '.join(sorted(token_scopes)) or 'none'}.")
    return True


def basic_passthrough(username: str, password: str) -> dict:
    """Connexion's x-basicInfoFunc for the token endpoint: the handler checks the credentials,
    so both client authentication methods answer alike."""
    return {"sub": username}
