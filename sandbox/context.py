"""What a handler works with, in one typed object built when the app starts: handlers receive it
as their `ctx` argument (Connexion passes it like `token_info`). What belongs to the request
itself (a header, the root path) they read from the request."""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing as t

from sandbox.clock import Clock
from sandbox.records import Consent
from sandbox.rules import consents
from sandbox.settings import Settings
from sandbox.store import Store

if t.TYPE_CHECKING:
    from sandbox.security.tokens import TokenCache
    from sandbox.worker import Worker


@dataclasses.dataclass(frozen=True)
class Context:
    settings: Settings
    store: Store
    clock: Clock
    tokens: TokenCache  # tokens seen lately, so the hot path costs no query
    worker: Worker  # settles payments to other banks, delivers notifications
    scopes: frozenset[str]  # every scope a served contract declares
    contracts: list[dict]  # GET /contracts

    def now_for(self, offset_s: int) -> dt.datetime:
        """Now by a partner's clock (the operator's time travel for it)."""
        return self.clock.now_for(offset_s)

    def consent(self, token_info: dict, permission: str, **scope) -> Consent:
        """The consent behind the caller's token, if it covers `permission` (on the account and
        dates in `scope`); refused otherwise (`rules.consents.require`)."""
        consent, now = self._consent_now(token_info)
        return consents.require(consent, permission, now, **scope)

    def live_consent(self, token_info: dict) -> Consent:
        """The live consent behind a customer's token, whatever it permits
        (`rules.consents.live`): a customer sees the records of its consent's accounts."""
        return consents.live(*self._consent_now(token_info))

    def _consent_now(self, token_info: dict) -> tuple[Consent | None, dt.datetime | None]:
        """The token's consent (None for a client-credentials token) and now by its partner's
        clock."""
        consent = token_info.get("consent")
        return consent, (self.clock.now_for(consent.clock_offset_s) if consent is not None
                         else None)

    @staticmethod
    def partner_only(token_info: dict) -> None:
        """Refused for a customer's token (`rules.consents.partner_only`)."""
        consents.partner_only(token_info.get("consent"))
