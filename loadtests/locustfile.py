"""Partners' apps as Locust users, for `openbank-sandbox load` (which writes the run's plan and
starts Locust with SANDBOX_LOAD_PLAN pointing at it; run through that command, not alone).

Each user acts for one customer of one partner, with that customer's consent token. It walks
the profile's flows (list accounts → read a balance → pay → poll the payment ...), paced so that
all users together follow the profile's 24-hour curve compressed into the run's duration. A
transfer carries an idempotency key (X-Request-ID) and is retried with the same key on a
timeout or a dropped connection; every answer is checked against its contract, and one that
breaks it counts as a failure with the reason. Business refusals the contract documents (422
INSUFFICIENT_FUNDS, LIMIT_EXCEEDED ...) are correct answers, not failures.

Every payment acknowledged to a user (201, or 200 for a replay) is recorded for the
reconciliation that follows the run; with Locust workers, they send theirs to the master.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
import uuid
from pathlib import Path

import gevent
from locust import FastHttpUser, events, task
from locust.runners import WORKER_REPORT_INTERVAL, MasterRunner, WorkerRunner

from sandbox.load.contract_check import ResponseCheck
from sandbox.load.profile import STEPS, Profile

PLAN = json.loads(Path(os.environ["SANDBOX_LOAD_PLAN"]).read_text(encoding="utf-8"))
PROFILE = Profile.from_dict(PLAN["profile"])
REPORT = Path(PLAN["report_dir"])
CHECK = ResponseCheck()
FLOWS = list(PROFILE.flows)
WEIGHTS = [flow.weight for flow in FLOWS]
SECTION_OF = dict((operation, section) for section, operation in STEPS.values())
ANOTHER_BANK = {"account_number": "6212269458073021579", "bank_code": "102100099996",
                "name": "王芳"}
TRANSFER_ATTEMPTS = 3
MAX_OWED = 4.0  # flows a user may be behind and still make up
STOP_AFTER_LAST_CALL = 2.0  # seconds for the calls in flight (a retried transfer) to end

_taken = itertools.count()  # users this process has started
_acks: list[dict] = []  # this process's acknowledged payments, not yet sent or written
_attempts: dict[str, str] = {}  # request id -> partner id, of every transfer sent
_received: list[dict] = []  # the master's: every worker's
_shares_made: set[str] = set()  # the master's: processes that made their share of the calls
_calls = 0  # made by this process; it stops at its share of the plan's calls
_started = time.monotonic()


# Each Locust process makes at most its share of the plan's calls.
CALL_SHARE = -(-PLAN["calls"] // (PLAN["locust_workers"] or 1))


@events.test_start.add_listener
def _on_test_start(environment, **_):
    global _started
    _started = time.monotonic()


def _own_family(environment) -> dict:
    """This user's customer, with a token family (consent, refresh token) no other user holds:
    a refresh token works once, so users refreshing with copies of one would revoke each
    other's tokens. The users of Locust worker k take entries k, k + n, k + 2n ... (n worker
    processes); `openbank-sandbox load` gathers enough entries for them all."""
    processes = PLAN["locust_workers"] or 1
    index = getattr(environment.runner, "worker_index", 0) + processes * next(_taken)
    return dict(PLAN["population"][index % len(PLAN["population"])])


class PartnerApp(FastHttpUser):
    network_timeout = 10.0
    connection_timeout = 5.0

    def on_start(self):
        self.customer = _own_family(self.environment)
        self.token = self.customer["access_token"]
        self.payments: list[str] = []
        # Flows this user is owed: it earns them at its share of the curve's rate, and walks
        # one whenever it has one. A user that fell behind (slow answers, a late start) catches
        # up, and a rise in the curve is felt within a quarter of a second, not after a sleep
        # sized for the quiet hour before it. Users earn from the start of the run, so those
        # spawned last make up for it; the random start spreads them apart.
        self.owed = random.random()
        self.owed_at = _started

    def _flows_per_second(self) -> float:
        rate = PROFILE.rate_at(time.monotonic() - _started)  # calls/s, all users together
        return rate / (PLAN["users"] * PROFILE.calls_per_flow)

    def _earn(self) -> None:
        now = time.monotonic()
        # At most a few flows of credit: a user stalled for long does not burst afterwards.
        self.owed = min(self.owed + (now - self.owed_at) * self._flows_per_second(),
                        MAX_OWED)
        self.owed_at = now

    def wait_time(self) -> float:
        """Until this user has earned its next flow (at most 0.25 s: the rate may change)."""
        self._earn()
        if self.owed >= 1:
            return 0.0
        return min(0.25, (1 - self.owed) / max(self._flows_per_second(), 1e-9))

    @task
    def walk(self):
        global _calls
        self._earn()
        if self.owed < 1:
            return
        self.owed -= 1
        flow = random.choices(FLOWS, WEIGHTS)[0]
        for step in flow.steps:
            if _calls >= CALL_SHARE:
                gevent.sleep(1)  # this process has made its share: idle until the run ends
                return
            _calls += 1
            if _calls == CALL_SHARE:
                _share_made(self.environment)
            getattr(self, step)(flow)

    # -- the calls ----------------------------------------------------------------------------

    def call(self, operation_id: str, method: str, path: str, expected: tuple[int, ...],
             **kwargs):
        """One call, named 'section operationId' in the statistics, checked against its
        contract and against what this flow expects; the response, or None if it failed."""
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        name = f"{SECTION_OF[operation_id]} {operation_id}"
        with self.client.request(method, path, name=name, headers=headers,
                                 catch_response=True, **kwargs) as response:
            status = response.status_code
            if status == 0:
                response.failure(f"no answer: {response.error}")
                return None
            problem = CHECK.violation(operation_id, status, response.content)
            if problem is not None:
                response.failure(f"contract: {operation_id} {problem}")
                return None
            if status not in expected:
                code = response.json().get("code") if response.content else None
                response.failure(f"unexpected {status} {code or ''}".strip())
                return None
            response.success()
            return response

    def account(self) -> str:
        return random.choice(self.customer["accounts"])

    def listAccounts(self, flow):
        self.call("listAccounts", "GET", "/accounts/v1/accounts", (200,))

    def getBalance(self, flow):
        self.call("getBalance", "GET", f"/accounts/v1/accounts/{self.account()}/balance",
                  (200,))

    def listTransactions(self, flow):
        self.call("listTransactions", "GET",
                  f"/accounts/v1/accounts/{self.account()}/transactions?limit=20", (200,))

    def listCustomers(self, flow):
        self.call("listCustomers", "GET", "/accounts/v1/customers", (200,))

    def getCustomer(self, flow):
        self.call("getCustomer", "GET",
                  f"/accounts/v1/customers/{self.customer['customer_id']}", (200,))

    def listBanks(self, flow):
        self.call("listBanks", "GET", "/payments/v1/banks", (200,))

    def createTransfer(self, flow):
        request_id = f"load-{uuid.uuid4().hex}"
        creditor = (ANOTHER_BANK if flow.name == "pay_other_bank"
                    else {"account_id": random.choice(self.customer["payees"])})
        fen = random.randint(1, 999)
        order = {"debtor_account_id": random.choice(self.customer["payers"]),
                 "creditor": creditor,
                 "amount": {"amount": f"{fen // 100}.{fen % 100:02d}", "currency": "CNY"}}
        for attempt in range(1, TRANSFER_ATTEMPTS + 1):
            response = self.call("createTransfer", "POST", "/payments/v1/transfers",
                                 (200, 201, 422), json=order,
                                 headers={"X-Request-ID": request_id})
            if response is not None or attempt == TRANSFER_ATTEMPTS:
                break
            gevent.sleep(0.2 * attempt)  # a timeout or a dropped connection: same key again
        _attempts[request_id] = self.customer["partner_id"]
        if response is not None and response.status_code in (200, 201):
            payment = response.json()
            self.payments = [payment["payment_id"], *self.payments[:9]]
            _acks.append({"request_id": request_id, "payment_id": payment["payment_id"],
                          "partner_id": self.customer["partner_id"],
                          "customer_id": self.customer["customer_id"],
                          "amount": payment["amount"]["amount"]})

    def getPayment(self, flow):
        if self.payments:
            self.call("getPayment", "GET", f"/payments/v1/payments/{self.payments[0]}", (200,))
        else:
            self.listBanks(flow)

    def refreshToken(self, flow):
        response = self.call("issueToken", "POST", "/oauth2/token", (200,),
                             data={"grant_type": "refresh_token",
                                   "refresh_token": self.customer["refresh_token"]},
                             headers={"Authorization": self.customer["basic"]})
        if response is not None:
            # Refresh tokens rotate: the next refresh must use the one this answer carries.
            self.token = response.json()["access_token"]
            self.customer["refresh_token"] = response.json()["refresh_token"]


# -- what the run acknowledged, gathered where the report is written ---------------------------



def _drain() -> dict:
    batch = {"acks": list(_acks), "attempts": dict(_attempts)}
    _acks.clear()
    _attempts.clear()
    return batch


def _share_made(environment) -> None:
    """This process has started its last call of the plan: the run ends once every Locust
    process has (its calls finish first), not at a clock that would cut the tail off."""
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        runner.send_message("share_made", runner.client_id)
    else:
        _made_share(environment, "local")


def _made_share(environment, process: str) -> None:
    """The master (or the only process) hears that `process` made its share; the last ends
    the run once its calls in flight are answered."""
    _shares_made.add(process)
    if len(_shares_made) >= max(1, PLAN["locust_workers"]):
        gevent.spawn(_quit_when_reported, environment)


def _quit_when_reported(environment) -> None:
    """Ends the run once the calls in flight are answered and every process's calls are in
    the master's statistics: a worker reports every few seconds, and its last report, sent
    as it stops, may come after the master has stopped listening."""
    gevent.sleep(STOP_AFTER_LAST_CALL)
    made = CALL_SHARE * max(1, PLAN["locust_workers"])  # each call is one request or more
    deadline = time.monotonic() + WORKER_REPORT_INTERVAL + 1
    while environment.stats.total.num_requests < made and time.monotonic() < deadline:
        gevent.sleep(0.1)
    environment.runner.quit()


@events.init.add_listener
def _on_init(environment, **_):
    if isinstance(environment.runner, MasterRunner):
        environment.runner.register_message("acks", lambda msg, **kw: _received.append(msg.data))
        environment.runner.register_message(
            "share_made", lambda msg, **kw: _made_share(environment, msg.data))
    elif isinstance(environment.runner, WorkerRunner):
        def send_every_second():
            while True:
                gevent.sleep(1)
                environment.runner.send_message("acks", _drain())
        gevent.spawn(send_every_second)


@events.test_stop.add_listener
def _on_test_stop(environment, **_):
    if isinstance(environment.runner, WorkerRunner):
        environment.runner.send_message("acks", _drain())


@events.quitting.add_listener
def _on_quitting(environment, **_):
    """Where the report is written (the master, or the only process): the acknowledged
    payments, and each section's figures, merged from Locust's own statistics."""
    if isinstance(environment.runner, WorkerRunner):
        return
    _received.append(_drain())
    acks = [ack for batch in _received for ack in batch["acks"]]
    attempts = {rid: pid for batch in _received for rid, pid in batch["attempts"].items()}
    (REPORT / "acknowledged.json").write_text(
        json.dumps({"acks": acks, "attempts": attempts}), encoding="utf-8")
    figures = _sections(environment.stats)
    figures["exceptions"] = [{"count": e["count"], "message": e["msg"],
                              "where": e["traceback"].strip().splitlines()[-2:]}
                             for e in environment.runner.exceptions.values()]
    (REPORT / "sections.json").write_text(json.dumps(figures, indent=2), encoding="utf-8")


def _figures(entry) -> dict:
    return {"calls": entry.num_requests, "failures": entry.num_failures,
            "run_s": round(max(0.0, (entry.last_request_timestamp or entry.start_time)
                               - entry.start_time), 1),
            "rps": round(entry.total_rps, 1),
            "p50_ms": entry.get_response_time_percentile(0.50),
            "p95_ms": entry.get_response_time_percentile(0.95),
            "p99_ms": entry.get_response_time_percentile(0.99),
            "max_ms": round(entry.max_response_time or 0, 1)}


def _sections(stats) -> dict:
    from locust.stats import StatsEntry

    merged: dict[str, StatsEntry] = {}
    for (name, _method), entry in stats.entries.items():
        section = name.split(" ", 1)[0]
        if section not in merged:
            merged[section] = StatsEntry(stats, section, "", use_response_times_cache=False)
        merged[section].extend(entry)
    errors = sorted(((e.occurrences, e.name, str(e.error)) for e in stats.errors.values()),
                    reverse=True)
    return {"total": _figures(stats.total),
            "sections": {name: _figures(entry) for name, entry in sorted(merged.items())},
            "operations": {name: _figures(entry) for (name, _), entry
                           in sorted(stats.entries.items())},
            "failure_reasons": [{"count": n, "call": name, "reason": reason}
                                for n, name, reason in errors[:20]]}
