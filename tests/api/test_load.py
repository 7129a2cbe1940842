"""`openbank-sandbox load`: Locust replays a (small) day against a sandbox the command starts,
the report is written, and the reconciliation proves nothing acknowledged was lost; a server
that loses acknowledged payments is caught by it."""

from __future__ import annotations

import json
import re
import secrets
import threading

import flask
import httpx
import pytest
from conftest import Server, cli, create_partner, free_port
from werkzeug.serving import make_server

from sandbox.load.run import grace_s

pytestmark = pytest.mark.slow

SUMMARY_KEYS = {"calls", "failures", "rps", "p50_ms", "p95_ms", "p99_ms", "sections",
                "reconciliation", "capacity"}


def run_load(report, *extra: str) -> tuple[int, dict, str]:
    result = cli("load", "--profile", "daily", "--calls", "3000", "--duration", "30",
                 "--users", "20", "--report", str(report), "--seed", "7", *extra, check=False)
    summary_path = report / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    return result.returncode, summary, result.stdout + result.stderr


def assert_clean_run(code: int, summary: dict, output: str, report) -> None:
    assert code == 0, output
    assert SUMMARY_KEYS <= set(summary), summary.keys()
    assert summary["failures"] == 0, summary["failure_reasons"]
    assert summary["exceptions"] == [], summary["exceptions"]
    # Every planned call is made (a transfer retried on a timeout is one more), and the run
    # ends when they are: within the 30 s curve and its grace, not at a fixed clock.
    assert summary["target_calls"] == 3000
    assert 3000 <= summary["calls"] <= 3030, summary["calls"]
    assert summary["run_s"] <= 30 + grace_s(30), summary["run_s"]
    assert set(summary["sections"]) == {"accounts", "payments", "platform"}
    assert summary["p50_ms"] <= summary["p95_ms"] <= summary["p99_ms"]
    reconciliation = summary["reconciliation"]
    assert reconciliation["ok"] is True, reconciliation
    assert reconciliation["acknowledged"] > 0 and reconciliation["ledger_checked"]
    assert all(ledger["balanced"] for ledger in reconciliation["ledgers"].values())
    for name in ("report.html", "locust_stats.csv", "locust_failures.csv"):
        assert (report / name).exists(), name
    assert not (report / "plan.json").exists(), "the plan holds live tokens: removed after"
    assert "reconciliation: ok" in output


def test_a_small_day_against_its_own_sandbox_reconciles(tmp_path):
    report = tmp_path / "report"
    code, summary, output = run_load(report)
    assert_clean_run(code, summary, output, report)
    assert summary["locust_workers"] == 0


def test_a_small_day_with_two_locust_workers_reconciles(tmp_path):
    report = tmp_path / "report"
    code, summary, output = run_load(report, "--workers", "2")
    assert_clean_run(code, summary, output, report)
    assert summary["locust_workers"] == 2


def losing_proxy(client: httpx.Client, every: int) -> tuple[flask.Flask, list[str]]:
    """A server that keeps the contract to the letter but loses payments: it forwards every
    call to the sandbox, and answers every `every`-th transfer with a payment id it made up."""
    app = flask.Flask("losing-proxy")
    lost: list[str] = []
    transfers = iter(range(1, 10**9))

    @app.route("/<path:path>", methods=["GET", "POST", "PUT", "DELETE"])
    def forward(path: str):
        request = flask.request
        answer = client.request(request.method, "/" + path, params=request.args,
                                content=request.get_data(),
                                headers={k: v for k, v in request.headers.items()
                                         if k.lower() not in ("host", "content-length")})
        body = answer.content
        if path == "payments/v1/transfers" and answer.status_code == 201 \
                and next(transfers) % every == 0:
            made_up = f"pay_{secrets.token_hex(8)}"
            lost.append(made_up)
            body = re.sub(rb'"payment_id":"pay_[0-9a-f]{16}"',
                          f'"payment_id":"{made_up}"'.encode(), body)
        return flask.Response(body, answer.status_code,
                              content_type=answer.headers.get("content-type"))

    return app, lost


def test_a_server_that_loses_acknowledged_payments_fails_the_reconciliation(tmp_path):
    db = f"sqlite:///{tmp_path / 'sandbox.db'}"
    server = Server(db)
    try:
        partners = [create_partner(db, f"p{n}") for n in range(2)]
        operator = json.loads(cli("operator", "create", "ops", "--db", db, "--json").stdout)
        partners_file = tmp_path / "partners.json"
        partners_file.write_text(json.dumps(partners))
        upstream = httpx.Client(base_url=server.url, timeout=30)
        app, lost = losing_proxy(upstream, every=5)
        port = free_port()
        proxy = make_server("127.0.0.1", port, app, threaded=True)
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        try:
            report = tmp_path / "report"
            code, summary, output = run_load(
                report, "--host", f"http://127.0.0.1:{port}", "--partners", str(partners_file),
                "--operator-key", operator["operator_key"])
        finally:
            proxy.shutdown()
            proxy.server_close()
            upstream.close()
    finally:
        server.stop()
    assert code == 1, output
    reconciliation = summary["reconciliation"]
    assert reconciliation["ok"] is False
    assert lost, "the proxy lost no payment: the run made too few transfers"
    missing = reconciliation["problems"]["acknowledged_but_missing"]
    assert missing == len(lost)
    shown = {example["payment_id"] for example in
             reconciliation["examples"]["acknowledged_but_missing"]}
    assert shown <= set(lost)
    # The users who polled a lost payment saw it too, and nothing else went wrong.
    reasons = {(r["call"], r["reason"]) for r in summary["failure_reasons"]}
    assert reasons <= {("payments getPayment", "unexpected 404 PAYMENT_NOT_FOUND")}, reasons
    assert "reconciliation: NOT OK" in output


def test_unknown_profile_and_host_without_partners_are_refused_in_one_line(tmp_path):
    unknown = cli("load", "--profile", "nosuch", "--report", str(tmp_path), check=False)
    assert unknown.returncode == 2 and "no traffic profile 'nosuch'" in unknown.stderr
    assert "daily" in unknown.stderr and "Traceback" not in unknown.stderr
    hostonly = cli("load", "--host", "http://127.0.0.1:9", "--report", str(tmp_path),
                   check=False)
    assert hostonly.returncode == 2 and "--partners" in hostonly.stderr
    for flag, value in (("--calls", "-5"), ("--users", "0"), ("--workers", "-1")):
        refused = cli("load", flag, value, "--report", str(tmp_path), check=False)
        assert refused.returncode == 2 and f"{flag} must be at least" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
