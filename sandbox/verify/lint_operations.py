"""The lint rules on the API's operations: operation-id, operation-id-duplicate,
operation-summary, error-responses and problem-schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sandbox.verify.documents import METHODS
from sandbox.verify.lint_base import Finding, at, deref

RFC7807_MEMBERS = frozenset({"type", "title", "status", "detail"})
PROBLEM_JSON = "application/problem+json"


def operations(document: dict) -> Iterator[tuple[str, dict, dict]]:
    """("GET /path", operation, path item) for each operation under `paths`."""
    paths = document.get("paths")
    for path, item in (paths.items() if isinstance(paths, dict) else ()):
        item = deref(document, item)
        for method in METHODS:
            if isinstance(item, dict) and isinstance(item.get(method), dict):
                yield f"{method.upper()} {path}", item[method], item


def operation_findings(document: dict) -> Iterator[Finding]:
    first_use: dict[str, str] = {}
    for where, operation, item in operations(document):
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
            problem = _not_a_problem(document, deref(document, response))
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
                or _is_problem(document, at(document, ref), depth + 1))
    properties = schema.get("properties")
    return (isinstance(properties, dict) and RFC7807_MEMBERS <= set(properties)
            or any(_is_problem(document, member, depth + 1)
                   for member in schema.get("allOf") or ()))
