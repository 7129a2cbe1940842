"""Chinese identifiers for sandbox customers: resident IDs, unified social credit codes,
UnionPay card numbers and mobile numbers. The one place that turns an identifier into a checksum.
"""

from __future__ import annotations

import datetime
import random
import re

__all__ = [
    "AREA_CODES",
    "MOBILE_PREFIXES",
    "UNIONPAY_BINS",
    "generate_mobile",
    "generate_resident_id",
    "generate_unionpay_card",
    "generate_uscc",
    "is_luhn_valid",
    "is_valid_mobile",
    "is_valid_resident_id",
    "is_valid_unionpay_card",
    "is_valid_uscc",
    "luhn_check_digit",
    "organisation_code_check_character",
    "resident_id_birth_date",
    "resident_id_check_digit",
    "resident_id_is_female",
    "uscc_check_character",
]

# County-level divisions (GB/T 2260). A dict keeps insertion order, so rng.choice over its
# keys is reproducible for a given seed.
AREA_CODES: dict[str, str] = {
    "110101": "北京市东城区",
    "110102": "北京市西城区",
    "110105": "北京市朝阳区",
    "110108": "北京市海淀区",
    "120101": "天津市和平区",
    "210102": "沈阳市和平区",
    "230102": "哈尔滨市道里区",
    "310101": "上海市黄浦区",
    "310104": "上海市徐汇区",
    "310115": "上海市浦东新区",
    "320102": "南京市玄武区",
    "320505": "苏州市虎丘区",
    "330102": "杭州市上城区",
    "330106": "杭州市西湖区",
    "330108": "杭州市滨江区",
    "340104": "合肥市蜀山区",
    "350102": "福州市鼓楼区",
    "350203": "厦门市思明区",
    "370102": "济南市历下区",
    "370202": "青岛市市南区",
    "420106": "武汉市武昌区",
    "430104": "长沙市岳麓区",
    "440104": "广州市越秀区",
    "440106": "广州市天河区",
    "440304": "深圳市福田区",
    "440305": "深圳市南山区",
    "500103": "重庆市渝中区",
    "510104": "成都市锦江区",
    "510107": "成都市武侯区",
    "530102": "昆明市五华区",
    "610113": "西安市雁塔区",
}
_AREA_CODE_KEYS = tuple(AREA_CODES)

# ---------------------------------------------------------------------------
# Resident identity card number (GB 11643-1999)
# ---------------------------------------------------------------------------

_RESIDENT_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_RESIDENT_ID_CHECK = "10X98765432"
# Explicit [0-9]: \d and str.isdigit() also accept full-width and other Unicode digits.
_RESIDENT_ID_SHAPE = re.compile(r"[0-9]{17}[0-9X]")
_DIGITS17 = re.compile(r"[0-9]{17}")
_EARLIEST_BIRTH = datetime.date(1900, 1, 1)
_LATEST_BIRTH = datetime.date(2099, 12, 31)


def resident_id_check_digit(first17: str) -> str:
    """Return the ISO 7064 MOD 11-2 check character for the first 17 digits of a resident ID."""
    if not isinstance(first17, str) or not _DIGITS17.fullmatch(first17):
        raise ValueError(f"expected 17 ASCII digits, got {first17!r}")
    total = sum(int(ch) * w for ch, w in zip(first17, _RESIDENT_ID_WEIGHTS, strict=True))
    return _RESIDENT_ID_CHECK[total % 11]


def _birth_date_or_none(value: str) -> datetime.date | None:
    try:
        born = datetime.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return None
    if not _EARLIEST_BIRTH <= born <= _LATEST_BIRTH:
        return None
    return born


def is_valid_resident_id(value: str) -> bool:
    """True if `value` is a well-formed 18-character resident ID from a known area."""
    if not isinstance(value, str) or not _RESIDENT_ID_SHAPE.fullmatch(value):
        return False
    if value[:6] not in AREA_CODES:
        return False
    if _birth_date_or_none(value) is None:
        return False
    return resident_id_check_digit(value[:17]) == value[17]


def _require_resident_id(value: str) -> None:
    if not is_valid_resident_id(value):
        raise ValueError(f"not a valid resident ID: {value!r}")


def resident_id_birth_date(value: str) -> datetime.date:
    """Birth date encoded in a valid resident ID (digits 7-14)."""
    _require_resident_id(value)
    born = _birth_date_or_none(value)
    assert born is not None  # guaranteed by validation above
    return born


def resident_id_is_female(value: str) -> bool:
    """Sex encoded in a valid resident ID: the 17th digit is even for women, odd for men."""
    _require_resident_id(value)
    return int(value[16]) % 2 == 0


def generate_resident_id(rng: random.Random, *, birth_date: datetime.date, female: bool) -> str:
    """A valid resident ID for someone born on `birth_date`, drawn only from `rng`."""
    if not _EARLIEST_BIRTH <= birth_date <= _LATEST_BIRTH:
        raise ValueError(f"birth date must be within 1900-2099, got {birth_date}")
    area = rng.choice(_AREA_CODE_KEYS)
    sequence_head = rng.randrange(100)
    sex_digit = rng.choice((0, 2, 4, 6, 8) if female else (1, 3, 5, 7, 9))
    first17 = f"{area}{birth_date:%Y%m%d}{sequence_head:02d}{sex_digit}"
    return first17 + resident_id_check_digit(first17)


# ---------------------------------------------------------------------------
# Unified social credit code (GB 32100-2015) with its embedded organisation code (GB 11714)
# ---------------------------------------------------------------------------

# No I, O, Z, S, V: they are too easily confused with 1, 0, 2, 5, U.
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE = {ch: i for i, ch in enumerate(_USCC_ALPHABET)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
# Industry & commerce ('9') issuing to an enterprise ('1') is by far the common case.
_USCC_AUTHORITY = "9"
_USCC_ENTITY_TYPE = "1"


def _org_code_value(ch: str) -> int:
    # GB 11714 values letters A=10 .. Z=35, independent of the USCC alphabet positions.
    if "0" <= ch <= "9":
        return ord(ch) - ord("0")
    if "A" <= ch <= "Z":
        return ord(ch) - ord("A") + 10
    raise ValueError(f"not an organisation-code character: {ch!r}")


def organisation_code_check_character(body8: str) -> str:
    """GB 11714 check character for the 8-character body of an organisation code."""
    if not isinstance(body8, str) or len(body8) != 8:
        raise ValueError(f"expected 8 characters, got {body8!r}")
    total = sum(_org_code_value(ch) * w for ch, w in zip(body8, _ORG_CODE_WEIGHTS, strict=True))
    check = 11 - total % 11
    if check == 10:
        return "X"
    if check == 11:
        return "0"
    return str(check)


def uscc_check_character(first17: str) -> str:
    """GB 32100 check character (MOD 31) for the first 17 characters of a USCC."""
    if not isinstance(first17, str) or len(first17) != 17:
        raise ValueError(f"expected 17 characters, got {first17!r}")
    try:
        total = sum(_USCC_VALUE[ch] * w for ch, w in zip(first17, _USCC_WEIGHTS, strict=True))
    except KeyError as exc:
        raise ValueError(f"character {exc.args[0]!r} is not in the USCC alphabet") from None
    return _USCC_ALPHABET[(31 - total % 31) % 31]


def is_valid_uscc(value: str) -> bool:
    """True if `value` is an 18-character USCC whose own and embedded check characters match."""
    if not isinstance(value, str) or len(value) != 18:
        return False
    if any(ch not in _USCC_VALUE for ch in value):
        return False
    if uscc_check_character(value[:17]) != value[17]:
        return False
    return organisation_code_check_character(value[8:16]) == value[16]


def generate_uscc(rng: random.Random) -> str:
    """A valid enterprise USCC registered in a known area, drawn only from `rng`."""
    area = rng.choice(_AREA_CODE_KEYS)
    # The body must itself be USCC-alphabet characters to fit inside the credit code.
    body = "".join(rng.choice(_USCC_ALPHABET) for _ in range(8))
    first17 = (
        _USCC_AUTHORITY + _USCC_ENTITY_TYPE + area + body + organisation_code_check_character(body)
    )
    return first17 + uscc_check_character(first17)


# ---------------------------------------------------------------------------
# UnionPay bank card numbers (Luhn)
# ---------------------------------------------------------------------------

# Plausible issuer BINs under the UnionPay "62" range.
UNIONPAY_BINS = ("621226", "622848", "621700", "622588", "621661", "622202")
_DIGITS = re.compile(r"[0-9]+")
_MIN_CARD_LENGTH = 16
_MAX_CARD_LENGTH = 19


def _luhn_sum(digits: str, *, double_rightmost: bool) -> int:
    total = 0
    for offset, ch in enumerate(reversed(digits)):
        d = int(ch)
        if (offset % 2 == 0) == double_rightmost:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total


def luhn_check_digit(partial: str) -> str:
    """The digit that, appended to `partial`, makes the whole number Luhn-valid."""
    if not isinstance(partial, str) or not _DIGITS.fullmatch(partial):
        raise ValueError(f"expected ASCII digits, got {partial!r}")
    # Once the check digit is appended, the rightmost digit of `partial` is doubled.
    return str((10 - _luhn_sum(partial, double_rightmost=True) % 10) % 10)


def is_luhn_valid(number: str) -> bool:
    """True if `number` is at least two ASCII digits and passes the Luhn check."""
    if not isinstance(number, str) or len(number) < 2 or not _DIGITS.fullmatch(number):
        return False
    return _luhn_sum(number, double_rightmost=False) % 10 == 0


def generate_unionpay_card(
    rng: random.Random, *, length: int = 19, bin_prefix: str | None = None
) -> str:
    """A Luhn-valid UnionPay card number of `length` digits, drawn only from `rng`."""
    if not _MIN_CARD_LENGTH <= length <= _MAX_CARD_LENGTH:
        raise ValueError(f"card length must be {_MIN_CARD_LENGTH}-{_MAX_CARD_LENGTH}, got {length}")
    if bin_prefix is None:
        bin_prefix = rng.choice(UNIONPAY_BINS)
    elif not _DIGITS.fullmatch(bin_prefix) or not bin_prefix.startswith("62"):
        raise ValueError(f"UnionPay BIN must be digits starting with 62, got {bin_prefix!r}")
    if len(bin_prefix) >= length:
        raise ValueError(f"BIN {bin_prefix!r} leaves no room in a {length}-digit card")
    account = "".join(str(rng.randrange(10)) for _ in range(length - len(bin_prefix) - 1))
    partial = bin_prefix + account
    return partial + luhn_check_digit(partial)


def is_valid_unionpay_card(number: str) -> bool:
    """True if `number` is 16-19 ASCII digits, starts with 62 and is Luhn-valid."""
    return (
        isinstance(number, str)
        and _MIN_CARD_LENGTH <= len(number) <= _MAX_CARD_LENGTH
        and number.startswith("62")
        and is_luhn_valid(number)
    )


# ---------------------------------------------------------------------------
# Mainland mobile numbers
# ---------------------------------------------------------------------------


def _prefix_range(first: int, last: int) -> tuple[str, ...]:
    return tuple(str(p) for p in range(first, last + 1))


MOBILE_PREFIXES = (
    *_prefix_range(130, 139),
    *_prefix_range(150, 153),
    *_prefix_range(155, 159),
    "170",
    *_prefix_range(176, 178),
    *_prefix_range(180, 189),
    "198",
    "199",
)
_MOBILE = re.compile(r"1[3-9][0-9]{9}")


def generate_mobile(rng: random.Random) -> str:
    """An 11-digit mainland mobile number on a real carrier prefix, drawn only from `rng`."""
    prefix = rng.choice(MOBILE_PREFIXES)
    return prefix + "".join(str(rng.randrange(10)) for _ in range(8))


def is_valid_mobile(value: str) -> bool:
    """True if `value` looks like a mainland mobile number (1[3-9] then nine digits)."""
    return isinstance(value, str) and _MOBILE.fullmatch(value) is not None
