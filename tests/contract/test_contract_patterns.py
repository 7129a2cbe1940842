"""The patterns in the contracts that restate what the code accepts say exactly that, no more.

Schemathesis holds the server to accepting everything a schema allows and rejecting everything
else, so these patterns must be exact; they live in YAML, away from the code they describe,
and these tests keep the two together.
"""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.contracts import load_contracts
from sandbox.pagination import decode_cursor, encode_cursor

CONTRACTS = {c.name: c for c in load_contracts(Path(__file__).parents[2] / "contracts")}
CURSOR = CONTRACTS["accounts"].spec["components"]["schemas"]["NextCursor"]["pattern"]
TOKEN_FORM = (CONTRACTS["platform"].spec["paths"]["/oauth2/token"]["post"]["requestBody"]
              ["content"]["application/x-www-form-urlencoded"]["schema"])
DECLARED_SCOPES = sorted(set().union(*(c.declared_scopes() for c in CONTRACTS.values())))


@given(st.integers(min_value=0, max_value=10**18 - 1))
def test_every_cursor_the_api_issues_matches_the_cursor_pattern(position):
    assert re.search(CURSOR, encode_cursor(position))


@settings(max_examples=500)
@given(st.from_regex(CURSOR, fullmatch=True))
def test_every_cursor_the_pattern_admits_is_a_position_the_store_can_take(cursor):
    # Up to 18 digits: a 64-bit integer, never an overflow in SQL.
    assert 0 <= decode_cursor(cursor) < 10**18


def test_cursors_past_18_digits_are_malformed():
    assert not re.search(CURSOR, encode_cursor(10**18))


def test_the_token_endpoint_takes_exactly_the_scopes_the_contracts_declare():
    scope = re.compile(TOKEN_FORM["properties"]["scope"]["pattern"])
    assert DECLARED_SCOPES
    for name in DECLARED_SCOPES:
        assert scope.search(name)
    assert scope.search(" ".join(DECLARED_SCOPES))
    for wrong in ("", "everything", f"{DECLARED_SCOPES[0]}  {DECLARED_SCOPES[0]}",
                  f" {DECLARED_SCOPES[0]}", f"{DECLARED_SCOPES[0]}:more"):
        assert not scope.search(wrong), wrong

