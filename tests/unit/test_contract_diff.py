"""Specification of `contracts diff` (sandbox.verify.diff): which changes from OLD to NEW break a
client written against OLD. A request breaks when NEW accepts less; a response (and a callback's
request) breaks when NEW may send more."""

from __future__ import annotations

import copy
import io
import json
import re
from collections.abc import Callable
from xml.etree import ElementTree

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.cli import main
from sandbox.verify import diff, documents
from sandbox.verify.diff import Change, compare, render

SCHEMAS = "#/components/schemas/"


def json_body(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def base() -> dict:
    """A small bank: an account (a recursive schema), a page of transactions with a bounded
    `limit`, and a transfer whose Money is both sent (the order) and read (the payment, in the
    response and in the `settled` callback the server sends)."""
    account_id = {"name": "account_id", "in": "path", "required": True,
                  "schema": {"type": "string"}}
    money = {"type": "object", "additionalProperties": False, "required": ["amount", "currency"],
             "properties": {"amount": {"type": "string", "pattern": r"^[0-9]+\.[0-9]{2}$"},
                            "currency": {"type": "string", "enum": ["CNY", "USD"]}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Bank", "version": "1.0.0"},
        "security": [{"oauth2": ["payments"]}],
        "paths": {
            "/accounts/{account_id}": {
                "parameters": [account_id],
                "get": {"operationId": "getAccount", "security": [{"oauth2": ["accounts"]}],
                        "responses": {
                            "200": {"description": "The account.",
                                    **json_body({"$ref": SCHEMAS + "Account"})},
                            "404": {"description": "No such account."}}},
            },
            "/accounts/{account_id}/transactions": {
                "get": {
                    "operationId": "listTransactions", "security": [{"oauth2": ["accounts"]}],
                    "parameters": [account_id, {"name": "limit", "in": "query", "schema": {
                        "type": "integer", "minimum": 1, "maximum": 100}}],
                    "responses": {"200": {"description": "A page.", **json_body(
                        {"type": "array", "items": {"$ref": SCHEMAS + "Transaction"}})}}},
            },
            "/transfers": {
                "post": {
                    "operationId": "createTransfer",
                    "requestBody": {"required": True,
                                    **json_body({"$ref": SCHEMAS + "TransferOrder"})},
                    "responses": {"201": {
                        "description": "The payment.",
                        "headers": {"Location": {"schema": {"type": "string"}}},
                        **json_body({"$ref": SCHEMAS + "Payment"})}},
                    "callbacks": {"settled": {"{$request.body#/callback_url}": {"post": {
                        "requestBody": json_body({"$ref": SCHEMAS + "Payment"}),
                        "responses": {"200": {"description": "Acknowledged."}}}}}},
                },
            },
        },
        "components": {
            "securitySchemes": {"oauth2": {"type": "oauth2", "flows": {"clientCredentials": {
                "tokenUrl": "/oauth2/token",
                "scopes": {"accounts": "Read accounts.", "payments": "Make transfers."}}}}},
            "schemas": {
                "Money": money,
                "TransferOrder": {
                    "type": "object", "required": ["debtor_account_id", "creditor", "amount"],
                    "properties": {
                        "debtor_account_id": {"type": "string"},
                        "creditor": {"oneOf": [{"$ref": SCHEMAS + "InternalCreditor"},
                                               {"$ref": SCHEMAS + "ExternalCreditor"}]},
                        "amount": {"$ref": SCHEMAS + "Money"},
                        "note": {"type": "string", "maxLength": 140}}},
                "InternalCreditor": {"type": "object", "required": ["account_id"],
                                     "properties": {"account_id": {"type": "string"}}},
                "ExternalCreditor": {"type": "object", "required": ["account_number", "name"],
                                     "properties": {"account_number": {"type": "string"},
                                                    "name": {"type": "string"}}},
                "Payment": {
                    "type": "object", "required": ["payment_id", "status", "amount"],
                    "properties": {
                        "payment_id": {"type": "string"},
                        "status": {"type": "string", "enum": ["pending", "settled"]},
                        "amount": {"$ref": SCHEMAS + "Money"},
                        "note": {"type": "string"}}},
                "Account": {
                    "type": "object", "required": ["account_id", "status"],
                    "properties": {
                        "account_id": {"type": "string"},
                        "status": {"type": "string", "enum": ["active", "frozen"]},
                        "parent": {"$ref": SCHEMAS + "Account"}}},
                "Transaction": {
                    "type": "object", "required": ["amount"],
                    "properties": {"amount": {"type": "number"},
                                   "booked_at": {"type": "string", "format": "date-time"}}},
            },
        },
    }


def schema(doc: dict, name: str) -> dict:
    return doc["components"]["schemas"][name]


def prop(doc: dict, name: str, prop_name: str) -> dict:
    return schema(doc, name)["properties"][prop_name]


def op(doc: dict, path: str, method: str = "get") -> dict:
    return doc["paths"][path][method]


def limit(doc: dict) -> dict:
    return op(doc, "/accounts/{account_id}/transactions")["parameters"][1]


def rename_path_parameter(doc: dict) -> None:
    item = doc["paths"].pop("/accounts/{account_id}")
    item["parameters"] = [{**item["parameters"][0], "name": "id"}]
    doc["paths"]["/accounts/{id}"] = item


def add_required(doc: dict, name: str, prop_name: str) -> None:
    schema(doc, name)["properties"][prop_name] = {"type": "string"}
    schema(doc, name)["required"].append(prop_name)


def payment_as_all_of(doc: dict) -> None:
    payment = schema(doc, "Payment")
    status = payment["properties"].pop("status")
    payment["required"].remove("status")
    doc["components"]["schemas"]["Payment"] = {"allOf": [
        {"$ref": SCHEMAS + "PaymentBase"},
        {"type": "object", "required": ["status"], "properties": {"status": status}}]}
    doc["components"]["schemas"]["PaymentBase"] = payment


def add_form_content(doc: dict) -> None:
    content = op(doc, "/transfers", "post")["requestBody"]["content"]
    content["application/x-www-form-urlencoded"] = content["application/json"]


B, N = True, False  # breaking, non-breaking
Mutation = Callable[[dict], object]


def same(doc: dict) -> None:
    pass


# (id, change to OLD, change to NEW, every (breaking, kind) reported)
CASES: list[tuple[str, Mutation, Mutation, list[tuple[bool, str]]]] = [
    ("no change", same, same, []),
    ("descriptions and examples are not compared", same,
     lambda d: prop(d, "Payment", "note").update(description="A note.", example="rent"), []),
    ("path parameter renamed", same, rename_path_parameter, []),
    ("schema split into allOf parts", same, payment_as_all_of, []),
    ("header names are case-insensitive",
     lambda d: op(d, "/transfers", "post").update(parameters=[
         {"name": "X-Request-ID", "in": "header", "schema": {"type": "string"}}]),
     lambda d: op(d, "/transfers", "post").update(parameters=[
         {"name": "x-request-id", "in": "header", "schema": {"type": "string"}}]), []),
    ("operation removed", same, lambda d: d["paths"].pop("/transfers"), [(B, "operation-removed")]),
    ("operation added", same,
     lambda d: d["paths"].update({"/banks": {"get": {"responses": {"200": {"description": "."}}}}}),
     [(N, "operation-added")]),
    ("operationId changed", same,
     lambda d: op(d, "/transfers", "post").update(operationId="makeTransfer"),
     [(N, "operation-id-changed")]),
    ("response removed", same,
     lambda d: op(d, "/accounts/{account_id}")["responses"].pop("404"),
     [(B, "response-removed")]),
    ("response added", same,
     lambda d: op(d, "/accounts/{account_id}")["responses"].update(
         {"500": {"description": "Failed."}}),
     [(N, "response-added")]),
    ("response header removed", same,
     lambda d: op(d, "/transfers", "post")["responses"]["201"].pop("headers"),
     [(B, "header-removed")]),
    ("required query parameter added", same,
     lambda d: op(d, "/accounts/{account_id}/transactions")["parameters"].append(
         {"name": "from", "in": "query", "required": True, "schema": {"type": "string"}}),
     [(B, "parameter-required-added")]),
    ("optional query parameter added", same,
     lambda d: op(d, "/accounts/{account_id}/transactions")["parameters"].append(
         {"name": "from", "in": "query", "schema": {"type": "string"}}),
     [(N, "parameter-added")]),
    ("query parameter made required", same, lambda d: limit(d).update(required=True),
     [(B, "parameter-made-required")]),
    ("query parameter removed", same,
     lambda d: op(d, "/accounts/{account_id}/transactions")["parameters"].pop(1),
     [(B, "parameter-removed")]),
    ("request bound tightened", same, lambda d: limit(d)["schema"].update(maximum=50),
     [(B, "bound-tightened")]),
    ("request bound loosened", same, lambda d: limit(d)["schema"].update(maximum=500),
     [(N, "bound-loosened")]),
    ("request bound removed", same, lambda d: limit(d)["schema"].pop("minimum"),
     [(N, "bound-loosened")]),
    ("request exclusive minimum (OpenAPI 3.0)", same,
     lambda d: limit(d)["schema"].update(exclusiveMinimum=True), [(B, "bound-tightened")]),
    ("request multipleOf neither a multiple nor a divisor", lambda d: limit(d)["schema"].update(
        multipleOf=2), lambda d: limit(d)["schema"].update(multipleOf=3), [(B, "bound-changed")]),
    ("request maxLength tightened", same,
     lambda d: prop(d, "TransferOrder", "note").update(maxLength=100), [(B, "bound-tightened")]),
    ("request type widened: integer to number", same,
     lambda d: limit(d)["schema"].update(type="number"), [(N, "type-widened")]),
    ("request type narrowed: number to integer",
     lambda d: limit(d)["schema"].update(type="number"), same, [(B, "type-narrowed")]),
    ("response type narrowed: number to integer", same,
     lambda d: prop(d, "Transaction", "amount").update(type="integer"), [(N, "type-narrowed")]),
    ("response made nullable", same,
     lambda d: prop(d, "Payment", "note").update(nullable=True),
     [(B, "type-widened"), (B, "type-widened")]),  # the response and the callback
    ("response format removed", same,
     lambda d: prop(d, "Transaction", "booked_at").pop("format"), [(B, "type-widened")]),
    ("string to integer in request and response", same,
     lambda d: prop(d, "Money", "amount").update(type="integer"),
     [(B, "type-changed")] * 3),
    ("required request property added", same,
     lambda d: add_required(d, "TransferOrder", "purpose"),
     [(B, "property-required-added")]),
    ("optional request property added", same,
     lambda d: schema(d, "TransferOrder")["properties"].update(reference={"type": "string"}),
     [(N, "property-added")]),
    ("request property made optional", same,
     lambda d: schema(d, "TransferOrder")["required"].remove("debtor_account_id"),
     [(N, "property-made-optional")]),
    ("response property made optional", same,
     lambda d: schema(d, "Payment")["required"].remove("status"),
     [(B, "property-made-optional"), (B, "property-made-optional")]),
    ("response property removed", same,
     lambda d: schema(d, "Payment")["properties"].pop("note"),
     [(B, "property-removed"), (B, "property-removed")]),
    ("response property added", same,
     lambda d: schema(d, "Payment")["properties"].update(settled_at={"type": "string"}),
     [(N, "property-added"), (N, "property-added")]),
    ("enum value added: fine in the order, breaking in the payment", same,
     lambda d: prop(d, "Money", "currency")["enum"].append("EUR"),
     [(N, "enum-widened"), (B, "enum-widened"), (B, "enum-widened")]),
    ("enum value removed: breaking in the order, fine in the payment", same,
     lambda d: prop(d, "Money", "currency")["enum"].remove("USD"),
     [(B, "enum-narrowed"), (N, "enum-narrowed"), (N, "enum-narrowed")]),
    ("response enum value added, recursive schema", same,
     lambda d: prop(d, "Account", "status")["enum"].append("closed"), [(B, "enum-widened")]),
    ("request pattern added", same,
     lambda d: prop(d, "TransferOrder", "debtor_account_id").update(pattern="^acc_"),
     [(B, "pattern-added")]),
    ("pattern changed in request and response", same,
     lambda d: prop(d, "Money", "amount").update(pattern=r"^[0-9]+(\.[0-9]{2})?$"),
     [(B, "pattern-changed")] * 3),
    ("request closed to unlisted properties", same,
     lambda d: schema(d, "TransferOrder").update(additionalProperties=False),
     [(B, "additional-properties-forbidden")]),
    ("money opened to unlisted properties", same,
     lambda d: schema(d, "Money").pop("additionalProperties"),
     [(N, "additional-properties-allowed")] * 3),
    ("request oneOf alternative removed", same,
     lambda d: prop(d, "TransferOrder", "creditor")["oneOf"].pop(),
     [(B, "variant-removed")]),
    ("request oneOf alternative added", same,
     lambda d: prop(d, "TransferOrder", "creditor")["oneOf"].append({"type": "string"}),
     [(N, "variant-added")]),
    ("required property added to a oneOf alternative", same,
     lambda d: add_required(d, "InternalCreditor", "nickname"),
     [(B, "property-required-added")]),
    ("request content type added", same, add_form_content, [(N, "content-type-added")]),
    ("request content type removed", add_form_content, same, [(B, "content-type-removed")]),
    ("request body made optional", same,
     lambda d: op(d, "/transfers", "post")["requestBody"].update(required=False),
     [(N, "request-body-made-optional")]),
    ("callback body removed", same,
     lambda d: op(d, "/transfers", "post")["callbacks"]["settled"][
         "{$request.body#/callback_url}"]["post"].pop("requestBody"),
     [(B, "request-body-removed")]),
    ("callback removed", same, lambda d: op(d, "/transfers", "post").pop("callbacks"),
     [(B, "operation-removed")]),
    ("scope added to an operation", same,
     lambda d: op(d, "/transfers", "post").update(security=[{"oauth2": ["payments", "accounts"]}]),
     [(B, "security-changed")]),
    ("operation made public", same,
     lambda d: op(d, "/accounts/{account_id}").update(security=[]), [(N, "security-relaxed")]),
    ("another scope accepted instead", same,
     lambda d: op(d, "/accounts/{account_id}")["security"].append({"oauth2": ["payments"]}),
     [(N, "security-relaxed")]),
    ("document security changed", same, lambda d: d.update(security=[{"oauth2": ["accounts"]}]),
     [(B, "security-changed")]),  # only /transfers uses the document's
    ("token URL changed", same,
     lambda d: d["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"].update(
         tokenUrl="/oauth/token"),
     [(B, "security-changed")]),
]


@pytest.mark.parametrize(("old_change", "new_change", "expected"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_each_change_is_classified(old_change, new_change, expected):
    old, new = base(), base()
    old_change(old)
    new_change(new)
    changes = compare(old, new)
    assert sorted((c.breaking, c.kind) for c in changes) == sorted(expected), changes


def test_the_same_change_is_reported_where_each_client_meets_it():
    new = base()
    prop(new, "Money", "currency")["enum"].append("EUR")
    changes = {(c.breaking, c.where) for c in compare(base(), new)}
    assert changes == {
        (False, "POST /transfers request body .amount.currency"),
        (True, "POST /transfers response 201 .amount.currency"),
        (True, "POST /transfers callback settled POST {$request.body#/callback_url} "
               "request body .amount.currency"),
    }


def test_a_message_says_why_a_change_breaks():
    new = base()
    prop(new, "Payment", "status")["enum"].append("failed")
    change = compare(base(), new)[0]
    assert change == Change(True, "enum-widened", "POST /transfers response 201 .status",
                            'new value "failed": clients whose switch over the values has no '
                            "default case fail on a new one")


def test_the_module_documents_every_kind_as_classified():
    table = re.findall(r"^([a-z-]+)\s+(breaking|-)\s+(breaking|-)$", diff.__doc__, re.M)
    assert {kind: (request == "breaking", response == "breaking")
            for kind, request, response in table} == {
        kind: (request is not None, response is not None)
        for kind, (request, response) in diff.KINDS.items()}


def contract(name: str) -> dict:
    """One of the sandbox's contracts, bundled (by path: `sandbox` is also a directory here)."""
    return documents.load(str(documents.CONTRACTS_DIR / f"{name}.yaml"))[1]


@pytest.mark.parametrize("name", ["accounts", "payments", "consents", "platform", "sandbox"])
def test_a_contract_has_no_changes_from_itself(name):
    assert compare(contract(name), contract(name)) == []


def test_changes_to_the_payments_contract():
    old, new = contract("payments"), contract("payments")
    del new["paths"]["/banks"]["get"]
    order = new["components"]["schemas"]["TransferOrder"]
    order["properties"]["purpose"] = {"type": "string"}
    order["required"].append("purpose")
    assert {(c.breaking, c.kind, c.where) for c in compare(old, new)} == {
        (True, "operation-removed", "GET /banks"),
        (True, "property-required-added", "POST /transfers request body .purpose"),
    }


def breaking_and_not() -> list[Change]:
    new = base()
    prop(new, "Money", "currency")["enum"].append("EUR")
    return compare(base(), new)


def test_text_lists_breaking_changes_first_and_ends_with_a_summary():
    text = render(breaking_and_not(), "text", "v1.yaml", "v2.yaml")
    lines = text.splitlines()
    assert lines[0] == "Breaking changes:"
    assert lines[1].split()[:2] == ["BREAKING", "enum-widened"]
    assert lines[3] == "Non-breaking changes:"
    assert lines[4].split()[:2] == ["non-breaking", "enum-widened"]
    assert lines[-1] == "2 breaking, 1 non-breaking changes from v1.yaml to v2.yaml"
    assert render([], "text", "a", "b") == "no changes from a to b\n"


def test_json_has_both_lists_and_the_counts():
    report = json.loads(render(breaking_and_not(), "json", "v1.yaml", "v2.yaml"))
    assert report["old"] == "v1.yaml" and report["new"] == "v2.yaml"
    assert report["summary"] == {"breaking": 2, "non_breaking": 1}
    assert [c["breaking"] for c in report["breaking"]] == [True, True]
    assert set(report["non_breaking"][0]) == {"breaking", "kind", "where", "message"}


def test_junit_fails_a_test_case_for_each_breaking_change():
    root = ElementTree.fromstring(render(breaking_and_not(), "junit", "v1", "v2"))
    cases = root.findall(".//testcase")
    assert len(cases) == 3 and root.get("failures") == "2"
    failed = [case for case in cases if case.find("failure") is not None]
    assert all(case.get("name").startswith("enum-widened POST /transfers") for case in failed)
    empty = ElementTree.fromstring(render([], "junit", "v1", "v2"))
    assert [case.get("name") for case in empty.iter("testcase")] == ["no breaking changes"]
    assert empty.get("failures") == "0"


def test_command_writes_to_the_stream_it_is_given(tmp_path):
    path = tmp_path / "v1.yaml"
    path.write_text(yaml.safe_dump(base()), encoding="utf-8")
    out = io.StringIO()
    assert diff.command(str(path), str(path), fmt="json", out=out) == 0
    assert json.loads(out.getvalue())["summary"] == {"breaking": 0, "non_breaking": 0}


@pytest.fixture
def versions(tmp_path):
    """Write OLD (YAML) and NEW (JSON) documents; return their paths."""
    def write(new: dict, old: dict | None = None) -> tuple[str, str]:
        (tmp_path / "old.yaml").write_text(yaml.safe_dump(old or base()), encoding="utf-8")
        (tmp_path / "new.json").write_text(json.dumps(new), encoding="utf-8")
        return str(tmp_path / "old.yaml"), str(tmp_path / "new.json")
    return write


def test_cli_exits_0_without_breaking_changes(versions, capsys):
    new = base()
    schema(new, "Payment")["properties"]["settled_at"] = {"type": "string"}
    old_path, new_path = versions(new)
    assert main(["contracts", "diff", old_path, new_path]) == 0
    out = capsys.readouterr().out
    assert "property-added" in out
    assert out.endswith(f"0 breaking, 2 non-breaking changes from {old_path} to {new_path}\n")


def test_cli_exits_1_on_breaking_changes(versions, capsys):
    new = base()
    del new["paths"]["/transfers"]
    assert main(["contracts", "diff", *versions(new), "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["summary"] == {"breaking": 1, "non_breaking": 0}


def dangling() -> str:
    doc = base()
    schema(doc, "Payment")["properties"]["amount"] = {"$ref": "#/nowhere"}
    return yaml.safe_dump(doc)


@pytest.mark.parametrize(("content", "error"), [
    (None, "cannot read"),
    ("just: yaml\n", "not an OpenAPI 3 document"),
    (dangling(), "$ref '#/nowhere' points at nothing"),
], ids=["unreadable", "not OpenAPI", "dangling $ref"])
def test_cli_exits_2_on_a_document_it_cannot_use(versions, tmp_path, capsys, content, error):
    old, _ = versions(base())
    bad = tmp_path / "bad.yaml"
    if content is not None:
        bad.write_text(content, encoding="utf-8")
    assert main(["contracts", "diff", old, str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert captured.err.startswith("openbank-sandbox contracts diff: error: ")
    assert error in captured.err


# Schemas of the kinds contracts are made of, to put where the base's Payment and order are.
scalars = st.fixed_dictionaries(
    {"type": st.sampled_from(["string", "integer", "number", "boolean"])},
    optional={"enum": st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, unique=True),
              "pattern": st.sampled_from(["^a", "^b$"]),
              "format": st.sampled_from(["date", "date-time"]),
              "nullable": st.booleans(),
              "minimum": st.integers(0, 3), "maximum": st.integers(0, 3),
              "exclusiveMinimum": st.booleans(), "multipleOf": st.sampled_from([1, 2, 0.5]),
              "minLength": st.integers(0, 3), "maxLength": st.integers(0, 3)})
schemas = st.recursive(
    scalars | st.just({"$ref": SCHEMAS + "Money"}),
    lambda inner: st.fixed_dictionaries(
        {"type": st.just("array"), "items": inner},
        optional={"minItems": st.integers(0, 2), "uniqueItems": st.booleans()})
    | st.fixed_dictionaries(
        {"type": st.just("object"),
         "properties": st.dictionaries(st.sampled_from(["x", "y", "z"]), inner, max_size=3)},
        optional={"required": st.lists(st.sampled_from(["x", "y"]), unique=True),
                  "additionalProperties": st.booleans() | inner})
    | st.fixed_dictionaries({"oneOf": st.lists(inner, min_size=1, max_size=3)})
    | st.fixed_dictionaries({"allOf": st.lists(inner, min_size=1, max_size=2)}),
    max_leaves=8)


def with_schema(value: dict) -> dict:
    doc = base()
    schema(doc, "Payment")["properties"]["extra"] = value
    schema(doc, "TransferOrder")["properties"]["extra"] = copy.deepcopy(value)
    return doc


@settings(max_examples=150, deadline=None)
@given(schemas)
def test_a_schema_has_no_changes_from_itself(value):
    assert compare(with_schema(value), with_schema(copy.deepcopy(value))) == []


@settings(max_examples=150, deadline=None)
@given(schemas, schemas)
def test_any_two_schemas_compare_in_the_documented_kinds(old, new):
    for change in compare(with_schema(old), with_schema(new)):
        request, response = diff.KINDS[change.kind]
        assert change.breaking in {request is not None, response is not None}
        assert change.where.startswith(("POST /transfers", "GET /accounts"))
