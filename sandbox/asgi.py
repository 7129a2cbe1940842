"""Connexion's AsyncApp with per-request work that does not depend on the request done once.

Connexion 3 re-wraps the handler on every call (parameter decorator, signature inspection,
response decorator), and inspects the token-info function's signature on every secured call:
together a third of the time of a cheap request in profiles. Neither depends on the request
(the request is read from context when the wrapper runs), so both are done once here.
"""

from __future__ import annotations

import functools

from connexion import AsyncApp
from connexion.apps.abstract import AbstractApp
from connexion.apps.asynchronous import AsyncApi, AsyncASGIApp, AsyncOperation
from connexion.context import receive, scope
from connexion.decorators import StarletteDecorator
from connexion.security import OAuthSecurityHandler
from connexion.utils import inspect_function_arguments


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


class SandboxApp(AsyncApp):
    """Requests the fast path is sure of (`sandbox.fastpath`) skip Connexion's middleware
    chain; everything else, and everything it is unsure of, goes through it."""

    fast_path = None

    def __init__(self, import_name: str, **kwargs):
        # AsyncApp.__init__ only picks its ASGI app and hands everything to AbstractApp.
        self._middleware_app = _ASGIApp()
        AbstractApp.__init__(self, import_name, **kwargs)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            # Handlers receive the app's Context as their `ctx` argument, like `token_info`.
            scope.setdefault("extensions", {}).setdefault(
                "connexion_context", {})["ctx"] = scope["state"]["ctx"]
        if scope["type"] == "http" and self.fast_path is not None:
            matched = self.fast_path.match(scope)
            if matched is not None:
                await self.fast_path(scope, receive, send, matched, self.middleware)
                return
        await self.middleware(scope, receive, send)
