"""Bank operators: the control plane's users, authenticated by a key of their own, never by a
partner's token."""

from __future__ import annotations

import datetime as dt
import re
import secrets

from sandbox.problems import Unauthenticated
from sandbox.security.tokens import digest
from sandbox.store.base import DuplicateError, Store

OPERATOR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class OperatorError(ValueError):
    """An operator cannot be created as asked."""


async def create_operator(store: Store, name: str) -> dict:
    if not OPERATOR_NAME.match(name):
        raise OperatorError(f"operator name {name!r} must be 1-64 letters, digits, '.', '_' "
                            "or '-', starting with a letter or digit")
    key = "opk_" + secrets.token_urlsafe(32)
    operator = {"operator_id": "opr_" + secrets.token_hex(8), "name": name,
                "key_hash": digest(key),
                "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    try:
        await store.add_operator(operator)
    except DuplicateError:
        raise OperatorError(f"an operator named {name!r} exists already") from None
    return {"operator_id": operator["operator_id"], "name": name, "operator_key": key}


async def key_info(key: str, request) -> dict:
    """Connexion's x-apikeyInfoFunc for X-Operator-Key."""
    operator = await request.state.store.operator_by_key_hash(digest(key))
    if operator is None:
        raise Unauthenticated("INVALID_OPERATOR_KEY", "X-Operator-Key is not a key this "
                              "sandbox issued; create one with `openbank-sandbox operator "
                              "create NAME`.", headers={})
    return {"sub": operator["operator_id"], "operator": operator["name"]}
