"""Consents: a customer's permission for a partner to read named accounts, or pay from them,
for a period. Plain rules over rows; the store keeps them, the handlers call these.

A consent's status only moves forward:

    AWAITING_AUTHORISATION ──authorise──▶ AUTHORISED ──revoke──▶ REVOKED
            │                                  └──────expire──▶ EXPIRED
            ├──reject──▶ REJECTED
            └──expire──▶ EXPIRED

Expiry is not written by a timer: a consent whose `expires_at` has passed (by the partner's
clock) reads as EXPIRED from that moment, everywhere at once.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import urllib.parse

from sandbox.rules import ConflictingRequest, Refusal, UnknownResource

AWAITING = "AWAITING_AUTHORISATION"
AUTHORISED = "AUTHORISED"
REJECTED = "REJECTED"
REVOKED = "REVOKED"
EXPIRED = "EXPIRED"
STATUSES = (AWAITING, AUTHORISED, REJECTED, REVOKED, EXPIRED)

#: Where each status may go; nothing else is ever accepted.
TRANSITIONS = {
    AWAITING: {AUTHORISED, REJECTED, EXPIRED},
    AUTHORISED: {REVOKED, EXPIRED},
    REJECTED: set(),
    REVOKED: set(),
    EXPIRED: set(),
}

#: Permissions a consent can grant, and the OAuth2 scope a token bound to it gets for each.
PERMISSIONS = {
    "ReadAccounts": "accounts",
    "ReadBalances": "accounts",
    "ReadTransactions": "accounts",
    "InitiatePayments": "payments",
}

DEFAULT_VALIDITY = dt.timedelta(days=90)


class ConsentRefusal(Refusal):
    """A consent-bound token asked for what its consent does not cover (403)."""


def effective_status(consent: dict, now: dt.datetime) -> str:
    """The status as of `now`: a live consent past its expiry reads as EXPIRED."""
    status = consent["status"]
    if status in (AWAITING, AUTHORISED) and now >= dt.datetime.fromisoformat(
            consent["expires_at"]):
        return EXPIRED
    return status


def check_transition(consent: dict, target: str, now: dt.datetime) -> None:
    current = effective_status(consent, now)
    if target not in TRANSITIONS[current]:
        raise ConflictingRequest(
            "CONSENT_STATUS_CONFLICT",
            f"Consent {consent['consent_id']} is {current}; it cannot become {target}.")


def scopes_for(permissions: list[str]) -> list[str]:
    return sorted({PERMISSIONS[p] for p in permissions})


def covers(consent: dict, permission: str, now: dt.datetime, *,
           account_id: str | None = None, from_date: str | None = None,
           to_date: str | None = None, account_field: str = "path.account_id") -> None:
    """Raises ConsentRefusal unless the (authorised, live) consent grants `permission`, on
    `account_id`, for transactions between `from_date` and `to_date` (ISO dates)."""
    status = effective_status(consent, now)
    if status != AUTHORISED:
        raise ConsentRefusal("CONSENT_NOT_ACTIVE", f"Consent {consent['consent_id']} is {status}.")
    if permission not in consent["permissions"]:
        raise ConsentRefusal(
            "PERMISSION_NOT_GRANTED",
            f"Consent {consent['consent_id']} does not grant {permission} (it grants "
            f"{', '.join(consent['permissions'])}).")
    if account_id is not None and account_id not in consent["account_ids"]:
        raise ConsentRefusal(
            "ACCOUNT_NOT_IN_CONSENT",
            f"Account {account_id} is not among the accounts of consent "
            f"{consent['consent_id']}.", field=account_field)
    first, last = consent["transaction_from_date"], consent["transaction_to_date"]
    if first and from_date is not None and from_date < first:
        raise ConsentRefusal("OUTSIDE_CONSENT_PERIOD", f"Consent {consent['consent_id']} covers "
                             f"transactions from {first}.", field="query.from_date")
    if last and to_date is not None and to_date > last:
        raise ConsentRefusal("OUTSIDE_CONSENT_PERIOD", f"Consent {consent['consent_id']} covers "
                             f"transactions to {last}.", field="query.to_date")


def s256_challenge(verifier: str) -> str:
    """RFC 7636: BASE64URL(SHA256(verifier)), unpadded."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def new_pkce() -> tuple[str, str]:
    """(verifier, S256 challenge): what a client makes before sending a customer to authorise."""
    verifier = secrets.token_urlsafe(48)
    return verifier, s256_challenge(verifier)


def pkce_matches(verifier: str, challenge: str, method: str) -> bool:
    """RFC 7636: S256 compares the verifier's challenge with the one sent; plain, as is."""
    computed = s256_challenge(verifier) if method == "S256" else verifier
    return hmac.compare_digest(computed, challenge)


# -- the flow, over the store ------------------------------------------------------------------

CODE_TTL_S = 300  # an authorization code is exchanged within five minutes, once


def new_consent_id() -> str:
    return "csn_" + secrets.token_hex(8)


async def create(store, now: dt.datetime, partner_id: str, request: dict) -> dict:
    permissions = list(dict.fromkeys(request["permissions"]))
    try:
        expires_at = (dt.datetime.fromisoformat(request["expires_at"]) if "expires_at" in request
                      else now + DEFAULT_VALIDITY)
        if expires_at.tzinfo is None:
            raise ValueError("no offset")
    except ValueError:
        raise Refusal("INVALID_EXPIRY", "expires_at must be a date-time with an offset, "
                      "e.g. 2027-02-25T00:00:00+08:00.", field="body.expires_at") from None
    if not now < expires_at <= now + dt.timedelta(days=366):
        raise Refusal("INVALID_EXPIRY", "expires_at must be in the future and within a "
                      "year.", field="body.expires_at")
    first, last = request.get("transaction_from_date"), request.get("transaction_to_date")
    if first and last and first > last:
        raise Refusal("INVALID_DATE_RANGE", "transaction_from_date is after "
                      "transaction_to_date.", field="body.transaction_from_date")
    offered = list(dict.fromkeys(request.get("account_ids", [])))
    for account_id in offered:
        if await store.account(partner_id, account_id) is None:
            raise Refusal("ACCOUNT_NOT_FOUND", f"No account {account_id} for this partner.",
                          field="body.account_ids")
    stamp = now.isoformat(timespec="microseconds")
    consent = {
        "consent_id": new_consent_id(), "partner_id": partner_id, "status": AWAITING,
        "permissions": " ".join(permissions), "customer_id": None,
        "account_ids": " ".join(offered), "expires_at": expires_at.isoformat(),
        "transaction_from_date": first, "transaction_to_date": last,
        "created_at": stamp, "status_updated_at": stamp,
    }
    await store.add_consent(consent)
    return consent


def parse(row: dict) -> dict:
    """A stored consent with its lists as lists."""
    return {**row, "permissions": row["permissions"].split(),
            "account_ids": row["account_ids"].split()}


async def decide(store, clock_now, partner_id: str, consent_id: str, customer: dict,
                 decision: str, account_ids: list[str] | None) -> dict:
    """The customer's answer: AUTHORISED with the accounts picked (theirs, and offered), or
    REJECTED. Refused unless the consent still awaits authorisation."""
    accounts = await store.accounts(partner_id, customer_id=customer["customer_id"], after=0,
                                    limit=1000)
    own = [a["account_id"] for a in accounts]

    def apply(row: dict) -> dict:
        now = clock_now(row)
        target = AUTHORISED if decision == "approve" else REJECTED
        check_transition(parse(row), target, now)
        changes = {"status": target, "customer_id": customer["customer_id"],
                   "status_updated_at": now.isoformat(timespec="microseconds")}
        if target == AUTHORISED:
            offered = row["account_ids"].split() or own
            available = [a for a in offered if a in own]
            picked = available if account_ids is None else list(dict.fromkeys(account_ids))
            outside = [a for a in picked if a not in available]
            if outside:
                raise Refusal("ACCOUNT_NOT_OFFERED", f"Account {outside[0]} is not one of the "
                              "customer's accounts this consent offers.",
                              field="body.account_ids")
            if not picked:
                raise Refusal("NO_ACCOUNTS", "The customer has none of the accounts this "
                              "consent offers.")
            changes["account_ids"] = " ".join(picked)
        return changes

    row = await store.change_consent(partner_id, consent_id, apply)
    if row is None:
        raise UnknownResource("CONSENT_NOT_FOUND", f"No consent {consent_id} for this "
                              "partner.", field="path.consent_id")
    return row


async def issue_code(store, clock_timestamp: float, partner_id: str, consent: dict,
                     redirect_uri: str, challenge: str | None, method: str | None) -> str:
    code = "ac_" + secrets.token_urlsafe(24)
    await store.add_authorization_code({
        "code_hash": hashlib.sha256(code.encode()).hexdigest(), "partner_id": partner_id,
        "consent_id": consent["consent_id"], "customer_id": consent["customer_id"],
        "redirect_uri": redirect_uri, "code_challenge": challenge,
        "code_challenge_method": (method or "plain") if challenge else None,
        "expires_at": int(clock_timestamp) + CODE_TTL_S, "used": 0})
    return code


def redirect_to(redirect_uri: str, **params: str | None) -> str:
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    return redirect_uri + ("&" if "?" in redirect_uri else "?") + query


def require(token_info: dict, clock, permission: str, **scope) -> dict:
    """The consent behind a customer-bound token, if it covers `permission` (and the
    `account_id`, `from_date`, `to_date` given); ConsentRefusal otherwise. A client-credentials
    token has no customer, so it can never read a customer's data."""
    consent = token_info.get("consent")
    if consent is None:
        raise ConsentRefusal(
            "CONSENT_REQUIRED", f"This needs a customer's consent with {permission}: use a token "
            "from the authorization_code grant (or `openbank-sandbox token`), not a "
            "client-credentials one.")
    covers(consent, permission, clock.now_for(consent), **scope)
    return consent
