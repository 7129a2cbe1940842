"""The sandbox's one middleware in Connexion's stack, just before its router: the request-body
limit for every HTTP request, then the fast path (`sandbox.fastpath`) for the operations it
serves; everything else goes on to Connexion's RoutingMiddleware.

`install` puts it in Connexion's middleware list when the stack is built: whatever is added
before routing (`MiddlewarePosition.BEFORE_EXCEPTION`, `BEFORE_SWAGGER`, `BEFORE_ROUTING`)
wraps it, and so do Connexion's ServerErrorMiddleware and ExceptionMiddleware. A middleware
added after routing (`BEFORE_SECURITY` … `BEFORE_CONTEXT`, `add_middleware`'s default) would
be skipped by the fast path: then the fast path stays off, with one warning at start.

The body limit (`SANDBOX_MAX_BODY_BYTES`): a `Content-Length` above it is answered 413 before
any of the body is read; a body without one (chunked) is counted as it is read, and the read
that passes the limit raises the 413 problem. Whatever the reader makes of that (Connexion's
JSON validator turns any exception into a 400 MALFORMED_BODY), the 413 is what leaves this
middleware. (A request without a Content-Length to an operation whose body is required, as
all of ours are, is taken as one without a body: 400 VALIDATION_FAILED, `sandbox.validation`.)

A form (`application/x-www-form-urlencoded`, `multipart/form-data`) has a limit of its own,
`SANDBOX_MAX_FORM_BYTES`, far below the body limit: the forms served (the token endpoint, the
authorisation page's sign-in) are a few short fields, and a form is parsed into memory whole.
"""

from __future__ import annotations

import functools
import logging
import typing as t

from connexion.middleware.exceptions import ExceptionMiddleware
from connexion.middleware.main import ConnexionMiddleware
from connexion.middleware.routing import RoutingMiddleware

from sandbox.fastpath import FastPath
from sandbox.refusals import PayloadTooLarge

logger = logging.getLogger(__name__)


_FORMS = (b"application/x-www-form-urlencoded", b"multipart/form-data")


def payload_too_large(limit: int, setting: str = "SANDBOX_MAX_BODY_BYTES") -> PayloadTooLarge:
    """The 413 refusal; Connexion's ExceptionMiddleware renders it with the app's handlers."""
    return PayloadTooLarge(f"The request body is larger than the {limit} bytes the sandbox "
                           f"accepts ({setting}).")


def _is_form(headers) -> bool:
    for name, value in headers:
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower() in _FORMS
    return False


def _framing(headers) -> tuple[int | None, bool]:
    """The request's Content-Length (None: none, or one the server would have refused), and
    whether it says how its body is framed at all (Content-Length or Transfer-Encoding)."""
    framed = False
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value), True
            except ValueError:
                framed = True  # count the body all the same
        elif name == b"transfer-encoding":
            framed = True
    return None, framed


class FastPathMiddleware:
    """The body limit for every HTTP request, then the fast path for the operations it
    serves (`fast_path` None: none); the rest goes on to Connexion's RoutingMiddleware."""

    def __init__(self, app, *, fast_path: FastPath | None, max_body_bytes: int,
                 max_form_bytes: int | None = None):
        self.app = app
        self.fast_path = fast_path
        self.max_body_bytes = max_body_bytes
        self.max_form_bytes = min(max_form_bytes or max_body_bytes, max_body_bytes)

    def _limit(self, headers) -> tuple[int, str]:
        if self.max_form_bytes < self.max_body_bytes and _is_form(headers):
            return self.max_form_bytes, "SANDBOX_MAX_FORM_BYTES"
        return self.max_body_bytes, "SANDBOX_MAX_BODY_BYTES"

    def __call__(self, scope, receive, send) -> t.Awaitable[None]:
        # Not a coroutine of its own: the caller awaits the one this returns (one frame less
        # for every resumption of a request that waits on I/O).
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        length, framed = _framing(scope["headers"])
        if length is None:
            if framed or scope.get("http_version") not in ("1.1", "1.0"):
                return self._counted(scope, receive, send)
            # HTTP/1 without Content-Length or Transfer-Encoding: no body (RFC 9112 6.3).
        elif length > self.max_form_bytes:  # the content type is looked at only then
            limit, setting = self._limit(scope["headers"])
            if length > limit:
                raise payload_too_large(limit, setting)
        # The server delivers no more than Content-Length bytes: nothing to count.
        return self._dispatch(scope, receive, send, length)

    def _dispatch(self, scope, receive, send, length: int | None) -> t.Awaitable[None]:
        if self.fast_path is not None:
            matched = self.fast_path.match(scope)
            if matched is not None:
                return self.fast_path(scope, receive, send, matched, self.app, length)
        return self.app(scope, receive, send)

    async def _counted(self, scope, receive, send) -> None:
        """A body of unknown length, read through a receive that refuses it past the limit.

        The refusal is an exception in whoever reads the body; if that reader turns it into
        another answer (Connexion's JSON validator makes any exception a 400 MALFORMED_BODY),
        the answer it starts is stopped and the 413 raised here instead."""
        limit, setting = self._limit(scope["headers"])
        received = 0
        refused: PayloadTooLarge | None = None
        started = False

        async def counting_receive():
            nonlocal received, refused
            if refused is not None:
                raise refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = payload_too_large(limit, setting)
                    raise refused
            return message

        async def guarded_send(message):
            nonlocal started
            if not started:
                if refused is not None:
                    raise refused
                started = message["type"] == "http.response.start"
            await send(message)

        try:
            await self._dispatch(scope, counting_receive, guarded_send, None)
        except Exception:
            if refused is not None and not started:
                raise refused from None
            raise
        if refused is not None and not started:
            raise refused


#: Connexion's own middleware after its router, in its order: the fast path does their work.
_AFTER_ROUTING = ConnexionMiddleware.default_middlewares[
    ConnexionMiddleware.default_middlewares.index(RoutingMiddleware) + 1:]


def _cls(middleware):
    return middleware.func if isinstance(middleware, functools.partial) else middleware


def _name(middleware) -> str:
    cls = _cls(middleware)
    return f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', repr(cls))}"


def install(middlewares: list, apis, fast_path: FastPath | None, max_body_bytes: int,
            max_form_bytes: int | None = None) -> None:
    """Put FastPathMiddleware into Connexion's middleware list (as it is when the stack is
    built) immediately before RoutingMiddleware; the fast path only if nothing it would skip
    is there, else with a warning naming what is."""
    if any(_cls(m) is FastPathMiddleware for m in middlewares):
        return
    classes = [_cls(m) for m in middlewares]
    if RoutingMiddleware not in classes:
        logger.warning("fast path off: Connexion's RoutingMiddleware is not in the middleware "
                       "list")
        at = classes.index(ExceptionMiddleware) + 1 if ExceptionMiddleware in classes else 0
        middlewares.insert(at, functools.partial(FastPathMiddleware, fast_path=None,
                                                 max_body_bytes=max_body_bytes,
                                                 max_form_bytes=max_form_bytes))
        return
    routing = classes.index(RoutingMiddleware)
    if fast_path is not None:
        after = middlewares[routing + 1:]
        extra = [m for m in after if _cls(m) not in _AFTER_ROUTING]
        if extra:
            logger.warning(
                "fast path off: middleware added after Connexion's routing (%s) would be "
                "skipped by it; add it at MiddlewarePosition.BEFORE_ROUTING or earlier to "
                "keep the fast path", ", ".join(_name(m) for m in extra))
            fast_path = None
        elif [_cls(m) for m in after] != _AFTER_ROUTING:
            logger.warning("fast path off: Connexion's middleware after routing is not its "
                           "default (%s)", ", ".join(_name(m) for m in after))
            fast_path = None
        elif any(api.kwargs.get("validate_responses") for api in apis):
            logger.warning("fast path off: responses are validated, which it does not do")
            fast_path = None
    middlewares.insert(routing, functools.partial(
        FastPathMiddleware, fast_path=fast_path, max_body_bytes=max_body_bytes,
        max_form_bytes=max_form_bytes))
