"""Local `$ref`s and JSON pointers in an OpenAPI document: following them, and writing them.
Shared by `contracts lint` and `contracts diff`, which differ only in the keywords they pass."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

from sandbox.verify.documents import DocumentError


def resolve(doc: dict, ref: str, *, percent_decode: bool, strict: bool = True) -> Any:
    """What the local `ref` ("#/components/schemas/Money") points at in `doc`.
    `percent_decode`: undo %-escapes in its parts (as a URI fragment), not only ~0 and ~1.
    DocumentError if it points outside the document or at nothing; not `strict`: None instead."""
    try:
        return _resolve(doc, ref, percent_decode)
    except DocumentError:
        if strict:
            raise
        return None


def follow(doc: dict, node: Any, *, percent_decode: bool,
           strict: bool = True) -> tuple[Any, str | None]:
    """(what `node`'s chain of local $refs ends at, the last $ref followed); `node` itself if it
    is no $ref. DocumentError for a $ref to nothing or a cycle; not `strict`: None for the node."""
    ref, seen = None, set()
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        ref = node["$ref"]
        if ref in seen:
            if strict:
                raise DocumentError(f"$ref {ref!r} refers to itself")
            return None, ref
        seen.add(ref)
        node = resolve(doc, ref, percent_decode=percent_decode, strict=strict)
    return node, ref


def pointer(parts: Iterable[Any]) -> str:
    """The JSON pointer ("#/paths/~1health/get") to the node at `parts` from the root."""
    return "#" + "".join(f"/{escape(part)}" for part in parts)


def escape(part: Any) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


def _resolve(doc: dict, ref: str, percent_decode: bool) -> Any:
    if not ref.startswith("#"):
        raise DocumentError(f"cannot follow $ref {ref!r}: only references within the document "
                            "(#/...) are followed")
    node: Any = doc
    for part in ref[1:].split("/")[1:]:
        part = (unquote(part) if percent_decode else part).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise DocumentError(f"$ref {ref!r} points at nothing")
    return node
