"""The headless consent path as a partner's program walks it, over HTTP: the quickest way from
client credentials to a customer-bound token. Used by `openbank-sandbox token`, and by tests
and load tests that need customers' tokens."""

from __future__ import annotations

import secrets

import httpx

from sandbox.rules.consents import PERMISSIONS
from sandbox.security.pkce import s256_challenge


class ConsentFlowError(Exception):
    """A step of the flow was refused; the message names the step and the sandbox's answer."""


def _check(response: httpx.Response, step: str) -> dict:
    if response.status_code >= 400:
        try:
            body = response.json()
            reason = f"{body.get('code')}: {body.get('detail')}"
        except ValueError:
            reason = response.text[:200]
        raise ConsentFlowError(f"{step} failed with {response.status_code} ({reason})")
    return response.json()


def authorised_code(client: httpx.Client, client_id: str, client_secret: str, *,
                    customer_id: str | None = None, permissions: list[str] | None = None,
                    account_ids: list[str] | None = None,
                    verifier: str | None = None) -> dict:
    """{"code", "redirect_uri", "code_verifier", "consent_id", "customer_id"}: a consent for
    `permissions` (all by default) approved headlessly by `customer_id` (the partner's first
    customer by default), with a PKCE S256 challenge of `verifier` (a new one by default)."""
    auth = (client_id, client_secret)
    token = _check(client.post("/oauth2/token", auth=auth, data={
        "grant_type": "client_credentials", "scope": "consents"}), "client credentials")
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    request = {"permissions": permissions or list(PERMISSIONS)}
    consent = _check(client.post("/consents/v1/consents", json=request, headers=headers),
                     "creating the consent")
    verifier = verifier or secrets.token_urlsafe(48)
    challenge = s256_challenge(verifier)
    decision = {"decision": "approve", "code_challenge": challenge,
                "code_challenge_method": "S256"}
    if customer_id:
        decision["customer_id"] = customer_id
    if account_ids:
        decision["account_ids"] = account_ids
    result = _check(client.post(
        f"/consents/v1/consents/{consent['consent_id']}/authorisation", json=decision,
        headers=headers), "authorising the consent")
    return {"code": result["code"], "redirect_uri": result["redirect_uri"],
            "code_verifier": verifier, "consent_id": consent["consent_id"],
            "customer_id": result["customer_id"]}


def customer_token(base_url: str, client_id: str, client_secret: str, *,
                   customer_id: str | None = None, permissions: list[str] | None = None,
                   account_ids: list[str] | None = None,
                   client: httpx.Client | None = None) -> dict:
    """{"access_token", "refresh_token", "consent_id", "customer_id", ...}: the code of
    `authorised_code` exchanged at the token endpoint."""
    own = client is None
    client = client or httpx.Client(base_url=base_url, timeout=30)
    try:
        code = authorised_code(client, client_id, client_secret, customer_id=customer_id,
                               permissions=permissions, account_ids=account_ids)
        return _check(client.post("/oauth2/token", auth=(client_id, client_secret), data={
            "grant_type": "authorization_code", "code": code["code"],
            "redirect_uri": code["redirect_uri"], "code_verifier": code["code_verifier"]}),
            "exchanging the code")
    except httpx.HTTPError as exc:
        raise ConsentFlowError(f"cannot reach the sandbox at {base_url}: {exc}") from exc
    finally:
        if own:
            client.close()
