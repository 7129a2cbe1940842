"""What the `contracts lint` rules share: the finding they report, $refs followed the lint's way,
and walking a document's schemas."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sandbox.verify import refs
from sandbox.verify.refs import escape

MAX_MESSAGE = 200
IGNORE = "x-lint-ignore"


@dataclass(frozen=True)
class Finding:
    rule: str
    where: str  # a JSON pointer ("#/components/schemas/Money") or an operation ("GET /accounts")
    message: str


def one_line(message: str) -> str:
    line = message.strip().splitlines()[0] if message.strip() else "invalid"
    return line if len(line) <= MAX_MESSAGE else line[:MAX_MESSAGE - 1] + "…"


# A broken $ref is a finding of its own (openapi-schema), so to the other rules it points at
# nothing rather than stopping the lint. Lint does not percent-decode a $ref's parts; diff does.


def deref(document: dict, node: Any) -> Any:
    """`node`, or what its chain of local $refs ends at (None if it ends nowhere)."""
    return refs.follow(document, node, percent_decode=False, strict=False)[0]


def at(document: dict, ref: str) -> Any:
    """What the local `ref` points at; None if nothing."""
    return refs.resolve(document, ref, percent_decode=False, strict=False)


def sites(node: Any, where: str) -> Iterator[tuple[str, str, dict]]:
    """("schema", where, schema) for each top-level schema: those in components/schemas and
    those under a `schema` key; ("carrier", where, object) for each object with a `schema`
    (a parameter, header or media type). Example values and extensions are not entered."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            yield from sites(item, f"{where}/{i}")
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        here = f"{where}/{escape(key)}"
        if key in ("example", "examples") or str(key).startswith("x-"):
            continue
        if key == "schema" and isinstance(value, dict):
            yield "carrier", where, node
            yield "schema", here, value
        elif key == "schemas" and where == "#/components" and isinstance(value, dict):
            for name, schema in value.items():
                if isinstance(schema, dict):
                    yield "schema", f"{here}/{escape(name)}", schema
        else:
            yield from sites(value, here)


def schemas(schema: Any, where: str,
            ignored: frozenset[str] = frozenset()) -> Iterator[tuple[str, dict, frozenset[str]]]:
    """(where, schema, rules exempted by x-lint-ignore) for `schema` and the schemas inside it;
    a $ref is not followed (its target is visited where it is defined)."""
    if not isinstance(schema, dict):
        return
    ignored |= ignored_rules(schema)
    yield where, schema, ignored
    if "$ref" in schema:
        return
    for key in ("properties", "patternProperties"):
        members = schema.get(key)
        for name, member in (members.items() if isinstance(members, dict) else ()):
            yield from schemas(member, f"{where}/{key}/{escape(name)}", ignored)
    for key in ("items", "additionalProperties", "not"):
        yield from schemas(schema.get(key), f"{where}/{key}", ignored)
    for key in ("allOf", "anyOf", "oneOf"):
        for i, member in enumerate(schema.get(key) or ()):
            yield from schemas(member, f"{where}/{key}/{i}", ignored)


def ignored_rules(schema: Any) -> frozenset[str]:
    """The rules a schema's x-lint-ignore exempts it from."""
    rules = schema.get(IGNORE) if isinstance(schema, dict) else None
    return frozenset([rules] if isinstance(rules, str) else rules or ())
