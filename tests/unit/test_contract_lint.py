"""Specification of `contracts lint` (sandbox.verify.lint): our contracts are clean, and each rule
finds its violation, alone, in a document that differs from a clean one by that violation."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree

import pytest
import yaml

from sandbox.cli import main
from sandbox.verify import documents, lint

SCHEMAS = "#/components/schemas/"
TRANSFER = ("paths", "/accounts/{account_id}/transfers", "post")


def clean() -> dict:
    """A small bank that keeps every rule: an account read and a transfer, both with 4xx
    Problems; Money in the transfer and a balance record; examples on schemas, a parameter and
    a media type; and an operation without input, which needs no 4xx."""
    problem = {"description": "A problem.", "content": {"application/problem+json": {
        "schema": {"$ref": SCHEMAS + "Problem"}}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Bank", "version": "1.0.0"},
        "security": [{"oauth2": ["accounts"]}],
        "paths": {
            "/accounts/{account_id}": {
                "parameters": [{"$ref": "#/components/parameters/AccountId"}],
                "get": {
                    "operationId": "getAccount", "summary": "Get an account",
                    "responses": {
                        "200": {"description": "The account.", "content": {"application/json": {
                            "schema": {"$ref": SCHEMAS + "Account"},
                            "examples": {"opened": {"$ref": "#/components/examples/Account"}}}}},
                        "404": {"$ref": "#/components/responses/Problem"},
                        "4XX": {"$ref": "#/components/responses/Problem"}}},
            },
            "/accounts/{account_id}/transfers": {
                "parameters": [{"$ref": "#/components/parameters/AccountId"}],
                "post": {
                    "operationId": "transfer", "summary": "Move money",
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"$ref": SCHEMAS + "Transfer"},
                        "example": {"amount": {"amount": "1.00", "currency": "CNY"},
                                    "fees": [], "note": None}}}},
                    "responses": {
                        "201": {"description": "Done."},
                        "422": {"description": "Refused.", "content": {"application/problem+json": {
                            "schema": {"allOf": [{"$ref": SCHEMAS + "Problem"},
                                                 {"type": "object"}]}}}},
                        "400": problem},
                },
            },
            "/health": {"get": {"operationId": "health", "summary": "Alive?", "security": [],
                                "responses": {"204": {"description": "Alive."}}}},
        },
        "components": {
            "securitySchemes": {"oauth2": {"type": "oauth2", "flows": {"clientCredentials": {
                "tokenUrl": "/token", "scopes": {"accounts": "Accounts."}}}}},
            "parameters": {"AccountId": {
                "name": "account_id", "in": "path", "required": True, "example": "acc_1",
                "schema": {"type": "string", "pattern": "^acc_[0-9]+$"}}},
            "responses": {"Problem": problem},
            "examples": {"Account": {"value": {
                "account_id": "acc_1", "opened_on": "2026-11-27",
                "balance": {"booked": {"amount": "1.00", "currency": "CNY"}}}}},
            "schemas": {
                "Problem": {"type": "object", "required": ["type", "title", "status", "detail"],
                            "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                                           "status": {"type": "integer"},
                                           "detail": {"type": "string"}}},
                "Money": {"type": "object", "required": ["amount", "currency"],
                          "properties": {"amount": {"type": "string", "example": "1.00"},
                                         "currency": {"type": "string", "enum": ["CNY"]}},
                          "example": {"amount": "1024.50", "currency": "CNY"}},
                "Account": {"type": "object", "properties": {
                    "account_id": {"type": "string"},
                    "opened_on": {"type": "string", "format": "date", "example": "2026-11-27"},
                    "balance": {"type": "object", "properties": {
                        "booked": {"$ref": SCHEMAS + "Money"}}}}},
                "Transfer": {"type": "object", "required": ["amount"], "properties": {
                    "amount": {"$ref": SCHEMAS + "Money"},
                    "fees": {"type": "array", "items": {"$ref": SCHEMAS + "Money"}},
                    "note": {"type": "string", "nullable": True, "example": None}}},
            },
        },
    }


def at(document: dict, *keys: str) -> dict:
    for key in keys:
        document = document[key]
    return document


def schema(document: dict, name: str) -> dict:
    return document["components"]["schemas"][name]


def without_operation_id(d: dict) -> None:
    del at(d, *TRANSFER)["operationId"]


def duplicate_operation_id(d: dict) -> None:
    at(d, *TRANSFER)["operationId"] = "getAccount"


def without_summary(d: dict) -> None:
    at(d, *TRANSFER)["summary"] = " "


def without_4xx(d: dict) -> None:
    responses = at(d, *TRANSFER, "responses")
    del responses["400"], responses["422"]


def problem_as_json(d: dict) -> None:
    content = at(d, *TRANSFER, "responses", "422", "content")
    content["application/json"] = content.pop("application/problem+json")


def problem_without_rfc7807(d: dict) -> None:
    at(d, *TRANSFER, "responses", "422", "content", "application/problem+json")["schema"] = {
        "type": "object", "properties": {"error": {"type": "string"}}}


def problem_without_body(d: dict) -> None:
    del at(d, *TRANSFER, "responses", "422")["content"]


def schema_example(d: dict) -> None:
    schema(d, "Money")["example"] = {"amount": 1024.5, "currency": "CNY"}


def property_example_format(d: dict) -> None:
    schema(d, "Account")["properties"]["opened_on"]["example"] = "2026-13-01"


def parameter_example(d: dict) -> None:
    d["components"]["parameters"]["AccountId"]["example"] = "cus_1"


def media_type_example(d: dict) -> None:
    at(d, *TRANSFER, "requestBody", "content", "application/json")["example"]["note"] = 7


def referenced_example(d: dict) -> None:
    d["components"]["examples"]["Account"]["value"]["balance"]["booked"] = {"amount": "1.00"}


def money_number(d: dict) -> None:
    schema(d, "Transfer")["properties"]["fee"] = {"type": "number"}


def money_string_ref(d: dict) -> None:
    d["components"]["schemas"]["Decimal"] = {"type": "string", "pattern": r"^[0-9]+\.[0-9]{2}$"}
    schema(d, "Account")["properties"]["daily_limit"] = {"$ref": SCHEMAS + "Decimal"}


def money_format(d: dict) -> None:
    schema(d, "Account")["properties"]["overdraft"] = {"type": "string", "format": "money"}


def money_array(d: dict) -> None:
    schema(d, "Transfer")["properties"]["fees"]["items"] = {"type": "integer"}


def invalid_structure(d: dict) -> None:
    at(d, "paths", "/health", "get")["responses"] = "nope"


def dangling_ref(d: dict) -> None:
    schema(d, "Transfer")["properties"]["amount"] = {"$ref": SCHEMAS + "Cash"}


def undeclared_path_parameter(d: dict) -> None:
    d["paths"]["/health/{probe}"] = d["paths"].pop("/health")


VIOLATIONS: list[tuple[str, Callable[[dict], None]]] = [
    ("operation-id", without_operation_id),
    ("operation-id-duplicate", duplicate_operation_id),
    ("operation-summary", without_summary),
    ("error-responses", without_4xx),
    ("problem-schema", problem_as_json),
    ("problem-schema", problem_without_rfc7807),
    ("problem-schema", problem_without_body),
    ("example-invalid", schema_example),
    ("example-invalid", property_example_format),
    ("example-invalid", parameter_example),
    ("example-invalid", media_type_example),
    ("example-invalid", referenced_example),
    ("money-schema", money_number),
    ("money-schema", money_string_ref),
    ("money-schema", money_format),
    ("money-schema", money_array),
    ("openapi-schema", invalid_structure),
    ("openapi-schema", dangling_ref),
    ("openapi-schema", undeclared_path_parameter),
]


def violating(mutate: Callable[[dict], None]) -> dict:
    document = clean()
    mutate(document)
    return document


def test_our_contracts_are_clean():
    results = lint.lint_paths([str(documents.CONTRACTS_DIR)])
    assert len(results) >= 6 and not any(results.values()), results


def test_the_command_lints_our_contracts_by_default(capsys):
    assert main(["contracts", "lint"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1].endswith(" documents clean")
    assert "components.yaml: no operations (a components library)" in out


def test_a_document_keeping_every_rule_is_clean():
    assert lint.lint_document(clean()) == []


@pytest.mark.parametrize(("rule", "mutate"), VIOLATIONS, ids=lambda v: getattr(v, "__name__", v))
def test_each_violation_is_reported_alone_under_its_rule(rule, mutate):
    findings = lint.lint_document(violating(mutate))
    assert findings and {f.rule for f in findings} == {rule}, findings


def test_a_violation_is_located():
    [missing] = lint.lint_document(violating(without_operation_id))
    assert missing.where == "POST /accounts/{account_id}/transfers"
    [problem] = lint.lint_document(violating(problem_as_json))
    assert problem.where == "POST /accounts/{account_id}/transfers 422"
    [example] = lint.lint_document(violating(property_example_format))
    assert example.where == SCHEMAS + "Account/properties/opened_on/example"
    assert "'date'" in example.message
    [money] = lint.lint_document(violating(money_number))
    assert money.where == SCHEMAS + "Transfer/properties/fee"
    [structure] = lint.lint_document(violating(invalid_structure))
    assert structure.where == "#/paths/~1health/get/responses"


def test_every_violation_is_reported_not_only_the_first():
    document = violating(without_operation_id)
    for mutate in (without_summary, money_number, schema_example, parameter_example):
        mutate(document)
    rules = [f.rule for f in lint.lint_document(document)]
    assert sorted(rules) == ["example-invalid", "example-invalid", "money-schema",
                             "operation-id", "operation-summary"]


def test_openapi_errors_are_all_reported_up_to_a_cap():
    document = clean()
    for i in range(60):
        document["paths"][f"/broken/{i}"] = {"get": {"responses": "nope"}}
    findings = lint.lint_document(document)
    assert len(findings) == lint.MAX_SCHEMA_ERRORS + 1
    assert {f.rule for f in findings} == {"openapi-schema"}
    assert "more errors not shown" in findings[-1].message


def test_an_exemption_is_written_in_the_contract():
    document = violating(money_number)
    schema(document, "Transfer")["properties"]["fee"]["x-lint-ignore"] = ["money-schema"]
    assert lint.lint_document(document) == []
    document = violating(schema_example)
    schema(document, "Money")["x-lint-ignore"] = ["example-invalid"]
    assert lint.lint_document(document) == []


def test_an_unsupported_version_is_an_openapi_schema_finding():
    document = {**clean(), "openapi": "3.9.0"}
    assert [f.rule for f in lint.lint_document(document)] == ["openapi-schema"]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {"clean": tmp_path / "clean.yaml", "money": tmp_path / "money.json",
             "library": tmp_path / "library.yml"}
    paths["clean"].write_text(yaml.safe_dump(clean(), allow_unicode=True))
    paths["money"].write_text(json.dumps(violating(money_number)))
    paths["library"].write_text(yaml.safe_dump({
        "openapi": "3.0.3", "info": {"title": "Shared", "version": "1"}, "paths": {},
        "components": {"schemas": {"Money": schema(clean(), "Money")}}}))
    (tmp_path / "notes.txt").write_text("not a document")
    return paths


def test_a_directory_stands_for_its_documents(files, tmp_path):
    results = lint.lint_paths([str(tmp_path)])
    assert set(results) == {str(path) for path in files.values()}
    assert [f.rule for f in results[str(files["money"])]] == ["money-schema"]
    assert results[str(files["clean"])] == results[str(files["library"])] == []


def test_text_has_one_line_per_finding_and_a_summary(files):
    out = io.StringIO()
    assert lint.command([str(files["clean"]), str(files["money"]), str(files["library"])],
                        out=out) == 1
    lines = out.getvalue().splitlines()
    assert lines[0] == (f"{files['money']}: {SCHEMAS}Transfer/properties/fee: [money-schema] "
                        "'fee' looks like money but is not a Money object (amount and currency); "
                        "use the Money schema")
    assert lines[1].startswith(f"{files['library']}: no operations")
    assert lines[-1] == "1 finding in 1 of 3 documents"


def test_json_lists_findings_per_document(files):
    out = io.StringIO()
    lint.command([str(files["clean"]), str(files["money"])], fmt="json", out=out)
    report = json.loads(out.getvalue())
    assert report["documents"][str(files["clean"])] == []
    [finding] = report["documents"][str(files["money"])]
    assert finding["rule"] == "money-schema" and finding["where"].endswith("/fee")
    assert report["summary"] == {"documents": 2, "clean": 1, "findings": 1,
                                 "rules": {"money-schema": 1}, "libraries": []}


def test_junit_has_a_test_case_per_document_and_a_failure_per_finding(files):
    out = io.StringIO()
    lint.command([str(files["clean"]), str(files["money"])], fmt="junit", out=out)
    cases = {case.get("name"): case for case in ElementTree.fromstring(
        out.getvalue().encode()).iter("testcase")}
    assert set(cases) == {str(files["clean"]), str(files["money"])}
    assert cases[str(files["clean"])].find("failure") is None
    [failure] = cases[str(files["money"])].findall("failure")
    assert failure.get("message").startswith("[money-schema] ")


def test_exit_codes(files, tmp_path, capsys):
    assert main(["contracts", "lint", str(files["clean"])]) == 0
    assert main(["contracts", "lint", str(files["clean"]), str(files["money"])]) == 1
    capsys.readouterr()
    (tmp_path / "config.yaml").write_text("retries: 3\n")
    (tmp_path / "broken.yaml").write_text("openapi: [3.0\n")
    (tmp_path / "empty").mkdir()
    for unusable in ("missing.yaml", "config.yaml", "broken.yaml", "empty"):
        assert main(["contracts", "lint", str(tmp_path / unusable)]) == 2, unusable
        err = capsys.readouterr().err
        assert err.startswith("openbank-sandbox contracts lint: error: "), err
        assert len(err.splitlines()) == 1 and "Traceback" not in err
