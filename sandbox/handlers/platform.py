"""Platform contract: the OAuth2 token endpoint, the customer's authorisation page, and the list
of served contracts. OAuth2 itself is `security/oauth.py`; this turns HTTP into its calls."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote

from connexion import request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from sandbox import consents, pages
from sandbox.context import Context
from sandbox.handlers import respond
from sandbox.refusals import InvalidClient, decides
from sandbox.security import oauth


@decides(InvalidClient)
def _client_credentials(form: dict) -> tuple[str, str, bool]:
    """(client_id, secret, sent with HTTP Basic)."""
    header = request.headers.get("authorization")
    if header and header[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
            client_id, _, secret = decoded.partition(":")
        except (binascii.Error, UnicodeDecodeError):
            refusal = InvalidClient("The Basic credentials are not valid base64 of "
                                    "client_id:client_secret.", error="invalid_client")
            refusal.challenge = "Basic"
            raise refusal from None
        # RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
        return unquote(client_id), unquote(secret), True
    return form.get("client_id") or "", form.get("client_secret") or "", False


@decides(_client_credentials, oauth.authenticate_client, oauth.client_credentials,
         oauth.exchange_code, oauth.refresh)
async def issue_token(ctx: Context, body: dict) -> Response:
    client_id, secret, basic = _client_credentials(body)
    partner = await oauth.authenticate_client(ctx, client_id, secret, basic=basic)
    grant_type = body.get("grant_type")
    if grant_type == "authorization_code":
        token = await oauth.exchange_code(ctx, partner, body)
    elif grant_type == "refresh_token":
        token = await oauth.refresh(ctx, partner, body)
    else:
        token = await oauth.client_credentials(ctx, partner, body.get("scope"))
    return respond(token, 200, oauth.NO_STORE)


# -- the customer's authorisation page ---------------------------------------------------------

_FLOW = ("response_type", "client_id", "redirect_uri", "consent_id", "state", "code_challenge",
         "code_challenge_method", "scope")


def _back(params: dict, error: str, description: str) -> RedirectResponse:
    return RedirectResponse(oauth.redirect_to(params["redirect_uri"], error=error,
                                              error_description=description,
                                              state=params.get("state")), status_code=302,
                            headers=pages.HEADERS)


async def _page(ctx: Context, partner, consent, params: dict, error: str | None = None):
    customers = await ctx.store.bank.customers(partner.partner_id, after=0, limit=20)
    shown = [c for c in customers if c.kind == "individual"][:5]
    return HTMLResponse(pages.sign_in(partner.name, consent, params, shown, error=error),
                        headers=pages.HEADERS)


@decides(oauth.authorisation_request)
async def authorize_page(ctx: Context, **query) -> Response:
    params = {k: query.get(k) for k in _FLOW}
    partner, consent, error = await oauth.authorisation_request(ctx, params)
    if error is not None:
        return _back(params, *error)
    return await _page(ctx, partner, consent, params)


@decides(oauth.authorisation_request, consents.rules.authorise, oauth.sign_in)
async def authorize_submit(ctx: Context, body: dict) -> Response:
    params = {k: body.get(k) for k in _FLOW}
    partner, consent, error = await oauth.authorisation_request(ctx, params)
    if error is not None:
        return _back(params, *error)
    if body.get("ticket") and body.get("decision"):
        customer_id = oauth.ticket_customer(partner, consent.consent_id, body["ticket"],
                                            ctx.clock.timestamp())
        if customer_id is None:
            return await _page(ctx, partner, consent, params,
                               error="会话已过期，请重新登录 Your sign-in expired; sign in again.")
        customer = await ctx.store.bank.customer(partner.partner_id, customer_id)
        consent = await consents.authorise(ctx.store, ctx.now_for, partner.partner_id,
                                           consent.consent_id, customer, body["decision"],
                                           body.get("account_id") or None)
        result = await oauth.code_for(ctx, consent, params["redirect_uri"], params.get("state"),
                                      params.get("code_challenge"),
                                      params.get("code_challenge_method"))
        return RedirectResponse(result["redirect_to"], status_code=302, headers=pages.HEADERS)
    customer = await oauth.sign_in(ctx, partner.partner_id, body.get("username") or "",
                                   body.get("password") or "")
    if customer is None:
        return await _page(ctx, partner, consent, params,
                           error="手机号/客户号或密码错误 Unknown customer or wrong password.")
    accounts = await ctx.store.bank.accounts(partner.partner_id,
                                             customer_id=customer.customer_id, after=0,
                                             limit=1000)
    offered = consent.account_id_list
    accounts = [a for a in accounts if not offered or a.account_id in offered]
    expires = int(ctx.clock.timestamp()) + oauth.TICKET_TTL_S
    signed = oauth.ticket(partner, consent.consent_id, customer.customer_id, expires)
    return HTMLResponse(pages.pick_accounts(partner.name, consent, params, customer, accounts,
                                            signed), headers=pages.HEADERS)


async def list_contracts(ctx: Context) -> Response:
    return respond(ctx.contracts)
