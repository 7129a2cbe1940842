"""`verify --receiver` against real receivers on real ports: the reference receiver in examples/
passes; receivers with one planted defect each fail on exactly the check that finds it; an
unreachable receiver is a usage error. And the real sandbox delivers to the reference receiver."""

from __future__ import annotations

import importlib.util
import json
import logging
import threading
from pathlib import Path
from xml.etree import ElementTree

import flask
import jsonschema
import orjson
import pytest
from conftest import bank_rows, cli, create_partner, free_port, partner_client
from receiver import signature_verifies, wait_for
from test_payments_api import pay
from werkzeug.serving import make_server

from sandbox import cli as sandbox_cli
from sandbox import notify
from sandbox.verify import documents
from sandbox.verify import receiver as verify_receiver

pytestmark = pytest.mark.slow

SECRET = "whsec_" + "5e" * 24
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "notification_receiver.py"
# Each title's first word names its check.
CHECKS = ("genuine", "unsigned", "malformed", "wrongly", "tampered", "stale", "replayed", "retry")


def load_example():
    spec = importlib.util.spec_from_file_location("notification_receiver", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


example = load_example()


@pytest.fixture
def serve():
    """serve(app) runs a WSGI app on a real port in a thread; the URL of its hook."""
    running = []

    def start(app: flask.Flask, port: int = 0) -> str:
        server = make_server("127.0.0.1", port, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        running.append((server, thread))
        return f"http://127.0.0.1:{server.port}/hooks/payments"

    yield start
    for server, thread in running:
        server.shutdown()
        server.server_close()
        thread.join()


def defective(secret: str, defect: str) -> flask.Flask:
    """A receiver that does everything right except `defect`."""
    seen: set[str] = set()
    processed: set[str] = set()
    lock = threading.Lock()
    app = flask.Flask("defective")

    @app.post("/hooks/payments")
    def hook():
        body = flask.request.get_data()
        header = flask.request.headers.get("X-Sandbox-Signature")
        if header is None and defect != "accepts unsigned notifications":
            return {"error": "unsigned"}, 401
        if header is not None and defect != "accepts any signature":
            checked = (json.dumps(flask.request.get_json()).encode()
                       if defect == "verifies re-serialised JSON" else body)
            tolerance = 10**9 if defect == "ignores the timestamp" else 300
            try:
                valid = signature_verifies(secret, header, checked, tolerance)
            except (KeyError, ValueError):
                valid = False
            if not valid:
                return {"error": "bad signature"}, 401
        event_id = json.loads(body)["event_id"]
        with lock:
            if header in seen and defect != "accepts replays":
                return {"error": "replayed"}, 409
            seen.add(header)
            if event_id in processed:
                return ({"error": "duplicate"}, 409) if defect == "refuses retries" else {}
            processed.add(event_id)
        return {}

    return app


def failed_checks(output: str) -> set[str]:
    return {line.split()[1] for line in output.splitlines() if line.startswith("  FAIL  ")}


def verify(url: str, *extra: str, secret: str = SECRET) -> list[str]:
    return ["verify", "--receiver", url, "--signing-secret", secret, "--timeout", "5", *extra]


# -- what verify sends ------------------------------------------------------------------------

def test_the_notifications_are_contract_valid_and_only_the_genuine_ones_verify():
    _, contract = documents.load("payments")
    schema = {"$ref": "#/components/schemas/PaymentEvent", "components": contract["components"]}
    scenarios = list(verify_receiver.scenarios(SECRET))
    assert [s.title.split()[0] for s in scenarios] == list(CHECKS)
    genuine, retry = scenarios[0].notification, scenarios[-1].notification
    for scenario in scenarios:
        sent = scenario.notification
        event = orjson.loads(sent.body)
        jsonschema.validate(event, schema, format_checker=jsonschema.FormatChecker())
        assert sent.headers["X-Sandbox-Event-Id"] == event["event_id"]
        assert sent.headers["X-Sandbox-Event-Type"] == event["type"] == "payment.settled"
        signature = sent.headers.get(notify.SIGNATURE_HEADER, "")
        if scenario.acknowledge or scenario.title.startswith("replayed"):
            notify.verify(SECRET, sent.body, signature)
        else:
            with pytest.raises(notify.SignatureError):
                notify.verify(SECRET, sent.body, signature)
    assert scenarios[6].notification == genuine  # the replay is the very same request
    assert retry.body == genuine.body and retry.headers["X-Sandbox-Delivery-Attempt"] == "2"
    assert retry.headers[notify.SIGNATURE_HEADER] != genuine.headers[notify.SIGNATURE_HEADER]
    forged = {orjson.loads(s.notification.body)["event_id"] for s in scenarios[1:6]}
    assert len(forged) == 5 and orjson.loads(genuine.body)["event_id"] not in forged


# -- the reference receiver -------------------------------------------------------------------

def test_the_example_receiver_passes(serve, capsys, tmp_path):
    url = serve(example.create_app(SECRET))
    junit = tmp_path / "receiver.xml"
    assert sandbox_cli.main(verify(url, "--junit-xml", str(junit))) == 0
    out = capsys.readouterr().out
    assert out.count("  ok    ") == len(CHECKS) and "FAIL" not in out
    assert "genuine notification acknowledged (200)" in out
    assert "replayed notification (the genuine request again, same signature) refused (409)" in out
    suite = ElementTree.parse(junit).getroot().find("testsuite")
    assert suite.get("tests") == str(len(CHECKS)) and suite.get("failures") == "0"


def test_the_example_receiver_passes_through_the_installed_command(serve):
    url = serve(example.create_app(SECRET))
    result = cli(*verify(url), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8 checks: all ok" in result.stdout


def test_the_example_receiver_reads_its_secret_from_the_environment(monkeypatch):
    monkeypatch.delenv("SANDBOX_SIGNING_SECRET", raising=False)
    with pytest.raises(RuntimeError, match="SANDBOX_SIGNING_SECRET"):
        example.create_app()
    monkeypatch.setenv("SANDBOX_SIGNING_SECRET", SECRET)
    body = orjson.dumps(verify_receiver.payment_event(verify_receiver.new_event_id()))
    sent = verify_receiver.signed(SECRET, body)
    answer = example.create_app().test_client().post("/hooks/payments", data=sent.body,
                                                     headers=sent.headers)
    assert answer.status_code == 200


# -- receivers with one defect each -----------------------------------------------------------

@pytest.mark.parametrize(("defect", "caught_by"), (
    ("accepts any signature", {"malformed", "wrongly", "tampered", "stale"}),
    ("accepts unsigned notifications", {"unsigned"}),
    ("ignores the timestamp", {"stale"}),
    ("accepts replays", {"replayed"}),
    ("verifies re-serialised JSON", {"genuine", "retry"}),
    ("refuses retries", {"retry"}),
))
def test_a_receiver_with_a_defect_is_reported(serve, capsys, defect, caught_by):
    url = serve(defective(SECRET, defect))
    assert sandbox_cli.main(verify(url)) == 1
    out = capsys.readouterr().out
    assert failed_checks(out) == caught_by
    assert f"{len(CHECKS) - len(caught_by)} ok, {len(caught_by)} failed" in out
    assert out.count("        reproduce: curl -i -X POST ") == len(caught_by)


def test_the_junit_report_names_each_failure(serve, capsys, tmp_path):
    url = serve(defective(SECRET, "accepts any signature"))
    junit = tmp_path / "receiver.xml"
    assert sandbox_cli.main(verify(url, "--junit-xml", str(junit))) == 1
    capsys.readouterr()
    suite = ElementTree.parse(junit).getroot().find("testsuite")
    assert suite.get("tests") == "8" and suite.get("failures") == "4"
    failures = {case.get("name").split()[0]: case.find("failure")
                for case in suite.iter("testcase") if case.find("failure") is not None}
    assert set(failures) == {"malformed", "wrongly", "tampered", "stale"}
    stale = failures["stale"]
    assert "accepted with 200" in stale.get("message") and "300 s" in stale.get("message")
    assert stale.text.startswith("curl -i -X POST " + url)


# -- usage errors -----------------------------------------------------------------------------

def test_an_unreachable_receiver_is_a_usage_error_in_one_line():
    closed = f"http://127.0.0.1:{free_port()}/hooks/payments"
    result = cli(*verify(closed), check=False)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"openbank-sandbox verify: error: cannot reach the receiver "
                                    f"at {closed}")


@pytest.mark.parametrize(("args", "message"), (
    (["verify", "--receiver", "http://127.0.0.1:9/hook"], "--receiver needs --signing-secret"),
    (verify("ftp://127.0.0.1/hook"), "must be an http:// or https:// URL"),
    (verify("not a url"), "must be an http:// or https:// URL"),
))
def test_bad_arguments_are_usage_errors(capsys, args, message):
    assert sandbox_cli.main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


# -- end to end -------------------------------------------------------------------------------

def test_the_sandbox_delivers_a_notification_the_example_receiver_acknowledges(
        tmp_path, start_server, serve, caplog):
    caplog.set_level(logging.INFO, logger="notification_receiver")
    server = start_server(f"sqlite:///{tmp_path / 'sandbox.db'}")
    partner = create_partner(server.db, "acme")
    debtor, creditor = [a["account_id"] for a in bank_rows(server.db, partner["partner_id"])[1]
                        if a["account_class"] == "I"][:2]
    port = free_port()
    with partner_client(server, partner) as client:
        registered = client.put("/payments/v1/callback",
                                json={"url": f"http://127.0.0.1:{port}/hooks/payments"})
        assert registered.status_code == 200, registered.text
        serve(example.create_app(registered.json()["signing_secret"]), port)
        payment = pay(client, debtor, {"account_id": creditor}, "12.34").json()

        def delivered():
            items = client.get("/payments/v1/notifications",
                               params={"payment_id": payment["payment_id"]}).json()["items"]
            return items if items and items[0]["status"] == "delivered" else None

        [event] = wait_for(delivered, what="the notification to be delivered")
    assert [(d["attempt"], d["status_code"]) for d in event["deliveries"]] == [(1, 200)]
    assert f"{event['event_id']} payment.settled: payment {payment['payment_id']}" in caplog.text
