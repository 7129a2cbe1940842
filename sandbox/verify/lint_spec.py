"""The lint rule openapi-schema: findings from the specification's validators, and $refs that
resolve to nothing."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any

from jsonschema.exceptions import ValidationError

from sandbox.verify.lint_base import Finding, at, one_line
from sandbox.verify.refs import escape, pointer

MAX_SCHEMA_ERRORS = 50


def schema_findings(errors: Iterable[ValidationError], *, located: bool = True) -> list[Finding]:
    errors = list(itertools.islice(errors, MAX_SCHEMA_ERRORS + 1))
    findings = [_schema_finding(error, located) for error in errors[:MAX_SCHEMA_ERRORS]]
    if len(errors) > MAX_SCHEMA_ERRORS:
        findings.append(Finding("openapi-schema", "#",
                                f"more errors not shown; fix these {MAX_SCHEMA_ERRORS} first"))
    return findings


def dangling_refs(document: dict, node: Any, where: str) -> Iterator[Finding]:
    """A finding for each $ref that resolves nowhere in `document`; example values are data,
    not entered."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            yield from dangling_refs(document, item, f"{where}/{i}")
        return
    if not isinstance(node, dict):
        return
    ref = node.get("$ref")
    if isinstance(ref, str) and at(document, ref) is None:
        yield Finding("openapi-schema", f"{where}/$ref", f"{ref!r} resolves to nothing here")
    for key, value in node.items():
        if key == "examples" and isinstance(value, dict):  # Example Objects: only their $refs
            value = {name: {"$ref": example["$ref"]} for name, example in value.items()
                     if isinstance(example, dict) and "$ref" in example}
        if key != "example" and not str(key).startswith("x-"):
            yield from dangling_refs(document, value, f"{where}/{escape(key)}")


def _schema_finding(error: ValidationError, located: bool) -> Finding:
    """`located`: the error's path is from the document's root. The semantic checks' paths are
    from a schema or value they do not name, so those findings are placed at the root."""
    message = one_line(error.message)
    if located or not error.absolute_path:
        return Finding("openapi-schema", pointer(error.absolute_path), message)
    return Finding("openapi-schema", "#", f"{message} (at …{pointer(error.absolute_path)[1:]} "
                   "of a schema or value)")
