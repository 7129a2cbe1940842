"""The lint rules on schemas: example-invalid (every example validates against its schema) and
money-schema (money is a Money object)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from jsonschema.exceptions import best_match

from sandbox.verify.lint_base import Finding, deref, ignored_rules, one_line, schemas, sites
from sandbox.verify.refs import escape, pointer

MONEY_WORDS = frozenset({"amount", "balance", "price", "fee", "cost", "limit"})
MONEY_FORMATS = frozenset({"money", "amount"})


# example-invalid


def example_findings(document: dict, validator: Any, format_checker: Any) -> Iterator[Finding]:
    def check(value: Any, schema_at: str, where: str) -> Iterator[Finding]:
        error = best_match(validator({**document, "$ref": schema_at},
                                     format_checker=format_checker).iter_errors(value))
        if error is not None:
            inside = f" (at {pointer(error.absolute_path)[1:]})" if error.absolute_path else ""
            yield Finding("example-invalid", where, one_line(error.message) + inside)

    for kind, where, node in sites(document, "#"):
        if kind == "carrier":  # a parameter, header or media type
            if "example" in node:
                yield from check(node["example"], f"{where}/schema", f"{where}/example")
            examples = node.get("examples")
            for name, example in (examples.items() if isinstance(examples, dict) else ()):
                example = deref(document, example)
                if isinstance(example, dict) and "value" in example:
                    yield from check(example["value"], f"{where}/schema",
                                     f"{where}/examples/{escape(name)}/value")
            continue
        for at, schema, ignored in schemas(node, where):
            if "example-invalid" in ignored:
                continue
            if "example" in schema:
                yield from check(schema["example"], at, f"{at}/example")
            if isinstance(schema.get("examples"), list):  # OpenAPI 3.1 (JSON Schema) examples
                for i, value in enumerate(schema["examples"]):
                    yield from check(value, at, f"{at}/examples/{i}")


# money-schema


def money_findings(document: dict) -> Iterator[Finding]:
    for kind, root_at, root in sites(document, "#"):
        if kind == "carrier":
            continue
        for where, schema, ignored in schemas(root, root_at):
            properties = schema.get("properties")
            if not isinstance(properties, dict) or _money_shaped(schema):
                continue
            for name, prop in properties.items():
                if ("money-schema" in ignored | ignored_rules(prop)
                        or not _looks_like_money(document, str(name), prop)
                        or _holds_money(document, prop)):
                    continue
                yield Finding("money-schema", f"{where}/properties/{escape(name)}",
                              f"{name!r} looks like money but is not a Money object "
                              "(amount and currency); use the Money schema")


def _looks_like_money(document: dict, name: str, schema: Any) -> bool:
    words = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+", name)
    if words and words[-1].lower().removesuffix("s") in MONEY_WORDS:
        return True
    resolved = deref(document, schema)
    return isinstance(resolved, dict) and str(resolved.get("format", "")).lower() in MONEY_FORMATS


def _holds_money(document: dict, schema: Any, depth: int = 0) -> bool:
    """Is it a Money, a record of its own properties, or (an array or composition of) those?"""
    schema = deref(document, schema)
    if not isinstance(schema, dict) or depth > 32:
        return False
    if isinstance(schema.get("properties"), dict) and schema["properties"]:
        return True
    if "items" in schema:
        return _holds_money(document, schema["items"], depth + 1)
    if schema.get("allOf"):
        return any(_holds_money(document, member, depth + 1) for member in schema["allOf"])
    alternatives = [*(schema.get("oneOf") or ()), *(schema.get("anyOf") or ())]
    return bool(alternatives) and all(_holds_money(document, m, depth + 1) for m in alternatives)


def _money_shaped(schema: dict) -> bool:
    return {"amount", "currency"} <= {str(name).lower() for name in schema["properties"]}
