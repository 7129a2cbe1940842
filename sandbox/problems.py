"""RFC 7807: the one place a refusal (`sandbox.refusals`) becomes an `application/problem+json`
response. What Connexion and Starlette raise themselves (a route that does not exist, a
method a path does not take, a missing token) is first made a refusal of the same tree.

    {"type": "https://openbank-sandbox.dev/problems/insufficient-funds",
     "title": "Unprocessable Content", "status": 422, "code": "INSUFFICIENT_FUNDS",
     "detail": "Account acc_… holds 10.00 CNY; the order needs 20.00 CNY.",
     "field": "body.amount"}
"""

from __future__ import annotations

import logging

import orjson
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from starlette.exceptions import HTTPException

from sandbox import pages
from sandbox.refusals import (
    BadRequest,
    Forbidden,
    InternalError,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    PayloadTooLarge,
    Refusal,
    TooManyRequests,
    Unauthenticated,
    UnsupportedMedia,
)

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://openbank-sandbox.dev/problems/"
REALM = "openbank-sandbox"

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    408: "Request Timeout",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
}

#: What Connexion or Starlette raised, by status, as the kind of refusal it is.
_FRAMEWORK = {400: BadRequest, 401: Unauthenticated, 403: Forbidden, 404: NotFound,
              405: MethodNotAllowed, 406: NotAcceptable, 413: PayloadTooLarge,
              415: UnsupportedMedia, 500: InternalError}


def body(refusal: Refusal) -> dict:
    status, code = refusal.status, refusal.code
    out = {"type": TYPE_BASE + code.lower().replace("_", "-"),
           "title": TITLES.get(status, "Error"), "status": status,
           "detail": refusal.detail or TITLES.get(status, "Error"), "code": code,
           **refusal.extra}
    if refusal.field is not None:
        out["field"] = refusal.field
    return out


def render(refusal: Refusal, headers: dict | None = None) -> ConnexionResponse:
    """The response for a refusal: its status, its problem, and an authentication challenge
    or a Retry-After where one applies."""
    headers = dict(headers or {})
    if isinstance(refusal, Unauthenticated) and refusal.challenge:
        headers.setdefault("WWW-Authenticate", f'{refusal.challenge} realm="{REALM}"')
    if isinstance(refusal, TooManyRequests):
        headers.setdefault("Retry-After", str(refusal.retry_after))
    return ConnexionResponse(status_code=refusal.status, mimetype=PROBLEM_MEDIA_TYPE,
                             content_type=PROBLEM_MEDIA_TYPE, body=orjson.dumps(body(refusal)),
                             headers=headers)


def raw_http(refusal: Refusal) -> bytes:
    """The whole HTTP/1.1 answer for a refusal made before there is a request to answer
    (`sandbox.protocol`: a request head too slow or too large), closing the connection."""
    content = orjson.dumps(body(refusal))
    status = refusal.status
    return (f"HTTP/1.1 {status} {TITLES.get(status, 'Error')}\r\n"
            f"content-type: {PROBLEM_MEDIA_TYPE}\r\ncontent-length: {len(content)}\r\n"
            "connection: close\r\n\r\n").encode() + content


# -- handlers the app registers --------------------------------------------------------------


#: The one path a customer's browser opens: its refusals are a page for a browser.
AUTHORISATION_PAGE = "/oauth2/authorize"


def _for(request: ConnexionRequest, refusal: Refusal,
         headers: dict | None = None) -> ConnexionResponse:
    """problem+json, but an HTML page to a browser (Accept names text/html) on the
    authorisation page; API clients, and everything else, keep the problem."""
    if (request.url.path != AUTHORISATION_PAGE
            or "text/html" not in request.headers.get("accept", "")):
        return render(refusal, headers)
    detail = body(refusal)["detail"]
    return ConnexionResponse(status_code=refusal.status, mimetype="text/html",
                             content_type="text/html; charset=utf-8",
                             body=pages.refused(refusal.status, refusal.code, detail).encode(),
                             headers={**(headers or {}), **pages.HEADERS})


async def refused(request: ConnexionRequest, exc: Refusal) -> ConnexionResponse:
    if exc.status >= 500:
        logger.error("%r", exc)
    return _for(request, exc)


async def http_error(request: ConnexionRequest, exc: HTTPException) -> ConnexionResponse:
    """Connexion's own problems (a missing token, ...) and Starlette's 404/405, as refusals."""
    status = getattr(exc, "status_code", None) or getattr(exc, "status", 500)
    kind = _FRAMEWORK.get(status, BadRequest if status < 500 else InternalError)
    detail = getattr(exc, "detail", None)
    if status == 404:
        detail = f"No route {request.scope.get('path', '')!r}; GET /contracts lists what is served."
    if status >= 500:
        logger.error("%r", exc)
    refusal = kind(str(detail) if detail else None)
    return _for(request, refusal, getattr(exc, "headers", None))


async def unhandled_error(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    """Log the stack trace; answer a problem that shows none of it."""
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return render(InternalError("The sandbox failed to handle this request; it has been logged."))
