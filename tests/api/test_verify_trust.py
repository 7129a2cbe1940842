"""`openbank-sandbox verify` does not go green on a run that tested nothing, and does not change
the server it tests unless asked to.

The small items server of test_verify_cli, grown a write (POST /items) and a delete
(DELETE /items/{item_id}) that record what reached them. Runs use one phase and few examples,
so each takes a second or two.
"""

from __future__ import annotations

import copy
import time
from xml.etree import ElementTree

import flask
import pytest
import yaml
from conftest import cli
from test_verify_cli import CONTRACT, TOKEN, FlaskServer, items_app

pytestmark = pytest.mark.slow

SEED = "20261127"
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


def writable_contract() -> dict:
    contract = copy.deepcopy(CONTRACT)
    problem = {"$ref": "#/components/responses/Problem"}
    contract["paths"]["/items"]["post"] = {
        "operationId": "createItem", "summary": "Create an item",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["name"],
            "properties": {"name": {"type": "string", "maxLength": 20}}}}}},
        "responses": {"201": {"description": "Created", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Item"}}}},
            "400": problem, "401": problem}}
    contract["paths"]["/items/{item_id}"]["delete"] = {
        "operationId": "deleteItem", "summary": "Delete an item",
        "parameters": [{"name": "item_id", "in": "path", "required": True,
                        "schema": {"type": "integer", "minimum": 1}}],
        "responses": {"204": {"description": "Deleted"}, "400": problem, "401": problem,
                      "404": problem}}
    return contract


def writable_app(seen: list[str], *, slow_s: float = 0.0,
                 refuses_item_reads: bool = False) -> flask.Flask:
    """The defect-free items server, plus the write and the delete; `seen` gets the method and
    path of every request that reaches it."""
    app = items_app(None)

    @app.before_request
    def note():
        seen.append(f"{flask.request.method} {flask.request.path}")
        if slow_s:
            time.sleep(slow_s)
        if refuses_item_reads and flask.request.path.startswith("/items/"):
            return flask.Response('{"title": "Unauthorized", "status": 401}', 401,
                                  mimetype="application/problem+json")
        return None

    def refused():
        return (flask.request.headers.get("Authorization") != f"Bearer {TOKEN}"
                and flask.Response('{"title": "Unauthorized", "status": 401}', 401,
                                   mimetype="application/problem+json"))

    @app.post("/items")
    def create_item():
        body = flask.request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) \
                or len(body["name"]) > 20 or set(body) - {"name"}:
            return refused() or flask.Response('{"title": "Bad", "status": 400}', 400,
                                               mimetype="application/problem+json")
        return refused() or (flask.jsonify({"id": 4, "name": body["name"],
                                            "status": "active"}), 201)

    @app.delete("/items/<item_id>")
    def delete_item(item_id: str):
        if not item_id.isdigit() or int(item_id) < 1:
            return refused() or flask.Response('{"title": "Bad", "status": 400}', 400,
                                               mimetype="application/problem+json")
        return refused() or flask.Response(status=204)

    return app


@pytest.fixture
def contract(tmp_path):
    path = tmp_path / "items.yaml"
    path.write_text(yaml.safe_dump(writable_contract()), encoding="utf-8")
    return path


@pytest.fixture
def serve():
    servers = []

    def start(**kwargs) -> tuple[str, list[str]]:
        seen: list[str] = []
        servers.append(FlaskServer(writable_app(seen, **kwargs)))
        return servers[-1].url, seen

    yield start
    for server in servers:
        server.stop()


def verify(contract, url: str, *extra: str, phases: str = "coverage"):
    return cli("verify", "--contract", str(contract), "--base-url", url, "--seed", SEED,
               "--max-examples", "5", "--phases", phases, *extra, check=False)


TOKEN_HEADER = ("--header", f"Authorization: Bearer {TOKEN}")


@pytest.mark.parametrize("credentials", (
    (),
    ("--header", "Authorization: Bearer"),
    ("--header", "Authorization: Bearer not-the-token"),
), ids=("no token", "empty bearer", "garbage token"))
def test_a_run_where_every_secured_operation_refuses_the_credentials_is_an_error(
        contract, serve, credentials):
    url, _ = serve()
    result = verify(contract, url, *credentials)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "result: conforms" not in result.stdout
    error = result.stderr.strip().splitlines()[-1]
    assert "refused the credentials" in error and "--header 'Authorization: Bearer" in error
    assert "Traceback" not in result.stderr


def test_expect_refusals_says_the_refusals_are_intended(contract, serve):
    url, _ = serve()
    result = verify(contract, url, "--expect-refusals")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "result: conforms" in result.stdout
    assert "not exercised: credentials refused" in result.stdout


def test_operations_that_refuse_the_credentials_are_listed_as_not_exercised(
        contract, serve, tmp_path):
    url, _ = serve(refuses_item_reads=True)
    report = tmp_path / "verify.xml"
    result = verify(contract, url, *TOKEN_HEADER, "--junit-xml", str(report))
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(line for line in result.stdout.splitlines()
                if line.startswith("not exercised: credentials refused"))
    assert "GET /items/{item_id}" in line and "GET /items," not in line
    cases = {case.get("name"): case for case in ElementTree.parse(report).iter("testcase")}
    assert cases["GET /items/{item_id}"].find("skipped") is not None
    assert cases["GET /items"].find("skipped") is None


def test_unsafe_operations_are_not_run_unless_asked_and_the_summary_says_so(
        contract, serve, tmp_path):
    url, seen = serve()
    report = tmp_path / "verify.xml"
    result = verify(contract, url, *TOKEN_HEADER, "--junit-xml", str(report),
                    phases="coverage,fuzzing")
    assert result.returncode == 0, result.stdout + result.stderr
    assert seen and not [r for r in seen if r.split()[0] in UNSAFE]
    assert ("skipped: 2 unsafe operations (use --unsafe to include them): "
            "DELETE /items/{item_id}, POST /items") in result.stdout
    cases = {case.get("name"): case for case in ElementTree.parse(report).iter("testcase")}
    assert cases["POST /items"].find("skipped") is not None
    assert cases["GET /items"].find("skipped") is None


def test_unsafe_runs_the_writes_too(contract, serve):
    url, seen = serve()
    result = verify(contract, url, *TOKEN_HEADER, "--unsafe", phases="coverage,fuzzing")
    assert result.returncode == 0, result.stdout + result.stderr
    assert {"POST /items", "DELETE /items/1"} <= set(seen)
    assert "unsafe operations" not in result.stdout


def test_help_explains_unsafe_and_expected_refusals():
    result = cli("verify", "--help")
    assert "--unsafe" in result.stdout and "--expect-refusals" in result.stdout


def test_the_junit_report_folder_is_created(contract, serve, tmp_path):
    url, _ = serve()
    report = tmp_path / "reports" / "ci" / "verify.xml"
    result = verify(contract, url, *TOKEN_HEADER, "--junit-xml", str(report))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert ElementTree.parse(report).getroot().tag == "testsuites"


@pytest.mark.parametrize("value", ("0", "-3"))
def test_max_examples_must_be_at_least_one(contract, serve, value):
    url, _ = serve()
    result = cli("verify", "--contract", str(contract), "--base-url", url,
                 "--max-examples", value, *TOKEN_HEADER, check=False)
    assert result.returncode == 2, result.stderr
    assert "--max-examples" in result.stderr and "at least 1" in result.stderr
    assert "Traceback" not in result.stderr


def test_progress_shows_only_the_phases_that_run(contract, serve):
    url, _ = serve()
    result = verify(contract, url, *TOKEN_HEADER, phases="fuzzing")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "fuzzing phase" in result.stderr
    for phase in ("examples", "coverage", "stateful"):
        assert f"{phase} phase" not in result.stderr


def test_junit_cases_carry_how_long_each_operation_took(contract, serve, tmp_path):
    url, _ = serve(slow_s=0.02)
    report = tmp_path / "verify.xml"
    result = verify(contract, url, *TOKEN_HEADER, "--junit-xml", str(report))
    assert result.returncode == 0, result.stdout + result.stderr
    suite = ElementTree.parse(report).getroot().find("testsuite")
    times = {case.get("name"): float(case.get("time")) for case in suite.iter("testcase")}
    assert times["GET /items"] >= 0.02 and times["GET /items/{item_id}"] >= 0.02
    assert float(suite.get("time")) == pytest.approx(sum(times.values()), abs=0.01)
