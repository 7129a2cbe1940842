"""Domain rules as plain functions and constants: account classes, limits, suitability.

A rule that says no raises a `Refusal` (with a stable code), never an HTTP error:

    Refusal                 the bank refuses an order that keeps the contract (422): the
                            payer lacks the funds, a date range is backwards, an account the
                            body names is not the partner's
    ├── ConsentRefusal      a customer's consent does not cover it (403; sandbox.consents)
    ├── UnknownResource     the resource its URL names is not this partner's (404)
    └── ConflictingRequest  it conflicts with what exists: a request id reused for a different
                            order, a refund of a payment refunded already or not settled (409)
"""


class Refusal(Exception):
    """The bank refuses; `code` is stable, `detail` says why, `field` points at the input."""

    def __init__(self, code: str, detail: str, field: str | None = None):
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.field = field


class UnknownResource(Refusal):
    pass


class ConflictingRequest(Refusal):
    pass
