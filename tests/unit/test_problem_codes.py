"""Each operation's problem codes are said twice: in its contract, `x-problem-codes` (what partners
and their generated clients read), and in the code that answers them (the handler's and the
security functions' `@decides`, and request validation). This holds the two to each other, so
that a refusal added to a rule, a handler calling one rule more, or a contract edited by hand
fails here, naming the operation, instead of surprising a partner.

The code side of an operation is:

- its handler's declared refusals (`fn.refusals`, see `sandbox.refusals.decides`);
- what its security schemes' `x-*Func` functions declare, and 401 `UNAUTHENTICATED` (Connexion's
  answer to no credentials) when its security is required;
- what request validation can answer for its inputs: `UNKNOWN_PARAMETER` always (strict
  validation: any call may carry a query parameter the operation does not take),
  `VALIDATION_FAILED` when it takes any input (a required body left out among them),
  `MALFORMED_BODY` for a JSON body, 415 `UNSUPPORTED_MEDIA_TYPE` for any body sent as another
  media type, and every `x-problem` code of a schema its parameters and body use;
- `INTERNAL_ERROR`, always.
"""

from __future__ import annotations

import importlib

import pytest
import yaml

from sandbox.contracts import HTTP_METHODS, load_contracts
from sandbox.handlers import resolver_for
from sandbox.refusals import (
    ALWAYS,
    Conflict,
    Declared,
    MalformedBody,
    NotFound,
    Unauthenticated,
    UnknownParameter,
    UnsupportedMedia,
    ValidationFailed,
    kind_of,
)
from sandbox.settings import Settings

CONTRACTS_DIR = Settings.from_env({}).contracts_dir
CONTRACTS = load_contracts(CONTRACTS_DIR)
OPERATIONS = [
    (contract, path, item, method, item[method])
    for contract in CONTRACTS
    for path, item in contract.spec["paths"].items()
    for method in HTTP_METHODS
    if method in item
]

#: Error responses an operation declares but can never answer: kept, since removing a response
#: is a breaking change, but listed here so that no other one goes unnoticed.
UNANSWERABLE = {
    ("payments", "createTransfer", "404"),  # accounts named in the body are 422 ACCOUNT_NOT_FOUND
    ("consents", "createConsent", "404"),  # accounts named in the body are 422 ACCOUNT_NOT_FOUND
}


def named(operation) -> str:
    contract, path, _, method, op = operation
    return f"{contract.name}.{op['operationId']} ({method.upper()} {path})"


# -- the code side --------------------------------------------------------------------------------

def handler_refusals(operation) -> Declared:
    contract, _, _, _, op = operation
    handler = resolver_for(contract.name).function_resolver(op["operationId"])
    return getattr(handler, "refusals", frozenset())


def imported(dotted: str):
    """A function named by its dotted path, as Connexion imports an `x-*Func`."""
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def security_refusals(operation) -> Declared:
    contract, _, _, _, op = operation
    requirements = op.get("security", contract.spec.get("security", []))
    schemes = contract.spec.get("components", {}).get("securitySchemes", {})
    pairs: set[tuple[int, str]] = set()
    for requirement in requirements:
        for scheme in requirement:
            for key, value in schemes[scheme].items():
                if key.startswith("x-") and key.endswith("Func"):
                    pairs |= getattr(imported(value), "refusals", frozenset())
    if requirements and all(requirements):  # no `{}` alternative: Connexion enforces it
        pairs |= Unauthenticated.declared()
    return frozenset(pairs)


def x_problem_codes(spec: dict | None, node, seen: frozenset[str] = frozenset()) -> set[str]:
    """The `x-problem` codes in `node`, and in what its `$ref`s reach in `spec` (if given)."""
    if isinstance(node, list):
        return set().union(*(x_problem_codes(spec, item, seen) for item in node))
    if not isinstance(node, dict):
        return set()
    ref = node.get("$ref")
    if isinstance(ref, str):
        if spec is None or ref in seen:
            return set()
        return x_problem_codes(spec, pointer(spec, ref), seen | {ref})
    problem = node.get("x-problem")
    codes = {problem["code"]} if isinstance(problem, dict) and "code" in problem else set()
    return codes.union(*(x_problem_codes(spec, value, seen) for value in node.values()))


def pointer(spec: dict, ref: str):
    """What a local `$ref` ("#/components/...") points at."""
    node = spec
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def validation_refusals(operation) -> Declared:
    contract, _, item, _, op = operation
    spec = contract.spec
    parameters = item.get("parameters", []) + op.get("parameters", [])
    body = op.get("requestBody")
    body = pointer(spec, body["$ref"]) if body and "$ref" in body else body
    media_types = list((body or {}).get("content", {}))
    pairs = set(UnknownParameter.declared())
    if parameters or body:
        pairs |= ValidationFailed.declared()
    if any(media.endswith("json") for media in media_types):
        pairs |= MalformedBody.declared()
    if body:
        pairs |= UnsupportedMedia.declared()
    for code in x_problem_codes(spec, [parameters, body]):
        pairs |= kind_of(code).declared()
    return frozenset(pairs)


def answerable(operation) -> Declared:
    return (handler_refusals(operation) | security_refusals(operation)
            | validation_refusals(operation) | ALWAYS)


# -- the contract side ----------------------------------------------------------------------------

def listed(operation) -> Declared:
    codes = operation[4].get("x-problem-codes", {})
    return frozenset((int(status), code) for status, names in codes.items() for code in names)


def _shown(pairs) -> str:
    return ", ".join(f"{status} {code}" for status, code in sorted(pairs)) or "nothing"


# -- the tests ------------------------------------------------------------------------------------

@pytest.mark.parametrize("operation", OPERATIONS, ids=named)
def test_every_operation_lists_its_problem_codes_sorted_by_status(operation):
    codes = operation[4].get("x-problem-codes")
    assert isinstance(codes, dict) and codes, f"{named(operation)} has no x-problem-codes"
    statuses = list(codes)
    assert all(isinstance(s, str) and s.isdigit() for s in statuses), (
        f"{named(operation)}: statuses are quoted, like responses'")
    assert statuses == sorted(statuses, key=int), f"{named(operation)}: statuses out of order"
    for status, names in codes.items():
        assert names and names == sorted(set(names)), (
            f"{named(operation)} {status}: codes unsorted or repeated")


@pytest.mark.parametrize("operation", OPERATIONS, ids=named)
def test_every_operation_lists_exactly_the_codes_its_code_can_answer(operation):
    in_contract, in_code = listed(operation), answerable(operation)
    assert in_contract == in_code, (
        f"{named(operation)}: x-problem-codes and the code disagree.\n"
        f"  listed in the contract, never answered: {_shown(in_contract - in_code)}\n"
        f"  answered by the code, not listed: {_shown(in_code - in_contract)}")


@pytest.mark.parametrize("operation", OPERATIONS, ids=named)
def test_every_listed_status_has_a_response(operation):
    missing = set(operation[4].get("x-problem-codes", {})) - set(operation[4]["responses"])
    assert not missing, f"{named(operation)} lists codes for undeclared responses {missing}"


@pytest.mark.parametrize("operation", OPERATIONS, ids=named)
def test_every_error_response_has_codes_unless_known_unanswerable(operation):
    contract, _, _, _, op = operation
    listed_statuses = set(op.get("x-problem-codes", {}))
    for status in op["responses"]:
        if status[0] in "45":
            known = (contract.name, op["operationId"], status) in UNANSWERABLE
            assert (status in listed_statuses) != known, (
                f"{named(operation)} declares a {status} response "
                + ("it is listed as unanswerable for, yet lists codes for it" if known
                   else "but can answer no code with it"))


@pytest.mark.parametrize("operation", OPERATIONS, ids=named)
def test_every_listed_code_is_a_code_of_the_refusal_tree_with_that_status(operation):
    for status, code in sorted(listed(operation)):
        try:
            kind = kind_of(code)
        except KeyError:
            kind = None
        assert kind is not None, f"{named(operation)} lists {code}, which no refusal class has"
        statuses = {s for s, _ in kind.declared()}
        if issubclass(kind, NotFound):
            statuses |= {s for s, _ in kind.named_in_request()}
        if status == Conflict.status and not issubclass(kind, Conflict):
            # A rule's code as a StateConflict: only where the handler declares it so.
            assert (status, code) in handler_refusals(operation), (
                f"{named(operation)} lists {code} under 409 without Conflict.over(...)")
        else:
            assert status in statuses, (
                f"{named(operation)} lists {code} under {status}; its class answers "
                f"{sorted(statuses)}")


def test_every_x_problem_code_in_the_contracts_is_a_code_of_the_refusal_tree():
    codes = set()
    for path in sorted(CONTRACTS_DIR.glob("*.yaml")):
        codes |= x_problem_codes(None, yaml.safe_load(path.read_text(encoding="utf-8")))
    assert codes, "no x-problem in the contracts: the walker has lost them"
    unknown = set()
    for code in codes:
        try:
            kind_of(code)
        except KeyError:
            unknown.add(code)
    assert not unknown, f"x-problem codes without a refusal class: {sorted(unknown)}"
