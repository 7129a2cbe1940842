"""`contracts diff OLD NEW`: what changed from one version of an OpenAPI 3 contract to the next,
and whether each change can break a client written against OLD.

Which way the data flows decides. The client writes a request (parameters, body) and the server
checks it: a request breaks when NEW accepts less than OLD did. The server writes a response and
the client reads it: a response breaks when NEW may send what OLD never did. Callbacks turn this
round: the server writes their requests, the partner's receiver writes their responses.

So a schema *narrowed* (it admits fewer values: a type taken out, number made integer, nullable
dropped, a format added, an enum value removed, a pattern added, a bound tightened, a property
made required, a oneOf/anyOf alternative removed) breaks requests, and a schema *widened* breaks
responses: a new enum value in a response breaks every client whose switch over the values has no
default case. A change that is neither (a pattern replaced, string made integer) breaks both.
Removing anything a client sends or reads (an operation, a parameter, a header, a property, a
request body, a response, a content type) breaks both ways: an old client sends what is now
refused or ignored, or waits for what never comes. Adding optional things breaks nothing.
Security breaks when a client authorised as OLD required may be refused: a scheme or a scope
added to what an operation needs, an alternative taken away, a scheme's type, location, name,
flow or token URL changed.

Not compared: descriptions, summaries, examples, tags, defaults, deprecation, readOnly/writeOnly,
servers and `x-` extensions. Paths match whatever their parameters are named (`/accounts/{id}` is
`/accounts/{account_id}`), and so do path parameters, by position. A schema shared by several
operations is reported in each: it can break a request and not a response.

kind                             request   response
operation-removed                breaking  breaking
operation-added                  -         -
operation-id-changed             -         -
security-changed                 breaking  breaking
security-relaxed                 -         -
parameter-removed                breaking  breaking
parameter-added                  -         -
parameter-required-added         breaking  -
parameter-made-required          breaking  -
parameter-made-optional          -         breaking
request-body-removed             breaking  breaking
request-body-added               -         -
request-body-required-added      breaking  -
request-body-made-required       breaking  -
request-body-made-optional       -         breaking
response-removed                 breaking  breaking
response-added                   -         -
header-removed                   breaking  breaking
header-added                     -         -
header-required-added            breaking  -
header-made-required             breaking  -
header-made-optional             -         breaking
content-type-removed             breaking  breaking
content-type-added               -         -
property-removed                 breaking  breaking
property-added                   -         -
property-required-added          breaking  -
property-made-required           breaking  -
property-made-optional           -         breaking
additional-properties-forbidden  breaking  -
additional-properties-allowed    -         -
type-narrowed                    breaking  -
type-widened                     -         breaking
type-changed                     breaking  breaking
enum-narrowed                    breaking  -
enum-widened                     -         breaking
pattern-added                    breaking  -
pattern-removed                  -         breaking
pattern-changed                  breaking  breaking
bound-tightened                  breaking  -
bound-loosened                   -         breaking
bound-changed                    breaking  breaking
variant-removed                  breaking  -
variant-added                    -         breaking

"request" and "response" are the flow the change is in; operation and security changes are the
same either way. The header kinds are about response headers. Bounds are minimum,
maximum, exclusiveMinimum/Maximum, min/maxLength, min/maxItems, min/maxProperties, uniqueItems
and multipleOf (bound-changed: a multipleOf neither a multiple nor a divisor of the old one).
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from collections.abc import Callable
from fractions import Fraction
from typing import Any, TextIO
from urllib.parse import unquote

from sandbox.verify import documents
from sandbox.verify.documents import DocumentError
from sandbox.verify.report import TestCase, junit_xml

REQUEST, RESPONSE = "request", "response"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

_SENT = "clients written against OLD may send what NEW refuses"
_READ = "clients written against OLD may receive what they do not expect"
_NARROWED, _WIDENED, _CHANGED = (_SENT, None), (None, _READ), (_SENT, _READ)
_GONE = ("clients written against OLD still send it, and it is now refused or ignored",
         "clients that read it no longer find it")
_MEMBER = {
    "removed": _GONE,
    "added": (None, None),
    "required-added": ("clients written against OLD do not send it", None),
    "made-required": ("clients written against OLD may leave it out", None),
    "made-optional": (None, "clients that rely on it may not find it"),
}

# kind -> why it breaks a request, and why a response (None: it does not).
KINDS: dict[str, tuple[str | None, str | None]] = {
    "operation-removed": ("clients written against OLD rely on it",) * 2,
    "operation-added": (None, None),
    "operation-id-changed": (None, None),
    "security-changed": ("clients authorised as OLD required may be refused",) * 2,
    "security-relaxed": (None, None),
    **{f"{noun}-{change}": why for noun in ("parameter", "request-body")
       for change, why in _MEMBER.items()},
    "response-removed": ("clients written against OLD expect it, and may take what comes "
                         "instead for an error",) * 2,
    "response-added": (None, None),
    **{f"header-{change}": why for change, why in _MEMBER.items()},
    "content-type-removed": ("clients that send it are refused",
                             "clients that accept only it are answered otherwise, or refused"),
    "content-type-added": (None, None),
    **{f"property-{change}": why for change, why in _MEMBER.items()},
    "additional-properties-forbidden": ("clients that send properties not listed are refused",
                                        None),
    "additional-properties-allowed": (None, None),
    "type-narrowed": _NARROWED,
    "type-widened": _WIDENED,
    "type-changed": _CHANGED,
    "enum-narrowed": ("clients written against OLD may send a value NEW refuses", None),
    "enum-widened": (None, "clients whose switch over the values has no default case fail on "
                           "a new one"),
    "pattern-added": _NARROWED,
    "pattern-removed": _WIDENED,
    "pattern-changed": _CHANGED,
    "bound-tightened": _NARROWED,
    "bound-loosened": _WIDENED,
    "bound-changed": _CHANGED,
    "variant-removed": _NARROWED,
    "variant-added": _WIDENED,
}

_MEMBER_MESSAGES = {
    "removed": "{noun} removed",
    "added": "new optional {noun}",
    "required-added": "new required {noun}",
    "made-required": "{noun} now required",
    "made-optional": "{noun} now optional",
}
_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")


@dataclasses.dataclass(frozen=True)
class Change:
    breaking: bool
    kind: str  # one of KINDS
    where: str  # e.g. "POST /transfers request body .amount.currency"
    message: str


def compare(old: dict, new: dict) -> list[Change]:
    """Every change from `old` to `new` (bundled OpenAPI 3 documents), in document order.
    DocumentError for a `$ref` that points nowhere."""
    diff = _Diff(old, new)
    diff.operations(_operations(old, old.get("paths")), _operations(new, new.get("paths")),
                    REQUEST)
    diff.security_schemes()
    return diff.changes


def render(changes: list[Change], fmt: str, old_label: str, new_label: str) -> str:
    """The report as text, json or junit (XML)."""
    breaking = [c for c in changes if c.breaking]
    other = [c for c in changes if not c.breaking]
    if fmt == "json":
        return json.dumps({
            "old": old_label, "new": new_label,
            "breaking": [dataclasses.asdict(c) for c in breaking],
            "non_breaking": [dataclasses.asdict(c) for c in other],
            "summary": {"breaking": len(breaking), "non_breaking": len(other)},
        }, indent=2, ensure_ascii=False) + "\n"
    if fmt == "junit":
        cases = [TestCase(f"{c.kind} {c.where}", "contracts.diff",
                          ((f"{c.kind}: {c.message}", f"{c.where}: {c.message}"),)
                          if c.breaking else ())
                 for c in changes] or [TestCase("no breaking changes", "contracts.diff")]
        return junit_xml(f"contracts diff {old_label} {new_label}", cases)
    if fmt != "text":
        raise ValueError(f"unknown format {fmt!r}")
    if not changes:
        return f"no changes from {old_label} to {new_label}\n"
    width = max(len(c.kind) for c in changes)
    lines = []
    for title, group in (("Breaking changes:", breaking), ("Non-breaking changes:", other)):
        if group:
            lines.append(title)
            lines += [f"  {'BREAKING' if c.breaking else 'non-breaking':<12}  {c.kind:<{width}}  "
                      f"{c.where}: {c.message}" for c in group]
    plural = "" if len(changes) == 1 else "s"
    lines.append(f"{len(breaking)} breaking, {len(other)} non-breaking change{plural} "
                 f"from {old_label} to {new_label}")
    return "\n".join(lines) + "\n"


def command(old: str, new: str, *, fmt: str = "text", out: TextIO | None = None) -> int:
    """Print the report; 1 if any change is breaking, else 0. DocumentError if unusable."""
    _, old_doc = documents.load(old)
    _, new_doc = documents.load(new)
    changes = compare(old_doc, new_doc)
    (out or sys.stdout).write(render(changes, fmt, old, new))
    return 1 if any(c.breaking for c in changes) else 0


@dataclasses.dataclass(frozen=True)
class _Op:
    where: str  # "POST /transfers", or "PUT /callback callback paymentEvent POST {$request...}"
    path: str
    op: dict
    path_parameters: list
    top: bool  # not a callback: its security is checked


# What members (parameters, headers, properties, a request body) are compared by:
# key -> (where, path, required, node).
_Members = dict[Any, tuple[str, str, bool, Any]]
_Compare = Callable[[Any, Any, str, str, str], None]


class _Diff:
    def __init__(self, old: dict, new: dict) -> None:
        self.old, self.new = old, new
        self.changes: list[Change] = []
        self._walking: set[tuple[str | None, str | None, str]] = set()  # recursion guard

    def add(self, kind: str, flow: str, where: str, message: str) -> None:
        why = KINDS[kind][flow == RESPONSE]
        self.changes.append(Change(why is not None, kind, where,
                                   f"{message}: {why}" if why else message))

    def operations(self, old: dict[tuple, _Op], new: dict[tuple, _Op], flow: str) -> None:
        for key, op in old.items():
            if key not in new:
                self.add("operation-removed", flow, op.where, "operation removed")
        for key, op in new.items():
            if key in old:
                self.operation(old[key], op, flow)
            else:
                self.add("operation-added", flow, op.where, "new operation")

    def operation(self, old: _Op, new: _Op, flow: str) -> None:
        before, after = old.op.get("operationId"), new.op.get("operationId")
        if before != after:
            self.add("operation-id-changed", flow, new.where, f"operationId was {before}, now "
                     f"{after}: code generated from it names the method differently")
        if new.top:
            self.security(old, new)
        self.members("parameter", self.parameters(self.old, old), self.parameters(self.new, new),
                     flow, self.parameter)
        self.members("request-body", self.request_body(self.old, old),
                     self.request_body(self.new, new), flow, self.content)
        self.responses(old, new, _other(flow))
        self.operations(self.callbacks(self.old, old), self.callbacks(self.new, new),
                        _other(flow))

    def security(self, old: _Op, new: _Op) -> None:
        before, after = _requirements(self.old, old.op), _requirements(self.new, new.op)
        lost = [need for need in before if not any(_satisfies(need, n) for n in after)]
        if lost or _set(before) != _set(after):
            self.add("security-changed" if lost else "security-relaxed", REQUEST, new.where,
                     f"needs {_show_security(after)}, was {_show_security(before)}")

    def security_schemes(self) -> None:
        old = (self.old.get("components") or {}).get("securitySchemes") or {}
        new = (self.new.get("components") or {}).get("securitySchemes") or {}
        for name in [name for name in old if name in new]:
            before, after = _node(self.old, old[name]), _node(self.new, new[name])
            where = f"security scheme {name}"
            changed = [f"{key} was {before.get(key)}, now {after.get(key)}"
                       for key in ("type", "in", "name", "scheme", "openIdConnectUrl")
                       if _lower(before.get(key)) != _lower(after.get(key))]
            old_flows, new_flows = before.get("flows") or {}, after.get("flows") or {}
            for grant, urls in old_flows.items():
                if grant not in new_flows:
                    changed.append(f"the {grant} flow removed")
                    continue
                changed += [f"{grant} {url} was {urls.get(url)}, now {new_flows[grant].get(url)}"
                            for url in ("authorizationUrl", "tokenUrl")
                            if urls.get(url) != new_flows[grant].get(url)]
            if changed:
                self.add("security-changed", REQUEST, where, "; ".join(changed))
            added = [grant for grant in new_flows if grant not in old_flows]
            if added:
                self.add("security-relaxed", REQUEST, where, f"new flow {', '.join(added)}")

    def members(self, noun: str, old: _Members, new: _Members, flow: str,
                compare: _Compare) -> None:
        """Things that are there or not, required or not, each with its own comparison."""
        label = noun.replace("-", " ")
        for key, (where, path, _, _) in old.items():
            if key not in new:
                self.add(f"{noun}-removed", flow, _at(where, path),
                         _MEMBER_MESSAGES["removed"].format(noun=label))
        for key, (where, path, required, node) in new.items():
            if key not in old:
                change = "required-added" if required else "added"
            elif required != old[key][2]:
                change = "made-required" if required else "made-optional"
            else:
                change = None
            if change:
                self.add(f"{noun}-{change}", flow, _at(where, path),
                         _MEMBER_MESSAGES[change].format(noun=label))
            if key in old:
                compare(old[key][3], node, where, path, flow)

    def parameters(self, doc: dict, op: _Op) -> _Members:
        names = re.findall(r"{([^}]*)}", op.path)
        out: _Members = {}
        for parameter in [*op.path_parameters, *(op.op.get("parameters") or [])]:
            parameter = _node(doc, parameter)
            name, place = str(parameter.get("name")), parameter.get("in")
            key = ((place, names.index(name) if name in names else name) if place == "path"
                   else (place, name.lower() if place == "header" else name))
            out[key] = (f"{op.where} {place} parameter {name}", "",
                        place == "path" or bool(parameter.get("required")), parameter)
        return out

    def parameter(self, old: Any, new: Any, where: str, path: str, flow: str) -> None:
        """A parameter or a header: its schema, or the schema of its one content type."""
        self.schema(_parameter_schema(old), _parameter_schema(new), where, path, flow)

    def request_body(self, doc: dict, op: _Op) -> _Members:
        body = _node(doc, op.op.get("requestBody"))
        return {"body": (f"{op.where} request body", "", bool(body.get("required")), body)
                } if body else {}

    def responses(self, old: _Op, new: _Op, flow: str) -> None:
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
            old_response = _node(self.old, before[status])
            response = _node(self.new, response)
            self.members("header", _headers(self.old, old_response, where),
                         _headers(self.new, response, where), flow, self.parameter)
            self.content(old_response, response, where, "", flow)

    def callbacks(self, doc: dict, op: _Op) -> dict[tuple, _Op]:
        out = {}
        for name, callback in (op.op.get("callbacks") or {}).items():
            for key, callback_op in _operations(doc, _node(doc, callback),
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
                self.schema(_node(self.old, before[media]).get("schema"),
                            _node(self.new, body).get("schema"),
                            f"{where} {media}" if several else where, path, flow)

    def schema(self, old: Any, new: Any, where: str, path: str, flow: str) -> None:
        old, old_ref = _deref(self.old, old)
        new, new_ref = _deref(self.new, new)
        pair = (old_ref, new_ref, flow)
        if old_ref and new_ref:  # only two references can recurse for ever
            if pair in self._walking:
                return  # a recursive schema, compared further up
            self._walking.add(pair)
        try:
            self._schema(_merge_all_of(self.old, old), _merge_all_of(self.new, new),
                         where, path, flow)
        finally:
            self._walking.discard(pair)

    def _schema(self, old: dict, new: dict, where: str, path: str, flow: str) -> None:
        at = _at(where, path)
        if not self.type(old, new, at, flow):
            return  # unrelated schemas: what is inside them does not compare
        self.enum(old.get("enum"), new.get("enum"), at, flow)
        self.pattern(old.get("pattern"), new.get("pattern"), at, flow)
        self.bounds(old, new, at, flow)
        self.members("property", _properties(old, where, path), _properties(new, where, path),
                     flow, self.schema)
        self.additional_properties(old, new, where, path, flow)
        if "items" in old or "items" in new:
            self.schema(old.get("items"), new.get("items"), where, f"{path}[]", flow)
        for word in ("oneOf", "anyOf"):
            self.variants(word, old.get(word), new.get(word), where, path, flow)

    def type(self, old: dict, new: dict, at: str, flow: str) -> bool:
        """Compare types (with nullable and format); False when they are unrelated."""
        before, after = _types(old), _types(new)
        if before != after:
            narrower = after is not None and (before is None or _admits(before, after))
            wider = before is not None and (after is None or _admits(after, before))
            message = f"type was {_show_types(before)}, now {_show_types(after)}"
            if not narrower and not wider:
                self.add("type-changed", flow, at, message)
                return False
            if narrower != wider:  # both: the same values, as {number, integer} and {number}
                self.add("type-narrowed" if narrower else "type-widened", flow, at, message)
        before, after = old.get("format"), new.get("format")
        if before != after:
            kind = ("type-narrowed" if before is None else "type-widened" if after is None
                    else "type-changed")
            self.add(kind, flow, at, f"format was {before or 'none'}, now {after or 'none'}")
        return True

    def enum(self, old: list | None, new: list | None, at: str, flow: str) -> None:
        if old is None and new is None:
            return
        if old is None:
            self.add("enum-narrowed", flow, at, f"values now limited to {_values(new)}")
        elif new is None:
            self.add("enum-widened", flow, at, f"values no longer limited to {_values(old)}")
        else:
            removed = [value for value in old if value not in new]
            added = [value for value in new if value not in old]
            if removed:
                self.add("enum-narrowed", flow, at, f"value{_s(removed)} {_values(removed)} "
                         "removed")
            if added:
                self.add("enum-widened", flow, at, f"new value{_s(added)} {_values(added)}")

    def pattern(self, old: str | None, new: str | None, at: str, flow: str) -> None:
        if old == new:
            return
        if old is None:
            self.add("pattern-added", flow, at, f"new pattern '{new}'")
        elif new is None:
            self.add("pattern-removed", flow, at, f"pattern '{old}' removed")
        else:
            self.add("pattern-changed", flow, at, f"pattern was '{old}', now '{new}'")

    def bounds(self, old: dict, new: dict, at: str, flow: str) -> None:
        for key in (*_LOWER_BOUNDS, *_UPPER_BOUNDS, "uniqueItems", "multipleOf"):
            # false exclusiveMinimum/Maximum (OpenAPI 3.0) or uniqueItems bounds nothing
            before, after = (None if value is False else value
                             for value in (old.get(key), new.get(key)))
            if before == after:
                continue
            tighter = _tighter(key, before, after)
            kind = {True: "bound-tightened", False: "bound-loosened", None: "bound-changed"}
            self.add(kind[tighter], flow, at, f"{key} was {_show(before)}, now {_show(after)}")

    def additional_properties(self, old: dict, new: dict, where: str, path: str,
                              flow: str) -> None:
        before = old.get("additionalProperties", True)
        after = new.get("additionalProperties", True)
        if before is not False and after is False:
            self.add("additional-properties-forbidden", flow, _at(where, path),
                     "additionalProperties now false")
        elif before is False and after is not False:
            self.add("additional-properties-allowed", flow, _at(where, path),
                     "additionalProperties no longer false")
        elif isinstance(before, dict) or isinstance(after, dict):
            self.schema(before if isinstance(before, dict) else {},
                        after if isinstance(after, dict) else {}, where, f"{path}.*", flow)

    def variants(self, word: str, old: list | None, new: list | None, where: str, path: str,
                 flow: str) -> None:
        """oneOf/anyOf alternatives, matched by $ref, else by position."""
        if not old and not new:
            return
        if not old or not new:
            self.add("type-narrowed" if new else "type-widened", flow, _at(where, path),
                     f"{word} {'added' if new else 'removed'}")
            return
        before, after = _alternatives(word, old), _alternatives(word, new)
        for key, (label, _) in before.items():
            if key not in after:
                self.add("variant-removed", flow, _at(where, path), f"alternative {label} removed")
        for key, (label, schema) in after.items():
            if key in before:
                self.schema(before[key][1], schema, where, f"{path}<{label}>", flow)
            else:
                self.add("variant-added", flow, _at(where, path), f"new alternative {label}")


def _operations(doc: dict, paths: Any, prefix: str = "") -> dict[tuple, _Op]:
    """Operations by (normalised path, method): `/accounts/{id}` is `/accounts/{account_id}`."""
    out = {}
    for path, item in (paths or {}).items():
        item = _node(doc, item)
        for method in METHODS:
            if isinstance(item.get(method), dict):
                out[(re.sub(r"{[^}]*}", "{}", str(path)), method)] = _Op(
                    f"{prefix}{method.upper()} {path}", str(path), item[method],
                    item.get("parameters") or [], top=not prefix)
    return out


def _headers(doc: dict, response: dict, where: str) -> _Members:
    out: _Members = {}
    for name, header in (response.get("headers") or {}).items():
        header = _node(doc, header)
        out[name.lower()] = (f"{where} header {name}", "", bool(header.get("required")), header)
    return out


def _properties(schema: dict, where: str, path: str) -> _Members:
    properties = schema.get("properties") or {}
    required = [name for name in schema.get("required") or [] if isinstance(name, str)]
    return {name: (where, f"{path}.{name}", name in required, properties.get(name))
            for name in [*properties, *(name for name in required if name not in properties)]}


def _alternatives(word: str, schemas: list) -> dict[str, tuple[str, Any]]:
    out = {}
    for i, schema in enumerate(schemas):
        ref = schema.get("$ref") if isinstance(schema, dict) else None
        if isinstance(ref, str):
            out[ref] = (ref.rsplit("/", 1)[-1], schema)
        else:
            out[f"#{i}"] = (f"{word} {i + 1}", schema)
    return out


def _parameter_schema(parameter: dict) -> Any:
    if "schema" in parameter:
        return parameter["schema"]
    return next(iter((parameter.get("content") or {}).values()), {}).get("schema")


def _merge_all_of(doc: dict, schema: dict, seen: frozenset[str] = frozenset()) -> dict:
    """`schema` with its allOf parts merged in: their properties and required names joined,
    their other keywords where `schema` has none."""
    if not isinstance(schema.get("allOf"), list):
        return schema
    merged = {key: value for key, value in schema.items() if key != "allOf"}
    properties = dict(merged.get("properties") or {})
    required = list(merged.get("required") or [])
    for part in schema["allOf"]:
        part, ref = _deref(doc, part)
        if ref in seen:
            continue
        for key, value in _merge_all_of(doc, part, seen | {ref} if ref else seen).items():
            if key == "properties":
                for name, prop in value.items():
                    properties.setdefault(name, prop)
            elif key == "required":
                required += [name for name in value if name not in required]
            else:
                merged.setdefault(key, value)
    if properties:
        merged["properties"] = properties
    if required:
        merged["required"] = required
    return merged


def _deref(doc: dict, node: Any) -> tuple[dict, str | None]:
    """(what `node` refers to, the last `$ref` followed); {} for a missing node."""
    ref, seen = None, set()
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        ref = node["$ref"]
        if ref in seen:
            raise DocumentError(f"$ref {ref!r} refers to itself")
        seen.add(ref)
        node = _pointer(doc, ref)
    return (node if isinstance(node, dict) else {}), ref


def _node(doc: dict, node: Any) -> dict:
    return _deref(doc, node)[0]


def _pointer(doc: dict, ref: str) -> Any:
    if not ref.startswith("#"):
        raise DocumentError(f"cannot follow $ref {ref!r}: only references within the document "
                            "(#/...) are followed")
    node: Any = doc
    for part in ref[1:].split("/")[1:]:
        part = unquote(part).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise DocumentError(f"$ref {ref!r} points at nothing")
    return node


def _requirements(doc: dict, op: dict) -> list[dict[str, frozenset[str]]]:
    """The operation's security alternatives; [{}] (anyone) when it has none."""
    requirements = op["security"] if "security" in op else doc.get("security")
    return [{name: frozenset(scopes or ()) for name, scopes in requirement.items()}
            for requirement in requirements or []] or [{}]


def _satisfies(held: dict[str, frozenset[str]], needed: dict[str, frozenset[str]]) -> bool:
    """Whether a client that satisfies `held` satisfies `needed` too."""
    return all(name in held and scopes <= held[name] for name, scopes in needed.items())


def _set(requirements: list[dict[str, frozenset[str]]]) -> set[frozenset]:
    return {frozenset(requirement.items()) for requirement in requirements}


def _show_security(requirements: list[dict[str, frozenset[str]]]) -> str:
    return " or ".join(
        " and ".join(f"{name} [{', '.join(sorted(scopes))}]" if scopes else name
                     for name, scopes in requirement.items()) or "no authentication"
        for requirement in requirements)


def _types(schema: dict) -> frozenset[str] | None:
    """The JSON types a schema admits (null if nullable); None for any type."""
    declared = schema.get("type")
    if declared is None:
        return None
    types = {declared} if isinstance(declared, str) else set(declared)
    return frozenset(types | {"null"} if schema.get("nullable") else types)


def _admits(types: frozenset[str], others: frozenset[str]) -> bool:
    return all(t in types or (t == "integer" and "number" in types) for t in others)


def _show_types(types: frozenset[str] | None) -> str:
    return " or ".join(sorted(types)) if types is not None else "any"


def _tighter(key: str, before: Any, after: Any) -> bool | None:
    """True if `after` bounds more than `before`, False if less, None if neither."""
    if before is None or after is None:
        return before is None
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (before, after))
    if not numbers:
        return None  # true vs. a number: exclusiveMinimum in OpenAPI 3.0 vs. 3.1
    if key == "multipleOf":
        if not before:
            return None  # multipleOf 0 is invalid: nothing to compare with
        ratio = Fraction(str(after)) / Fraction(str(before))
        return True if ratio.denominator == 1 else False if ratio.numerator == 1 else None
    return after > before if key in _LOWER_BOUNDS else after < before


def _at(where: str, path: str) -> str:
    return f"{where} {path}" if path else where


def _other(flow: str) -> str:
    return RESPONSE if flow == REQUEST else REQUEST


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _values(values: list) -> str:
    return ", ".join(json.dumps(value, ensure_ascii=False) for value in values)


def _s(values: list) -> str:
    return "" if len(values) == 1 else "s"


def _show(value: Any) -> str:
    return "none" if value is None else json.dumps(value)
