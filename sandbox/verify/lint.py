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
import re
import sys
from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from jsonschema.exceptions import ValidationError, best_match
from openapi_schema_validator import (
    OAS30Validator,
    OAS31Validator,
    oas30_format_checker,
    oas31_format_checker,
)
from openapi_spec_validator import OpenAPIV30SpecValidator, OpenAPIV31SpecValidator
from openapi_spec_validator.validation.exceptions import DuplicateOperationIDError

from sandbox.verify import documents
from sandbox.verify.report import TestCase, junit_xml

SUFFIXES = (".yaml", ".yml", ".json")
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
MAX_SCHEMA_ERRORS = 50
MAX_MESSAGE = 200
MONEY_WORDS = frozenset({"amount", "balance", "price", "fee", "cost", "limit"})
MONEY_FORMATS = frozenset({"money", "amount"})
RFC7807_MEMBERS = frozenset({"type", "title", "status", "detail"})
PROBLEM_JSON = "application/problem+json"
IGNORE = "x-lint-ignore"
# Per `openapi` major.minor: the document validator, and the schema validator for examples.
VALIDATORS = {
    "3.0": (OpenAPIV30SpecValidator, OAS30Validator, oas30_format_checker),
    "3.1": (OpenAPIV31SpecValidator, OAS31Validator, oas31_format_checker),
}


@dataclass(frozen=True)
class Finding:
    rule: str
    where: str  # a JSON pointer ("#/components/schemas/Money") or an operation ("GET /accounts")
    message: str


def command(paths: list[str], *, fmt: str = "text", out: TextIO | None = None) -> int:
    """Lint `paths` (default: the sandbox's contracts/) and print the report: 0 clean,
    1 findings. DocumentError for a path that cannot be read as an OpenAPI document."""
    results: dict[str, list[Finding]] = {}
    libraries = []
    for name, document, findings in _lint_files(paths):
        results[name] = findings
        if next(_operations(document), None) is None:
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
    malformed = (_schema_findings(spec_validator.schema_validator.iter_errors(document))
                 or list(itertools.islice(_dangling_refs(document, document, "#"),
                                          MAX_SCHEMA_ERRORS)))
    if malformed:
        return malformed
    semantic = (error for error in spec_validator(document).iter_errors()
                if not isinstance(error, DuplicateOperationIDError))  # operation-id-duplicate
    return [*_schema_findings(semantic, located=False), *_operation_findings(document),
            *_example_findings(document, schema_validator, format_checker),
            *_money_findings(document)]


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


# Documents


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


# openapi-schema


def _schema_findings(errors: Iterable[ValidationError], *, located: bool = True) -> list[Finding]:
    errors = list(itertools.islice(errors, MAX_SCHEMA_ERRORS + 1))
    findings = [_schema_finding(error, located) for error in errors[:MAX_SCHEMA_ERRORS]]
    if len(errors) > MAX_SCHEMA_ERRORS:
        findings.append(Finding("openapi-schema", "#",
                                f"more errors not shown; fix these {MAX_SCHEMA_ERRORS} first"))
    return findings


def _dangling_refs(document: dict, node: Any, where: str) -> Iterator[Finding]:
    """A finding for each $ref that resolves nowhere in `document`; example values are data,
    not entered."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            yield from _dangling_refs(document, item, f"{where}/{i}")
        return
    if not isinstance(node, dict):
        return
    ref = node.get("$ref")
    if isinstance(ref, str) and _at(document, ref) is None:
        yield Finding("openapi-schema", f"{where}/$ref", f"{ref!r} resolves to nothing here")
    for key, value in node.items():
        if key == "examples" and isinstance(value, dict):  # Example Objects: only their $refs
            value = {name: {"$ref": example["$ref"]} for name, example in value.items()
                     if isinstance(example, dict) and "$ref" in example}
        if key != "example" and not str(key).startswith("x-"):
            yield from _dangling_refs(document, value, f"{where}/{_escape(key)}")


def _schema_finding(error: ValidationError, located: bool) -> Finding:
    """`located`: the error's path is from the document's root. The semantic checks' paths are
    from a schema or value they do not name, so those findings are placed at the root."""
    message = _one_line(error.message)
    if located or not error.absolute_path:
        return Finding("openapi-schema", _pointer(error.absolute_path), message)
    return Finding("openapi-schema", "#", f"{message} (at …{_pointer(error.absolute_path)[1:]} "
                   "of a schema or value)")


# operation-id, operation-id-duplicate, operation-summary, error-responses, problem-schema


def _operations(document: dict) -> Iterator[tuple[str, dict, dict]]:
    """("GET /path", operation, path item) for each operation under `paths`."""
    paths = document.get("paths")
    for path, item in (paths.items() if isinstance(paths, dict) else ()):
        item = _deref(document, item)
        for method in METHODS:
            if isinstance(item, dict) and isinstance(item.get(method), dict):
                yield f"{method.upper()} {path}", item[method], item


def _operation_findings(document: dict) -> Iterator[Finding]:
    first_use: dict[str, str] = {}
    for where, operation, item in _operations(document):
        operation_id = operation.get("operationId")
        if not isinstance(operation_id, str) or not operation_id.strip():
            yield Finding("operation-id", where, "no operationId")
        elif operation_id in first_use:
            yield Finding("operation-id-duplicate", where,
                          f"operationId {operation_id!r} is also {first_use[operation_id]}'s")
        else:
            first_use[operation_id] = where
        if not str(operation.get("summary") or "").strip():
            yield Finding("operation-summary", where, "no summary")
        responses = operation.get("responses") or {}
        client_errors = {str(code): response for code, response in responses.items()
                         if str(code).startswith("4")}
        if not client_errors and _takes_input(document, operation, item):
            yield Finding("error-responses", where, "no 4xx response documented"
                          + (" (a default response does not count)" if "default" in responses
                             else ""))
        for code, response in client_errors.items():
            problem = _not_a_problem(document, _deref(document, response))
            if problem:
                yield Finding("problem-schema", f"{where} {code}", problem)


def _takes_input(document: dict, operation: dict, item: dict) -> bool:
    security = operation.get("security", document.get("security")) or ()
    return bool(operation.get("parameters") or item.get("parameters")
                or operation.get("requestBody") or any(security))


def _not_a_problem(document: dict, response: Any) -> str | None:
    """Why a 4xx response is not an application/problem+json Problem, if it is not."""
    content = response.get("content") if isinstance(response, dict) else None
    if not content:
        return f"no body; document an {PROBLEM_JSON} body with the Problem schema"
    others = [media for media in content if media.split(";")[0].strip().lower() != PROBLEM_JSON]
    if others:
        return f"{', '.join(others)}: not {PROBLEM_JSON} with the Problem schema"
    if not all(_is_problem(document, (media or {}).get("schema")) for media in content.values()):
        return (f"the {PROBLEM_JSON} schema is not the Problem schema "
                "(a $ref to Problem, or the members type, title, status and detail)")
    return None


def _is_problem(document: dict, schema: Any, depth: int = 0) -> bool:
    if not isinstance(schema, dict) or depth > 32:
        return False
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return (ref.rsplit("/", 1)[-1] == "Problem"
                or _is_problem(document, _at(document, ref), depth + 1))
    properties = schema.get("properties")
    return (isinstance(properties, dict) and RFC7807_MEMBERS <= set(properties)
            or any(_is_problem(document, member, depth + 1)
                   for member in schema.get("allOf") or ()))


# example-invalid


def _example_findings(document: dict, validator: Any, format_checker: Any) -> Iterator[Finding]:
    def check(value: Any, schema_at: str, where: str) -> Iterator[Finding]:
        error = best_match(validator({**document, "$ref": schema_at},
                                     format_checker=format_checker).iter_errors(value))
        if error is not None:
            inside = f" (at {_pointer(error.absolute_path)[1:]})" if error.absolute_path else ""
            yield Finding("example-invalid", where, _one_line(error.message) + inside)

    for kind, where, node in _sites(document, "#"):
        if kind == "carrier":  # a parameter, header or media type
            if "example" in node:
                yield from check(node["example"], f"{where}/schema", f"{where}/example")
            examples = node.get("examples")
            for name, example in (examples.items() if isinstance(examples, dict) else ()):
                example = _deref(document, example)
                if isinstance(example, dict) and "value" in example:
                    yield from check(example["value"], f"{where}/schema",
                                     f"{where}/examples/{_escape(name)}/value")
            continue
        for at, schema, ignored in _schemas(node, where):
            if "example-invalid" in ignored:
                continue
            if "example" in schema:
                yield from check(schema["example"], at, f"{at}/example")
            if isinstance(schema.get("examples"), list):  # OpenAPI 3.1 (JSON Schema) examples
                for i, value in enumerate(schema["examples"]):
                    yield from check(value, at, f"{at}/examples/{i}")


# money-schema


def _money_findings(document: dict) -> Iterator[Finding]:
    for kind, root_at, root in _sites(document, "#"):
        if kind == "carrier":
            continue
        for where, schema, ignored in _schemas(root, root_at):
            properties = schema.get("properties")
            if not isinstance(properties, dict) or _money_shaped(schema):
                continue
            for name, prop in properties.items():
                if ("money-schema" in ignored | _ignored(prop)
                        or not _looks_like_money(document, str(name), prop)
                        or _holds_money(document, prop)):
                    continue
                yield Finding("money-schema", f"{where}/properties/{_escape(name)}",
                              f"{name!r} looks like money but is not a Money object "
                              "(amount and currency); use the Money schema")


def _looks_like_money(document: dict, name: str, schema: Any) -> bool:
    words = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+", name)
    if words and words[-1].lower().removesuffix("s") in MONEY_WORDS:
        return True
    resolved = _deref(document, schema)
    return isinstance(resolved, dict) and str(resolved.get("format", "")).lower() in MONEY_FORMATS


def _holds_money(document: dict, schema: Any, depth: int = 0) -> bool:
    """Is it a Money, a record of its own properties, or (an array or composition of) those?"""
    schema = _deref(document, schema)
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


# Walking a document


def _sites(node: Any, where: str) -> Iterator[tuple[str, str, dict]]:
    """("schema", where, schema) for each top-level schema: those in components/schemas and
    those under a `schema` key; ("carrier", where, object) for each object with a `schema`
    (a parameter, header or media type). Example values and extensions are not entered."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            yield from _sites(item, f"{where}/{i}")
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        at = f"{where}/{_escape(key)}"
        if key in ("example", "examples") or str(key).startswith("x-"):
            continue
        if key == "schema" and isinstance(value, dict):
            yield "carrier", where, node
            yield "schema", at, value
        elif key == "schemas" and where == "#/components" and isinstance(value, dict):
            for name, schema in value.items():
                if isinstance(schema, dict):
                    yield "schema", f"{at}/{_escape(name)}", schema
        else:
            yield from _sites(value, at)


def _schemas(schema: Any, where: str,
             ignored: frozenset[str] = frozenset()) -> Iterator[tuple[str, dict, frozenset[str]]]:
    """(where, schema, rules exempted by x-lint-ignore) for `schema` and the schemas inside it;
    a $ref is not followed (its target is visited where it is defined)."""
    if not isinstance(schema, dict):
        return
    ignored |= _ignored(schema)
    yield where, schema, ignored
    if "$ref" in schema:
        return
    for key in ("properties", "patternProperties"):
        members = schema.get(key)
        for name, member in (members.items() if isinstance(members, dict) else ()):
            yield from _schemas(member, f"{where}/{key}/{_escape(name)}", ignored)
    for key in ("items", "additionalProperties", "not"):
        yield from _schemas(schema.get(key), f"{where}/{key}", ignored)
    for key in ("allOf", "anyOf", "oneOf"):
        for i, member in enumerate(schema.get(key) or ()):
            yield from _schemas(member, f"{where}/{key}/{i}", ignored)


def _ignored(schema: Any) -> frozenset[str]:
    rules = schema.get(IGNORE) if isinstance(schema, dict) else None
    return frozenset([rules] if isinstance(rules, str) else rules or ())


def _deref(document: dict, node: Any) -> Any:
    """`node`, or what its chain of local $refs ends at (None if it ends nowhere)."""
    seen: set[str] = set()
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        if node["$ref"] in seen:
            return None
        seen.add(node["$ref"])
        node = _at(document, node["$ref"])
    return node


def _at(document: dict, ref: str) -> Any:
    if not ref.startswith("#"):
        return None
    node: Any = document
    for part in ref[1:].split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _pointer(parts: Iterable[Any]) -> str:
    return "#" + "".join(f"/{_escape(part)}" for part in parts)


def _escape(part: Any) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


def _one_line(message: str) -> str:
    line = message.strip().splitlines()[0] if message.strip() else "invalid"
    return line if len(line) <= MAX_MESSAGE else line[:MAX_MESSAGE - 1] + "…"
