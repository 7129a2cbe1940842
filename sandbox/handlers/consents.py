"""Consents contract: create, read, list and revoke consents; the headless authorisation."""

from __future__ import annotations

from connexion import request
from starlette.responses import Response

from sandbox import consents
from sandbox.handlers import respond
from sandbox.problems import NotFound, Unprocessable

BASE_PATH = "/consents/v1"


def consent_resource(row: dict, now) -> dict:
    consent = consents.parse(row)
    out = {"consent_id": consent["consent_id"],
           "status": consents.effective_status(consent, now),
           "permissions": consent["permissions"], "account_ids": consent["account_ids"],
           "expires_at": consent["expires_at"], "created_at": consent["created_at"],
           "status_updated_at": consent["status_updated_at"]}
    if consent["customer_id"]:
        out["customer_id"] = consent["customer_id"]
    for key in ("transaction_from_date", "transaction_to_date"):
        if consent[key]:
            out[key] = consent[key]
    return out


async def _partner(partner_id: str) -> dict:
    return await request.state.store.partner(partner_id)


async def create_consent(token_info: dict, body: dict) -> Response:
    state = request.state
    partner = await _partner(token_info["sub"])
    row = await consents.create(state.store, state.clock.now_for(partner), partner["partner_id"],
                                body)
    row = await state.store.consent(partner["partner_id"], row["consent_id"])
    return respond(consent_resource(row, state.clock.now_for(row)), 201,
                   {"Location": f"{BASE_PATH}/consents/{row['consent_id']}"})


async def list_consents(token_info: dict, limit: int = 20, status: str | None = None) -> Response:
    state = request.state
    rows = await state.store.consents(token_info["sub"], status=status, limit=limit)
    return respond({"items": [consent_resource(r, state.clock.now_for(r)) for r in rows]})


async def _consent(partner_id: str, consent_id: str) -> dict:
    row = await request.state.store.consent(partner_id, consent_id)
    if row is None:
        raise NotFound("CONSENT_NOT_FOUND", f"No consent {consent_id} for this partner.",
                       field="path.consent_id")
    return row


async def get_consent(token_info: dict, consent_id: str) -> Response:
    row = await _consent(token_info["sub"], consent_id)
    return respond(consent_resource(row, request.state.clock.now_for(row)))


async def revoke_consent(token_info: dict, consent_id: str) -> Response:
    state = request.state

    def apply(row: dict) -> dict:
        now = state.clock.now_for(row)
        consents.check_transition(consents.parse(row), consents.REVOKED, now)
        return {"status": consents.REVOKED,
                "status_updated_at": now.isoformat(timespec="microseconds")}

    row = await state.store.change_consent(token_info["sub"], consent_id, apply)
    if row is None:
        raise NotFound("CONSENT_NOT_FOUND", f"No consent {consent_id} for this partner.",
                       field="path.consent_id")
    return respond(consent_resource(row, state.clock.now_for(row)))


def check_redirect_uri(partner: dict, redirect_uri: str, field: str) -> None:
    if redirect_uri not in partner["redirect_uris"].split():
        raise Unprocessable("INVALID_REDIRECT_URI", f"{redirect_uri!r} is not a redirect URI "
                         "registered for this partner (openbank-sandbox partner create "
                         "--redirect-uri).", field=field)


async def authorise_headless(token_info: dict, consent_id: str, body: dict) -> Response:
    state = request.state
    partner = await _partner(token_info["sub"])
    redirect_uri = body.get("redirect_uri") or partner["redirect_uris"].split()[0]
    check_redirect_uri(partner, redirect_uri, "body.redirect_uri")
    await _consent(partner["partner_id"], consent_id)
    if "customer_id" in body:
        customer = await state.store.customer(partner["partner_id"], body["customer_id"])
    else:
        first = await state.store.customers(partner["partner_id"], after=0, limit=1)
        customer = first[0] if first else None
    if customer is None:
        raise Unprocessable("CUSTOMER_NOT_FOUND", f"No customer {body.get('customer_id')} for "
                            "this partner.", field="body.customer_id")
    row = await consents.decide(state.store, state.clock.now_for, partner["partner_id"],
                                consent_id, customer, body["decision"], body.get("account_ids"))
    result = await authorisation_result(row, partner["partner_id"], redirect_uri,
                                        body.get("state"), body.get("code_challenge"),
                                        body.get("code_challenge_method"))
    return respond({**result, "redirect_uri": redirect_uri,
                    "customer_id": customer["customer_id"]})


async def authorisation_result(row: dict, partner_id: str, redirect_uri: str,
                               state_param: str | None, challenge: str | None,
                               method: str | None) -> dict:
    """Where the customer goes back to: a code for an authorised consent, or access_denied."""
    if row["status"] != consents.AUTHORISED:
        return {"redirect_to": consents.redirect_to(
                    redirect_uri, error="access_denied",
                    error_description="The customer refused the consent.", state=state_param),
                "error": "access_denied", **({"state": state_param} if state_param else {})}
    code = await consents.issue_code(request.state.store, request.state.clock.timestamp(),
                                     partner_id, row, redirect_uri, challenge, method)
    return {"redirect_to": consents.redirect_to(redirect_uri, code=code, state=state_param),
            "code": code, **({"state": state_param} if state_param else {})}
