"""A partner's receiver for the sandbox's payment notifications: a small Flask app to copy.

Run it with the signing secret the sandbox answered `PUT /payments/v1/callback` with:

    SANDBOX_SIGNING_SECRET=whsec_... python examples/notification_receiver.py   # port 5000
    SANDBOX_SIGNING_SECRET=whsec_... PORT=5001 python examples/notification_receiver.py

register http://127.0.0.1:5000/hooks/payments as the callback URL, and check it:

    openbank-sandbox verify --receiver http://127.0.0.1:5000/hooks/payments \\
        --signing-secret whsec_...

What it does with each POST, in this order, and why:

1. Verifies `X-Sandbox-Signature: t=<unix seconds>,v1=<hex>` against the raw body bytes, never
   against re-serialised JSON: `v1` must equal HMAC-SHA256(secret, f"{t}." + body), compared
   in constant time, and `t` must be within 300 s of our clock. A missing, malformed, wrong or
   stale signature is answered 401.
2. Refuses a replay with 409. The sandbox signs every delivery attempt afresh, with the time it
   is sent, so it never sends one signature twice: a signature we already accepted, arriving
   again, was captured and resent by someone else. We remember accepted signatures until their
   `t` is 300 s old; after that step 1 refuses them as stale, so memory stays small.
3. Processes each `event_id` once. The sandbox retries an event until it gets a 2xx (a lost
   acknowledgement, a redelivery you asked for), each time with the same `event_id` and a fresh
   signature: a duplicate is acknowledged with 200 and not processed again.

The memory here is the process's own, behind a lock; with several processes or a restart, keep
the processed event ids in your database, recorded in the transaction that acts on the event
(a unique key on `event_id`), and the recent signatures in a shared store with a 300 s expiry.

Nothing here comes from the sandbox's code: it is what the payments contract documents.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import threading
import time

from flask import Flask, jsonify, request

SIGNATURE = re.compile(r"t=(\d+),v1=([0-9a-f]{64})")
TOLERANCE_S = 300

log = logging.getLogger("notification_receiver")


class Memory:
    """Signatures accepted in the last 300 s, and the event ids processed; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._signatures: dict[str, int] = {}  # v1 -> the t it was signed at
        self._events: set[str] = set()

    def first_use(self, signature: str, timestamp: int) -> bool:
        """Records `signature`; False if it was recorded before (a replay)."""
        now = time.time()
        with self._lock:
            self._signatures = {v1: t for v1, t in self._signatures.items()
                                if now - t <= TOLERANCE_S}
            if signature in self._signatures:
                return False
            self._signatures[signature] = timestamp
            return True

    def process_once(self, event: dict) -> bool:
        """Processes `event` unless its event_id was processed before; whether it was now."""
        with self._lock:
            if event["event_id"] in self._events:
                return False
            process(event)
            self._events.add(event["event_id"])
            return True


def process(event: dict) -> None:
    """Your business logic: here, a log line."""
    payment = event["data"]["payment"]
    log.info("%s %s: payment %s is %s (%s %s)", event["event_id"], event["type"],
             payment["payment_id"], payment["status"], payment["amount"]["amount"],
             payment["amount"]["currency"])


class Refused(Exception):
    """A notification whose signature does not hold; the reason is the message."""


def verified_signature(secret: str, header: str | None, body: bytes) -> tuple[int, str]:
    """(t, v1) of a signature header that signs `body` with `secret`, recently; Refused if not."""
    match = SIGNATURE.fullmatch(header or "")
    if match is None:
        raise Refused("missing or malformed X-Sandbox-Signature")
    timestamp, given = match[1], match[2]
    if abs(time.time() - int(timestamp)) > TOLERANCE_S:
        raise Refused("stale signature: t is more than 300 s from our clock")
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    if not hmac.compare_digest(expected.hexdigest(), given):
        raise Refused("signature does not match the body")
    return int(timestamp), given


def create_app(secret: str | None = None) -> Flask:
    """The receiver; `secret` defaults to the environment's SANDBOX_SIGNING_SECRET."""
    secret = secret or os.environ.get("SANDBOX_SIGNING_SECRET")
    if not secret:
        raise RuntimeError("set SANDBOX_SIGNING_SECRET to the callback's signing_secret")
    memory = Memory()
    app = Flask(__name__)

    @app.post("/hooks/payments")
    def payment_notification():
        body = request.get_data()  # the raw bytes: verify before parsing
        try:
            timestamp, signature = verified_signature(
                secret, request.headers.get("X-Sandbox-Signature"), body)
        except Refused as refused:
            log.warning("refused a notification: %s", refused)
            return jsonify(error=str(refused)), 401
        if not memory.first_use(signature, timestamp):
            log.warning("refused a replayed signature (t=%s)", timestamp)
            return jsonify(error="replayed: this signature was already used"), 409
        event = json.loads(body)
        if not memory.process_once(event):
            log.info("%s arrived again (attempt %s): already processed", event["event_id"],
                     request.headers.get("X-Sandbox-Delivery-Attempt"))
        return jsonify(received=event["event_id"]), 200

    return app


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    create_app().run(port=int(os.environ.get("PORT") or 5000))
