"""Platform contract: OAuth2 (the token endpoint and the customer's authorisation page) and
the list of served contracts."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from urllib.parse import unquote

from connexion import request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from sandbox import consents, pages
from sandbox.handlers import respond
from sandbox.handlers.consents import authorisation_result, check_redirect_uri
from sandbox.problems import BadRequest, Unauthenticated, Unprocessable
from sandbox.security import tokens

#: The password of every synthetic customer on the authorisation page (documented).
TEST_PASSWORD = "sandbox"
TICKET_TTL_S = 600


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
    if grant_type == "authorization_code":
        return await _exchange_code(partner, body)
    if grant_type == "refresh_token":
        return await _refresh(partner, body)
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


def _no_store(token: dict) -> Response:
    return respond(token, 200, {"Cache-Control": "no-store", "Pragma": "no-cache"})


def _invalid_grant(detail: str, field: str = "body.code"):
    return _oauth_error(BadRequest, "INVALID_GRANT", "invalid_grant", detail, field=field)


async def _exchange_code(partner: dict, body: dict) -> Response:
    state = request.state
    for name in ("code", "redirect_uri"):
        if not body.get(name):
            raise _oauth_error(BadRequest, "VALIDATION_FAILED", "invalid_request",
                               f"{name} is required for grant_type authorization_code.",
                               field=f"body.{name}")
    code = await state.store.take_authorization_code(
        hashlib.sha256(body["code"].encode()).hexdigest())
    if code is None or code["partner_id"] != partner["partner_id"]:
        raise _invalid_grant("The code is not one this sandbox issued to this client.")
    if code["used"]:
        raise _invalid_grant("The code was used already; the tokens it gave are revoked.")
    if state.clock.timestamp() >= code["expires_at"]:
        raise _invalid_grant("The code has expired; codes live five minutes.")
    if body["redirect_uri"] != code["redirect_uri"]:
        raise _invalid_grant("redirect_uri differs from the one the code was sent to.",
                             field="body.redirect_uri")
    if code["code_challenge"]:
        verifier = body.get("code_verifier")
        if not verifier or not consents.pkce_matches(verifier, code["code_challenge"],
                                                     code["code_challenge_method"]):
            raise _invalid_grant("code_verifier does not match the PKCE code_challenge.",
                                 field="body.code_verifier")
    return await _consent_token(partner, code["consent_id"], code["code_hash"], refresh=True)


async def _consent_token(partner: dict, consent_id: str, code_hash: str,
                         refresh: bool) -> Response:
    state = request.state
    row = await state.store.consent(partner["partner_id"], consent_id)
    consent = consents.parse(row)
    status = consents.effective_status(consent, state.clock.now_for(row))
    if status != consents.AUTHORISED:
        raise _invalid_grant(f"Consent {consent_id} is {status}.")
    token = await tokens.issue_token(
        state.store, state.clock, partner["partner_id"],
        consents.scopes_for(consent["permissions"]), state.settings.token_ttl,
        consent=consent, code_hash=code_hash, refresh=refresh)
    return _no_store(token)


async def _refresh(partner: dict, body: dict) -> Response:
    state = request.state
    if not body.get("refresh_token"):
        raise _oauth_error(BadRequest, "VALIDATION_FAILED", "invalid_request",
                           "refresh_token is required for grant_type refresh_token.",
                           field="body.refresh_token")
    row = await state.store.refresh_token(tokens.digest(body["refresh_token"]))
    if row is None or row["partner_id"] != partner["partner_id"] or row["revoked"]:
        raise _invalid_grant("The refresh token is not a live one of this client.",
                             field="body.refresh_token")
    answer = await _consent_token(partner, row["consent_id"], row["code_hash"], refresh=False)
    return answer


# -- the customer's authorisation page ---------------------------------------------------------

_FLOW = ("response_type", "client_id", "redirect_uri", "consent_id", "state", "code_challenge",
         "code_challenge_method", "scope")


async def _flow(params: dict) -> tuple[dict, dict | None, Response | None]:
    """(partner, consent, None) for a request the page may serve; (partner, None, redirect)
    for one to send back to the partner with an OAuth2 error. An unknown client or redirect
    URI is never redirected (RFC 6749 §4.1.2.1): it is a 422 problem here."""
    store = request.state.store
    partner = await store.partner_by_client_id(params["client_id"])
    if partner is None:
        raise Unprocessable("INVALID_CLIENT", f"No client {params['client_id']!r}.",
                         field="query.client_id")
    check_redirect_uri(partner, params["redirect_uri"], "query.redirect_uri")

    def back(error: str, description: str) -> RedirectResponse:
        return RedirectResponse(consents.redirect_to(
            params["redirect_uri"], error=error, error_description=description,
            state=params.get("state")), status_code=302)

    if params["response_type"] != "code":
        return partner, None, back("unsupported_response_type", "response_type must be code.")
    if not params.get("code_challenge"):
        return partner, None, back("invalid_request", "PKCE is required: send code_challenge.")
    if params.get("code_challenge_method", "plain") not in ("S256", "plain"):
        return partner, None, back("invalid_request", "code_challenge_method must be S256 or "
                                   "plain.")
    row = await store.consent(partner["partner_id"], params["consent_id"])
    if row is None:
        return partner, None, back("invalid_request", "No such consent for this client.")
    status = consents.effective_status(consents.parse(row), request.state.clock.now_for(row))
    if status != consents.AWAITING:
        return partner, None, back("invalid_request", f"The consent is {status}.")
    return partner, consents.parse(row), None


async def _test_customers(partner_id: str) -> list[dict]:
    rows = await request.state.store.customers(partner_id, after=0, limit=20)
    return [r for r in rows if r["kind"] == "individual"][:5]


def _ticket(partner: dict, consent_id: str, customer_id: str, expires: int) -> str:
    message = f"{consent_id}.{customer_id}.{expires}".encode()
    signature = hmac.new(partner["secret_hash"].encode(), message, hashlib.sha256).hexdigest()
    return f"{customer_id}.{expires}.{signature}"


def _ticket_customer(partner: dict, consent_id: str, ticket: str) -> str | None:
    """The customer a sign-in ticket stands for, if it is genuine and fresh."""
    try:
        customer_id, expires, _ = ticket.split(".")
        fresh = request.state.clock.timestamp() < int(expires)
    except ValueError:
        return None
    genuine = hmac.compare_digest(ticket, _ticket(partner, consent_id, customer_id,
                                                  int(expires)))
    return customer_id if genuine and fresh else None


async def authorize_page(**query) -> Response:
    params = {k: query.get(k) for k in _FLOW}
    partner, consent, redirect = await _flow(params)
    if redirect is not None:
        return redirect
    return HTMLResponse(pages.sign_in(partner["name"], consent, params,
                                      await _test_customers(partner["partner_id"])))


async def authorize_submit(body: dict) -> Response:
    store = request.state.store
    params = {k: body.get(k) for k in _FLOW}
    partner, consent, redirect = await _flow(params)
    if redirect is not None:
        return redirect
    if body.get("ticket") and body.get("decision"):
        customer_id = _ticket_customer(partner, consent["consent_id"], body["ticket"])
        if customer_id is None:
            return HTMLResponse(pages.sign_in(
                partner["name"], consent, params, await _test_customers(partner["partner_id"]),
                error="会话已过期，请重新登录 Your sign-in expired; sign in again."))
        customer = await store.customer(partner["partner_id"], customer_id)
        row = await consents.decide(store, request.state.clock.now_for, partner["partner_id"],
                                    consent["consent_id"], customer, body["decision"],
                                    body.get("account_id") or None)
        result = await authorisation_result(row, partner["partner_id"], params["redirect_uri"],
                                            params.get("state"), params.get("code_challenge"),
                                            params.get("code_challenge_method"))
        return RedirectResponse(result["redirect_to"], status_code=302)
    customer = await _sign_in(partner["partner_id"], body.get("username") or "",
                              body.get("password") or "")
    if customer is None:
        return HTMLResponse(pages.sign_in(
            partner["name"], consent, params, await _test_customers(partner["partner_id"]),
            error="手机号/客户号或密码错误 Unknown customer or wrong password."))
    accounts = await store.accounts(partner["partner_id"], customer_id=customer["customer_id"],
                                    after=0, limit=1000)
    offered = consent["account_ids"]
    accounts = [a for a in accounts if not offered or a["account_id"] in offered]
    expires = int(request.state.clock.timestamp()) + TICKET_TTL_S
    ticket = _ticket(partner, consent["consent_id"], customer["customer_id"], expires)
    return HTMLResponse(pages.pick_accounts(partner["name"], consent, params, customer,
                                            accounts, ticket))


async def _sign_in(partner_id: str, username: str, password: str) -> dict | None:
    if not hmac.compare_digest(password.encode(), TEST_PASSWORD.encode()):
        return None
    store = request.state.store
    if username.startswith("cus_"):
        return await store.customer(partner_id, username)
    return await store.customer_by_mobile(partner_id, username)


async def list_contracts() -> Response:
    return respond(request.state.contract_entries)
