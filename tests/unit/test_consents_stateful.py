"""Consents under any sequence of decisions and time travel: a model-based (stateful) test.

Hypothesis drives `sandbox.consents` (and the rules of `sandbox.rules.consents`) directly, over
a real SQLite store holding one partner's small bank: consents created (with any permissions,
any expiry, offering no accounts or some), approved or refused by any of the partner's
customers, revoked by the partner (as the revoke handler does it), and the partner's clock
moved forward, often onto an expiry to the second. A model beside it knows each consent's
status and expiry and predicts the outcome of every action (accepted, or refused with which
code). The clock is stopped at a whole second, so the partner's 'now' is exactly the start plus
its offset.

After every step the store must agree with the model, and:

* each consent's effective status is the model's, and its stored status never reads EXPIRED
  (expiry is judged, never written);
* the statuses each consent went through follow `rules.TRANSITIONS` (EXPIRED reached by time
  is an edge too), and once REJECTED, REVOKED or EXPIRED it never changes again;
* `covers` lets a permission through exactly when the consent is AUTHORISED and grants it;
* a refusal changed nothing in the stored row.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from sandbox import consents
from sandbox.bank import load_profile
from sandbox.clock import BEIJING, Clock
from sandbox.partners import create_partner
from sandbox.refusals import Conflict, ConsentRefusal, NotFound, Refusal
from sandbox.rules import consents as rules
from sandbox.security.oauth import redirect_to
from sandbox.security.pkce import challenge_problem, pkce_matches, s256_challenge
from sandbox.store import open_store

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SMALL = load_profile(FIXTURES, "small")
PICK = st.integers(0, 63)  # an index into something the machine holds, taken modulo its size

AWAITING, AUTHORISED, REJECTED, REVOKED, EXPIRED = (
    rules.AWAITING, rules.AUTHORISED, rules.REJECTED, rules.REVOKED, rules.EXPIRED)
LIVE = (AWAITING, AUTHORISED)
TERMINAL = (REJECTED, REVOKED, EXPIRED)
CONFLICT = "CONSENT_STATUS_CONFLICT"

# What a partner asks for: some permissions, an expiry (seconds from now), and the accounts it
# offers (indexes into the bank's accounts; none lets the customer pick from all of theirs).
REQUESTS = st.fixed_dictionaries({
    "permissions": st.sets(st.sampled_from(sorted(rules.PERMISSIONS)), min_size=1),
    "seconds": st.integers(60, 10**7),
    "offered": st.just([]) | st.lists(PICK, min_size=1, max_size=3),
})
# Forward moves of the partner's clock: minutes, up to a day, up to months.
TRAVELS = st.one_of(st.integers(1, 600), st.integers(1, 86_400), st.integers(86_400, 10**7))


class StoppedClock(Clock):
    """A clock that does not move on its own (only by the partner's offset)."""

    def __init__(self, timestamp: int):
        super().__init__()
        self.at = timestamp

    def timestamp(self) -> float:
        return float(self.at)


@dataclasses.dataclass
class ModelConsent:
    consent_id: str
    permissions: list[str]
    expires_at: dt.datetime
    offered: list[str]  # the account ids the partner offered (may be none)
    status: str = AWAITING  # the stored status: never EXPIRED, which is judged by the clock
    customer_id: str | None = None
    account_ids: list[str] = dataclasses.field(default_factory=list)
    history: list[str] = dataclasses.field(default_factory=list)  # effective statuses seen


class ConsentMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = Path(tempfile.mkdtemp(prefix="consents-"))
        self.store = None
        self.partner_id: str | None = None
        self.start = int(time.time())
        self.clock = StoppedClock(self.start)
        self.offset = 0  # the partner's clock_offset_s, as the model has it
        self.customers: list[dict] = []
        self.own: dict[str, list[str]] = {}  # customer id -> their account ids, by ordinal
        self.account_ids: list[str] = []  # every account of the bank, by ordinal
        self.consents: dict[str, ModelConsent] = {}
        self.order: list[str] = []  # consent ids in creation order

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def teardown(self):
        try:
            if self.store is not None:
                self.run(self.store.close())
        finally:
            self.loop.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- setup -----------------------------------------------------------------------------

    @initialize(requests=st.lists(REQUESTS, min_size=1, max_size=4))
    def open_bank(self, requests):
        self.store = open_store(f"sqlite:///{self.tmp / 'consents.db'}")
        self.run(self.store.open())
        partner = self.run(create_partner(self.store, "acme", SMALL, seed=7))
        self.partner_id = partner["partner_id"]
        self.customers = self.run(self.store.bank.customers(self.partner_id, after=0, limit=100))
        for customer in self.customers:
            rows = self.run(self.store.bank.accounts(
                self.partner_id, customer_id=customer.customer_id, after=0, limit=1000))
            self.own[customer.customer_id] = [row.account_id for row in rows]
        rows = self.run(self.store.bank.accounts(self.partner_id, customer_id=None, after=0,
                                                 limit=1000))
        self.account_ids = [row.account_id for row in rows]
        assert len(self.customers) >= 2 and all(self.own.values())
        # Every run starts with some consents, even one where requesting them is switched off.
        for request in requests:
            self.request_consent(**request)

    # -- the model -------------------------------------------------------------------------

    def now(self) -> dt.datetime:
        """The partner's 'now', by the model's own reckoning."""
        return dt.datetime.fromtimestamp(self.start, BEIJING) + dt.timedelta(seconds=self.offset)

    def status_of(self, consent: ModelConsent) -> str:
        if consent.status in LIVE and self.now() >= consent.expires_at:
            return EXPIRED
        return consent.status

    def pick(self, pick: int, needing: str | None = None) -> ModelConsent:
        """A consent by index; with `needing`, among those in that status if any are (so legal
        changes are tried about as often as illegal ones)."""
        ids = self.order
        if needing is not None:
            ids = [i for i in ids if self.status_of(self.consents[i]) == needing] or ids
        return self.consents[ids[pick % len(ids)]]

    def row(self, consent_id: str):
        row = self.run(self.store.consents.get(self.partner_id, consent_id))
        assert row is not None, consent_id
        return row

    def attempt(self, consent: ModelConsent, expected: str | None, act):
        """Run `act()` on the consent; it must be refused with `expected`, or accepted if that
        is None (the updated row is returned). A refusal must leave the row as it was."""
        before = self.row(consent.consent_id)
        try:
            row = act()
        except Refusal as refusal:
            assert refusal.code == expected, (refusal.code, refusal.detail, expected)
            if expected == CONFLICT:
                assert isinstance(refusal, Conflict)
            assert self.row(consent.consent_id) == before, "a refused change changed the consent"
            return None
        assert expected is None, f"expected {expected}, but {consent.consent_id} became " \
                                 f"{row.status} (it was {self.status_of(consent)})"
        assert self.row(consent.consent_id) == row, "the returned row is not the stored one"
        assert row.status_updated_at == self.now().isoformat(timespec="microseconds")
        return row

    # -- rules -----------------------------------------------------------------------------

    @precondition(lambda self: self.partner_id is not None)
    @rule(request=REQUESTS)
    def a_consent_is_requested(self, request):
        self.request_consent(**request)

    def request_consent(self, permissions: set[str], seconds: int, offered: list[int]) -> None:
        partner = self.run(self.store.partners.get(self.partner_id))
        now = self.clock.now_for(partner.clock_offset_s)
        assert now == self.now()
        expires_at = now + dt.timedelta(seconds=seconds)
        offered_ids = list(dict.fromkeys(
            self.account_ids[i % len(self.account_ids)] for i in offered))
        request = {"permissions": sorted(permissions), "expires_at": expires_at.isoformat()}
        if offered_ids:
            request["account_ids"] = offered_ids
        event(f"create: offers {'some' if offered_ids else 'no'} accounts")
        made = self.run(consents.create(self.store, now, self.partner_id, request))
        assert made.consent_id not in self.consents, "a consent id was given out twice"
        assert made.status == AWAITING and made.customer_id is None
        assert made.permission_list == sorted(permissions)
        assert made.account_id_list == offered_ids
        assert dt.datetime.fromisoformat(made.expires_at) == expires_at
        row = self.row(made.consent_id)
        assert row == dataclasses.replace(made, clock_offset_s=self.offset)
        consent = ModelConsent(
            consent_id=made.consent_id, permissions=sorted(permissions),
            expires_at=expires_at, offered=offered_ids, account_ids=list(offered_ids))
        observed = rules.effective_status(row, self.clock.now_for(row.clock_offset_s))
        assert observed == AWAITING
        consent.history.append(observed)
        self.consents[consent.consent_id] = consent
        self.order.append(consent.consent_id)

    def decide(self, consent: ModelConsent, customer, decision: str) -> None:
        status = self.status_of(consent)
        own = self.own[customer.customer_id]
        available = [a for a in (consent.offered or own) if a in own]
        if status != AWAITING:
            expected = CONFLICT
        elif decision == "approve" and not available:
            expected = "NO_ACCOUNTS"
        else:
            expected = None
        event(f"{decision}: {expected or 'accepted'} ({status})")
        row = self.attempt(consent, expected, lambda: self.run(consents.authorise(
            self.store, self.clock.now_for, self.partner_id, consent.consent_id, customer,
            decision, None)))
        if row is None:
            return
        target = AUTHORISED if decision == "approve" else REJECTED
        assert row.status == target
        assert row.customer_id == customer.customer_id
        consent.status = target
        consent.customer_id = customer.customer_id
        if target == AUTHORISED:
            assert row.account_id_list == available
            consent.account_ids = available
        else:
            assert row.account_id_list == consent.account_ids

    @precondition(lambda self: self.consents)
    @rule(pick=PICK, who=PICK, awaiting=st.booleans())
    def the_customer_approves(self, pick, who, awaiting):
        consent = self.pick(pick, AWAITING if awaiting else None)
        customers = self.customers
        if awaiting:  # and, if any can, a customer holding one of the accounts it offers
            customers = [c for c in customers if not consent.offered or set(
                consent.offered) & set(self.own[c.customer_id])] or customers
        self.decide(consent, customers[who % len(customers)], "approve")

    @precondition(lambda self: self.consents)
    @rule(pick=PICK, who=PICK, awaiting=st.booleans())
    def the_customer_refuses(self, pick, who, awaiting):
        consent = self.pick(pick, AWAITING if awaiting else None)
        self.decide(consent, self.customers[who % len(self.customers)], "refuse")

    def revoke(self, consent_id: str):
        """What the revoke handler does (sandbox/handlers/consents.py, revoke_consent): the
        consent, revoked; None if there is none."""
        try:
            return self.run(consents.revoke(self.store, self.clock.now_for, self.partner_id,
                                            consent_id))
        except NotFound:
            return None

    @precondition(lambda self: self.consents)
    @rule(pick=PICK, authorised=st.booleans())
    def the_partner_revokes(self, pick, authorised):
        consent = self.pick(pick, AUTHORISED if authorised else None)
        status = self.status_of(consent)
        expected = None if status == AUTHORISED else CONFLICT
        event(f"revoke: {expected or 'accepted'} ({status})")
        row = self.attempt(consent, expected, lambda: self.revoke(consent.consent_id))
        if row is None:
            return
        assert row.status == REVOKED
        assert row.customer_id == consent.customer_id
        assert row.account_id_list == consent.account_ids
        consent.status = REVOKED

    @precondition(lambda self: self.partner_id is not None)
    @rule(seconds=TRAVELS)
    def time_passes(self, seconds):
        self.travel(self.offset + seconds)

    @precondition(lambda self: self.consents)
    @rule(pick=PICK, delta=st.sampled_from([-1, 0, 1]))
    def time_passes_to_an_expiry(self, pick, delta):
        """To the second before a live consent's expiry, onto it, or the second after."""
        live = [i for i in self.order if self.status_of(self.consents[i]) in LIVE]
        if not live:
            return
        consent = self.consents[live[pick % len(live)]]
        start = dt.datetime.fromtimestamp(self.start, BEIJING)
        target = int((consent.expires_at - start).total_seconds()) + delta
        if target > self.offset:
            event(f"travel to expiry {delta:+d}")
            self.travel(target)

    def travel(self, offset: int) -> None:
        assert offset > self.offset
        self.run(self.store.partners.set_clock_offset(self.partner_id, offset))
        self.offset = offset

    @precondition(lambda self: self.partner_id is not None)
    @rule(hex_id=st.from_regex(r"[0-9a-f]{16}", fullmatch=True), who=PICK)
    def someone_names_an_unknown_consent(self, hex_id, who):
        consent_id = "csn_" + hex_id
        if consent_id in self.consents:
            return
        customer = self.customers[who % len(self.customers)]
        try:
            self.run(consents.authorise(self.store, self.clock.now_for, self.partner_id,
                                        consent_id, customer, "approve", None))
        except NotFound as refusal:
            assert refusal.code == "CONSENT_NOT_FOUND"
        else:
            raise AssertionError(f"an unknown consent {consent_id} was approved")
        assert self.revoke(consent_id) is None
        assert self.run(self.store.consents.get(self.partner_id, consent_id)) is None

    # -- invariants, after every step ------------------------------------------------------

    def stored(self) -> dict:
        rows = self.run(self.store.consents.list(self.partner_id, status=None, limit=10_000))
        return {row.consent_id: row for row in rows}

    @precondition(lambda self: self.partner_id is not None)
    @invariant()
    def every_consent_is_the_models(self):
        stored = self.stored()
        assert set(stored) == set(self.consents)
        for consent_id, row in stored.items():
            consent = self.consents[consent_id]
            assert row.clock_offset_s == self.offset
            assert self.clock.now_for(row.clock_offset_s) == self.now()
            assert row.status == consent.status and row.status != EXPIRED, consent_id
            assert row.customer_id == consent.customer_id
            assert row.permission_list == consent.permissions
            assert row.account_id_list == consent.account_ids
            assert dt.datetime.fromisoformat(row.expires_at) == consent.expires_at
            effective = rules.effective_status(row, self.clock.now_for(row.clock_offset_s))
            assert effective == self.status_of(consent), (consent_id, effective)

    @precondition(lambda self: self.partner_id is not None)
    @invariant()
    def statuses_only_move_along_the_transitions(self):
        for consent_id, row in self.stored().items():
            history = self.consents[consent_id].history
            observed = rules.effective_status(row, self.clock.now_for(row.clock_offset_s))
            if observed == history[-1]:
                continue
            assert history[-1] not in TERMINAL, \
                f"{consent_id} was {history[-1]}, a terminal status, and became {observed}"
            assert observed in rules.TRANSITIONS[history[-1]], \
                f"{consent_id} went {' -> '.join(history)} -> {observed}"
            history.append(observed)
            assert history[0] == AWAITING and len(history) <= 3, history

    @precondition(lambda self: self.partner_id is not None)
    @invariant()
    def a_consent_covers_exactly_what_it_grants_while_authorised(self):
        for consent_id, row in self.stored().items():
            consent = self.consents[consent_id]
            status = self.status_of(consent)
            now = self.clock.now_for(row.clock_offset_s)
            mine = row.account_id_list[0] if row.account_id_list else None
            for permission in rules.PERMISSIONS:
                if status != AUTHORISED:
                    expected = "CONSENT_NOT_ACTIVE"
                elif permission not in consent.permissions:
                    expected = "PERMISSION_NOT_GRANTED"
                else:
                    expected = None
                try:
                    rules.covers(row, permission, now, account_id=mine)
                except ConsentRefusal as refusal:
                    assert refusal.code == expected, (consent_id, permission, refusal.code)
                else:
                    assert expected is None, (consent_id, permission, status)
            others = [a for a in self.account_ids if a not in row.account_id_list]
            granted = consent.permissions[0]
            if status == AUTHORISED and others:
                try:
                    rules.covers(row, granted, now, account_id=others[0])
                except ConsentRefusal as refusal:
                    assert refusal.code == "ACCOUNT_NOT_IN_CONSENT"
                else:
                    raise AssertionError(f"{consent_id} covers {others[0]}, not among its "
                                         "accounts")


ConsentMachine.TestCase.settings = settings(
    max_examples=30, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestConsentStatuses = ConsentMachine.TestCase


# -- PKCE and redirects ----------------------------------------------------------------------


def test_pkce_s256_matches_the_rfc_7636_example():
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert pkce_matches(verifier, challenge)
    assert not pkce_matches(verifier[:-1] + "j", challenge)
    # The verifier itself is never taken for its challenge (that would be `plain`).
    assert not pkce_matches(challenge, challenge)


@pytest.mark.parametrize(("verifier", "why"), (
    ("a" * 42, "shorter than RFC 7636 allows"),
    ("a" * 129, "longer than RFC 7636 allows"),
    ("a" * 42 + "/", "a character outside the unreserved set"),
))
def test_pkce_refuses_a_verifier_rfc_7636_does_not_allow(verifier, why):
    assert not pkce_matches(verifier, s256_challenge(verifier)), why


@pytest.mark.parametrize(("challenge", "method", "wrong"), (
    (None, "S256", "PKCE is required"),
    ("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "plain", "must be S256"),
    ("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", None, "must be S256"),
    ("x", "S256", "43-character"),
    ("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM=", "S256", "43-character"),
))
def test_only_an_s256_challenge_of_43_characters_is_accepted(challenge, method, wrong):
    assert wrong in challenge_problem(challenge, method)
    assert challenge_problem("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "S256") is None


def test_redirect_to_appends_the_query_and_drops_what_is_none():
    assert redirect_to("https://app.example/cb", code="ac_1", state=None) == \
        "https://app.example/cb?code=ac_1"
    assert redirect_to("https://app.example/cb?x=1", code="ac_1", state="s t&u") == \
        "https://app.example/cb?x=1&code=ac_1&state=s+t%26u"
    assert redirect_to("http://127.0.0.1:8080/callback", error="access_denied",
                                error_description="客户拒绝") == (
        "http://127.0.0.1:8080/callback?error=access_denied"
        "&error_description=%E5%AE%A2%E6%88%B7%E6%8B%92%E7%BB%9D")
