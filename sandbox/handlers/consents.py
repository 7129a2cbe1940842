"""Consents contract: create, read, list and revoke consents; the headless authorisation."""

from __future__ import annotations

from starlette.responses import Response

from sandbox import consents
from sandbox.context import Context
from sandbox.handlers import respond
from sandbox.records import Consent
from sandbox.refusals import ConsentNotFound, CustomerNotFound, decides, found
from sandbox.resources import consent_resource
from sandbox.security import oauth

BASE_PATH = "/consents/v1"


def _shown(ctx: Context, consent: Consent) -> dict:
    return consent_resource(consent, ctx.now_for(consent.clock_offset_s))


@decides(consents.create)
async def create_consent(ctx: Context, token_info: dict, body: dict) -> Response:
    partner = await ctx.store.partners.get(token_info["sub"])
    consent = await consents.create(ctx.store, ctx.now_for(partner.clock_offset_s),
                                    partner.partner_id, body)
    return respond(_shown(ctx, consent), 201,
                   {"Location": f"{BASE_PATH}/consents/{consent.consent_id}"})


async def list_consents(ctx: Context, token_info: dict, limit: int = 20,
                        status: str | None = None) -> Response:
    found = await ctx.store.consents.list(token_info["sub"], status=status, limit=limit)
    return respond({"items": [_shown(ctx, consent) for consent in found]})


@decides(ConsentNotFound)
async def _consent(ctx: Context, partner_id: str, consent_id: str) -> Consent:
    return found(await ctx.store.consents.get(partner_id, consent_id), ConsentNotFound,
                 f"No consent {consent_id} for this partner.", field="path.consent_id")


@decides(_consent)
async def get_consent(ctx: Context, token_info: dict, consent_id: str) -> Response:
    return respond(_shown(ctx, await _consent(ctx, token_info["sub"], consent_id)))


@decides(consents.revoke)
async def revoke_consent(ctx: Context, token_info: dict, consent_id: str) -> Response:
    consent = await consents.revoke(ctx.store, ctx.now_for, token_info["sub"], consent_id)
    return respond(_shown(ctx, consent))


@decides(oauth.check_redirect_uri, _consent, CustomerNotFound.named_in_request(),
         consents.authorise)
async def authorise_headless(ctx: Context, token_info: dict, consent_id: str,
                             body: dict) -> Response:
    partner = await ctx.store.partners.get(token_info["sub"])
    redirect_uri = body.get("redirect_uri") or partner.redirect_uri_list[0]
    oauth.check_redirect_uri(partner, redirect_uri, "body.redirect_uri")
    await _consent(ctx, partner.partner_id, consent_id)
    if "customer_id" in body:
        customer = await ctx.store.bank.customer(partner.partner_id, body["customer_id"])
    else:
        first = await ctx.store.bank.customers(partner.partner_id, after=0, limit=1)
        customer = first[0] if first else None
    if customer is None:
        raise CustomerNotFound(f"No customer {body.get('customer_id')} for this partner.",
                               field="body.customer_id")
    consent = await consents.authorise(ctx.store, ctx.now_for, partner.partner_id, consent_id,
                                       customer, body["decision"], body.get("account_ids"))
    result = await oauth.code_for(ctx, consent, redirect_uri, body.get("state"),
                                  body.get("code_challenge"), body.get("code_challenge_method"))
    return respond({**result, "redirect_uri": redirect_uri,
                    "customer_id": customer.customer_id})
