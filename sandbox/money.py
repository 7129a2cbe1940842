"""Money: integer fen inside, a two-decimal yuan string on the wire.
The only place amounts are parsed or formatted; floats are refused everywhere.
"""

from __future__ import annotations

import re
from typing import Self

__all__ = ["YUAN_PATTERN", "Fen", "InvalidAmount", "is_wire_amount", "to_yuan"]

FEN_PER_YUAN = 100
MAX_INTEGER_DIGITS = 15

# The OpenAPI contract uses this exact pattern for non-negative wire amounts.
YUAN_PATTERN = "^(0|[1-9][0-9]{0,14})\\.[0-9]{2}$"
_WIRE_AMOUNT = re.compile(YUAN_PATTERN)

# Inbound yuan text is a little more forgiving than the wire (sign, 0-2 decimals), but
# [0-9] is explicit because \d and str.isdigit() also accept full-width and Arabic-Indic digits.
_YUAN_TEXT = re.compile(r"(-?)([0-9]+)(?:\.([0-9]{1,2}))?")


class InvalidAmount(ValueError):
    """An amount that cannot be read as yuan; `.value` is what was offered."""

    def __init__(self, value: object, reason: str) -> None:
        super().__init__(f"invalid amount {value!r}: {reason}")
        self.value = value


def _require_integer(value: object, what: str) -> int:
    # bool is an int subclass but True fen is a bug; floats (and Decimals) would let
    # fractions of a fen in, so they are refused rather than deferred to the other operand.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    return int(value)


class Fen(int):
    """An amount in fen (1 yuan = 100 fen). Sums and differences of Fen stay Fen."""

    __slots__ = ()

    def __new__(cls, value: int = 0) -> Self:
        return super().__new__(cls, _require_integer(value, "Fen"))

    @classmethod
    def from_yuan(cls, text: str) -> Self:
        """Parse yuan text such as "1024.5", "-3.20" or "5" into fen; no rounding, ever."""
        if not isinstance(text, str):
            raise TypeError(f"yuan amount must be text, not {type(text).__name__}")
        match = _YUAN_TEXT.fullmatch(text)
        if match is None:
            raise InvalidAmount(
                text, "expected digits with an optional '-' and at most two decimals"
            )
        sign, whole, decimals = match.groups()
        if len(whole) > MAX_INTEGER_DIGITS:
            raise InvalidAmount(text, f"more than {MAX_INTEGER_DIGITS} integer digits")
        fen = int(whole) * FEN_PER_YUAN + int((decimals or "").ljust(2, "0"))
        return cls(-fen if sign else fen)

    @property
    def yuan(self) -> str:
        """Canonical wire form with exactly two decimals, e.g. "1024.50"."""
        return to_yuan(self)

    def __repr__(self) -> str:
        return f"Fen({int(self)})"

    def __str__(self) -> str:
        # Keep str()/format() as the plain fen count, not the repr.
        return int.__repr__(self)

    def __add__(self, other: int) -> Fen:
        _require_integer(other, "Fen arithmetic operand")
        return Fen(int(self) + int(other))

    __radd__ = __add__

    def __sub__(self, other: int) -> Fen:
        _require_integer(other, "Fen arithmetic operand")
        return Fen(int(self) - int(other))

    def __rsub__(self, other: int) -> Fen:
        _require_integer(other, "Fen arithmetic operand")
        return Fen(int(other) - int(self))

    def __mul__(self, other: int) -> Fen:
        _require_integer(other, "Fen multiplier")
        return Fen(int(self) * int(other))

    __rmul__ = __mul__

    def __neg__(self) -> Fen:
        return Fen(-int(self))

    def __pos__(self) -> Fen:
        return self

    def __abs__(self) -> Fen:
        return Fen(abs(int(self)))

    def __truediv__(self, other: object) -> Fen:
        # True division would produce a float; splitting money must say how remainders go.
        raise TypeError("Fen cannot be divided with '/'; use divmod() and allocate the remainder")

    def __rtruediv__(self, other: object) -> Fen:
        raise TypeError("cannot divide by a Fen amount with '/'")


def to_yuan(fen: int) -> str:
    """Canonical two-decimal yuan text for an integer number of fen ("-3.20", "0.00")."""
    amount = _require_integer(fen, "to_yuan amount in fen")
    whole, cents = divmod(abs(amount), FEN_PER_YUAN)
    # Integers have no negative zero, so "-" appears only for amounts below zero.
    sign = "-" if amount < 0 else ""
    return f"{sign}{whole}.{cents:02d}"


def is_wire_amount(text: object) -> bool:
    """True if `text` matches the contract's non-negative amount pattern exactly."""
    return isinstance(text, str) and _WIRE_AMOUNT.fullmatch(text) is not None
