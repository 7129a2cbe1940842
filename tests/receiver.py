"""A partner's callback endpoint for tests: a real Flask app on a real port, in a thread.

It answers each POST with the next status of its script (then 200 for ever; a 3xx redirects to
its `location`), records what it received byte for byte, and verifies signatures the way the
payments contract documents it, with nothing from the sandbox's own code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import threading
import time

import flask
from werkzeug.serving import make_server


@dataclasses.dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def event_id(self) -> str:
        return self.headers["X-Sandbox-Event-Id"]

    @property
    def attempt(self) -> int:
        return int(self.headers["X-Sandbox-Delivery-Attempt"])


def signature_verifies(secret: str, header: str, body: bytes, tolerance: int = 300) -> bool:
    """The documented method: HMAC-SHA256(secret, f"{t}." + raw body) in hex equals v1, and t is
    within five minutes of now."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(secret.encode(), fields["t"].encode() + b"." + body,
                        hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(fields["t"])) <= tolerance
    return fresh and hmac.compare_digest(expected, fields["v1"])


class Receiver:
    def __init__(self, port: int, script: list[int] | None = None, host: str = "127.0.0.1",
                 location: str | None = None):
        self.port = port
        self.url = f"http://{host}:{port}/hooks/payments"
        self.script = list(script or [])
        self.received: list[Received] = []
        self._lock = threading.Lock()
        app = flask.Flask("receiver")

        @app.post("/hooks/payments")
        def hook():
            body = flask.request.get_data()
            with self._lock:
                status = self.script.pop(0) if self.script else 200
                self.received.append(Received(dict(flask.request.headers), body, status))
            if 300 <= status < 400:  # a redirect to `location`
                return "", status, {"Location": location or "/"}
            return ("", status) if status != 200 else {"received": True}

        self._server = make_server("127.0.0.1", port, app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def acknowledged(self) -> list[Received]:
        with self._lock:
            return [r for r in self.received if 200 <= r.answered < 300]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def wait_for(condition, timeout: float = 30, what: str = "condition"):
    """Polls `condition` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
