"""`contracts lint`: OpenAPI documents checked against the specification and the house rules.

Every finding names the rule it breaks:

openapi-schema
    The document is valid OpenAPI for its `openapi` version (3.0 or 3.1): the specification's
    JSON schema, every $ref resolving, then openapi-spec-validator's semantic checks (undeclared
    path parameters, defaults that fail their schema, ...). Up to 50 are reported. A document
    that fails the JSON schema or has a $ref to nothing gets no other findings: the other
    checks need a well-formed document.
operation-id
    Every operation has an operationId.
operation-id-duplicate
    No two operations share an operationId; the second and later are reported.
operation-summary
    Every operation has a summary.
error-responses
    Every operation that takes input -- parameters (its own or its path's), a request body or
    credentials (its security requirements, or the document's) -- documents at least one 4xx
    response (`4XX` counts; `default` does not). One without input cannot fail by the
    client's fault.
problem-schema
    Every 4xx response of an operation has a body, every media type of it is
    application/problem+json, and its schema is the Problem schema: a $ref to a schema named
    `Problem`, or a schema with the RFC 7807 members type, title, status and detail (directly or
    in an allOf member, so extensions of Problem count).
example-invalid
    Every example validates against its schema: `example` (and, in 3.1, `examples`) on a
    schema; `example` and each `examples` value on a parameter, header or media type. Examples
    are validated as OpenAPI schemas: $refs resolved, `nullable` honoured, the OpenAPI formats
    (date, date-time, int32, byte, ...) checked. The best-matching error of each is reported.
money-schema
    Money is a Money object. A property looks like money when the last word of its name is
    amount, balance, price, fee, cost or limit, plural or not (`amount`, `large_amount`,
    `InstructedAmount`, `daily_limit`, `fees`), or when its format is `money` or `amount`.
    Such a property must hold an object: (a $ref to) a Money schema -- one with amount and
    currency members -- or a record with properties of its own (a balance with booked and
    available Money), whose own properties are checked in turn; an array must hold such objects.
    A bare number or string is a finding. The members of a Money-shaped object (its amount) are
    exempt. Descriptions are not read: they mention money on fields that are not (a payment's
    status, "the money came back").

The operation rules apply to the operations under `paths`, the API's own; callbacks (requests
the API makes) are checked for their examples and money fields only. A document without
operations, such as a library of shared components, gets every rule that can apply to it.

`x-lint-ignore: [RULE, ...]` on a schema exempts it and the schemas inside it from the listed
schema rules (money-schema, example-invalid): an exception made visibly, in the contract, with
its reason beside it.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TextIO

from openapi_schema_validator import (
    OAS30Validator,
    OAS31Validator,
    oas30_format_checker,
    oas31_format_checker,
)
from openapi_spec_validator import OpenAPIV30SpecValidator, OpenAPIV31SpecValidator
from openapi_spec_validator.validation.exceptions import DuplicateOperationIDError

from sandbox.verify import documents
from sandbox.verify.lint_base import Finding
from sandbox.verify.lint_operations import operation_findings, operations
from sandbox.verify.lint_schemas import example_findings, money_findings
from sandbox.verify.lint_spec import MAX_SCHEMA_ERRORS, dangling_refs, schema_findings
from sandbox.verify.report import TestCase, junit_xml

# This module is the command and its report; each rule is checked in lint_spec (openapi-schema),
# lint_operations or lint_schemas.

SUFFIXES = (".yaml", ".yml", ".json")
# Per `openapi` major.minor: the document validator, and the schema validator for examples.
VALIDATORS = {
    "3.0": (OpenAPIV30SpecValidator, OAS30Validator, oas30_format_checker),
    "3.1": (OpenAPIV31SpecValidator, OAS31Validator, oas31_format_checker),
}


def command(paths: list[str], *, fmt: str = "text", out: TextIO | None = None) -> int:
    """Lint `paths` (default: the sandbox's contracts/) and print the report: 0 clean,
    1 findings. DocumentError for a path that cannot be read as an OpenAPI document."""
    results: dict[str, list[Finding]] = {}
    libraries = []
    for name, document, findings in _lint_files(paths):
        results[name] = findings
        if next(operations(document), None) is None:
            libraries.append(name)
    print(render(results, fmt, libraries=libraries), end="", file=out or sys.stdout)
    return 1 if any(results.values()) else 0


def lint_paths(paths: list[str]) -> dict[str, list[Finding]]:
    """Findings per document; directories stand for their *.yaml, *.yml and *.json files."""
    return {name: findings for name, _, findings in _lint_files(paths)}


def lint_document(document: dict) -> list[Finding]:
    """Every finding in one OpenAPI document, its external references bundled in."""
    version = str(document.get("openapi", ""))[:3]
    if version not in VALIDATORS:
        return [Finding("openapi-schema", "#/openapi",
                        f"OpenAPI {document.get('openapi')!r} is not supported (3.0 and 3.1 are)")]
    spec_validator, schema_validator, format_checker = VALIDATORS[version]
    malformed = (schema_findings(spec_validator.schema_validator.iter_errors(document))
                 or list(itertools.islice(dangling_refs(document, document, "#"),
                                          MAX_SCHEMA_ERRORS)))
    if malformed:
        return malformed
    semantic = (error for error in spec_validator(document).iter_errors()
                if not isinstance(error, DuplicateOperationIDError))  # operation-id-duplicate
    return [*schema_findings(semantic, located=False), *operation_findings(document),
            *example_findings(document, schema_validator, format_checker),
            *money_findings(document)]


def render(results: dict[str, list[Finding]], fmt: str, *,
           libraries: Collection[str] = ()) -> str:
    """The report as text (one line per finding, then a summary), JSON or JUnit XML.
    `libraries`: the documents without operations, which the operation rules skip."""
    if fmt == "json":
        by_document = {name: [asdict(f) for f in findings] for name, findings in results.items()}
        return json.dumps({
            "documents": by_document,
            "summary": {
                "documents": len(results),
                "clean": sum(1 for findings in results.values() if not findings),
                "findings": sum(len(findings) for findings in results.values()),
                "rules": dict(Counter(f.rule for fs in results.values() for f in fs)),
                "libraries": list(libraries),
            },
        }, indent=2, ensure_ascii=False) + "\n"
    if fmt == "junit":
        return junit_xml("contracts lint", [
            TestCase(name, "contracts.lint", tuple(
                (f"[{f.rule}] {f.where}: {f.message}", f"{name}: {f.where}: [{f.rule}] {f.message}")
                for f in findings))
            for name, findings in results.items()])
    if fmt != "text":
        raise ValueError(f"unknown format {fmt!r}")
    lines = [f"{name}: {f.where}: [{f.rule}] {f.message}"
             for name, findings in results.items() for f in findings]
    lines += [f"{name}: no operations (a components library): operation rules not applied"
              for name in libraries]
    total = sum(len(findings) for findings in results.values())
    failing = sum(1 for findings in results.values() if findings)
    lines.append(f"{_count(total, 'finding')} in {failing} of {_count(len(results), 'document')}"
                 if total else f"{_count(len(results), 'document')} clean")
    return "\n".join(lines) + "\n"


def _lint_files(paths: list[str]) -> Iterator[tuple[str, dict, list[Finding]]]:
    for name in _files(paths or [_shown(documents.CONTRACTS_DIR)]):
        _, document = documents.load(name)
        yield name, document, lint_document(document)


def _files(paths: list[str]) -> list[str]:
    files = []
    for given in paths:
        directory = Path(given)
        if not directory.is_dir():
            files.append(given)
            continue
        found = sorted(p for p in directory.iterdir() if p.suffix in SUFFIXES and p.is_file())
        if not found:
            raise documents.DocumentError(f"no {', '.join(SUFFIXES)} files in {given}")
        files += [str(p) for p in found]
    return files


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
