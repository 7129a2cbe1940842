"""Every contract, fuzzed by schemathesis against a real server: the sandbox keeps its word.

Each contract in contracts/ is loaded from the running server's own document (the bundled one
partners download). Every operation gets schema-valid (positive) and schema-invalid (negative)
requests from the schemathesis phases: the contract's examples, coverage (boundaries, missing
parameters, wrong types, undeclared methods and media types) and Hypothesis fuzzing, then
stateful scenarios along the links schemathesis infers. Every response goes through every
check schemathesis has, and must pass them all.

Requests carry a valid token with every scope, and HTTP Basic client credentials on the token
endpoint, whose form is fuzzed like any body. `ignored_auth` probes only apiKey and HTTP
schemes, so `ignored_oauth2_auth` (from `openbank-sandbox verify`) does the same for the
OAuth2-secured operations. Half the generated identifiers are the partner's real ones, so the
read operations' 200 answers are checked too, not only their 404s.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import zlib
from pathlib import Path

import httpx
import hypothesis
import pytest
import schemathesis
from conftest import Server, bank_rows, cli, create_partner, get_token
from schemathesis.checks import CHECKS, load_all_checks

from sandbox.consent_client import authorised_code, customer_token
from sandbox.contracts import Contract, load_contracts
from sandbox.verify.fuzz import ignored_oauth2_auth  # noqa: F401 - registers the check

try:  # pytest >= 9.2 keeps a node's id as a structured `_id`
    from _pytest.nodeid import coerce_node_id
except ImportError:  # pragma: no cover - older pytest still has the `_nodeid` string
    coerce_node_id = None

if coerce_node_id is not None and not hasattr(pytest.Item, "_nodeid"):
    # schemathesis' fixture-loaded schemas report each operation by renaming the running item
    # through `item._nodeid`, which pytest 9.2 replaced with `_id`: bridge the two.
    pytest.Item._nodeid = property(
        lambda item: str(item._id),
        lambda item, nodeid: setattr(item, "_id", coerce_node_id(nodeid)),
    )

pytestmark = pytest.mark.slow

CONTRACTS = {c.name: c for c in load_contracts(Path(__file__).parents[2] / "contracts")}

# Fuzzed requests per operation and generation mode, on top of the examples and coverage cases
# (positive and negative draw from one Hypothesis budget).
MAX_EXAMPLES_PER_MODE = 50
# Stateful scenarios per contract, and the most steps (calls) in one.
STATEFUL_SCENARIOS = 50
STATEFUL_STEPS = 10
# With a fixed seed and derandomized Hypothesis, every run sends the same requests.
SEED = 20261127
# How often a generated identifier is one of the partner's real ones instead of a random one.
REAL_ID_PROBABILITY = 0.5

# The checks the issue names; every registered check runs, and these must be among them.
REQUIRED_CHECKS = {
    "not_a_server_error", "status_code_conformance", "content_type_conformance",
    "response_schema_conformance", "response_headers_conformance", "positive_data_acceptance",
    "negative_data_rejection", "missing_required_header", "unsupported_method", "ignored_auth",
    "ignored_oauth2_auth",  # ours, from sandbox.verify.fuzz
}


@dataclasses.dataclass(frozen=True)
class Sandbox:
    server: Server
    partner: dict
    token: str  # one customer's consent, every permission
    client_token: str  # client credentials, every scope, no customer
    real_ids: dict[str, list[str]]  # parameter name -> the partner's identifiers
    applicants: list[dict]  # four factors of customers who may open an account online
    payers: list[str]  # accounts of the token's customer without class caps: Type I and BASIC
    payees: list[str]  # accounts of other customers without class caps
    operator_key: str  # for the control plane
    operated_ids: dict[str, list[str]]  # a second partner's, for the control plane to act on
    consenter_token: str  # a third partner's client-credentials token, for the consents
    consenter_ids: dict[str, list[str]]  # that partner's consents, first customer, accounts


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Sandbox:
    """One server for the module, and what the fuzzer should know about its partner's bank."""
    db = f"sqlite:///{tmp_path_factory.mktemp('schemathesis') / 'sandbox.db'}"
    server = Server(db)
    try:
        partner = create_partner(db, "schemathesis")
        client_token = get_token(server.url, partner)
        customers, accounts = bank_rows(db, partner["partner_id"])
        applicants = [
            {"name": c["name"], "resident_id": c["resident_id"], "mobile": c["mobile"],
             "bound_card_number": c["external_card"]}
            for c in customers if c["kind"] == "individual" and c["external_card"]
        ]
        assert applicants, "the partner's bank has nobody who can open an account online"
        # The fuzzer's token is one customer's, with every permission: the customer with the
        # most accounts that has one without class caps to pay from.
        uncapped = [a for a in accounts if a["account_class"] in ("I", "BASIC")]
        holders = {a["customer_id"] for a in uncapped}
        holder = max(sorted(holders), key=lambda c: sum(a["customer_id"] == c for a in accounts))
        consent = customer_token(server.url, partner["client_id"], partner["client_secret"],
                                 customer_id=holder)
        token = consent["access_token"]
        payers = [a["account_id"] for a in uncapped if a["customer_id"] == holder]
        payees = [a["account_id"] for a in uncapped if a["customer_id"] != holder]
        payment_ids, event_ids = _payments_and_events(server.url, token, client_token,
                                                        payers[0], payees[0])
        real_ids = {"customer_id": [holder],
                    "account_id": [a["account_id"] for a in accounts
                                   if a["customer_id"] == holder],
                    "payment_id": payment_ids, "event_id": event_ids}
        # The control plane freezes accounts and closes payments: let it act on a partner of
        # its own, so what it does cannot change what the other contracts' fuzzing expects.
        operated = create_partner(db, "operated")
        operated_accounts = bank_rows(db, operated["partner_id"])[1]
        operated_ids = {"partner_id": [operated["partner_id"]],
                        "account_id": [a["account_id"] for a in operated_accounts]}
        operator = json.loads(cli("operator", "create", "fuzzer", "--db", db, "--json").stdout)
        operated_ids["payment_id"] = _held_payments(server.url, operator["operator_key"],
                                                    operated, operated_accounts)
        # Fuzzing the consents revokes consents it finds (lists lead it to them): let it work
        # on a partner of its own, so the fuzzer's token above stays valid.
        consenter = create_partner(db, "consenter")
        first = bank_rows(db, consenter["partner_id"])[0][0]["customer_id"]
        consenter_ids = {"consent_id": _consents(server.url, consenter),
                         "customer_id": [first],
                         "account_id": [a["account_id"]
                                        for a in bank_rows(db, consenter["partner_id"])[1]
                                        if a["customer_id"] == first]}
        yield Sandbox(server, partner, token, client_token, real_ids,
                      applicants, payers, payees, operator["operator_key"], operated_ids,
                      get_token(server.url, consenter), consenter_ids)
    finally:
        server.stop()


def _consents(url: str, partner: dict) -> list[str]:
    """An authorised consent and one awaiting its customer, for the consents contract."""
    with httpx.Client(base_url=url) as client:
        authorised = authorised_code(client, partner["client_id"], partner["client_secret"])
        headers = {"Authorization": f"Bearer {get_token(url, partner, 'consents')}"}
        awaiting = client.post("/consents/v1/consents", headers=headers,
                               json={"permissions": ["ReadAccounts"]})
        awaiting.raise_for_status()
    return [authorised["consent_id"], awaiting.json()["consent_id"]]


def _payments_and_events(url: str, token: str, client_token: str, payer: str, payee: str):
    """A few payments (one to another bank) and their notifications, for real ids to fuzz with.
    The callback URL is a closed local port: every delivery attempt is refused, and logged.
    The callback and its log are the partner's: its client-credentials token."""
    partner = {"Authorization": f"Bearer {client_token}"}
    with httpx.Client(base_url=url + "/payments/v1",
                      headers={"Authorization": f"Bearer {token}"}) as client:
        client.put("/callback", json={"url": "http://127.0.0.1:9/hook"},
                   headers=partner).raise_for_status()
        creditors = ({"account_id": payee},
                     {"account_number": "6212269458073021579", "bank_code": "102100099996",
                      "name": "王芳"})
        payment_ids = []
        for number, creditor in enumerate(creditors):
            response = client.post("/transfers", headers={"X-Request-ID": f"seed-{number}"},
                                   json={"debtor_account_id": payer, "creditor": creditor,
                                         "amount": {"amount": "1.00", "currency": "CNY"}})
            response.raise_for_status()
            payment_ids.append(response.json()["payment_id"])
        events = client.get("/notifications", headers=partner).json()["items"]
        assert events, "no notification was queued for the seed payments"
        return payment_ids, [event["event_id"] for event in events]


def _held_payments(url: str, operator_key: str, partner: dict,
                   accounts: list[dict]) -> list[str]:
    """Payments a risk rule holds, for the control plane to release and reject."""
    with httpx.Client(base_url=url, headers={"X-Operator-Key": operator_key}) as operator:
        operator.put(f"/sandbox/v1/partners/{partner['partner_id']}/controls",
                     json={"large_amount": "0.01", "risk_action": "hold"}).raise_for_status()
    held = []
    first = accounts[0]["customer_id"]
    token = customer_token(url, partner["client_id"], partner["client_secret"],
                           customer_id=first)["access_token"]
    debtors = [a["account_id"] for a in accounts if a["customer_id"] == first]
    creditors = [a["account_id"] for a in accounts if a["customer_id"] != first]
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
        pairs = [(debtor, creditor) for debtor in debtors for creditor in creditors[:3]]
        for number, (debtor, creditor) in enumerate(pairs):
            response = client.post("/payments/v1/transfers",
                                   headers={"X-Request-ID": f"held-{number}"},
                                   json={"debtor_account_id": debtor,
                                         "creditor": {"account_id": creditor},
                                         "amount": {"amount": "0.01", "currency": "CNY"}})
            if response.status_code == 201:
                held.append(response.json()["payment_id"])
    assert held, "no payment was held for the control plane to decide on"
    return held


HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def parameters_of(contract: Contract):
    """(method, path, parameter) for every parameter of every operation, references resolved."""
    for path, item in contract.spec["paths"].items():
        for method in HTTP_METHODS & set(item):
            for parameter in item.get("parameters", []) + item[method].get("parameters", []):
                if "$ref" in parameter:
                    parameter = resolve_ref(contract.spec, parameter["$ref"])
                yield method, path, parameter


def resolve_ref(spec: dict, ref: str) -> dict:
    node = spec
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def config_for(contract: Contract, sandbox: Sandbox) -> schemathesis.Config:
    """Positive and negative generation, every phase, every check, credentials for each scheme."""
    auth = {}
    for name, scheme in contract.spec.get("components", {}).get("securitySchemes", {}).items():
        if scheme["type"] == "oauth2":
            # Consents are the partner's business: a client-credentials token. Everything
            # else is a customer's: the token of the customer's consent.
            customerless = contract.name == "consents"
            auth[name] = {"bearer": sandbox.consenter_token if customerless else sandbox.token}
        elif scheme["type"] == "apiKey":
            auth[name] = {"api_key": sandbox.operator_key}
        elif scheme["type"] == "http" and scheme["scheme"].lower() == "basic":
            auth[name] = {"username": sandbox.partner["client_id"],
                          "password": sandbox.partner["client_secret"]}
    parameters = {parameter["name"] for _, _, parameter in parameters_of(contract)}
    real = {"sandbox": sandbox.operated_ids,
            "consents": sandbox.consenter_ids}.get(contract.name, sandbox.real_ids)
    known = {name: ids for name, ids in real.items() if name in parameters}
    data = {
        "seed": SEED,
        "base-url": sandbox.server.url + contract.base_path,
        "generation": {
            "mode": "all",
            "max-examples": MAX_EXAMPLES_PER_MODE * len(schemathesis.GenerationMode),
            "deterministic": True,
            "database": "none",
        },
        "phases": {"examples": {"enabled": True}, "coverage": {"enabled": True},
                   "fuzzing": {"enabled": True}},
        "checks": {"enabled": True},
    }
    if auth:
        data["auth"] = {"openapi": auth}
    if known:
        data["dictionaries"] = {name: {"values": ids} for name, ids in known.items()}
        data["parameters"] = {name: {"dictionary": name, "probability": REAL_ID_PROBABILITY}
                              for name in known}
    return schemathesis.Config.from_dict(data)


@pytest.fixture(scope="module", params=list(CONTRACTS))
def contract_schema(request, sandbox):
    contract = CONTRACTS[request.param]
    return schemathesis.openapi.from_url(sandbox.server.url + contract.spec_url,
                                         config=config_for(contract, sandbox))


# Operations of the partner itself, not of a customer: the client-credentials token.
PARTNER_LEVEL = ("POST /account-openings", "GET /callback", "PUT /callback", "DELETE /callback",
                 "GET /notifications", "POST /notifications")


def satisfy_what_the_schema_cannot_say(case, sandbox: Sandbox) -> None:
    """Make a positive case valid under the rules no JSON Schema can express.

    positive_data_acceptance holds the server to accepting every positive case, so those must
    really be valid: a date range in order (OpenAPI 3.0 has no cross-parameter constraints),
    an applicant who exists (four factors that identify one of the partner's customers), and
    a transfer the bank can make (a payer with funds, a payee that exists).
    Negative cases are left as generated, except that what needs no customer (opening an
    account; the partner's callback and its delivery log) always goes with the
    client-credentials token.
    """
    label = case.operation.label
    if label.startswith(PARTNER_LEVEL) and "Authorization" in (case.headers or {}):
        case.headers["Authorization"] = f"Bearer {sandbox.client_token}"
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    redirect_uri = sandbox.partner["redirect_uris"][0]
    if label == "GET /accounts/{account_id}/transactions" and case.query:
        first, last = case.query.get("from_date"), case.query.get("to_date")
        if first and last and str(first) > str(last):
            case.query["from_date"], case.query["to_date"] = last, first
    elif label == "POST /account-openings" and isinstance(case.body, dict):
        # A deterministic pick, so a failure reproduces with the same applicant.
        pick = zlib.crc32(repr(sorted(case.body.items())).encode()) % len(sandbox.applicants)
        case.body.update(sandbox.applicants[pick])
    elif label == "POST /transfers" and isinstance(case.body, dict):
        # A payer of the token's consent that has the funds, a payee that is another account or
        # a bank of the directory, and an amount (0.01 to 100.00) within any balance the bank
        # generates.
        seed = zlib.crc32(repr(case.body).encode())
        case.body["debtor_account_id"] = sandbox.payers[seed % len(sandbox.payers)]
        creditor = case.body.get("creditor")
        if isinstance(creditor, dict) and "account_id" in creditor:
            creditor["account_id"] = sandbox.payees[seed % len(sandbox.payees)]
        elif isinstance(creditor, dict):
            creditor["bank_code"] = "102100099996"
        amount = case.body.get("amount")
        if isinstance(amount, dict):
            fen = 1 + seed % 10000
            amount["amount"] = f"{fen // 100}.{fen % 100:02d}"
    elif label == "PUT /callback" and isinstance(case.body, dict):
        # The pattern admits the shape of a host ("http://[0]", "http://a..b"), not that it is
        # one, nor where it points: a malformed host is refused with 422 INVALID_CALLBACK_URL,
        # and one that does not resolve (there is no DNS here) or resolves behind the sandbox
        # with 422 CALLBACK_ADDRESS_REFUSED. A loopback host, the developer's own, is accepted
        # while the sandbox listens on loopback only, as it does here; the path is kept, cut to
        # the schema's maxLength.
        case.body["url"] = re.sub(r"^(https?://)[^/]*", r"\g<1>127.0.0.1:9",
                                  str(case.body.get("url", "")))[:2048]
    elif label == "POST /consents" and isinstance(case.body, dict):
        # An expiry in the coming year; a transaction window in order; accounts the partner
        # has (one it has not is refused with 422 ACCOUNT_NOT_FOUND).
        if isinstance(case.body.get("account_ids"), list):
            known = sandbox.consenter_ids["account_id"]
            case.body["account_ids"] = list(dict.fromkeys(  # still unique, as the schema says
                known[zlib.crc32(str(a).encode()) % len(known)] for a in case.body["account_ids"]))
        if "expires_at" in case.body:
            soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
            case.body["expires_at"] = soon.isoformat(timespec="seconds")
        first, last = case.body.get("transaction_from_date"), case.body.get("transaction_to_date")
        if first and last and str(first) > str(last):
            case.body["transaction_from_date"], case.body["transaction_to_date"] = last, first
    elif label == "POST /consents/{consent_id}/authorisation" and isinstance(case.body, dict):
        # One of the partner's redirect URIs and customers; accounts left to the customer's.
        if "redirect_uri" in case.body:
            case.body["redirect_uri"] = redirect_uri
        # The customer whose accounts the fuzzer knows, and so whose accounts consents offer.
        case.body["customer_id"] = sandbox.consenter_ids["customer_id"][0]
        case.body.pop("account_ids", None)
    elif label in ("GET /oauth2/authorize", "POST /oauth2/authorize"):
        # The partner's client id and redirect URI: anything else is an error page (400) on
        # purpose, never a redirect to an unregistered address.
        params = case.query if label.startswith("GET") else case.body
        if isinstance(params, dict):
            params["client_id"] = sandbox.partner["client_id"]
            params["redirect_uri"] = redirect_uri
    elif label == "POST /oauth2/token" and isinstance(case.body, dict):
        # A code or refresh token that is live, for the grants that need one.
        grant = case.body.get("grant_type")
        if grant == "authorization_code":
            with httpx.Client(base_url=sandbox.server.url) as client:
                code = authorised_code(client, sandbox.partner["client_id"],
                                       sandbox.partner["client_secret"])
            case.body.update(code=code["code"], redirect_uri=code["redirect_uri"],
                             code_verifier=code["code_verifier"])
        elif grant == "refresh_token":
            # A refresh token works once, and a second use revokes its family: a family of the
            # case's own, so that the fuzzer's token (a family of its own too) stays valid.
            case.body["refresh_token"] = customer_token(
                sandbox.server.url, sandbox.partner["client_id"],
                sandbox.partner["client_secret"])["refresh_token"]


schema = schemathesis.pytest.from_fixture("contract_schema")


@schema.parametrize()
def test_every_operation_keeps_its_contract(case, sandbox):
    satisfy_what_the_schema_cannot_say(case, sandbox)
    # No `checks=`: every check the config enables runs, and it enables every one.
    case.call_and_validate()


def test_linked_operations_keep_their_contract(contract_schema, sandbox):
    """The stateful phase: scenarios along the links schemathesis infers (an account that
    GET /accounts lists is read, then its balance and its transactions), every check on every
    step, the stateful ones (which look back along the scenario) included."""
    if contract_schema.location.endswith("/consents/v1/openapi.json"):
        # A consent list shows what earlier scenarios left behind, in whatever state they left
        # it: steps taken from it differ from one run of a scenario to the next, which
        # Hypothesis rejects as flaky generation. Scenarios start from consents they create.
        contract_schema = contract_schema.exclude(method="GET", path="/consents")
    machine = contract_schema.as_state_machine()
    if not machine.root_rules:
        pytest.skip("schemathesis infers no links between this contract's operations")

    class Scenarios(machine):
        def before_call(self, case):
            satisfy_what_the_schema_cannot_say(case, sandbox)

    Scenarios.run(settings=hypothesis.settings(
        max_examples=STATEFUL_SCENARIOS, stateful_step_count=STATEFUL_STEPS, deadline=None,
        derandomize=True, database=None,
    ))


def test_every_schemathesis_check_is_enabled(contract_schema):
    load_all_checks()
    registered = set(CHECKS.get_all_names())
    assert REQUIRED_CHECKS <= registered
    config = contract_schema.config.checks_config_for()
    assert {name for name in registered if not config.get_by_name(name=name).enabled} == set()


def test_every_operation_of_the_contract_is_fuzzed(contract_schema):
    contract = next(c for c in CONTRACTS.values() if contract_schema.location.endswith(c.spec_url))
    declared = {f"{method.upper()} {path}" for path, item in contract.spec["paths"].items()
                for method in HTTP_METHODS & set(item)}
    assert {result.ok().label for result in contract_schema.get_all_operations()} == declared
