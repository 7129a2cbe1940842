"""Every contract, fuzzed by schemathesis against a real server: the sandbox keeps its word.

Each contract in contracts/ is loaded from the running server's own document (the bundled one
partners download), and every operation in it gets schema-valid and schema-invalid requests from
all three schemathesis phases that run inside pytest: the contract's examples, coverage
(boundary values, missing parameters and headers, undeclared methods) and fuzzing. Every
response goes through every check schemathesis has, `ignored_auth` included; the requests carry
a valid token with every scope (and HTTP Basic client credentials on the token endpoint), so
auth is exercised by the checks' own probes rather than failing everything up front.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import httpx
import pytest
import schemathesis
from conftest import Server, create_partner, get_token
from schemathesis.checks import CHECKS, load_all_checks

from sandbox.contracts import Contract, load_contracts

try:  # pytest >= 9.2 keeps a node's id as a structured `_id`
    from _pytest.nodeid import coerce_node_id
except ImportError:  # pragma: no cover - older pytest still has the `_nodeid` string
    coerce_node_id = None

if coerce_node_id is not None and not hasattr(pytest.Item, "_nodeid"):
    # schemathesis' fixture-loaded schemas report each operation by renaming the running item
    # through `item._nodeid`, an attribute pytest 9.2 dropped; bridge it to the new `_id`.
    pytest.Item._nodeid = property(
        lambda item: str(item._id),
        lambda item, nodeid: setattr(item, "_id", coerce_node_id(nodeid)),
    )

CONTRACTS = {c.name: c for c in load_contracts(Path(__file__).parents[2] / "contracts")}
MODES = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]

# Fuzzed requests per operation and generation mode, on top of examples and coverage cases.
MAX_EXAMPLES = 40
# A fixed seed and derandomized Hypothesis: CI fuzzes the same requests on every run.
SEED = 20261127

# What the issue names; the check below asserts these are among the (all) checks that run.
REQUIRED_CHECKS = {
    "not_a_server_error", "status_code_conformance", "content_type_conformance",
    "response_schema_conformance", "response_headers_conformance", "positive_data_acceptance",
    "negative_data_rejection", "missing_required_header", "unsupported_method", "ignored_auth",
}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """One server for the module: fuzzing needs no isolation between operations."""
    db = f"sqlite:///{tmp_path_factory.mktemp('schemathesis') / 'sandbox.db'}"
    server = Server(db)
    try:
        partner = create_partner(db, "schemathesis")
        yield server, partner, get_token(server.url, partner)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def applicants(sandbox) -> list[dict]:
    """The four factors of the partner's customers who can open an account online."""
    server, _, token = sandbox
    customers, cursor = [], None
    with httpx.Client(base_url=server.url + "/accounts/v1",
                      headers={"Authorization": f"Bearer {token}"}) as client:
        while True:
            page = client.get("/customers", params={"limit": 100, **({"cursor": cursor} if cursor else {})}).json()
            customers += page["items"]
            if (cursor := page.get("next_cursor")) is None:
                break
    found = [
        {"name": c["name"], "resident_id": c["resident_id"], "mobile": c["mobile"],
         "bound_card_number": c["other_bank_card"]["card_number"]}
        for c in customers if c["kind"] == "individual" and "other_bank_card" in c
    ]
    assert found, "the partner's bank has nobody who can open an account online"
    return found


def satisfy_what_the_schema_cannot_say(case, applicants: list[dict]) -> None:
    """Make a schema-valid (positive) case valid for the rules a JSON Schema cannot express.

    positive_data_acceptance holds the server to accepting every positive case, so these must
    really be valid: a date range in order (OpenAPI 3.0 has no cross-parameter constraints), and
    an applicant who exists (four factors that identify one of the partner's customers). Negative
    cases are never touched.
    """
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    label = case.operation.label
    if label == "GET /accounts/{account_id}/transactions" and case.query:
        first, last = case.query.get("from_date"), case.query.get("to_date")
        if first and last and str(first) > str(last):
            case.query["from_date"], case.query["to_date"] = last, first
    elif label == "POST /account-openings" and isinstance(case.body, dict):
        # Deterministic pick, so a failure reproduces with the same applicant.
        pick = zlib.crc32(repr(sorted(case.body.items())).encode()) % len(applicants)
        case.body.update(applicants[pick])


def config_for(contract: Contract, base_url: str, partner: dict, token: str,
               mode: schemathesis.GenerationMode) -> schemathesis.Config:
    # Credentials per security scheme the contract declares (naming one it lacks is a warning).
    auth = {}
    for name, scheme in contract.spec.get("components", {}).get("securitySchemes", {}).items():
        if scheme["type"] == "oauth2":
            auth[name] = {"bearer": token}
        elif scheme["type"] == "http" and scheme["scheme"].lower() == "basic":
            auth[name] = {"username": partner["client_id"], "password": partner["client_secret"]}
    data = {
        "seed": SEED,
        "base-url": base_url,
        "generation": {
            "mode": mode.value,
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "database": "none",
        },
        "phases": {"examples": {"enabled": True}, "coverage": {"enabled": True},
                   "fuzzing": {"enabled": True}},
        "checks": {"enabled": True},
    }
    if auth:
        data["auth"] = {"openapi": auth}
    return schemathesis.Config.from_dict(data)


@pytest.fixture(scope="module", params=[(name, mode) for name in CONTRACTS for mode in MODES],
                ids=lambda p: f"{p[0]}-{p[1].value}")
def contract_schema(request, sandbox):
    server, partner, token = sandbox
    name, mode = request.param
    contract = CONTRACTS[name]
    config = config_for(contract, server.url + contract.base_path, partner, token, mode)
    return schemathesis.openapi.from_url(server.url + contract.spec_url, config=config)


schema = schemathesis.pytest.from_fixture("contract_schema")


@schema.parametrize()
def test_every_operation_conforms_to_its_contract(case, applicants):
    satisfy_what_the_schema_cannot_say(case, applicants)
    # No `checks=`: every check the config enables runs, and the config enables all of them.
    case.call_and_validate()


def test_every_schemathesis_check_is_enabled(contract_schema):
    load_all_checks()
    checks = contract_schema.config.checks_config_for()
    names = set(CHECKS.get_all_names())
    assert REQUIRED_CHECKS <= names
    assert {name for name in names if not checks.get_by_name(name=name).enabled} == set()


def test_every_contract_operation_is_fuzzed(contract_schema):
    name = next(n for n, c in CONTRACTS.items()
                if contract_schema.location.endswith(c.spec_url))
    declared = {
        f"{method.upper()} {path}"
        for path, item in CONTRACTS[name].spec["paths"].items()
        for method in item if method in {"get", "put", "post", "delete", "patch"}
    }
    loaded = {op.ok().label for op in contract_schema.get_all_operations()}
    assert loaded == declared
