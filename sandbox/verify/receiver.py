"""`verify --receiver URL --signing-secret SECRET`: checks a partner's notification receiver, the
endpoint the payments contract's `callbacks` describe, from the outside.

It POSTs eight notifications to URL, one after the other, and says which answers break the rules.
A 2xx answer acknowledges a notification; any other answer refuses it (as the sandbox reads them).

1. A genuine `payment.settled` event, signed exactly as the sandbox signs it: acknowledge it.
   The signature covers the raw body bytes; a receiver that re-serialises the JSON before
   checking refuses it (the body has non-ASCII text, as real ones do).
2. No `X-Sandbox-Signature` at all: refuse it. Anyone can POST to the receiver's URL.
3. A malformed `X-Sandbox-Signature` (a `t` and no `v1`): refuse it, never skip verification.
4. Signed with another secret: refuse it.
5. A genuine signature over a body whose amount was changed afterwards: refuse it.
6. Correctly signed, but 600 s ago: refuse a `t` more than 300 s from your clock, or a captured
   notification stays valid for ever.
7. The genuine request of 1 again, byte for byte, signature included: refuse it. The sandbox
   signs every attempt afresh with the time it is sent, so it never sends one signature twice; a
   second arrival is a replay by whoever captured the first. Remember the signatures you accepted
   until their `t` is 300 s old (the timestamp check refuses them after that).
8. A retry of the event of 1: same `event_id` and body, `X-Sandbox-Delivery-Attempt: 2`, signed
   afresh: acknowledge it. Retries are how delivery survives a lost acknowledgement; process
   each `event_id` once, but answer 2xx every time it arrives with a valid signature.

Every forged notification (2 to 6) carries an event id of its own, so the only thing that can
make a receiver accept one is a missing check. Exit status: 0 every answer was right, 1 some was
not, 2 the receiver could not be reached (DocumentError).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shlex
import time
import uuid
from collections.abc import Iterator

import httpx
import orjson

from sandbox.clock import BEIJING
from sandbox.notify import SIGNATURE_HEADER, TOLERANCE_S, sign
from sandbox.verify.documents import DocumentError
from sandbox.verify.report import TestCase, write_junit

SUITE = "openbank-sandbox verify --receiver"
STALE_S = 2 * TOLERANCE_S
WRONG_SECRET = "whsec_" + "0" * 48


@dataclasses.dataclass(frozen=True)
class Notification:
    """One POST: the raw body and the headers, as the sandbox's dispatcher sends them."""

    body: bytes
    headers: dict[str, str]

    def curl(self, url: str) -> str:
        args = ["curl", "-i", "-X", "POST", url]
        for name, value in self.headers.items():
            args += ["-H", f"{name}: {value}"]
        return shlex.join([*args, "--data-binary", self.body.decode()])


@dataclasses.dataclass(frozen=True)
class Scenario:
    title: str
    notification: Notification
    acknowledge: bool  # True: must answer 2xx; False: must answer anything else
    rule: str  # what a receiver must do, shown when it does not


@dataclasses.dataclass(frozen=True)
class Outcome:
    scenario: Scenario
    status: int | None  # None: no answer
    error: str | None
    seconds: float

    @property
    def passed(self) -> bool:
        return self.status is not None and (200 <= self.status < 300) == self.scenario.acknowledge

    def verdict(self) -> str:
        """What the receiver did, and the rule it broke when it broke one."""
        title = self.scenario.title
        if self.status is None:
            return f"{title}: no answer ({self.error}) — {self.scenario.rule}"
        acknowledged = 200 <= self.status < 300
        if self.passed:
            return f"{title} {'acknowledged' if acknowledged else 'refused'} ({self.status})"
        return (f"{title} {'accepted' if acknowledged else 'refused'} with {self.status} — "
                f"{self.scenario.rule}")

    def line(self) -> str:
        return f"  {'ok  ' if self.passed else 'FAIL'}  {self.verdict()}"


def payment_event(event_id: str) -> dict:
    """A `payment.settled` event, valid against the contract's PaymentEvent schema."""
    now = dt.datetime.now(BEIJING).isoformat(timespec="seconds")
    return {
        "event_id": event_id, "type": "payment.settled", "created_at": now,
        "data": {"payment": {
            "payment_id": "pay_" + uuid.uuid4().hex[:16], "status": "settled",
            "debtor_account_id": "acc_" + uuid.uuid4().hex[:16],
            "creditor": {"account_number": "6212269458073021579", "bank_code": "102100099996",
                         "name": "王芳"},
            "amount": {"amount": "100.00", "currency": "CNY"},
            "remittance_information": "房租 November rent",
            "created_at": now, "settled_at": now}},
    }


def new_event_id() -> str:
    """Unique per call, in the contract's EventId format `evt_` + 16 hex digits."""
    return "evt_" + uuid.uuid4().hex[:16]


def signed(secret: str, body: bytes, *, attempt: int = 1, timestamp: int | None = None,
           signature: str | None = None) -> Notification:
    """`body` with the headers the sandbox sends; signed with `secret` at `timestamp` (default
    now) unless `signature` gives the header's value."""
    event = orjson.loads(body)
    stamp = int(time.time()) if timestamp is None else timestamp
    return Notification(body, {
        "Content-Type": "application/json",
        "User-Agent": "openbank-sandbox-notifications/1",
        "X-Sandbox-Event-Id": event["event_id"],
        "X-Sandbox-Event-Type": event["type"],
        "X-Sandbox-Delivery-Attempt": str(attempt),
        SIGNATURE_HEADER: sign(secret, body, stamp) if signature is None else signature,
    })


def unsigned(notification: Notification) -> Notification:
    headers = {k: v for k, v in notification.headers.items() if k != SIGNATURE_HEADER}
    return Notification(notification.body, headers)


def scenarios(secret: str) -> Iterator[Scenario]:
    """The checks in order; each notification is made just before it is sent, so every fresh
    signature is fresh when it arrives."""

    def fresh_body() -> bytes:
        return orjson.dumps(payment_event(new_event_id()))

    genuine = signed(secret, fresh_body())
    yield Scenario(
        "genuine notification", genuine, True,
        "a notification signed with the signing secret must be answered 2xx, or the sandbox "
        "retries it and finally marks it failed; verify the raw body bytes as received, not "
        "re-serialised JSON (and check that --signing-secret is the receiver's secret)")
    yield Scenario(
        f"unsigned notification (no {SIGNATURE_HEADER})", unsigned(signed(secret, fresh_body())),
        False, "anyone can POST to the receiver's URL: refuse a notification without a signature")
    yield Scenario(
        f"malformed {SIGNATURE_HEADER} (t but no v1)",
        signed(secret, fresh_body(), signature=f"t={int(time.time())}"), False,
        f"refuse an {SIGNATURE_HEADER} that is not t=<unix seconds>,v1=<64 hex digits>; never "
        "skip verification when it does not parse")
    wrong = fresh_body()
    yield Scenario(
        "wrongly signed notification (another secret)",
        signed(secret, wrong, signature=sign(WRONG_SECRET, wrong, int(time.time()))), False,
        "refuse unless v1 equals HMAC-SHA256 keyed with your signing secret over "
        "f\"{t}.\" + the raw body (compare in constant time)")
    original = fresh_body()
    tampered = original.replace(b'"100.00"', b'"900.00"')
    yield Scenario(
        "tampered body (amount changed after signing)",
        signed(secret, tampered, signature=sign(secret, original, int(time.time()))), False,
        "the signature covers every byte of the body: refuse a body it does not sign")
    yield Scenario(
        f"stale signature (t {STALE_S} s old)",
        signed(secret, fresh_body(), timestamp=int(time.time()) - STALE_S), False,
        f"refuse a t more than {TOLERANCE_S} s from your clock, or a captured notification "
        "stays valid for ever")
    yield Scenario(
        "replayed notification (the genuine request again, same signature)", genuine, False,
        "the sandbox signs every attempt afresh and never sends one signature twice, so a "
        "second arrival is a replay by whoever captured the first: remember the signatures "
        f"you accepted for {TOLERANCE_S} s and refuse them again")
    first_t = int(genuine.headers[SIGNATURE_HEADER].split(",")[0].removeprefix("t="))
    # The sandbox's retries come at least a second apart, so each has a later t than the last.
    yield Scenario(
        "retry of the genuine notification (same event_id, attempt 2, signed afresh)",
        signed(secret, genuine.body, attempt=2, timestamp=max(int(time.time()), first_t + 1)),
        True,
        "the sandbox retries an event whose acknowledgement it did not get: answer 2xx to an "
        "event_id you already processed (without processing it again), or it is retried "
        "until it is marked failed")


def check(url: str, secret: str, *, timeout: float = 10.0) -> list[Outcome]:
    """Sends every scenario to `url`, printing a line for each as it is answered; the outcomes.
    DocumentError if the receiver cannot be reached at all."""
    try:
        target = httpx.URL(url)
    except httpx.InvalidURL:
        target = None
    if target is None or target.scheme not in ("http", "https") or not target.host:
        raise DocumentError(f"--receiver must be an http:// or https:// URL, not {url!r}")
    print(f"Checking the notification receiver at {url}", flush=True)
    outcomes: list[Outcome] = []
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        for scenario in scenarios(secret):
            started = time.perf_counter()
            status, error = None, None
            try:
                response = client.post(url, content=scenario.notification.body,
                                       headers=scenario.notification.headers)
                status = response.status_code
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}".rstrip(": ")
                if not outcomes and isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
                    raise DocumentError(f"cannot reach the receiver at {url}: {error}") from None
            outcome = Outcome(scenario, status, error, time.perf_counter() - started)
            outcomes.append(outcome)
            print(outcome.line(), flush=True)
            if not outcome.passed:
                print(f"        reproduce: {scenario.notification.curl(url)}", flush=True)
    return outcomes


def command(url: str, secret: str, *, junit_xml: str | None = None,
            timeout: float = 10.0) -> int:
    """The CLI's `verify --receiver`: 0 the receiver conforms, 1 it does not."""
    outcomes = check(url, secret, timeout=timeout)
    failed = [o for o in outcomes if not o.passed]
    if failed:
        print(f"{len(outcomes)} checks: {len(outcomes) - len(failed)} ok, {len(failed)} failed. "
              f"The curl lines carry this run's signatures, which go stale after "
              f"{TOLERANCE_S} s.")
    else:
        print(f"{len(outcomes)} checks: all ok; the receiver follows the payments contract.")
    if junit_xml:
        write_junit(junit_xml, SUITE, [
            TestCase(o.scenario.title, "receiver", seconds=o.seconds,
                     failures=() if o.passed else (
                         (o.verdict(), o.scenario.notification.curl(url)),))
            for o in outcomes])
    return 1 if failed else 0
