"""What the comparisons of `contracts diff` share: the two flows, $refs followed the diff's way,
and members (parameters, headers, properties, a request body) that are there or not."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sandbox.verify import refs

REQUEST, RESPONSE = "request", "response"

# How a comparison reports a change: add(kind, flow, where, message).
Add = Callable[[str, str, str, str], None]
# What members are compared by: key -> (where, path, required, node).
Members = dict[Any, tuple[str, str, bool, Any]]
Compare = Callable[[Any, Any, str, str, str], None]

_MEMBER_MESSAGES = {
    "removed": "{noun} removed",
    "added": "new optional {noun}",
    "required-added": "new required {noun}",
    "made-required": "{noun} now required",
    "made-optional": "{noun} now optional",
}


def members(add: Add, noun: str, old: Members, new: Members, flow: str,
            compare: Compare) -> None:
    """Things that are there or not, required or not, each with its own comparison."""
    label = noun.replace("-", " ")
    for key, (where, path, _, _) in old.items():
        if key not in new:
            add(f"{noun}-removed", flow, located(where, path),
                _MEMBER_MESSAGES["removed"].format(noun=label))
    for key, (where, path, required, node) in new.items():
        if key not in old:
            change = "required-added" if required else "added"
        elif required != old[key][2]:
            change = "made-required" if required else "made-optional"
        else:
            change = None
        if change:
            add(f"{noun}-{change}", flow, located(where, path),
                _MEMBER_MESSAGES[change].format(noun=label))
        if key in old:
            compare(old[key][3], node, where, path, flow)


def deref(doc: dict, node: Any) -> tuple[dict, str | None]:
    """(what `node` refers to, the last `$ref` followed); {} for a missing node.
    DocumentError for a `$ref` that points nowhere: a diff of a broken document means nothing."""
    target, ref = refs.follow(doc, node, percent_decode=True)
    return (target if isinstance(target, dict) else {}), ref


def node(doc: dict, value: Any) -> dict:
    """What `value` refers to, {} for a missing node."""
    return deref(doc, value)[0]


def located(where: str, path: str) -> str:
    return f"{where} {path}" if path else where


def other(flow: str) -> str:
    return RESPONSE if flow == REQUEST else REQUEST
