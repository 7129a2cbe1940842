"""The one problem type (RFC 7807) and its stable codes: the only place errors are shaped.

    Problem (connexion.ProblemException)
    ├── BadRequest            400  VALIDATION_FAILED, INVALID_CURSOR, INVALID_REQUEST, ...
    ├── Unauthenticated       401  UNAUTHENTICATED, INVALID_TOKEN, TOKEN_EXPIRED, INVALID_CLIENT
    ├── Forbidden             403  INSUFFICIENT_SCOPE
    ├── NotFound              404  NOT_FOUND, ACCOUNT_NOT_FOUND, CUSTOMER_NOT_FOUND
    ├── MethodNotAllowed      405  METHOD_NOT_ALLOWED
    ├── Unprocessable         422  FOUR_FACTOR_MISMATCH, BOUND_CARD_SAME_BANK, ...
    └── InternalError         500  INTERNAL_ERROR
"""

from __future__ import annotations

import logging

import orjson
from connexion.exceptions import ProblemException
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from starlette.exceptions import HTTPException

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://openbank-sandbox.dev/problems/"

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    500: "Internal Server Error",
}

# Codes every client may see whatever the operation; problem codes of one section live beside
# its handlers but are shaped here.
CODE_FOR_STATUS = {
    400: "INVALID_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    500: "INTERNAL_ERROR",
}


class Problem(ProblemException):
    """An RFC 7807 problem with a stable machine `code` and, for bad input, the offending field."""

    status = 500

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        status: int | None = None,
        field: str | None = None,
        headers: dict | None = None,
        **extra,
    ):
        status = status or type(self).status
        ext = {"code": code, **extra}
        if field is not None:
            ext["field"] = field
        super().__init__(
            status=status,
            title=TITLES.get(status, "Error"),
            detail=detail,
            type=TYPE_BASE + code.lower().replace("_", "-"),
            headers=headers,
            ext=ext,
        )
        self.code = code

    def to_problem(self) -> ConnexionResponse:
        return problem_response(
            self.status, self.code, self.detail, headers=self.headers, type_=self.type,
            title=self.title, ext=self.ext,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.detail!r})"


class BadRequest(Problem):
    status = 400


class Unauthenticated(Problem):
    status = 401

    def __init__(self, code: str, detail: str, **kwargs):
        kwargs.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="openbank-sandbox"'})
        super().__init__(code, detail, **kwargs)


class Forbidden(Problem):
    status = 403


class NotFound(Problem):
    status = 404


class Conflict(Problem):
    status = 409


class Unprocessable(Problem):
    status = 422


def problem_response(
    status: int,
    code: str,
    detail: str | None,
    *,
    headers: dict | None = None,
    type_: str | None = None,
    title: str | None = None,
    ext: dict | None = None,
) -> ConnexionResponse:
    body = {
        "type": type_ or TYPE_BASE + code.lower().replace("_", "-"),
        "title": title or TITLES.get(status, "Error"),
        "status": status,
        "detail": detail or title or TITLES.get(status, "Error"),
        "code": code,
    }
    if ext:
        body.update(ext)
    return ConnexionResponse(
        status_code=status,
        mimetype=PROBLEM_MEDIA_TYPE,
        content_type=PROBLEM_MEDIA_TYPE,
        body=orjson.dumps(body),
        headers=headers or {},
    )


# -- handlers for what Connexion and Starlette raise themselves ------------------------------


def http_error(request: ConnexionRequest, exc: HTTPException) -> ConnexionResponse:
    """Connexion's own problems (validation, security) and Starlette's 404/405, with our codes."""
    if isinstance(exc, Problem):
        return exc.to_problem()
    status = getattr(exc, "status_code", None) or getattr(exc, "status", 500)
    code = CODE_FOR_STATUS.get(status, "INVALID_REQUEST" if status < 500 else "INTERNAL_ERROR")
    detail = getattr(exc, "detail", None)
    if status == 404:
        detail = f"No route {request.scope.get('path', '')!r}; GET /contracts lists what is served."
    headers = dict(getattr(exc, "headers", None) or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="openbank-sandbox"')
    if status >= 500:
        logger.error("%r", exc)
    return problem_response(status, code, str(detail) if detail else None, headers=headers)


def unhandled_error(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    """Log the stack trace; answer a problem that shows none of it."""
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(
        500, "INTERNAL_ERROR", "The sandbox failed to handle this request; it has been logged."
    )


def refusal(request: ConnexionRequest, exc) -> ConnexionResponse:
    """A domain rule's refusal (sandbox.rules.Refusal and kin) as a problem."""
    from sandbox.consents import ConsentRefusal
    from sandbox.rules import ConflictingRequest, UnknownResource

    status = 422
    for cls, code in ((ConsentRefusal, 403), (UnknownResource, 404),
                      (ConflictingRequest, 409)):
        if isinstance(exc, cls):
            status = code
    ext = {"field": exc.field} if exc.field else None
    return problem_response(status, exc.code, exc.detail, ext=ext)
