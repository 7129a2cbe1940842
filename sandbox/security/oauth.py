"""The sandbox as an OAuth2 authorisation server: client authentication, the grants, codes with
PKCE (RFC 7636), and the customer's sign-in on the authorisation page. The handlers in
`handlers/platform.py` turn HTTP into these calls and their answers back into HTTP.

    POST /oauth2/token   authenticate_client ─┬─ client_credentials ──▶ tokens.issue_token
                                              ├─ exchange_code ─┬─▶ tokens.new_token, stored
                                              └─ refresh ───────┘   as the code or refresh
                                                                    token is spent, once
    GET/POST /oauth2/authorize   authorisation_request → sign_in → ticket → code_for

Codes and refresh tokens each work once, and a second use revokes their family: every token
descended from the same code. Codes need a PKCE S256 challenge. Failed client secrets and
passwords are throttled (`security/throttle.py`). Every refusal of the token endpoint also
carries the RFC 6749 `error` member.
"""

from __future__ import annotations

import hashlib
import hmac
import urllib.parse

from sandbox import mint
from sandbox.context import Context
from sandbox.records import Consent, Customer, Partner, Token
from sandbox.refusals import (
    ClientNotFound,
    InvalidClient,
    InvalidGrant,
    InvalidRedirectUri,
    InvalidScope,
    ValidationFailed,
    decides,
)
from sandbox.rules import consents
from sandbox.security import throttle, tokens
from sandbox.security.pkce import challenge_problem, pkce_matches

#: The password of every synthetic customer on the authorisation page (documented).
TEST_PASSWORD = "sandbox"
TICKET_TTL_S = 600  # a signed-in customer has ten minutes to pick accounts
CODE_TTL_S = 300  # an authorization code is exchanged within five minutes, once
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


# -- the token endpoint -------------------------------------------------------------------------

@decides(InvalidClient, throttle.check, throttle.failed)
async def authenticate_client(ctx: Context, client_id: str, secret: str, *,
                              basic: bool) -> Partner:
    """The partner whose client credentials these are (sent with HTTP Basic or in the form).
    A client's failed secrets are counted, and past the limit every try is throttled."""
    partner = await ctx.store.partners.by_client_id(client_id) if client_id else None
    if partner is not None:
        guesses = (throttle.client(client_id), "client secrets")
        await throttle.check(ctx, *guesses, error="invalid_client")
        if mint.matches(secret, partner.secret_hash):
            return partner
        await throttle.failed(ctx, *guesses, error="invalid_client")
    refusal = InvalidClient("Unknown client or wrong secret. Send client_id and "
                            "client_secret with HTTP Basic or in the form.",
                            error="invalid_client")
    refusal.challenge = "Basic" if basic else None
    raise refusal


@decides(InvalidScope)
async def client_credentials(ctx: Context, partner: Partner, scope: str | None) -> dict:
    """A partner's own token: the scopes asked for (default every scope served)."""
    requested = (scope or "").split()
    unknown = sorted(set(requested) - ctx.scopes)
    if unknown:
        raise InvalidScope(f"Unknown scope(s) {', '.join(unknown)}; known: "
                           f"{', '.join(sorted(ctx.scopes))}.", field="body.scope",
                           error="invalid_scope")
    scopes = sorted(set(requested)) if requested else sorted(ctx.scopes)
    return await tokens.issue_token(ctx.store, ctx.clock, partner.partner_id, scopes,
                                    ctx.settings.token_ttl)


def _invalid_grant(detail: str, field: str = "body.code") -> InvalidGrant:
    return InvalidGrant(detail, field=field, error="invalid_grant")


def _required(name: str, grant: str) -> ValidationFailed:
    return ValidationFailed(f"{name} is required for grant_type {grant}.", field=f"body.{name}",
                            error="invalid_request")


@decides(ValidationFailed, InvalidGrant)
async def exchange_code(ctx: Context, partner: Partner, form: dict) -> dict:
    """The authorization_code grant: a code for a customer-bound token and a refresh token.

    Only a correct presentation (this client, the redirect URI and the PKCE verifier the code
    was issued for) spends the code, or, if it was spent, revokes what it gave: a leaked code
    presented by anyone else is refused and changes nothing."""
    for name in ("code", "redirect_uri"):
        if not form.get(name):
            raise _required(name, "authorization_code")
    code_hash = mint.digest(form["code"])
    code = await ctx.store.consents.code(code_hash)
    if code is None or code["partner_id"] != partner.partner_id:
        raise _invalid_grant("The code is not one this sandbox issued to this client.")
    if form["redirect_uri"] != code["redirect_uri"]:
        raise _invalid_grant("redirect_uri differs from the one the code was sent to.",
                             field="body.redirect_uri")
    verifier = form.get("code_verifier")
    if not verifier or not pkce_matches(verifier, code["code_challenge"] or ""):
        raise _invalid_grant("code_verifier does not match the PKCE code_challenge.",
                             field="body.code_verifier")
    if code["used"]:
        await ctx.store.consents.revoke_family(code_hash)
        raise _invalid_grant(_USED_CODE)
    if ctx.clock.timestamp() >= code["expires_at"]:
        raise _invalid_grant("The code has expired; codes live five minutes.")
    answer, token, refresh_row = await _consent_token(ctx, partner, code["consent_id"],
                                                      code_hash)
    if await ctx.store.consents.take_code(code_hash, token, refresh_row) != "taken":
        raise _invalid_grant(_USED_CODE)  # spent meanwhile by a request just as correct
    return answer


_USED_CODE = "The code was used already; the tokens it gave are revoked."


@decides(ValidationFailed, InvalidGrant)
async def refresh(ctx: Context, partner: Partner, form: dict) -> dict:
    """The refresh_token grant: a new access token and a new refresh token on the same, still
    live, consent. A refresh token works once; presented again, it revokes its family."""
    if not form.get("refresh_token"):
        raise _required("refresh_token", "refresh_token")
    token_hash = mint.digest(form["refresh_token"])
    row = await ctx.store.consents.refresh_token(token_hash)
    if row is None or row["partner_id"] != partner.partner_id or row["revoked"]:
        raise _invalid_grant("The refresh token is not a live one of this client.",
                             field="body.refresh_token")
    answer, token, refresh_row = await _consent_token(ctx, partner, row["consent_id"],
                                                      row["code_hash"])
    outcome = await ctx.store.consents.rotate_refresh(token_hash, token, refresh_row)
    if outcome == "reused":
        raise _invalid_grant("The refresh token was used already (each one works once: use "
                             "the one the last refresh answered); every token of its family "
                             "is revoked.", field="body.refresh_token")
    if outcome != "rotated":
        raise _invalid_grant("The refresh token is not a live one of this client.",
                             field="body.refresh_token")
    return answer


@decides(InvalidGrant)
async def _consent_token(ctx: Context, partner: Partner, consent_id: str,
                         code_hash: str) -> tuple[dict, Token, dict | None]:
    consent = await ctx.store.consents.get(partner.partner_id, consent_id)
    status = consents.effective_status(consent, ctx.now_for(consent.clock_offset_s))
    if status != consents.AUTHORISED:
        raise _invalid_grant(f"Consent {consent_id} is {status}.")
    return tokens.new_token(ctx.clock, partner.partner_id,
                            consents.scopes_for(consent.permission_list),
                            ctx.settings.token_ttl, consent=consent, code_hash=code_hash)


# -- codes and where the customer goes back to --------------------------------------------------

@decides(InvalidRedirectUri)
def check_redirect_uri(partner: Partner, redirect_uri: str, field: str) -> None:
    if redirect_uri not in partner.redirect_uri_list:
        raise InvalidRedirectUri(f"{redirect_uri!r} is not a redirect URI registered for this "
                                 "partner (openbank-sandbox partner create --redirect-uri).",
                                 field=field)


def redirect_to(redirect_uri: str, **params: str | None) -> str:
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    return redirect_uri + ("&" if "?" in redirect_uri else "?") + query


async def code_for(ctx: Context, consent: Consent, redirect_uri: str, state: str | None,
                   challenge: str | None, method: str | None) -> dict:
    """Where the customer goes back to after deciding: with a code for an authorised consent,
    or with access_denied."""
    extra = {"state": state} if state else {}
    if consent.status != consents.AUTHORISED:
        return {"redirect_to": redirect_to(
                    redirect_uri, error="access_denied",
                    error_description="The customer refused the consent.", state=state),
                "error": "access_denied", **extra}
    code = mint.secret("ac_", 24)
    await ctx.store.consents.add_code({
        "code_hash": mint.digest(code), "partner_id": consent.partner_id,
        "consent_id": consent.consent_id, "customer_id": consent.customer_id,
        "redirect_uri": redirect_uri, "code_challenge": challenge,
        "code_challenge_method": method,
        "expires_at": int(ctx.clock.timestamp()) + CODE_TTL_S, "used": 0})
    return {"redirect_to": redirect_to(redirect_uri, code=code, state=state), "code": code,
            **extra}


# -- the customer's authorisation page ----------------------------------------------------------

@decides(ClientNotFound.named_in_request(), check_redirect_uri)
async def authorisation_request(ctx: Context, params: dict) -> tuple[
        Partner, Consent | None, tuple[str, str] | None]:
    """(partner, consent, None) for a request the page may serve; (partner, None, (error,
    description)) for one to send back to the partner's redirect URI. An unknown client or
    redirect URI is never redirected (RFC 6749 §4.1.2.1): it is refused here."""
    partner = await ctx.store.partners.by_client_id(params["client_id"])
    if partner is None:
        raise ClientNotFound(f"No client {params['client_id']!r}.", field="query.client_id")
    check_redirect_uri(partner, params["redirect_uri"], "query.redirect_uri")
    if params["response_type"] != "code":
        return partner, None, ("unsupported_response_type", "response_type must be code.")
    pkce = challenge_problem(params.get("code_challenge"), params.get("code_challenge_method"))
    if pkce is not None:
        return partner, None, ("invalid_request", pkce)
    consent = await ctx.store.consents.get(partner.partner_id, params["consent_id"])
    if consent is None:
        return partner, None, ("invalid_request", "No such consent for this client.")
    status = consents.effective_status(consent, ctx.now_for(consent.clock_offset_s))
    if status != consents.AWAITING:
        return partner, None, ("invalid_request", f"The consent is {status}.")
    return partner, consent, None


@decides(throttle.check, throttle.failed)
async def sign_in(ctx: Context, partner_id: str, username: str,
                  password: str) -> Customer | None:
    """The synthetic customer a mobile number or customer id stands for, with the password.
    A customer's failed passwords are counted, and past the limit every try is throttled."""
    if username.startswith("cus_"):
        customer = await ctx.store.bank.customer(partner_id, username)
    else:
        customer = await ctx.store.bank.customer_by_mobile(partner_id, username)
    if customer is None:
        return None
    guesses = (throttle.customer(partner_id, customer.customer_id), "passwords")
    await throttle.check(ctx, *guesses, field="body.password")
    if hmac.compare_digest(password.encode(), TEST_PASSWORD.encode()):
        return customer
    await throttle.failed(ctx, *guesses, field="body.password")
    return None


def ticket(partner: Partner, consent_id: str, customer_id: str, expires: int) -> str:
    """What the page carries between sign-in and the decision: signed with the partner's
    secret digest, so it cannot be made for another customer."""
    message = f"{consent_id}.{customer_id}.{expires}".encode()
    signature = hmac.new(partner.secret_hash.encode(), message, hashlib.sha256).hexdigest()
    return f"{customer_id}.{expires}.{signature}"


def ticket_customer(partner: Partner, consent_id: str, signed: str, now: float) -> str | None:
    """The customer a sign-in ticket stands for, if it is genuine and fresh."""
    try:
        customer_id, expires, _ = signed.split(".")
        fresh = now < int(expires)
    except ValueError:
        return None
    genuine = hmac.compare_digest(signed, ticket(partner, consent_id, customer_id, int(expires)))
    return customer_id if genuine and fresh else None
