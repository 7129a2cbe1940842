"""One module per contract, named after it; each function serves one operation, the snake_case
of its operationId (`listAccounts` in contracts/accounts.yaml → `accounts.list_accounts`).
The contracts name operations in the words partners' generated clients use, not Python paths."""

from __future__ import annotations

import importlib
import re

import orjson
from connexion.resolver import Resolver
from starlette.responses import Response


def respond(body, status: int = 200, headers: dict | None = None) -> Response:
    """A JSON response, serialised once with orjson (UTF-8, no ASCII escapes for Chinese)."""
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def handler_name(operation_id: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation_id).lower()


def resolver_for(contract_name: str) -> Resolver:
    """Connexion resolver: operationId → function in sandbox.handlers.<contract_name>."""
    module = importlib.import_module(f"{__name__}.{contract_name}")

    def resolve(operation_id: str):
        return getattr(module, handler_name(operation_id))

    return Resolver(function_resolver=resolve)
