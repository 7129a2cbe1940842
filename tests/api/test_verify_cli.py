"""`openbank-sandbox verify` against small Flask servers, each with one planted defect.

Every server implements the same little contract (a list of items behind a bearer token); the
defect-free one conforms and exits 0, each defective one is reported with the check that
caught it and exits 1. Runs use a fixed seed, so they send the same requests every time.
"""

from __future__ import annotations

import threading
from xml.etree import ElementTree

import flask
import pytest
import yaml
from conftest import cli, free_port
from werkzeug.serving import make_server

from sandbox.cli import main

CONTRACT = {
    "openapi": "3.0.3",
    "info": {"title": "Items", "version": "1.0.0"},
    "security": [{"bearer": []}],
    "paths": {
        "/items": {"get": {
            "operationId": "listItems",
            "summary": "List items",
            "parameters": [{"name": "limit", "in": "query", "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 100}}],
            "responses": {
                "200": {"description": "Items", "content": {"application/json": {"schema": {
                    "type": "array", "items": {"$ref": "#/components/schemas/Item"}}}}},
                "400": {"$ref": "#/components/responses/Problem"},
                "401": {"$ref": "#/components/responses/Problem"},
            },
        }},
        "/items/{item_id}": {"get": {
            "operationId": "getItem",
            "summary": "Get an item",
            "parameters": [{"name": "item_id", "in": "path", "required": True,
                            "schema": {"type": "integer", "minimum": 1}}],
            "responses": {
                "200": {"description": "The item", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Item"}}}},
                "400": {"$ref": "#/components/responses/Problem"},
                "401": {"$ref": "#/components/responses/Problem"},
                "404": {"$ref": "#/components/responses/Problem"},
            },
        }},
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Item": {"type": "object", "additionalProperties": False,
                     "required": ["id", "name", "status"],
                     "properties": {"id": {"type": "integer"}, "name": {"type": "string"},
                                    "status": {"type": "string", "enum": ["active", "closed"]}}},
        },
        "responses": {"Problem": {"description": "A problem", "content": {
            "application/problem+json": {"schema": {
                "type": "object", "required": ["title", "status"],
                "properties": {"title": {"type": "string"}, "status": {"type": "integer"}}}}}}},
    },
}
TOKEN = "t0ken"
ITEMS = [{"id": n, "name": f"item {n}", "status": "active"} for n in (1, 2, 3)]


def items_app(defect: str | None) -> flask.Flask:
    """The contract implemented correctly, but for `defect`."""
    app = flask.Flask(f"items-{defect}")

    def problem(status: int, title: str):
        return flask.Response(flask.json.dumps({"title": title, "status": status}), status,
                              mimetype="application/problem+json")

    def authorised() -> bool:
        return (defect == "ignores authentication"
                or flask.request.headers.get("Authorization") == f"Bearer {TOKEN}")

    @app.get("/items")
    def list_items():
        if not authorised():
            return problem(401, "Unauthorized")
        raw = flask.request.args.get("limit", "20")
        try:
            limit = int(raw)
        except ValueError:
            return problem(400, "limit is not an integer")
        if not 1 <= limit <= 100 and defect != "accepts an out-of-range limit":
            return problem(400, "limit out of range")
        if limit == 100 and defect == "server error on some input":
            return problem(500, "Internal Server Error")
        return flask.jsonify(ITEMS[:max(limit, 0)])

    @app.get("/items/<item_id>")
    def get_item(item_id: str):
        if not authorised():
            return problem(401, "Unauthorized")
        if not item_id.isdigit() or int(item_id) < 1:
            return problem(400, "item_id must be a positive integer")
        item = {"id": int(item_id), "name": f"item {item_id}", "status": "active"}
        if defect == "response misses a required field":
            del item["status"]
        if defect == "value outside an enum":
            item["status"] = "archived"
        return flask.jsonify(item)

    return app


class FlaskServer:
    def __init__(self, app: flask.Flask):
        self.url = f"http://127.0.0.1:{free_port()}"
        self._server = make_server("127.0.0.1", int(self.url.rsplit(":", 1)[1]), app,
                                   threaded=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def contract(tmp_path):
    path = tmp_path / "items.yaml"
    path.write_text(yaml.safe_dump(CONTRACT), encoding="utf-8")
    return path


def verify(contract, url: str, *extra: str) -> list[str]:
    return ["verify", "--contract", str(contract), "--base-url", url,
            "--header", f"Authorization: Bearer {TOKEN}", "--seed", "20261127",
            "--max-examples", "10", *extra]


@pytest.mark.parametrize(("defect", "check"), (
    ("server error on some input", "not_a_server_error"),
    ("response misses a required field", "response_schema_conformance"),
    ("value outside an enum", "response_schema_conformance"),
    ("ignores authentication", "ignored_auth"),
    ("accepts an out-of-range limit", "negative_data_rejection"),
))
def test_each_planted_defect_is_reported_and_exits_1(contract, capsys, defect, check):
    server = FlaskServer(items_app(defect))
    try:
        code = main(verify(contract, server.url))
    finally:
        server.stop()
    out = capsys.readouterr().out
    assert code == 1, out
    assert f"[{check}]" in out, out
    assert "reproduce:" in out and "curl -X GET" in out
    assert "violations by check:" in out and "result: " in out


def test_the_defect_free_server_conforms_and_the_junit_report_says_so(contract, tmp_path,
                                                                      capsys):
    server = FlaskServer(items_app(None))
    report = tmp_path / "verify.xml"
    try:
        code = main(verify(contract, server.url, "--junit-xml", str(report)))
    finally:
        server.stop()
    out = capsys.readouterr().out
    assert code == 0, out
    assert "result: conforms" in out
    suite = ElementTree.parse(report).getroot().find("testsuite")
    names = {case.get("name") for case in suite.iter("testcase")}
    assert names == {"GET /items", "GET /items/{item_id}"}
    assert suite.get("failures") == "0"


def test_a_violation_is_a_junit_failure_with_its_reproduction(contract, tmp_path, capsys):
    server = FlaskServer(items_app("value outside an enum"))
    report = tmp_path / "verify.xml"
    try:
        assert main(verify(contract, server.url, "--junit-xml", str(report))) == 1
    finally:
        server.stop()
    capsys.readouterr()
    failures = {case.get("name"): case.find("failure")
                for case in ElementTree.parse(report).getroot().iter("testcase")}
    failure = failures["GET /items/{item_id}"]
    assert failure is not None and "response_schema_conformance" in failure.get("message")
    assert "curl" in failure.text and "archived" in failure.text
    assert failures["GET /items"] is None


def test_the_same_seed_finds_the_same_violations(contract, capsys):
    server = FlaskServer(items_app("server error on some input"))
    try:
        outputs = []
        for _ in range(2):
            assert main(verify(contract, server.url)) == 1
            out = capsys.readouterr().out
            outputs.append([line for line in out.splitlines() if " requests in " not in line])
    finally:
        server.stop()
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize(("args", "message"), (
    (["--contract", "no-such-contract", "--base-url", "http://127.0.0.1:9"],
     "no such file or contract"),
    (["--contract", "accounts", "--base-url", "http://127.0.0.1:9"], "cannot reach"),
    (["--contract", "accounts", "--base-url", "127.0.0.1:8000"], "not an http(s) URL"),
    (["--contract", "accounts", "--base-url", "http://127.0.0.1:9", "--header", "nocolon"],
     "is not 'Name: value'"),
    (["--contract", "accounts"], "needs --contract and --base-url"),
    (["--contract", "accounts", "--base-url", "http://127.0.0.1:9", "--phases", "warp"],
     "choose from"),
))
def test_usage_errors_exit_2_with_one_line_and_no_traceback(args, message):
    result = cli("verify", *args, check=False)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_a_file_that_is_not_openapi_is_a_usage_error(tmp_path):
    path = tmp_path / "notes.yaml"
    path.write_text("just: notes\n", encoding="utf-8")
    result = cli("verify", "--contract", str(path), "--base-url", "http://127.0.0.1:9",
                 check=False)
    assert result.returncode == 2
    assert "not an OpenAPI 3 document" in result.stderr


def test_progress_goes_to_stderr_operation_by_operation(contract):
    server = FlaskServer(items_app(None))
    try:
        result = cli(*verify(contract, server.url), check=False)
    finally:
        server.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    for phase in ("examples", "coverage", "fuzzing", "stateful"):
        assert f"{phase} phase" in result.stderr
    assert "ok    GET /items/{item_id}" in result.stderr
    assert "result: conforms" in result.stdout
