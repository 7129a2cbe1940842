"""Platform contract: the OAuth2 token endpoint and the list of served contracts."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote

from connexion import request
from starlette.responses import Response

from sandbox.handlers import respond
from sandbox.problems import BadRequest, Unauthenticated
from sandbox.security import tokens


def _oauth_error(cls, code: str, error: str, detail: str, **kwargs):
    # A problem that RFC 6749 clients can read too: they look for `error`.
    return cls(code, detail, error=error, **kwargs)


def _client_credentials(body: dict) -> tuple[str, str, bool]:
    header = request.headers.get("authorization")
    if header and header[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
            client_id, _, secret = decoded.partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise _oauth_error(
                Unauthenticated, "INVALID_CLIENT", "invalid_client",
                "The Basic credentials are not valid base64 of client_id:client_secret.",
                headers={"WWW-Authenticate": 'Basic realm="openbank-sandbox"'},
            ) from None
        # RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
        return unquote(client_id), unquote(secret), True
    return body.get("client_id") or "", body.get("client_secret") or "", False


async def issue_token(body: dict) -> Response:
    state = request.state
    client_id, secret, basic = _client_credentials(body)
    partner = await state.store.partner_by_client_id(client_id) if client_id else None
    if partner is None or not tokens.secret_matches(secret, partner["secret_hash"]):
        raise _oauth_error(
            Unauthenticated, "INVALID_CLIENT", "invalid_client",
            "Unknown client or wrong secret. Send client_id and client_secret with HTTP Basic "
            "or in the form.",
            headers={"WWW-Authenticate": 'Basic realm="openbank-sandbox"'} if basic else None,
        )
    grant_type = body.get("grant_type")
    if grant_type != "client_credentials":
        raise _oauth_error(
            BadRequest, "UNSUPPORTED_GRANT_TYPE", "unsupported_grant_type",
            f"grant_type {grant_type!r} is not supported; use client_credentials.",
            field="body.grant_type",
        )
    requested = (body.get("scope") or "").split()
    unknown = sorted(set(requested) - state.scopes)
    if unknown:
        raise _oauth_error(
            BadRequest, "INVALID_SCOPE", "invalid_scope",
            f"Unknown scope(s) {', '.join(unknown)}; known: {', '.join(sorted(state.scopes))}.",
            field="body.scope",
        )
    scopes = sorted(set(requested)) if requested else sorted(state.scopes)
    token = await tokens.issue_token(
        state.store, state.clock, partner["partner_id"], scopes, state.settings.token_ttl
    )
    return respond(token, 200, {"Cache-Control": "no-store", "Pragma": "no-cache"})


async def list_contracts() -> Response:
    return respond(request.state.contract_entries)
