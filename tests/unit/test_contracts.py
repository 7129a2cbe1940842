"""The contracts themselves: self-contained when served, every operation documented and bilingual,
every example valid against its own schema."""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft4Validator

from sandbox.contracts import ContractError, bundle, load_contracts
from sandbox.handlers import resolver_for
from sandbox.money import YUAN_PATTERN

CONTRACTS = load_contracts(Path(__file__).resolve().parents[2] / "contracts")
OPERATIONS = [
    (contract, path, method, op)
    for contract in CONTRACTS
    for path, item in contract.spec["paths"].items()
    for method, op in item.items()
    if method in ("get", "put", "post", "delete", "patch")
]
HAN = re.compile(r"[\u4e00-\u9fff]")


def op_id(value):
    if isinstance(value, tuple):
        return f"{value[0].name}:{value[2].upper()} {value[1]}"
    return None


def test_accounts_and_platform_are_served():
    assert {"accounts", "platform"} <= {c.name for c in CONTRACTS}


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.name)
def test_served_documents_have_no_external_references(contract):
    refs = re.findall(r'"\$ref": "([^"]*)"', json.dumps(contract.spec))
    assert refs and all(ref.startswith("#/") for ref in refs)


@pytest.mark.parametrize("operation", OPERATIONS, ids=op_id)
def test_every_operation_names_an_async_handler(operation):
    contract, _, _, op = operation
    assert re.fullmatch(r"[a-z]+(?:[A-Z][a-z0-9]*)*", op["operationId"]), "camelCase"
    handler = resolver_for(contract.name).function_resolver(op["operationId"])
    assert inspect.iscoroutinefunction(handler)


@pytest.mark.parametrize("operation", OPERATIONS, ids=op_id)
def test_every_operation_has_an_english_and_chinese_summary(operation):
    summary = operation[3]["summary"]
    assert re.search(r"[A-Za-z]", summary) and HAN.search(summary)


@pytest.mark.parametrize("operation", OPERATIONS, ids=op_id)
def test_every_error_response_is_a_documented_problem(operation):
    contract, _, _, op = operation
    codes = set(op["responses"])
    assert "500" in codes
    # Any call may carry a query parameter the operation does not take: 400 UNKNOWN_PARAMETER.
    assert "400" in codes
    for code, response in op["responses"].items():
        if code[0] in "45":
            ref = response["$ref"].split("/")[-1]
            resolved = contract.spec["components"]["responses"][ref]
            assert list(resolved["content"]) == ["application/problem+json"]


def _examples(node, schema_path=()):
    """(schema, example, where) for every schema or media type that carries an example."""
    if isinstance(node, dict):
        if "example" in node and isinstance(node.get("schema"), dict):
            yield node["schema"], node["example"], schema_path
        elif "example" in node and ("type" in node or "$ref" in node or "properties" in node):
            yield node, node["example"], schema_path
        for key, value in node.items():
            yield from _examples(value, (*schema_path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _examples(value, (*schema_path, i))


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.name)
def test_every_example_validates_against_its_schema(contract):
    checked = 0
    for schema, example, where in _examples(contract.spec):
        resolver_doc = {**schema, "components": contract.spec["components"]}
        errors = list(Draft4Validator(resolver_doc).iter_errors(example))
        assert not errors, f"{'/'.join(map(str, where))}: {errors[0].message}"
        checked += 1
    assert checked >= 5


def test_the_contract_amount_pattern_is_the_money_module_pattern():
    components = load_contracts.__globals__["_read_yaml"](
        Path(__file__).resolve().parents[2] / "contracts" / "components.yaml"
    )
    assert components["components"]["schemas"]["Amount"]["pattern"] == YUAN_PATTERN


def test_bundling_copies_referenced_components_and_what_they_reference(tmp_path):
    (tmp_path / "lib.yaml").write_text(
        "components:\n  schemas:\n"
        "    A: {type: object, properties: {b: {$ref: '#/components/schemas/B'}}}\n"
        "    B: {type: string}\n    Unused: {type: integer}\n"
    )
    doc = {"paths": {}, "x": {"$ref": "lib.yaml#/components/schemas/A"}}
    out = bundle(doc, tmp_path)
    assert out["x"] == {"$ref": "#/components/schemas/A"}
    assert set(out["components"]["schemas"]) == {"A", "B"}


def test_bundling_refuses_a_clash_with_a_local_definition(tmp_path):
    (tmp_path / "lib.yaml").write_text("components:\n  schemas:\n    A: {type: string}\n")
    doc = {"x": {"$ref": "lib.yaml#/components/schemas/A"},
           "components": {"schemas": {"A": {"type": "integer"}}}}
    with pytest.raises(ContractError, match="clashes"):
        bundle(doc, tmp_path)


def test_the_app_builds_from_every_contract(tmp_path):
    from sandbox.app import create_app
    from sandbox.settings import Settings

    app = create_app(Settings(db=f"sqlite:///{tmp_path / 'x.db'}"))
    assert asyncio.iscoroutinefunction(app.__call__) or callable(app)


def test_a_required_body_left_out_is_a_validation_problem_naming_the_body(tmp_path):
    from starlette.testclient import TestClient

    from sandbox.app import create_app
    from sandbox.bank import load_profile
    from sandbox.partners import create_partner
    from sandbox.settings import Settings
    from sandbox.store import open_store

    settings = Settings(db=f"sqlite:///{tmp_path / 'x.db'}")

    async def provision():
        async with open_store(settings.db) as store:
            return await create_partner(store, "acme", load_profile(settings.fixtures_dir,
                                                                    "small"))

    partner = asyncio.run(provision())
    problem = {"type": "https://openbank-sandbox.dev/problems/validation-failed",
               "title": "Bad Request", "status": 400, "code": "VALIDATION_FAILED",
               "detail": "The request body is required.", "field": "body"}
    with TestClient(create_app(settings)) as client:
        no_form = client.post("/oauth2/token")
        token = client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                            auth=(partner["client_id"], partner["client_secret"]))
        no_json = client.post("/accounts/v1/account-openings", headers={
            "Authorization": f"Bearer {token.json()['access_token']}"})
    # The token endpoint's problems carry RFC 6749's `error` member too.
    assert (no_form.status_code, no_form.json()) == (400, {**problem, "error": "invalid_request"})
    assert (no_json.status_code, no_json.json()) == (400, problem)
    assert no_json.headers["content-type"] == "application/problem+json"
