"""`contracts diff` of security: what an operation requires, and the security schemes, judged by
whether a client authorised as OLD required may be refused."""

from __future__ import annotations

from typing import Any

from sandbox.verify.diff_base import REQUEST, Add, node


def requirements(add: Add, old_doc: dict, new_doc: dict, old_op: dict, new_op: dict,
                 where: str) -> None:
    """What the operation requires: breaking if a way of being authorised was lost."""
    before, after = _requirements(old_doc, old_op), _requirements(new_doc, new_op)
    lost = [need for need in before if not any(_satisfies(need, n) for n in after)]
    if lost or _set(before) != _set(after):
        add("security-changed" if lost else "security-relaxed", REQUEST, where,
            f"needs {_show_security(after)}, was {_show_security(before)}")


def schemes(add: Add, old_doc: dict, new_doc: dict) -> None:
    """The schemes in both documents: their type, location, name, flows and URLs."""
    old = (old_doc.get("components") or {}).get("securitySchemes") or {}
    new = (new_doc.get("components") or {}).get("securitySchemes") or {}
    for name in [name for name in old if name in new]:
        before, after = node(old_doc, old[name]), node(new_doc, new[name])
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
            add("security-changed", REQUEST, where, "; ".join(changed))
        added = [grant for grant in new_flows if grant not in old_flows]
        if added:
            add("security-relaxed", REQUEST, where, f"new flow {', '.join(added)}")


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


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value
