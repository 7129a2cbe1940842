"""`contracts diff` of two schemas: types, enums, patterns, bounds, properties and alternatives,
each change narrowing or widening what the schema admits."""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Any

from sandbox.verify.diff_base import Add, Members, deref, located, members

_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")


class SchemaDiff:
    """Compares schemas of `old` and `new`; one per diff, so its recursion guard spans it."""

    def __init__(self, old: dict, new: dict, add: Add) -> None:
        self.old, self.new, self.add = old, new, add
        self._walking: set[tuple[str | None, str | None, str]] = set()  # recursion guard

    def schema(self, old: Any, new: Any, where: str, path: str, flow: str) -> None:
        old, old_ref = deref(self.old, old)
        new, new_ref = deref(self.new, new)
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
        at = located(where, path)
        if not self.type(old, new, at, flow):
            return  # unrelated schemas: what is inside them does not compare
        self.enum(old.get("enum"), new.get("enum"), at, flow)
        self.pattern(old.get("pattern"), new.get("pattern"), at, flow)
        self.bounds(old, new, at, flow)
        members(self.add, "property", _properties(old, where, path),
                _properties(new, where, path), flow, self.schema)
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
            self.add("additional-properties-forbidden", flow, located(where, path),
                     "additionalProperties now false")
        elif before is False and after is not False:
            self.add("additional-properties-allowed", flow, located(where, path),
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
            self.add("type-narrowed" if new else "type-widened", flow, located(where, path),
                     f"{word} {'added' if new else 'removed'}")
            return
        before, after = _alternatives(word, old), _alternatives(word, new)
        for key, (label, _) in before.items():
            if key not in after:
                self.add("variant-removed", flow, located(where, path),
                         f"alternative {label} removed")
        for key, (label, schema) in after.items():
            if key in before:
                self.schema(before[key][1], schema, where, f"{path}<{label}>", flow)
            else:
                self.add("variant-added", flow, located(where, path), f"new alternative {label}")


def _properties(schema: dict, where: str, path: str) -> Members:
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


def _merge_all_of(doc: dict, schema: dict, seen: frozenset[str] = frozenset()) -> dict:
    """`schema` with its allOf parts merged in: their properties and required names joined,
    their other keywords where `schema` has none."""
    if not isinstance(schema.get("allOf"), list):
        return schema
    merged = {key: value for key, value in schema.items() if key != "allOf"}
    properties = dict(merged.get("properties") or {})
    required = list(merged.get("required") or [])
    for part in schema["allOf"]:
        part, ref = deref(doc, part)
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


def _values(values: list) -> str:
    return ", ".join(json.dumps(value, ensure_ascii=False) for value in values)


def _s(values: list) -> str:
    return "" if len(values) == 1 else "s"


def _show(value: Any) -> str:
    return "none" if value is None else json.dumps(value)
