"""The synthetic bank: valid identifiers, histories that add up, caps that hold, determinism."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox import ids
from sandbox.bank import generate_bank, load_profile
from sandbox.bank.generate import SANDBOX_BIN
from sandbox.bank.profile import ProfileError
from sandbox.rules.account_class import (
    TYPE_II_NON_BOUND_DAILY,
    TYPE_III_BALANCE_CAP,
    TYPE_III_OUT_DAILY,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
DEFAULT = load_profile(FIXTURES, "default")
SMALL = load_profile(FIXTURES, "small")


@pytest.fixture(scope="module")
def bank():
    return generate_bank(1, "acme", DEFAULT)


def postings_by_account(bank):
    grouped = collections.defaultdict(list)
    for posting in bank.lines:
        grouped[posting.account_id].append(posting)
    return grouped


def test_profile_shapes_the_bank(bank):
    kinds = collections.Counter(c.kind for c in bank.customers)
    assert kinds == {"individual": DEFAULT.individual_customers,
                     "company": DEFAULT.company_customers}
    classes = {a.account_class for a in bank.accounts}
    assert {"I", "BASIC"} <= classes and classes & {"II", "III"}


def test_every_customer_identifier_is_valid(bank):
    for customer in bank.customers:
        assert ids.is_valid_mobile(customer.mobile)
        if customer.kind == "individual":
            assert ids.is_valid_resident_id(customer.resident_id)
            assert ids.resident_id_birth_date(customer.resident_id).isoformat() \
                == customer.birth_date
            assert ids.resident_id_is_female(customer.resident_id) \
                == (customer.gender == "female")
            assert ids.is_valid_unionpay_card(customer.external_card)
            assert not customer.external_card.startswith(SANDBOX_BIN)
        else:
            assert ids.is_valid_uscc(customer.uscc)


def test_every_account_number_is_a_luhn_valid_unionpay_card_of_ours(bank):
    numbers = [a.account_number for a in bank.accounts]
    assert len(set(numbers)) == len(numbers)
    for number in numbers:
        assert ids.is_valid_unionpay_card(number) and number.startswith(SANDBOX_BIN)


def test_type_ii_and_iii_accounts_are_bound_to_their_owners_type_i(bank):
    type_i = {a.customer_id: a.account_number for a in bank.accounts if a.account_class == "I"}
    for account in bank.accounts:
        if account.account_class in ("II", "III"):
            assert account.bound_account_number == type_i[account.customer_id]


def check_history_sums_to_balance(bank):
    grouped = postings_by_account(bank)
    for account in bank.accounts:
        running = 0
        for seq, posting in enumerate(grouped[account.account_id], start=1):
            assert posting.seq == seq
            assert posting.amount_fen > 0
            running += posting.amount_fen if posting.direction == "credit" else -posting.amount_fen
            assert posting.balance_after_fen == running
            assert running >= 0, "a debit account never goes below zero"
        assert running == account.balance_fen


def test_every_account_history_sums_to_its_balance(bank):
    check_history_sums_to_balance(bank)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), name=st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True))
def test_any_seed_and_partner_give_a_consistent_bank(seed, name):
    bank = generate_bank(seed, name, SMALL)
    check_history_sums_to_balance(bank)
    check_account_class_caps(bank)


def check_account_class_caps(bank):
    grouped = postings_by_account(bank)
    for account in bank.accounts:
        out_by_day = collections.Counter()
        non_bound_by_day = collections.Counter()
        for posting in grouped[account.account_id]:
            if account.account_class == "III":
                assert posting.balance_after_fen <= TYPE_III_BALANCE_CAP
                if posting.direction == "debit":
                    out_by_day[posting.booking_date] += posting.amount_fen
            if account.account_class == "II" and posting.direction == "debit" \
                    and posting.counterparty_account != account.bound_account_number:
                non_bound_by_day[posting.booking_date] += posting.amount_fen
        assert all(v <= TYPE_III_OUT_DAILY for v in out_by_day.values())
        assert all(v <= TYPE_II_NON_BOUND_DAILY for v in non_bound_by_day.values())


def test_type_iii_balance_never_exceeds_2000_yuan_and_type_ii_caps_hold(bank):
    check_account_class_caps(bank)


def test_bound_transfers_appear_on_both_sides(bank):
    by_number = {a.account_number: a for a in bank.accounts}
    by_account = postings_by_account(bank)
    for posting in bank.lines:
        if posting.description.startswith("绑定账户转入"):
            source = by_number[posting.counterparty_account]
            assert any(
                p.booked_at == posting.booked_at and p.amount_fen == posting.amount_fen
                and p.direction == "debit" for p in by_account[source.account_id]
            )


def test_history_lies_within_the_profile_window(bank):
    first = DEFAULT.as_of - dt.timedelta(days=DEFAULT.history_days - 1)
    dates = {dt.date.fromisoformat(p.booking_date) for p in bank.lines}
    assert min(dates) >= first and max(dates) <= DEFAULT.as_of
    assert all(p.booked_at.endswith("+08:00") for p in bank.lines)


def test_same_seed_and_partner_give_identical_banks():
    assert generate_bank(7, "acme", SMALL) == generate_bank(7, "acme", SMALL)


@pytest.mark.parametrize(("seed", "name"), ((8, "acme"), (7, "globex")))
def test_a_different_seed_or_partner_gives_a_different_bank(seed, name):
    reference = generate_bank(7, "acme", SMALL)
    other = generate_bank(seed, name, SMALL)
    assert [a.account_id for a in other.accounts] != [a.account_id for a in reference.accounts]
    assert [c.name for c in other.customers] != [c.name for c in reference.customers]


def test_the_bank_does_not_depend_on_today(monkeypatch):
    import faker.providers.date_time as faker_dates

    before = generate_bank(3, "acme", SMALL)

    class FarFuture(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return dt.datetime(2061, 5, 4, tzinfo=tz)

        @classmethod
        def today(cls):
            return dt.datetime(2061, 5, 4)

    monkeypatch.setattr(dt, "datetime", FarFuture)
    monkeypatch.setattr(faker_dates, "datetime", FarFuture, raising=False)
    assert dataclasses.astuple(generate_bank(3, "acme", SMALL)) == dataclasses.astuple(before)


def test_an_unknown_profile_names_the_known_ones():
    with pytest.raises(ProfileError, match="default"):
        load_profile(FIXTURES, "nope")
