"""Every way the sandbox says no: one tree of exceptions, free of HTTP, one class per stable code.

Each class carries its status and its code; `sandbox.problems` renders any of them to RFC 7807
in one place. A code is raised one way, by its class; rules and decision functions declare the
classes they may raise (`decides`), and contracts list the codes each operation can answer.

    Refusal
    ├── BadRequest          400  VALIDATION_FAILED MALFORMED_BODY UNKNOWN_PARAMETER INVALID_CURSOR
    │                            INVALID_REQUEST INVALID_SCOPE INVALID_GRANT UNSUPPORTED_GRANT_TYPE
    ├── Unauthenticated     401  UNAUTHENTICATED INVALID_TOKEN TOKEN_EXPIRED TOKEN_REVOKED
    │                            CONSENT_REVOKED CONSENT_EXPIRED INVALID_CLIENT INVALID_OPERATOR_KEY
    ├── Forbidden           403  FORBIDDEN INSUFFICIENT_SCOPE PARTNER_TOKEN_REQUIRED
    │   └── ConsentRefusal  403  CONSENT_REQUIRED CONSENT_NOT_ACTIVE PERMISSION_NOT_GRANTED
    │                            ACCOUNT_NOT_IN_CONSENT CUSTOMER_NOT_IN_CONSENT
    │                            OUTSIDE_CONSENT_PERIOD
    ├── NotFound            404  NOT_FOUND ACCOUNT_NOT_FOUND CUSTOMER_NOT_FOUND PAYMENT_NOT_FOUND
    │                            CONSENT_NOT_FOUND NOTIFICATION_NOT_FOUND PARTNER_NOT_FOUND
    │                            CALLBACK_NOT_REGISTERED CLIENT_NOT_FOUND
    │                            (422 when the body or query names it: the URL itself is fine)
    ├── MethodNotAllowed    405  METHOD_NOT_ALLOWED
    ├── NotAcceptable       406  NOT_ACCEPTABLE
    ├── RequestTimeout      408  REQUEST_TIMEOUT (the request's head came too slowly)
    ├── Conflict            409  IDEMPOTENCY_CONFLICT ALREADY_REFUNDED PAYMENT_NOT_SETTLED
    │   │                        PAYMENT_NOT_HELD CONSENT_STATUS_CONFLICT
    │   └── StateConflict   409  a rule's code (ACCOUNT_FROZEN, ...) when a record's state, not
    │                            the request, stands in the way: `Conflict.over(rule)`
    ├── PayloadTooLarge     413  PAYLOAD_TOO_LARGE
    ├── UnsupportedMedia    415  UNSUPPORTED_MEDIA_TYPE
    ├── Unprocessable       422  INSUFFICIENT_FUNDS LIMIT_EXCEEDED BALANCE_LIMIT_EXCEEDED
    │   │                        ACCOUNT_FROZEN ACCOUNT_NOT_ACTIVE AMOUNT_NOT_POSITIVE SAME_ACCOUNT
    │   │                        UNKNOWN_BANK CREDITOR_ACCOUNT_NOT_FOUND PAYMENTS_CLOSED
    │   │                        INVALID_RESIDENT_ID INVALID_CARD_NUMBER BOUND_CARD_SAME_BANK
    │   │                        FOUR_FACTOR_MISMATCH INVALID_DATE_RANGE INVALID_EXPIRY
    │   │                        INVALID_REDIRECT_URI INVALID_CALLBACK_URL ACCOUNT_NOT_OFFERED
    │   │                        NO_ACCOUNTS CALLBACK_ADDRESS_REFUSED
    │   └── RiskRefused     422  RISK_REFUSED (recorded as a risk event)
    ├── TooManyRequests     429  TOO_MANY_ATTEMPTS (failed secrets or passwords; Retry-After)
    ├── HeadersTooLarge     431  HEADER_FIELDS_TOO_LARGE
    └── InternalError       500  INTERNAL_ERROR

`Declared` is what a rule may answer, as (status, code) pairs; `decides(...)` attaches it to a
function and holds the function to it: a refusal it did not declare is a bug (`Undeclared`).
"""

from __future__ import annotations

import functools
import inspect
import typing as t

Declared = frozenset[tuple[int, str]]


class Refusal(Exception):
    """The sandbox refuses: `code` is stable, `detail` says why in words, `field` points at the
    offending input (`body.amount`, `path.account_id`), `extra` adds members to the problem."""

    status: t.ClassVar[int] = 500
    code: t.ClassVar[str] = "INTERNAL_ERROR"

    def __init__(self, detail: str, *, field: str | None = None, **extra: t.Any):
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.extra = extra

    @classmethod
    def declared(cls) -> Declared:
        return frozenset({(cls.status, cls.code)})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.detail!r}, field={self.field!r})"


class Undeclared(AssertionError):
    """A rule raised a refusal it does not declare: contract and code have drifted apart."""


# -- the kinds, by status ----------------------------------------------------------------------

class BadRequest(Refusal):
    status = 400
    code = "INVALID_REQUEST"


class Unauthenticated(Refusal):
    status = 401
    code = "UNAUTHENTICATED"
    #: The authentication scheme a client should use (a WWW-Authenticate challenge), if any.
    challenge: str | None = "Bearer"


class Forbidden(Refusal):
    status = 403
    code = "FORBIDDEN"


class ConsentRefusal(Forbidden):
    """A customer-bound token asked for what its consent does not cover."""


class NotFound(Refusal):
    """No such resource for this partner (unknown, or another partner's: the same answer).

    404 when the URL names it; 422 when the body or query does, since the URL is fine and it is
    the order that names what is not there."""

    code = "NOT_FOUND"

    @property
    def status(self) -> int:  # type: ignore[override]
        return 404 if self.field is None or self.field.startswith("path.") else 422

    @classmethod
    def declared(cls) -> Declared:
        return frozenset({(404, cls.code)})

    @classmethod
    def named_in_request(cls) -> Declared:
        """The (422, code) of a reference from the body or query."""
        return frozenset({(422, cls.code)})


class MethodNotAllowed(Refusal):
    status = 405
    code = "METHOD_NOT_ALLOWED"


class NotAcceptable(Refusal):
    status = 406
    code = "NOT_ACCEPTABLE"


class RequestTimeout(Refusal):
    """The request line and headers did not arrive in time (`sandbox.protocol`)."""

    status = 408
    code = "REQUEST_TIMEOUT"


class Conflict(Refusal):
    status = 409
    code = "CONFLICT"

    @staticmethod
    def over(*rules: t.Any) -> Declared:
        """The declaration of `StateConflict`s made from these rules' refusals."""
        return frozenset({(409, code) for _, code in declaration(*rules)})


class StateConflict(Conflict):
    """A rule refused, but it is a record's state that stands in the way, not the request (a
    held payment the creditor cannot take now): 409, with the rule's code."""

    def __init__(self, cause: Refusal, detail: str):
        super().__init__(detail, field=cause.field, **cause.extra)
        self.cause = cause

    @property
    def code(self) -> str:  # type: ignore[override]
        return self.cause.code


class PayloadTooLarge(Refusal):
    status = 413
    code = "PAYLOAD_TOO_LARGE"


class UnsupportedMedia(Refusal):
    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"


class Unprocessable(Refusal):
    status = 422
    code = "UNPROCESSABLE"


class HeadersTooLarge(Refusal):
    """The request line and headers are over the limit (`sandbox.protocol`)."""

    status = 431
    code = "HEADER_FIELDS_TOO_LARGE"


class TooManyRequests(Refusal):
    status = 429
    code = "TOO_MANY_REQUESTS"

    def __init__(self, detail: str, *, retry_after: int, field: str | None = None,
                 **extra: t.Any):
        super().__init__(detail, field=field, **extra)
        self.retry_after = retry_after  # seconds: the Retry-After header


class InternalError(Refusal):
    status = 500
    code = "INTERNAL_ERROR"


# -- the codes ---------------------------------------------------------------------------------

class ValidationFailed(BadRequest): code = "VALIDATION_FAILED"
class MalformedBody(BadRequest): code = "MALFORMED_BODY"
class UnknownParameter(BadRequest): code = "UNKNOWN_PARAMETER"
class InvalidCursor(BadRequest): code = "INVALID_CURSOR"
class InvalidScope(BadRequest): code = "INVALID_SCOPE"
class InvalidGrant(BadRequest): code = "INVALID_GRANT"
class UnsupportedGrantType(BadRequest): code = "UNSUPPORTED_GRANT_TYPE"

class InvalidToken(Unauthenticated): code = "INVALID_TOKEN"
class TokenExpired(Unauthenticated): code = "TOKEN_EXPIRED"
class TokenRevoked(Unauthenticated): code = "TOKEN_REVOKED"
class ConsentRevoked(Unauthenticated): code = "CONSENT_REVOKED"
class ConsentExpired(Unauthenticated): code = "CONSENT_EXPIRED"


class InvalidClient(Unauthenticated):
    code = "INVALID_CLIENT"
    challenge = None  # set per instance: Basic when the client tried HTTP Basic


class InvalidOperatorKey(Unauthenticated):
    code = "INVALID_OPERATOR_KEY"
    challenge = None


class InsufficientScope(Forbidden): code = "INSUFFICIENT_SCOPE"
class PartnerTokenRequired(Forbidden): code = "PARTNER_TOKEN_REQUIRED"
class ConsentRequired(ConsentRefusal): code = "CONSENT_REQUIRED"
class ConsentNotActive(ConsentRefusal): code = "CONSENT_NOT_ACTIVE"
class PermissionNotGranted(ConsentRefusal): code = "PERMISSION_NOT_GRANTED"
class AccountNotInConsent(ConsentRefusal): code = "ACCOUNT_NOT_IN_CONSENT"
class CustomerNotInConsent(ConsentRefusal): code = "CUSTOMER_NOT_IN_CONSENT"
class OutsideConsentPeriod(ConsentRefusal): code = "OUTSIDE_CONSENT_PERIOD"

class AccountNotFound(NotFound): code = "ACCOUNT_NOT_FOUND"
class CustomerNotFound(NotFound): code = "CUSTOMER_NOT_FOUND"
class PaymentNotFound(NotFound): code = "PAYMENT_NOT_FOUND"
class ConsentNotFound(NotFound): code = "CONSENT_NOT_FOUND"
class NotificationNotFound(NotFound): code = "NOTIFICATION_NOT_FOUND"
class PartnerNotFound(NotFound): code = "PARTNER_NOT_FOUND"
class CallbackNotRegistered(NotFound): code = "CALLBACK_NOT_REGISTERED"
class ClientNotFound(NotFound): code = "CLIENT_NOT_FOUND"

class IdempotencyConflict(Conflict): code = "IDEMPOTENCY_CONFLICT"
class AlreadyRefunded(Conflict): code = "ALREADY_REFUNDED"
class PaymentNotSettled(Conflict): code = "PAYMENT_NOT_SETTLED"
class PaymentNotHeld(Conflict): code = "PAYMENT_NOT_HELD"
class ConsentStatusConflict(Conflict): code = "CONSENT_STATUS_CONFLICT"

class InsufficientFunds(Unprocessable): code = "INSUFFICIENT_FUNDS"
class LimitExceeded(Unprocessable): code = "LIMIT_EXCEEDED"
class BalanceLimitExceeded(Unprocessable): code = "BALANCE_LIMIT_EXCEEDED"
class AccountFrozen(Unprocessable): code = "ACCOUNT_FROZEN"
class AccountNotActive(Unprocessable): code = "ACCOUNT_NOT_ACTIVE"
class AmountNotPositive(Unprocessable): code = "AMOUNT_NOT_POSITIVE"
class SameAccount(Unprocessable): code = "SAME_ACCOUNT"
class UnknownBank(Unprocessable): code = "UNKNOWN_BANK"
class PaymentsClosed(Unprocessable): code = "PAYMENTS_CLOSED"
class InvalidResidentId(Unprocessable): code = "INVALID_RESIDENT_ID"
class InvalidCardNumber(Unprocessable): code = "INVALID_CARD_NUMBER"
class BoundCardSameBank(Unprocessable): code = "BOUND_CARD_SAME_BANK"
class FourFactorMismatch(Unprocessable): code = "FOUR_FACTOR_MISMATCH"
class InvalidDateRange(Unprocessable): code = "INVALID_DATE_RANGE"
class InvalidExpiry(Unprocessable): code = "INVALID_EXPIRY"
class InvalidRedirectUri(Unprocessable): code = "INVALID_REDIRECT_URI"
class InvalidCallbackUrl(Unprocessable): code = "INVALID_CALLBACK_URL"
class AccountNotOffered(Unprocessable): code = "ACCOUNT_NOT_OFFERED"
class NoAccounts(Unprocessable): code = "NO_ACCOUNTS"


class CallbackAddressRefused(Unprocessable):
    """A well-formed callback URL whose host is, or resolves to, an address the sandbox will not
    send to (metadata, private, link-local, ...): `sandbox.security.callbacks`. A malformed URL
    is `InvalidCallbackUrl`."""

    code = "CALLBACK_ADDRESS_REFUSED"


class TooManyAttempts(TooManyRequests):
    """Too many failed client secret or password checks for one client or customer in the
    window: every check is refused until the window ends, the right one too."""

    code = "TOO_MANY_ATTEMPTS"


class CreditorAccountNotFound(Unprocessable):
    """The creditor's account number is not one of this bank's (for a payment inside the
    sandbox bank), or the other bank has none (a payment's failure)."""

    code = "CREDITOR_ACCOUNT_NOT_FOUND"


class RiskRefused(Unprocessable):
    """Refused by a real-time risk rule an operator switched on; recorded as a risk event."""

    code = "RISK_REFUSED"

    def __init__(self, detail: str, *, rule: str, field: str | None = "body.amount"):
        super().__init__(detail, field=field)
        self.rule = rule


T = t.TypeVar("T")


def found(value: T | None, kind: type[NotFound], detail: str, *, field: str | None = None) -> T:
    """`value`, unless there is none: then the refusal that says so."""
    if value is None:
        raise kind(detail, field=field)
    return value


def kind_of(code: str) -> type[Refusal]:
    """The class of a stable code (a contract's `x-problem` names codes by their text)."""
    if not _BY_CODE:
        pending = [Refusal]
        while pending:
            cls = pending.pop()
            pending.extend(cls.__subclasses__())
            if isinstance(cls.__dict__.get("code"), str):
                _BY_CODE[cls.code] = cls
    return _BY_CODE[code]


_BY_CODE: dict[str, type[Refusal]] = {}


# -- declarations ------------------------------------------------------------------------------

def declaration(*items: t.Any) -> Declared:
    """The (status, code) pairs of refusal classes, of functions made with `decides`, and of
    pairs already declared (`NotFound.named_in_request()`, `Conflict.over(...)`)."""
    pairs: set[tuple[int, str]] = set()
    for item in items:
        if isinstance(item, type) and issubclass(item, Refusal):
            pairs |= item.declared()
        elif isinstance(item, frozenset):
            pairs |= item
        elif hasattr(item, "refusals"):
            pairs |= item.refusals
        else:
            raise TypeError(f"not a refusal, a declaration or a deciding function: {item!r}")
    return frozenset(pairs)


def decides(*refuses: t.Any) -> t.Callable:
    """Declares what a function may refuse with, on it (`fn.refusals`), and holds it to that:
    a refusal of another (status, code) escaping it raises `Undeclared` instead."""
    declared = declaration(*refuses)

    def check(exc: Refusal, fn: t.Callable) -> None:
        if (exc.status, exc.code) not in declared:
            raise Undeclared(f"{fn.__qualname__} refused with {exc.status} {exc.code}, which it "
                             f"does not declare: {sorted(declared)}") from exc

    def wrap(fn: t.Callable) -> t.Callable:
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def run_async(*args, **kwargs):
                try:
                    return await fn(*args, **kwargs)
                except Refusal as exc:
                    check(exc, fn)
                    raise
            wrapped = run_async
        else:
            @functools.wraps(fn)
            def run(*args, **kwargs):
                try:
                    return fn(*args, **kwargs)
                except Refusal as exc:
                    check(exc, fn)
                    raise
            wrapped = run
        wrapped.refusals = declared
        return wrapped

    return wrap


#: What every operation may answer whatever it does: a server failure.
ALWAYS = InternalError.declared()
#: What Connexion's request validation answers for bad parameters or bodies.
BAD_INPUT = declaration(ValidationFailed, MalformedBody, UnknownParameter)
