"""Signed callbacks: payment events kept in an outbox, delivered with retries, logged.

An event is written in the same transaction as the payment change it tells of. Any server
process delivers it: it takes the next attempt number under a lease, POSTs the event to the
partner's callback URL, and records the answer. A 2xx acknowledges; anything else (or no answer
within the timeout) is retried after the next wait of the back-off schedule, then left "failed"
until the partner asks for a redelivery. Because attempts are numbered in the database, a
restart or a second process never sends one attempt twice; an event may arrive more than once
(a lost acknowledgement, a redelivery), always with the same event id.

How a receiver verifies a notification (the contract says the same):

    X-Sandbox-Signature: t=1764216000,v1=5257a869e7...

    expected = HMAC-SHA256(key=signing_secret, message=f"{t}.".encode() + raw_body).hexdigest()

compare it with `v1` in constant time, and refuse a `t` more than five minutes from now.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import time
import typing as t

import httpx
import orjson

from sandbox import mint
from sandbox.clock import Clock
from sandbox.ledger import Event
from sandbox.refusals import Refusal
from sandbox.security.callbacks import CallbackPolicy

if t.TYPE_CHECKING:
    from sandbox.store import Store

SIGNATURE_HEADER = "X-Sandbox-Signature"
TOLERANCE_S = 300
EVENT_TYPES = ("payment.settled", "payment.failed", "payment.refunded")


class SignatureError(ValueError):
    """A notification's signature is missing, malformed, stale or wrong."""


def new_secret() -> str:
    """A callback's signing secret (kept in clear: the sandbox signs with it)."""
    return mint.hex_secret("whsec_", 24)


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header's value for `body` sent at `timestamp` (Unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def next_second_ms(timestamp: float) -> int:
    """The start of the second after `timestamp`, in ms: an attempt made then is signed with a
    later `t` than one made at `timestamp`, so no two attempts of an event share a signature
    and a receiver may refuse a repeated one as a replay."""
    return (int(timestamp) + 1) * 1000


def verify(secret: str, body: bytes, header: str, *, now: float | None = None,
           tolerance: int = TOLERANCE_S) -> None:
    """Raises SignatureError unless `header` signs exactly `body` with `secret`, recently."""
    try:
        parts = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        raise SignatureError(f"malformed {SIGNATURE_HEADER}: {header!r}") from None
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        raise SignatureError(f"signature timestamp {timestamp} is more than {tolerance}s away")
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    if not hmac.compare_digest(expected, given):
        raise SignatureError("signature does not match the body")


def event(event_id: str, kind: str, payment: dict, now: dt.datetime) -> Event:
    """The notification of a payment's change (`payment`: its resource as partners see it), as
    its booking writes it to the outbox, with the body POSTed exactly as it will be sent."""
    created_at = now.isoformat(timespec="seconds")
    body = {"event_id": event_id, "type": kind, "created_at": created_at,
            "data": {"payment": payment}}
    return Event(event_id=event_id, type=kind, payment_id=payment["payment_id"],
                 body=orjson.dumps(body).decode(), created_at=created_at,
                 created_us=int(now.timestamp() * 1_000_000))


class Dispatcher:
    """Delivers due notifications from this process; safe to run in many processes at once."""

    def __init__(self, store: Store, clock: Clock, backoff: tuple[float, ...],
                 timeout: float, client: httpx.AsyncClient | None = None, batch: int = 16,
                 policy: CallbackPolicy | None = None):
        self.store = store
        self.clock = clock
        self.backoff = backoff
        self.timeout = timeout
        self.batch = batch
        self.policy = policy or CallbackPolicy()
        # Redirects are never followed: a 3xx could point anywhere, past the policy.
        self.client = client or httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    async def close(self) -> None:
        await self.client.aclose()

    async def deliver_due(self) -> int:
        """One round: claims what is due and delivers it concurrently; how many were tried."""
        now_ms = int(self.clock.timestamp() * 1000)
        # The lease outlives the slowest attempt, so no other process takes it meanwhile.
        lease_ms = now_ms + int((self.timeout + 10) * 1000)
        claimed = await self.store.outbox.claim_notifications(now_ms, lease_ms, self.batch)
        await asyncio.gather(*(self._attempt(row) for row in claimed))
        return len(claimed)

    async def _attempt(self, row: dict) -> None:
        attempt = row["attempts"]
        started = time.perf_counter()
        status_code, error = None, None
        url = row["url"]
        if url is None:
            error = "no callback URL is registered"
        else:
            body = row["body"].encode()
            signed_at = int(self.clock.timestamp())
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "openbank-sandbox-notifications/1",
                "X-Sandbox-Event-Id": row["event_id"],
                "X-Sandbox-Event-Type": row["type"],
                "X-Sandbox-Delivery-Attempt": str(attempt),
                SIGNATURE_HEADER: sign(row["secret"], body, signed_at),
            }
            try:
                status_code, error = await self._post(url, body, headers)
            except Exception as exc:  # refused, timed out, a URL no client can use: all fail
                error = f"{type(exc).__name__}: {exc}"[:500]
        now = self.clock.timestamp()
        acknowledged = status_code is not None and 200 <= status_code < 300
        retries_done = attempt - row["retry_base"]  # attempts since the last (re)delivery
        if acknowledged:
            status, next_ms = "delivered", 0
        elif retries_done <= len(self.backoff):
            status, next_ms = "pending", max(int((now + self.backoff[retries_done - 1]) * 1000),
                                             next_second_ms(now))
        else:
            status, next_ms = "failed", 0
        await self.store.outbox.record_delivery(
            {"event_id": row["event_id"], "attempt": attempt, "url": url or "",
             "attempted_at": self.clock.now().isoformat(timespec="milliseconds"),
             "status_code": status_code, "error": error,
             "duration_ms": int((time.perf_counter() - started) * 1000)},
            status=status, next_attempt_ms=next_ms,
            delivered_at=self.clock.now().isoformat(timespec="seconds") if acknowledged else None)

    async def _post(self, url: str, body: bytes, headers: dict) -> tuple[int | None, str | None]:
        """The receiver's status and what went wrong, if anything. The URL is checked again
        (its name may resolve elsewhere now) and the request goes to the address checked; a
        refused address is not contacted, and its error says nothing of its ports."""
        try:
            target = await self.policy.check(url)
        except Refusal as exc:
            return None, f"not sent: {exc.detail}"[:500]
        response = await self.client.post(
            target.pinned_url, content=body, headers={**headers, **target.headers},
            extensions=target.extensions)
        if 300 <= response.status_code < 400:
            return response.status_code, "a redirect, not followed: answer 2xx at the URL itself"
        return response.status_code, None
