"""Bank operators: the control plane's users, authenticated by a key of their own, never by a
partner's token."""

from __future__ import annotations

import re

from sandbox import mint
from sandbox.clock import Clock
from sandbox.refusals import InvalidOperatorKey, decides
from sandbox.store import DuplicateError, Store, database_name

OPERATOR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class OperatorError(ValueError):
    """An operator cannot be created as asked."""


async def create_operator(store: Store, name: str, clock: Clock | None = None) -> dict:
    if not OPERATOR_NAME.match(name):
        raise OperatorError(f"operator name {name!r} must be 1-64 letters, digits, '.', '_' "
                            "or '-', starting with a letter or digit")
    key = mint.secret("opk_")
    operator = {"operator_id": mint.record_id("opr"), "name": name, "key_hash": mint.digest(key),
                "created_at": (clock or Clock()).now().isoformat(timespec="seconds")}
    try:
        await store.control.add_operator(operator)
    except DuplicateError:
        raise OperatorError(f"an operator named {name!r} exists already") from None
    return {"operator_id": operator["operator_id"], "name": name, "operator_key": key}


@decides(InvalidOperatorKey)
async def key_info(key: str, request) -> dict:
    """Connexion's x-apikeyInfoFunc for X-Operator-Key."""
    ctx = request.state.ctx
    operator = await ctx.store.control.operator_by_key_hash(mint.digest(key))
    if operator is None:
        # A key made in another database (`operator create` run from another folder) is the
        # usual cause. The caller may be remote: the database's name only, not its directories;
        # `serve` printed the full path at start and `operator create` prints where it wrote.
        raise InvalidOperatorKey(
            f"X-Operator-Key is not a key of this server's database "
            f"({database_name(ctx.settings.db, full=False)}, whose full path `serve` printed at "
            "start); create one there with `openbank-sandbox operator create NAME --db URL`, "
            "which prints the database it wrote to.")
    return {"sub": operator["operator_id"], "operator": operator["name"]}
