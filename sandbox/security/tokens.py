"""OAuth2 access tokens: issued to partners, checked by Connexion on every secured call.

Tokens are random and stored only as SHA-256 digests; a stolen database yields no usable token.
A process keeps recently seen tokens in memory (tokens never change once issued; expiry is
checked against the clock on every call), so the hot path costs no query.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import typing as t

from sandbox import consents
from sandbox.clock import Clock
from sandbox.problems import Forbidden, Unauthenticated

CACHE_SIZE = 10_000


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def secret_matches(secret: str, expected_digest: str) -> bool:
    # Client secrets are 256-bit random strings, so a plain digest resists guessing; no need
    # for a deliberately slow hash.
    return hmac.compare_digest(digest(secret), expected_digest)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


async def issue_token(store, clock: Clock, partner_id: str, scopes: list[str], ttl: int, *,
                      consent: dict | None = None, code_hash: str | None = None,
                      refresh: bool = False) -> dict:
    """An access token; bound to a customer's consent when `consent` is given, then also with
    a refresh token (for as long as the consent lives) if `refresh`."""
    token = new_secret()
    row = {"token_hash": digest(token), "partner_id": partner_id, "scopes": " ".join(scopes),
           "consent_id": None, "customer_id": None, "code_hash": code_hash,
           "expires_at": int(clock.timestamp()) + ttl}
    answer = {"access_token": token, "token_type": "Bearer", "expires_in": ttl,
              "scope": " ".join(scopes)}
    refresh_row = None
    if consent is not None:
        row["consent_id"], row["customer_id"] = consent["consent_id"], consent["customer_id"]
        answer["consent_id"], answer["customer_id"] = consent["consent_id"], consent["customer_id"]
        if refresh:
            refresh_token = "rt_" + new_secret()
            refresh_row = {"token_hash": digest(refresh_token), "partner_id": partner_id,
                           "consent_id": consent["consent_id"],
                           "customer_id": consent["customer_id"], "scopes": row["scopes"],
                           "code_hash": code_hash or "", "revoked": 0}
            answer["refresh_token"] = refresh_token
    await store.add_token(row, refresh_row)
    return answer


class TokenCache:
    """token digest → (partner_id, scopes, expires_at), bounded; oldest entries go first."""

    def __init__(self, size: int = CACHE_SIZE):
        self.size = size
        self.entries: dict[str, tuple[str, list[str], int]] = {}

    def get(self, key: str):
        return self.entries.get(key)

    def put(self, key: str, value) -> None:
        if len(self.entries) >= self.size:
            self.entries.pop(next(iter(self.entries)))
        self.entries[key] = value


async def token_info(token: str, request) -> dict:
    """Connexion's x-tokenInfoFunc: the token's partner and scopes, or a 401 problem."""
    state = request.state
    key = digest(token)
    entry = state.tokens.get(key)
    consent = None
    if entry is None:
        found = await state.store.token_and_consent(key)
        if found is None:
            raise Unauthenticated("INVALID_TOKEN",
                                  "The access token is not one this sandbox issued.")
        row, consent = found
        entry = (row["partner_id"], row["scopes"].split(), int(row["expires_at"]),
                 row["consent_id"])
        if not row["code_hash"]:  # a token from a code can be revoked by the code's reuse
            state.tokens.put(key, entry)
    partner_id, scopes, expires_at, consent_id = entry
    if expires_at == 0:
        raise Unauthenticated("TOKEN_REVOKED", "The access token was revoked: the code it came "
                              "from was used twice.")
    if state.clock.timestamp() >= expires_at:
        raise Unauthenticated(
            "TOKEN_EXPIRED", "The access token has expired; get a new one from POST /oauth2/token."
        )
    info = {"sub": partner_id, "scope": scopes}
    if consent_id is not None:
        # Read on every call (with the token, in one query, unless the token was cached): a
        # revoked or expired consent stops its tokens at once, in every server process.
        consent = consent or await state.store.consent(partner_id, consent_id)
        status = consents.effective_status(consent, state.clock.now_for(consent))
        if status != consents.AUTHORISED:
            raise Unauthenticated(f"CONSENT_{status}", f"The token's consent {consent_id} is "
                                  f"{status}; the customer must authorise a new one.")
        info["consent"] = consents.parse(consent)
    return info


def validate_scope(required_scopes: t.Sequence[str], token_scopes: t.Sequence[str]) -> bool:
    """Connexion's x-scopeValidateFunc: a 403 problem naming what is missing."""
    missing = sorted(set(required_scopes) - set(token_scopes))
    if missing:
        raise Forbidden(
            "INSUFFICIENT_SCOPE",
            f"This operation needs the scope(s) {', '.join(missing)}; the token has "
            f"{', '.join(sorted(token_scopes)) or 'none'}.",
        )
    return True


def basic_passthrough(username: str, password: str) -> dict:
    """Connexion's x-basicInfoFunc for the token endpoint: the handler checks the credentials,
    so both client authentication methods answer alike."""
    return {"sub": username}
