"""Connexion's AsyncApp with per-request work that does not depend on the request done once,
and with the sandbox's own middleware (`sandbox.fastpath`: the body limit and the fast path)
placed in Connexion's stack when the stack is built.

Every request goes through Connexion's middleware stack. Before the fast path it passes
Connexion's ServerErrorMiddleware, ExceptionMiddleware and SwaggerUIMiddleware; the last ran a
router over every API's Swagger UI routes on every request (about 14 us of a 100 us balance
read in-process), so `_SwaggerUI` sends a path that cannot be one of them straight on.

Connexion 3 re-wraps the handler on every call (parameter decorator, signature inspection,
response decorator), and inspects the token-info function's signature on every secured call:
together a third of the time of a cheap request in profiles. Neither depends on the request
(the request is read from context when the wrapper runs), so both are done once here.
"""

from __future__ import annotations

import functools
import typing as t

from connexion import AsyncApp
from connexion.apps.asynchronous import AsyncApi, AsyncASGIApp, AsyncOperation
from connexion.context import receive, scope
from connexion.decorators import StarletteDecorator
from connexion.middleware.main import ConnexionMiddleware
from connexion.middleware.swagger_ui import SwaggerUIMiddleware
from connexion.security import OAuthSecurityHandler
from connexion.utils import inspect_function_arguments
from starlette.routing import Mount, Route, Router

from sandbox.fastpath import FastPath
from sandbox.middleware import install
from sandbox.settings import Settings


class _DecorateOnce(StarletteDecorator):
    def __call__(self, function):
        decorated = self.decorate(function)

        @functools.wraps(function)
        async def wrapper(*args, **kwargs):
            request = self.framework.get_request(
                uri_parser=self.uri_parser, scope=scope, receive=receive
            )
            return await decorated(request)

        return wrapper


class _Operation(AsyncOperation):
    @functools.cached_property
    def fn(self):
        return _DecorateOnce(pythonic_params=self.pythonic_params, jsonifier=self.jsonifier)(
            self._fn
        )


class _Api(AsyncApi):
    def make_operation(self, operation) -> _Operation:
        return _Operation.from_operation(
            operation, pythonic_params=self.pythonic_params, jsonifier=self.jsonifier
        )


class _ASGIApp(AsyncASGIApp):
    api_cls = _Api


class OAuthTokenInfo(OAuthSecurityHandler):
    @staticmethod
    @functools.lru_cache(maxsize=64)
    def _accepts_kwarg(func, keyword: str) -> bool:
        arguments, has_kwargs = inspect_function_arguments(func)
        return has_kwargs or keyword in arguments


SECURITY_HANDLERS = {"oauth2": OAuthTokenInfo}


class _SwaggerUI(SwaggerUIMiddleware):
    """Connexion's SwaggerUIMiddleware, which on every request runs a router over every API's
    Swagger UI routes (twice: once more with the trailing slash toggled, for a redirect) to
    find the few paths it serves, and hands every other request on with a copy of its scope.
    A path that starts with none of those routes' fixed prefixes (and is not one of them less
    its trailing slash) cannot be one of them: it is handed on the same way, without the
    router. The rest goes through the router as before."""

    _prefixes: tuple[str, ...] = ()
    _exact: frozenset[str] = frozenset()

    def add_api(self, *args, **kwargs) -> None:
        super().add_api(*args, **kwargs)
        prefixes, exact = [], []
        self._collect(self.router.routes, "", prefixes, exact)
        self._prefixes = tuple(prefixes)
        self._exact = frozenset(exact + [p[:-1] for p in prefixes if p.endswith("/")])

    def _collect(self, routes, base: str, prefixes: list, exact: list) -> None:
        """What every path a route can take starts with: its path up to its first parameter;
        any path under a mount, unless the mount is a router whose unmatched paths come back
        here (then its routes', and the mount's own path: the router redirects it)."""
        for route in routes:
            fixed = base + getattr(route, "path", "").split("{", 1)[0]
            inner = getattr(route, "app", None) if isinstance(route, Mount) else None
            if inner is None:
                prefixes.append(fixed if isinstance(route, Route) else "")  # "": any path
            elif isinstance(inner, Router) and inner.default == self.default_fn:
                exact.append(fixed)
                self._collect(inner.routes, fixed, prefixes, exact)
            else:
                prefixes.append(fixed + "/")

    def __call__(self, scope, receive, send) -> t.Awaitable[None]:
        # Not a coroutine of its own: the caller awaits the next app's (one frame less for
        # every resumption of a request that waits on I/O).
        if scope["type"] == "http" and not scope.get("root_path"):
            path = scope["path"]
            if not path.startswith(self._prefixes) and path not in self._exact:
                return self.app(scope.copy(), receive, send)
        return super().__call__(scope, receive, send)


class _Middleware(ConnexionMiddleware):
    """Connexion's middleware stack, with FastPathMiddleware put in just before its router when
    the stack is built (first request or lifespan start-up): after every middleware added by
    then, so whatever was added before routing wraps it; and with `_SwaggerUI` for Connexion's
    SwaggerUIMiddleware."""

    fast_path: FastPath | None = None
    max_body_bytes: int = Settings.max_body_bytes
    max_form_bytes: int = Settings.max_form_bytes

    def _build_middleware_stack(self):
        install(self.middlewares, self.apis, self.fast_path, self.max_body_bytes,
                self.max_form_bytes)
        self.middlewares = [_SwaggerUI if m is SwaggerUIMiddleware else m
                            for m in self.middlewares]
        return super()._build_middleware_stack()


class SandboxApp(AsyncApp):
    """An AsyncApp whose every request goes through Connexion's middleware stack, in which
    `sandbox.middleware.FastPathMiddleware` limits bodies and serves the operations the fast
    path `fast_path` is sure of (None: no fast path)."""

    def __init__(self, import_name: str, *, fast_path: FastPath | None = None,
                 max_body_bytes: int = Settings.max_body_bytes,
                 max_form_bytes: int = Settings.max_form_bytes, **kwargs):
        # AsyncApp.__init__ only picks its ASGI app, and AbstractApp.__init__ only makes the
        # ConnexionMiddleware with every other argument: so here, with ours.
        self._middleware_app = _ASGIApp()
        self.middleware = _Middleware(self._middleware_app, import_name=import_name, **kwargs)
        self.middleware.fast_path = fast_path
        self.middleware.max_body_bytes = max_body_bytes
        self.middleware.max_form_bytes = max_form_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            # Handlers receive the app's Context as their `ctx` argument, like `token_info`.
            scope.setdefault("extensions", {}).setdefault(
                "connexion_context", {})["ctx"] = scope["state"]["ctx"]
        await self.middleware(scope, receive, send)

    @property
    def fast_path(self) -> FastPath | None:
        return self.middleware.fast_path
