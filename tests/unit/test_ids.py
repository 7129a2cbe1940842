"""Specification of sandbox.ids: Chinese identifiers are generated valid and validated strictly."""

import datetime
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox import ids

seeds = st.integers(min_value=0, max_value=2**64)
birth_dates = st.dates(min_value=datetime.date(1900, 1, 1), max_value=datetime.date(2099, 12, 31))

RESIDENT_ID_ALPHABET = "0123456789X"
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
DIGITS = "0123456789"


def full_width(text: str) -> str:
    """The same text in full-width forms, which str.isdigit() and \\d also accept."""
    return "".join(chr(ord(ch) + 0xFEE0) if ch.isascii() and ch.isalnum() else ch for ch in text)


def single_character_corruptions(value: str, alphabet: str):
    for i, original in enumerate(value):
        for replacement in alphabet:
            if replacement != original:
                yield value[:i] + replacement + value[i + 1 :]


# --- resident identity card -------------------------------------------------------------------


def test_published_resident_id_example_is_valid():
    assert ids.is_valid_resident_id("11010519491231002X")


def test_published_example_check_digit_computed_by_hand():
    # 1*7+1*9+0*10+1*5+0*8+5*4+1*2+9*1+4*6+9*3+1*7+2*9+3*10+1*5+0*8+0*4+2*2 = 167; 167 % 11 = 2
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    assert sum(int(d) * w for d, w in zip("11010519491231002", weights, strict=True)) == 167
    assert ids.resident_id_check_digit("11010519491231002") == "10X98765432"[2] == "X"


@pytest.mark.parametrize(
    ("value", "reason"),
    (
        ("110105194912310021", "wrong check digit"),
        ("11010519491231002x", "lowercase x"),
        ("11010519491231002", "17 characters"),
        ("11010519491231002XX", "19 characters"),
        ("", "empty"),
        (" 11010519491231002X", "leading space"),
        ("11010519491231002X\n", "trailing newline"),
        (full_width("11010519491231002X"), "full-width characters"),
    ),
)
def test_resident_id_rejects_malformed_values(value, reason):
    assert not ids.is_valid_resident_id(value), reason


@pytest.mark.parametrize(
    ("first17", "reason"),
    (
        ("99999919491231002", "unknown area code"),
        ("11000019491231002", "province-level code, not in the county table"),
        ("11010519490230002", "30 February"),
        ("11010519491331002", "month 13"),
        ("11010519490001002", "month 00"),
        ("11010518991231002", "born before 1900"),
        ("11010521000101002", "born after 2099"),
    ),
)
def test_resident_id_rejects_unknown_area_or_impossible_birth_date_despite_correct_check(
    first17, reason
):
    value = first17 + ids.resident_id_check_digit(first17)
    assert not ids.is_valid_resident_id(value), reason


@settings(deadline=None)
@given(seed=seeds, birth_date=birth_dates, female=st.booleans())
def test_generated_resident_id_is_valid_and_reads_back_birth_date_and_sex(seed, birth_date, female):
    value = ids.generate_resident_id(random.Random(seed), birth_date=birth_date, female=female)
    assert ids.is_valid_resident_id(value)
    assert ids.resident_id_birth_date(value) == birth_date
    assert ids.resident_id_is_female(value) is female
    assert value[:6] in ids.AREA_CODES


@settings(deadline=None)
@given(seed=seeds, birth_date=birth_dates, female=st.booleans())
def test_resident_id_rejects_every_single_character_corruption(seed, birth_date, female):
    value = ids.generate_resident_id(random.Random(seed), birth_date=birth_date, female=female)
    for corrupted in single_character_corruptions(value, RESIDENT_ID_ALPHABET):
        assert not ids.is_valid_resident_id(corrupted), corrupted


@given(seed=seeds, birth_date=birth_dates, female=st.booleans())
def test_resident_id_generation_is_deterministic_per_seed(seed, birth_date, female):
    first = ids.generate_resident_id(random.Random(seed), birth_date=birth_date, female=female)
    again = ids.generate_resident_id(random.Random(seed), birth_date=birth_date, female=female)
    assert first == again


@pytest.mark.parametrize("birth_date", (datetime.date(1899, 12, 31), datetime.date(2100, 1, 1)))
def test_resident_id_generation_refuses_birth_dates_outside_1900_to_2099(birth_date):
    with pytest.raises(ValueError):
        ids.generate_resident_id(random.Random(0), birth_date=birth_date, female=True)


def test_resident_id_helpers_refuse_invalid_ids():
    with pytest.raises(ValueError):
        ids.resident_id_birth_date("110105194912310021")
    with pytest.raises(ValueError):
        ids.resident_id_is_female("110105194912310021")


def test_published_example_belongs_to_a_woman_born_31_december_1949():
    assert ids.resident_id_birth_date("11010519491231002X") == datetime.date(1949, 12, 31)
    assert ids.resident_id_is_female("11010519491231002X")


def test_area_code_table_is_county_level_six_digit_codes_with_chinese_names():
    assert 25 <= len(ids.AREA_CODES) <= 40
    for code, name in ids.AREA_CODES.items():
        assert re.fullmatch(r"[1-6][0-9]{3}[0-9]{2}", code)
        assert not code.endswith("00"), "city/province totals are not county-level"
        assert name.endswith("区")
    assert ids.AREA_CODES["110101"] == "北京市东城区"
    assert ids.AREA_CODES["440305"] == "深圳市南山区"


# --- unified social credit code -----------------------------------------------------------------


def test_known_uscc_is_valid_and_its_check_characters_follow_the_weights():
    value = "91350100M000100Y43"
    # Organisation code M000100Y-4, valued per GB 11714 (A=10 .. Z=35).
    org_values = [22, 0, 0, 0, 1, 0, 0, 34]  # M, 0, 0, 0, 1, 0, 0, Y (A=10 .. Z=35)
    org_sum = sum(v * w for v, w in zip(org_values, (3, 7, 9, 10, 5, 8, 4, 2), strict=True))
    assert org_sum == 66 + 5 + 68
    assert str(11 - org_sum % 11) == value[16] == "4"
    uscc_values = [USCC_ALPHABET.index(c) for c in value[:17]]
    weights = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
    uscc_sum = sum(v * w for v, w in zip(uscc_values, weights, strict=True))
    assert USCC_ALPHABET[(31 - uscc_sum % 31) % 31] == value[17] == "3"
    assert ids.is_valid_uscc(value)
    assert ids.uscc_check_character(value[:17]) == "3"
    assert ids.organisation_code_check_character("M000100Y") == "4"


@pytest.mark.parametrize(
    ("value", "reason"),
    (
        ("91350100M000100Y44", "wrong final check character"),
        ("91350100m000100Y43", "lowercase letter"),
        ("91350100M000100Y4", "17 characters"),
        ("91350100M000100Y433", "19 characters"),
        ("91350100I000100Y43", "letter I is outside the alphabet"),
        ("", "empty"),
    ),
)
def test_uscc_rejects_malformed_values(value, reason):
    assert not ids.is_valid_uscc(value), reason


def test_uscc_rejects_a_wrong_organisation_code_check_even_when_the_final_check_matches():
    first17 = "91350100M000100Y5"  # org check should be 4
    value = first17 + ids.uscc_check_character(first17)
    assert not ids.is_valid_uscc(value)


@given(seed=seeds)
def test_generated_uscc_is_valid_enterprise_code_in_a_known_area(seed):
    value = ids.generate_uscc(random.Random(seed))
    assert ids.is_valid_uscc(value)
    assert value[:2] == "91"
    assert value[2:8] in ids.AREA_CODES


@given(seed=seeds)
def test_uscc_rejects_every_single_character_corruption(seed):
    value = ids.generate_uscc(random.Random(seed))
    for corrupted in single_character_corruptions(value, USCC_ALPHABET):
        assert not ids.is_valid_uscc(corrupted), corrupted


@given(seed=seeds)
def test_uscc_generation_is_deterministic_per_seed(seed):
    assert ids.generate_uscc(random.Random(seed)) == ids.generate_uscc(random.Random(seed))


# --- UnionPay cards ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "expected"),
    (
        ("79927398713", True),  # textbook Luhn example
        ("79927398710", False),
        ("6222020200112345679", True),
        ("6222020200112345678", False),
        ("0", False),
        ("", False),
        ("7992739871" + full_width("3"), False),
    ),
)
def test_luhn_validity(number, expected):
    assert ids.is_luhn_valid(number) is expected


def test_luhn_check_digit_computed_by_hand():
    # 622202020011234567, doubling from the right: 7->14->5, 5->10->1, 3->6, 1->2, 0, 0, 2->4,
    # 2->4, 2->4 ; undoubled 6,4,2,1,0,2,0,2,2 ; total 5+1+6+2+0+0+4+4+4 + 6+4+2+1+0+2+0+2+2 = 51
    assert ids.luhn_check_digit("622202020011234567") == "9"


@pytest.mark.parametrize(
    ("number", "expected"),
    (
        ("6222020200112345679", True),
        ("4111111111111111", False),  # Luhn-valid Visa test number, not UnionPay
        ("622202020011234", False),  # too short
        ("62220202001123456789", False),  # too long
        ("6222 0202 0011 2345 679", False),
    ),
)
def test_unionpay_card_validity(number, expected):
    assert ids.is_valid_unionpay_card(number) is expected


@given(seed=seeds, length=st.integers(min_value=16, max_value=19))
def test_generated_unionpay_card_is_valid_with_the_requested_length(seed, length):
    number = ids.generate_unionpay_card(random.Random(seed), length=length)
    assert ids.is_valid_unionpay_card(number)
    assert len(number) == length
    assert number[:6] in ids.UNIONPAY_BINS


@given(seed=seeds)
def test_generated_unionpay_card_keeps_a_caller_supplied_bin(seed):
    number = ids.generate_unionpay_card(random.Random(seed), length=16, bin_prefix="62148390")
    assert number.startswith("62148390")
    assert ids.is_valid_unionpay_card(number)


@pytest.mark.parametrize(
    ("length", "bin_prefix"),
    ((15, None), (20, None), (19, "411111"), (16, "62a123"), (16, "6200000000000000")),
)
def test_unionpay_generation_refuses_impossible_requests(length, bin_prefix):
    with pytest.raises(ValueError):
        ids.generate_unionpay_card(random.Random(0), length=length, bin_prefix=bin_prefix)


@given(seed=seeds)
def test_unionpay_card_rejects_every_single_digit_corruption(seed):
    number = ids.generate_unionpay_card(random.Random(seed))
    for corrupted in single_character_corruptions(number, DIGITS):
        assert not ids.is_valid_unionpay_card(corrupted), corrupted


@given(seed=seeds)
def test_unionpay_generation_is_deterministic_per_seed(seed):
    first = ids.generate_unionpay_card(random.Random(seed))
    assert first == ids.generate_unionpay_card(random.Random(seed))


# --- mobile numbers ------------------------------------------------------------------------------


@given(seed=seeds)
def test_generated_mobile_is_valid_on_a_known_prefix(seed):
    value = ids.generate_mobile(random.Random(seed))
    assert ids.is_valid_mobile(value)
    assert value[:3] in ids.MOBILE_PREFIXES


@given(seed=seeds)
def test_mobile_generation_is_deterministic_per_seed(seed):
    assert ids.generate_mobile(random.Random(seed)) == ids.generate_mobile(random.Random(seed))


@pytest.mark.parametrize(
    ("value", "expected"),
    (
        ("13800138000", True),
        ("19912345678", True),
        ("12800138000", False),
        ("1380013800", False),
        ("138001380000", False),
        ("13800138000\n", False),
        ("1380013800" + full_width("0"), False),
        ("+8613800138000", False),
    ),
)
def test_mobile_validity(value, expected):
    assert ids.is_valid_mobile(value) is expected


# --- validators are total ------------------------------------------------------------------------

VALIDATORS = (
    ids.is_valid_resident_id,
    ids.is_valid_uscc,
    ids.is_luhn_valid,
    ids.is_valid_unionpay_card,
    ids.is_valid_mobile,
)


@pytest.mark.parametrize("validator", VALIDATORS)
@given(text=st.text())
def test_validators_never_raise_on_arbitrary_text(validator, text):
    assert validator(text) in (True, False)


@pytest.mark.parametrize("validator", VALIDATORS)
@pytest.mark.parametrize("value", (None, 110105194912310021, b"11010519491231002X", 1.5))
def test_validators_return_false_for_non_text(validator, value):
    assert validator(value) is False


def test_generators_use_only_the_supplied_rng():
    random.seed(1)
    first = ids.generate_uscc(random.Random(7))
    random.seed(2)
    assert ids.generate_uscc(random.Random(7)) == first
