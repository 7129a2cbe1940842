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
import sys
from typing import TextIO

from sandbox.verify import diff_security, documents
from sandbox.verify.diff_base import REQUEST, RESPONSE
from sandbox.verify.diff_operations import OperationDiff, find_operations
from sandbox.verify.report import TestCase, junit_xml

# This module is the command and its report; the comparing is done by diff_operations (the
# API's surface), diff_schemas and diff_security.

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


@dataclasses.dataclass(frozen=True)
class Change:
    breaking: bool
    kind: str  # one of KINDS
    where: str  # e.g. "POST /transfers request body .amount.currency"
    message: str


def compare(old: dict, new: dict) -> list[Change]:
    """Every change from `old` to `new` (bundled OpenAPI 3 documents), in document order.
    DocumentError for a `$ref` that points nowhere."""
    changes: list[Change] = []

    def add(kind: str, flow: str, where: str, message: str) -> None:
        why = KINDS[kind][flow == RESPONSE]
        changes.append(Change(why is not None, kind, where,
                              f"{message}: {why}" if why else message))

    OperationDiff(old, new, add).operations(find_operations(old, old.get("paths")),
                                            find_operations(new, new.get("paths")), REQUEST)
    diff_security.schemes(add, old, new)
    return changes


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
