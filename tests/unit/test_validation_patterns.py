"""The contracts' `pattern`s are read as ECMA-262 reads them, by Connexion's validators
(`sandbox.validation.ecma_regex`) as by jsonschema-rs (the fast path's): for every pattern in
the contracts, a string it matches is accepted by both, and the same string with a line break
before or after it by neither."""

from __future__ import annotations

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.contracts import load_contracts
from sandbox.settings import Settings
from sandbox.validation import ecma_regex, validator_for


def patterns(node) -> set[str]:
    if isinstance(node, dict):
        found = {node["pattern"]} if isinstance(node.get("pattern"), str) else set()
        return found.union(*(patterns(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(patterns(v) for v in node))
    return set()


PATTERNS = sorted(set().union(*(patterns(c.spec) for c in
                                load_contracts(Settings.from_env({}).contracts_dir))))


def test_the_contracts_have_patterns_to_check():
    assert "^(0|[1-9][0-9]{0,14})\\.[0-9]{2}$" in PATTERNS and len(PATTERNS) > 10


@pytest.mark.slow
@pytest.mark.parametrize("pattern", PATTERNS)
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_a_pattern_accepts_its_strings_and_not_with_a_line_break(pattern, data):
    text = data.draw(st.from_regex(ecma_regex(pattern), fullmatch=True)
                     .filter(lambda s: "\n" not in s))
    schema = {"type": "string", "pattern": pattern}
    python, rust = validator_for(schema), jsonschema_rs.Draft4Validator(schema)
    assert python.is_valid(text) and rust.is_valid(text)
    for broken in (text + "\n", text + "\r\n", "\n" + text):
        assert not python.is_valid(broken), (pattern, broken)
        assert not rust.is_valid(broken), (pattern, broken)


@pytest.mark.parametrize(("pattern", "text", "matches"), [
    ("^a$", "a\n", False),
    ("^a[$]$", "a$", True),  # a `$` in a class is the character
    ("^a\\$$", "a$", True),  # so is an escaped one
    ("^a\\$$", "a$\n", False),
    ("a$|^b$", "b\n", False),
])
def test_ecma_dollar_is_the_end_of_the_text(pattern, text, matches):
    assert (ecma_regex(pattern).search(text) is not None) is matches
