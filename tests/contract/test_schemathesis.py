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

from pathlib import Path

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
def test_every_operation_conforms_to_its_contract(case):
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
