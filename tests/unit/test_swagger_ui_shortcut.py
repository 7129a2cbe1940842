"""sandbox.asgi._SwaggerUI hands a request on without Connexion's Swagger UI router only where
that router would have handed it on too.

Every operation path of every contract (with and without a trailing slash), the Swagger UI's
own paths, and their near misses go through Connexion's SwaggerUIMiddleware itself; wherever
the shortcut would skip the router, the router must have passed the request to the next app
with the scope as it came, and sent nothing.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from connexion.middleware.swagger_ui import SwaggerUIMiddleware

from sandbox.app import create_app
from sandbox.asgi import _SwaggerUI
from sandbox.contracts import load_contracts
from sandbox.settings import Settings


@pytest.fixture(scope="module")
def swagger() -> _SwaggerUI:
    app = create_app(Settings.from_env({}))
    app.middleware.app, app.middleware.middleware_stack = app.middleware._build_middleware_stack()
    (layer,) = [m for m in app.middleware.middleware_stack if isinstance(m, SwaggerUIMiddleware)]
    assert isinstance(layer, _SwaggerUI)
    return layer


def swagger_paths() -> set[str]:
    """Paths the Swagger UI serves or redirects, for every API and the root one."""
    found = set()
    for base in ["", *(c.base_path for c in load_contracts(Settings.contracts_dir))]:
        found |= {base + "/openapi.json", base + "/openapi.json/", base + "/openapi.yaml",
                  base + "/ui", base + "/ui/", base + "/ui/index.html",
                  base + "/ui/swagger-ui.css"}
    return found


def paths() -> list[str]:
    found = {"/", "", "*", "/contracts", "/accounts", "/accounts/", "/nope", "/uix",
             "/x/openapi.json", "/x/ui/", *swagger_paths()}
    for contract in load_contracts(Settings.contracts_dir):
        base = contract.base_path
        found |= {base, base + "/", base + "/ui/nope", base + "/openapi.yamlx",
                  base + "/uiother"}
        for template in contract.spec.get("paths", {}):
            path = base + re.sub(r"\{[^}]+\}", "acc_0123456789abcdef", template)
            found |= {path, path + "/"}
    return sorted(found)


def shortcut(layer: _SwaggerUI, path: str) -> bool:
    return not path.startswith(layer._prefixes) and path not in layer._exact


@pytest.mark.parametrize("path", paths())
def test_the_shortcut_passes_on_only_what_connexions_router_passes_on(swagger, path):
    if path in swagger_paths():
        assert not shortcut(swagger, path)  # the Swagger UI's own: through its router
    if not shortcut(swagger, path):
        return  # through Connexion's router, as before
    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
             "query_string": b"", "headers": [(b"host", b"testserver")], "root_path": "",
             "scheme": "http", "server": ("testserver", 80), "http_version": "1.1"}
    passed, sent = [], []

    async def next_app(scope, receive, send):
        passed.append(scope)

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    real = swagger.app
    swagger.app = next_app
    try:
        asyncio.run(SwaggerUIMiddleware.__call__(swagger, dict(scope), receive, send))
    finally:
        swagger.app = real
    assert sent == [] and passed == [scope]


def test_every_operation_path_takes_the_shortcut(swagger):
    for contract in load_contracts(Settings.contracts_dir):
        for template in contract.spec.get("paths", {}):
            path = contract.base_path + re.sub(r"\{[^}]+\}", "x", template)
            assert shortcut(swagger, path), path
