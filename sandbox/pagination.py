"""Opaque cursors for keyset pagination: a position in a stable order, never an offset."""

from __future__ import annotations

import base64
import binascii

from sandbox.refusals import InvalidCursor, decides


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(str(position).encode()).decode().rstrip("=")


@decides(InvalidCursor)
def decode_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        if not text.isascii() or not text.isdigit():
            raise ValueError(text)
        return int(text)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidCursor("The cursor is not one this API returned; start again without it.",
                            field="query.cursor") from None


def page(items: list, limit: int, position_of) -> dict:
    """`items` fetched with limit + 1: the extra one only says that another page exists."""
    result = {"items": items[:limit]}
    if len(items) > limit:
        result["next_cursor"] = encode_cursor(position_of(items[limit - 1]))
    return result
