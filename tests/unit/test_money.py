"""Specification of sandbox.money: integer fen inside, two-decimal yuan text on the wire."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.money import YUAN_PATTERN, Fen, InvalidAmount, is_wire_amount, to_yuan

fen_amounts = st.integers(min_value=-(10**15), max_value=10**15)
wire_amounts = st.from_regex(YUAN_PATTERN, fullmatch=True)


def full_width(text: str) -> str:
    """The same text in full-width forms, which str.isdigit() and \\d also accept."""
    return "".join(chr(ord(ch) + 0xFEE0) if ch.isascii() and ch.isalnum() else ch for ch in text)


@pytest.mark.parametrize(
    ("text", "expected"),
    (
        ("1024.5", 102450),
        ("1024.50", 102450),
        ("0.01", 1),
        ("-3.20", -320),
        ("5", 500),
        ("0", 0),
        ("-0.00", 0),
        ("0.1", 10),
        ("999999999999999.99", 99999999999999999),
        ("-999999999999999.99", -99999999999999999),
    ),
)
def test_from_yuan_reads_good_amounts_exactly(text, expected):
    amount = Fen.from_yuan(text)
    assert amount == expected
    assert type(amount) is Fen


@pytest.mark.parametrize(
    ("text", "reason"),
    (
        ("1.005", "three decimals"),
        ("1e3", "exponent"),
        ("1E-2", "exponent"),
        (" 1.00", "leading space"),
        ("1.00 ", "trailing space"),
        ("1.00\n", "trailing newline"),
        ("+1.00", "explicit plus"),
        ("", "empty"),
        ("-", "sign alone"),
        (".50", "leading dot"),
        ("1.", "dot without decimals"),
        ("1,024.50", "thousands separator"),
        ("1024,50", "decimal comma"),
        (full_width("1024.50"), "full-width digits"),
        ("٣.٢٠", "Arabic-Indic digits"),
        ("--1", "double sign"),
        ("NaN", "not a number"),
        ("Infinity", "infinity"),
        ("¥1.00", "currency symbol"),
        ("1000000000000000.00", "16 integer digits"),
        ("0x10", "hexadecimal"),
        ("1_000", "underscore grouping"),
    ),
)
def test_from_yuan_rejects_bad_text_with_invalid_amount(text, reason):
    with pytest.raises(InvalidAmount) as excinfo:
        Fen.from_yuan(text)
    assert excinfo.value.value == text, reason
    assert isinstance(excinfo.value, ValueError)
    assert repr(text) in str(excinfo.value)


@pytest.mark.parametrize("value", (1.5, 1.0, 100, None, b"1.00"))
def test_from_yuan_accepts_only_text_and_never_floats(value):
    with pytest.raises(TypeError):
        Fen.from_yuan(value)


@pytest.mark.parametrize(
    ("fen", "expected"),
    (
        (102450, "1024.50"),
        (1, "0.01"),
        (-320, "-3.20"),
        (0, "0.00"),
        (-1, "-0.01"),
        (-99, "-0.99"),
        (100, "1.00"),
        (Fen(-0), "0.00"),
    ),
)
def test_to_yuan_writes_exactly_two_decimals(fen, expected):
    assert to_yuan(fen) == expected
    assert Fen(fen).yuan == expected


@pytest.mark.parametrize("value", (1.5, True, "100", None))
def test_to_yuan_refuses_anything_but_integer_fen(value):
    with pytest.raises(TypeError):
        to_yuan(value)


@pytest.mark.parametrize("value", (1.5, 2.0, "100", True))
def test_fen_cannot_be_built_from_floats_text_or_bools(value):
    with pytest.raises(TypeError):
        Fen(value)


@given(fen=fen_amounts)
def test_fen_round_trips_through_yuan_text(fen):
    assert Fen.from_yuan(to_yuan(fen)) == fen


@given(fen=fen_amounts)
def test_yuan_text_never_shows_negative_zero(fen):
    text = Fen(fen).yuan
    assert not re.fullmatch(r"-0\.00", text)
    assert text.startswith("-") == (fen < 0)


@given(fen=st.integers(min_value=0, max_value=10**15))
def test_non_negative_yuan_text_matches_the_wire_pattern(fen):
    assert is_wire_amount(to_yuan(fen))


@settings(deadline=None)
@given(text=wire_amounts, negative=st.booleans())
def test_canonical_yuan_text_round_trips_through_fen(text, negative):
    if negative and text != "0.00":
        text = "-" + text
    assert to_yuan(Fen.from_yuan(text)) == text


def test_wire_pattern_is_the_contract_pattern():
    assert YUAN_PATTERN == "^(0|[1-9][0-9]{0,14})\\.[0-9]{2}$"


@pytest.mark.parametrize(
    ("text", "expected"),
    (
        ("0.00", True),
        ("1024.50", True),
        ("999999999999999.99", True),
        ("1024.5", False),
        ("01.00", False),
        ("-3.20", False),
        ("1000000000000000.00", False),
        ("1.00\n", False),
        (full_width("1.00"), False),
        (None, False),
        (100, False),
    ),
)
def test_is_wire_amount(text, expected):
    assert is_wire_amount(text) is expected


@given(text=st.text())
def test_is_wire_amount_never_raises(text):
    assert is_wire_amount(text) in (True, False)


@given(text=st.text())
def test_from_yuan_raises_only_invalid_amount_on_arbitrary_text(text):
    try:
        Fen.from_yuan(text)
    except InvalidAmount as exc:
        assert exc.value == text


@given(a=fen_amounts, b=fen_amounts)
def test_fen_arithmetic_stays_fen(a, b):
    x, y = Fen(a), Fen(b)
    for result, expected in (
        (x + y, a + b),
        (x - y, a - b),
        (-x, -a),
        (x * 3, a * 3),
        (3 * x, 3 * a),
        (x + 1, a + 1),
        (1 + x, 1 + a),
        (1 - x, 1 - a),
        (abs(x), abs(a)),
    ):
        assert type(result) is Fen
        assert result == expected


@given(amounts=st.lists(fen_amounts, max_size=20))
def test_sum_of_fen_is_fen(amounts):
    total = sum(Fen(a) for a in amounts)
    assert total == sum(amounts)
    if amounts:
        assert type(total) is Fen


def test_fen_refuses_float_arithmetic_and_true_division():
    with pytest.raises(TypeError):
        Fen(100) / 3
    for operation in (
        lambda: Fen(100) + 0.5,
        lambda: Fen(100) - 0.5,
        lambda: Fen(100) * 1.5,
        lambda: 100 / Fen(3),
    ):
        with pytest.raises(TypeError):
            operation()


def test_fen_repr_names_the_unit_and_str_is_the_plain_count():
    assert repr(Fen(102450)) == "Fen(102450)"
    assert repr(Fen.from_yuan("-3.20")) == "Fen(-320)"
    assert str(Fen(102450)) == "102450"
    assert f"{Fen(7)}" == "7"


def test_fen_is_an_int():
    assert isinstance(Fen(1), int)
    assert Fen(1) == 1
    assert hash(Fen(1)) == hash(1)
