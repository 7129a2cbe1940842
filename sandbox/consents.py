"""Consents as partners and customers move them, over the store: a partner asks, the customer
authorises or refuses, the partner revokes. The rules (statuses, what a consent covers) are
`rules.consents`; this loads, lets them decide, and writes."""

from __future__ import annotations

import datetime as dt
import typing as t

from sandbox import mint
from sandbox.records import Consent, Customer
from sandbox.refusals import AccountNotFound, ConsentNotFound, decides
from sandbox.rules import consents as rules
from sandbox.store import Store


@decides(rules.new_consent, AccountNotFound.named_in_request())
async def create(store: Store, now: dt.datetime, partner_id: str, request: dict) -> Consent:
    """A consent awaiting the customer; the accounts it offers must be the partner's."""
    consent = rules.new_consent(request, consent_id=mint.record_id("csn"), partner_id=partner_id,
                                now=now)
    for account_id in consent.account_id_list:
        if await store.bank.account(partner_id, account_id) is None:
            raise AccountNotFound(f"No account {account_id} for this partner.",
                                  field="body.account_ids")
    await store.consents.add(consent)
    return await store.consents.get(partner_id, consent.consent_id)


@decides(rules.authorise, ConsentNotFound)
async def authorise(store: Store, now_for: t.Callable[[int], dt.datetime], partner_id: str,
                    consent_id: str, customer: Customer, decision: str,
                    account_ids: list[str] | None) -> Consent:
    """The customer's answer: AUTHORISED with the accounts picked (theirs, and offered), or
    REJECTED."""
    own = [a.account_id for a in await store.bank.accounts(
        partner_id, customer_id=customer.customer_id, after=0, limit=1000)]
    consent = await store.consents.change(partner_id, consent_id, lambda consent: rules.authorise(
        consent, customer_id=customer.customer_id, own_accounts=own,
        approve=decision == "approve", picked=account_ids, now=now_for(consent.clock_offset_s)))
    if consent is None:
        raise ConsentNotFound(f"No consent {consent_id} for this partner.",
                              field="path.consent_id")
    return consent


@decides(rules.revoke, ConsentNotFound)
async def revoke(store: Store, now_for: t.Callable[[int], dt.datetime], partner_id: str,
                 consent_id: str) -> Consent:
    consent = await store.consents.change(
        partner_id, consent_id,
        lambda consent: rules.revoke(consent, now_for(consent.clock_offset_s)))
    if consent is None:
        raise ConsentNotFound(f"No consent {consent_id} for this partner.",
                              field="path.consent_id")
    return consent
