"""Consents: a customer's permission for a partner to read named accounts, or pay from them,
for a period. Plain rules over consent records; `sandbox.consents` loads and writes them.

A consent's status only moves forward:

    AWAITING_AUTHORISATION ──authorise──▶ AUTHORISED ──revoke──▶ REVOKED
            │                                  └──────expire──▶ EXPIRED
            ├──reject──▶ REJECTED
            └──expire──▶ EXPIRED

Expiry is not written by a timer: a consent whose `expires_at` has passed (by the partner's
clock) reads as EXPIRED from that moment, everywhere at once.
"""

from __future__ import annotations

import datetime as dt

from sandbox.records import Consent
from sandbox.refusals import (
    AccountNotInConsent,
    AccountNotOffered,
    ConsentNotActive,
    ConsentRequired,
    ConsentStatusConflict,
    CustomerNotInConsent,
    InvalidDateRange,
    InvalidExpiry,
    NoAccounts,
    OutsideConsentPeriod,
    PartnerTokenRequired,
    PermissionNotGranted,
    decides,
)

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
LONGEST_VALIDITY = dt.timedelta(days=366)


def effective_status(consent: Consent, now: dt.datetime) -> str:
    """The status as of `now`: a live consent past its expiry reads as EXPIRED."""
    if consent.status in (AWAITING, AUTHORISED) and now >= dt.datetime.fromisoformat(
            consent.expires_at):
        return EXPIRED
    return consent.status


@decides(ConsentStatusConflict)
def check_transition(consent: Consent, target: str, now: dt.datetime) -> None:
    current = effective_status(consent, now)
    if target not in TRANSITIONS[current]:
        raise ConsentStatusConflict(
            f"Consent {consent.consent_id} is {current}; it cannot become {target}.")


def scopes_for(permissions: list[str]) -> list[str]:
    return sorted({PERMISSIONS[p] for p in permissions})


@decides(ConsentNotActive)
def _check_live(consent: Consent, now: dt.datetime) -> None:
    status = effective_status(consent, now)
    if status != AUTHORISED:
        raise ConsentNotActive(f"Consent {consent.consent_id} is {status}.")


@decides(_check_live, PermissionNotGranted, AccountNotInConsent, OutsideConsentPeriod)
def covers(consent: Consent, permission: str, now: dt.datetime, *,
           account_id: str | None = None, from_date: str | None = None,
           to_date: str | None = None, account_field: str = "path.account_id") -> None:
    """Refuses unless the (authorised, live) consent grants `permission`, on `account_id`,
    for transactions between `from_date` and `to_date` (ISO dates)."""
    _check_live(consent, now)
    if permission not in consent.permission_list:
        raise PermissionNotGranted(
            f"Consent {consent.consent_id} does not grant {permission} (it grants "
            f"{', '.join(consent.permission_list)}).")
    if account_id is not None and account_id not in consent.account_id_list:
        raise AccountNotInConsent(
            f"Account {account_id} is not among the accounts of consent "
            f"{consent.consent_id}.", field=account_field)
    first, last = consent.transaction_from_date, consent.transaction_to_date
    if first and from_date is not None and from_date < first:
        raise OutsideConsentPeriod(f"Consent {consent.consent_id} covers transactions from "
                                   f"{first}.", field="query.from_date")
    if last and to_date is not None and to_date > last:
        raise OutsideConsentPeriod(f"Consent {consent.consent_id} covers transactions to "
                                   f"{last}.", field="query.to_date")


@decides(ConsentRequired, covers)
def require(consent: Consent | None, permission: str, now: dt.datetime | None,
            **scope) -> Consent:
    """The consent behind a customer-bound token, if it covers `permission` (and the
    `account_id`, `from_date`, `to_date` given). A client-credentials token has no customer,
    so it can never read a customer's data."""
    if consent is None:
        raise ConsentRequired(
            f"This needs a customer's consent with {permission}: use a token from the "
            "authorization_code grant (or `openbank-sandbox token`), not a client-credentials "
            "one.")
    covers(consent, permission, now, **scope)
    return consent


@decides(ConsentRequired, _check_live)
def live(consent: Consent | None, now: dt.datetime | None) -> Consent:
    """The consent behind a customer-bound token, if it is authorised and live, whatever it
    permits: what seeing the customer's own records (its payments) needs. Which records it
    sees is for the caller: those of the consent's accounts."""
    if consent is None:
        raise ConsentRequired("This is a customer's record: use a token from the "
                              "authorization_code grant (or `openbank-sandbox token`), not a "
                              "client-credentials one.")
    _check_live(consent, now)
    return consent


@decides(PartnerTokenRequired)
def partner_only(consent: Consent | None) -> None:
    """Partner-level configuration and logs (the callback, its delivery log) are the partner's
    own: a customer's token, whatever its consent, cannot reach them."""
    if consent is not None:
        raise PartnerTokenRequired(
            "This is the partner's own configuration: use the partner's client-credentials "
            "token (grant_type=client_credentials), not a customer's token.")


@decides(CustomerNotInConsent)
def check_customer(consent: Consent, customer_id: str, field: str) -> None:
    if customer_id != consent.customer_id:
        raise CustomerNotInConsent(f"Customer {customer_id} did not give consent "
                                   f"{consent.consent_id}.", field=field)


@decides(InvalidExpiry, InvalidDateRange)
def new_consent(request: dict, *, consent_id: str, partner_id: str,
                now: dt.datetime) -> Consent:
    """The consent a partner asks for, awaiting the customer (the accounts it offers are
    checked to be the partner's by the caller, which knows them)."""
    try:
        expires_at = (dt.datetime.fromisoformat(request["expires_at"]) if "expires_at" in request
                      else now + DEFAULT_VALIDITY)
        if expires_at.tzinfo is None:
            raise ValueError("no offset")
    except ValueError:
        raise InvalidExpiry("expires_at must be a date-time with an offset, e.g. "
                            "2027-02-25T00:00:00+08:00.", field="body.expires_at") from None
    if not now < expires_at <= now + LONGEST_VALIDITY:
        raise InvalidExpiry("expires_at must be in the future and within a year.",
                            field="body.expires_at")
    first, last = request.get("transaction_from_date"), request.get("transaction_to_date")
    if first and last and first > last:
        raise InvalidDateRange("transaction_from_date is after transaction_to_date.",
                               field="body.transaction_from_date")
    stamp = now.isoformat(timespec="microseconds")
    return Consent(
        consent_id=consent_id, partner_id=partner_id, status=AWAITING,
        permissions=" ".join(dict.fromkeys(request["permissions"])), customer_id=None,
        account_ids=" ".join(dict.fromkeys(request.get("account_ids", []))),
        expires_at=expires_at.isoformat(), transaction_from_date=first,
        transaction_to_date=last, created_at=stamp, status_updated_at=stamp)


@decides(check_transition, AccountNotOffered, NoAccounts)
def authorise(consent: Consent, *, customer_id: str, own_accounts: list[str], approve: bool,
              picked: list[str] | None, now: dt.datetime) -> Consent:
    """The customer's answer: AUTHORISED with the accounts picked (theirs, and offered), or
    REJECTED. Refused unless the consent still awaits authorisation."""
    target = AUTHORISED if approve else REJECTED
    check_transition(consent, target, now)
    changes = {"status": target, "customer_id": customer_id,
               "status_updated_at": now.isoformat(timespec="microseconds")}
    if target == AUTHORISED:
        offered = consent.account_id_list or own_accounts
        available = [a for a in offered if a in own_accounts]
        chosen = available if picked is None else list(dict.fromkeys(picked))
        outside = [a for a in chosen if a not in available]
        if outside:
            raise AccountNotOffered(f"Account {outside[0]} is not one of the customer's "
                                    "accounts this consent offers.", field="body.account_ids")
        if not chosen:
            raise NoAccounts("The customer has none of the accounts this consent offers.")
        changes["account_ids"] = " ".join(chosen)
    return consent.changed(**changes)


@decides(check_transition)
def revoke(consent: Consent, now: dt.datetime) -> Consent:
    check_transition(consent, REVOKED, now)
    return consent.changed(status=REVOKED,
                           status_updated_at=now.isoformat(timespec="microseconds"))
