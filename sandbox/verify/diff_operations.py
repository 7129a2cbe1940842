"""`contracts diff` of the API's surface: operations (by path and method), their parameters,
request bodies, responses, headers, content types and callbacks."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from sandbox.verify import diff_security
from sandbox.verify.diff_base import Add, Members, members, node, other
from sandbox.verify.diff_schemas import SchemaDiff
from sandbox.verify.documents import METHODS


@dataclasses.dataclass(frozen=True)
class Op:
    where: str  # "POST /transfers", or "PUT /callback callback paymentEvent POST {$request...}"
    path: str
    op: dict
    path_parameters: list
    top: bool  # not a callback: its security is checked


def find_operations(doc: dict, paths: Any, prefix: str = "") -> dict[tuple, Op]:
    """Operations by (normalised path, method): `/accounts/{id}` is `/accounts/{account_id}`."""
    out = {}
    for path, item in (paths or {}).items():
        item = node(doc, item)
        for method in METHODS:
            if isinstance(item.get(method), dict):
                out[(re.sub(r"{[^}]*}", "{}", str(path)), method)] = Op(
                    f"{prefix}{method.upper()} {path}", str(path), item[method],
                    item.get("parameters") or [], top=not prefix)
    return out


class OperationDiff:
    """Compares the operations of `old` and `new`, and through them their schemas."""

    def __init__(self, old: dict, new: dict, add: Add) -> None:
        self.old, self.new, self.add = old, new, add
        self.schemas = SchemaDiff(old, new, add)

    def operations(self, old: dict[tuple, Op], new: dict[tuple, Op], flow: str) -> None:
        for key, op in old.items():
            if key not in new:
                self.add("operation-removed", flow, op.where, "operation removed")
        for key, op in new.items():
            if key in old:
                self.operation(old[key], op, flow)
            else:
                self.add("operation-added", flow, op.where, "new operation")

    def operation(self, old: Op, new: Op, flow: str) -> None:
        before, after = old.op.get("operationId"), new.op.get("operationId")
        if before != after:
            self.add("operation-id-changed", flow, new.where, f"operationId was {before}, now "
                     f"{after}: code generated from it names the method differently")
        if new.top:
            diff_security.requirements(self.add, self.old, self.new, old.op, new.op, new.where)
        members(self.add, "parameter", self.parameters(self.old, old),
                self.parameters(self.new, new), flow, self.parameter)
        members(self.add, "request-body", self.request_body(self.old, old),
                self.request_body(self.new, new), flow, self.content)
        self.responses(old, new, other(flow))
        self.operations(self.callbacks(self.old, old), self.callbacks(self.new, new),
                        other(flow))

    def parameters(self, doc: dict, op: Op) -> Members:
        names = re.findall(r"{([^}]*)}", op.path)
        out: Members = {}
        for parameter in [*op.path_parameters, *(op.op.get("parameters") or [])]:
            parameter = node(doc, parameter)
            name, place = str(parameter.get("name")), parameter.get("in")
            key = ((place, names.index(name) if name in names else name) if place == "path"
                   else (place, name.lower() if place == "header" else name))
            out[key] = (f"{op.where} {place} parameter {name}", "",
                        place == "path" or bool(parameter.get("required")), parameter)
        return out

    def parameter(self, old: Any, new: Any, where: str, path: str, flow: str) -> None:
        """A parameter or a header: its schema, or the schema of its one content type."""
        self.schemas.schema(_parameter_schema(old), _parameter_schema(new), where, path, flow)

    def request_body(self, doc: dict, op: Op) -> Members:
        body = node(doc, op.op.get("requestBody"))
        return {"body": (f"{op.where} request body", "", bool(body.get("required")), body)
                } if body else {}

    def responses(self, old: Op, new: Op, flow: str) -> None:
        before = {str(k): v for k, v in (old.op.get("responses") or {}).items()}
        after = {str(k): v for k, v in (new.op.get("responses") or {}).items()}
        for status in before:
            if status not in after:
                self.add("response-removed", flow, f"{old.where} response {status}",
                         "response removed")
        for status, response in after.items():
            where = f"{new.where} response {status}"
            if status not in before:
                self.add("response-added", flow, where, "new response")
                continue
            old_response = node(self.old, before[status])
            response = node(self.new, response)
            members(self.add, "header", _headers(self.old, old_response, where),
                    _headers(self.new, response, where), flow, self.parameter)
            self.content(old_response, response, where, "", flow)

    def callbacks(self, doc: dict, op: Op) -> dict[tuple, Op]:
        out = {}
        for name, callback in (op.op.get("callbacks") or {}).items():
            for key, callback_op in find_operations(doc, node(doc, callback),
                                                    f"{op.where} callback {name} ").items():
                out[(name, *key)] = callback_op
        return out

    def content(self, old: Any, new: Any, where: str, path: str, flow: str) -> None:
        """The media types of a request body or a response, and their schemas."""
        before, after = old.get("content") or {}, new.get("content") or {}
        several = len(before.keys() | after.keys()) > 1
        for media in before:
            if media not in after:
                self.add("content-type-removed", flow, where, f"content type {media} removed")
        for media, body in after.items():
            if media not in before:
                self.add("content-type-added", flow, where, f"new content type {media}")
            else:
                self.schemas.schema(node(self.old, before[media]).get("schema"),
                                    node(self.new, body).get("schema"),
                                    f"{where} {media}" if several else where, path, flow)


def _headers(doc: dict, response: dict, where: str) -> Members:
    out: Members = {}
    for name, header in (response.get("headers") or {}).items():
        header = node(doc, header)
        out[name.lower()] = (f"{where} header {name}", "", bool(header.get("required")), header)
    return out


def _parameter_schema(parameter: dict) -> Any:
    if "schema" in parameter:
        return parameter["schema"]
    return next(iter((parameter.get("content") or {}).values()), {}).get("schema")
