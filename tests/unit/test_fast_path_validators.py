"""The fast path's compiled validators never accept what Connexion's validators refuse.

Where jsonschema-rs checks a body or parameter instead of the Python validator Connexion is
given, it must be at least as strict: anything it accepts skips Connexion. schemathesis
generates, from the contracts themselves, valid and invalid inputs for every fast operation.
"""

from __future__ import annotations

import pytest
import schemathesis
from connexion.json_schema import Draft4RequestValidator
from hypothesis import HealthCheck, given, settings
from jsonschema import Draft4Validator
from schemathesis import GenerationMode

from sandbox.contracts import load_contracts
from sandbox.fastpath import FastPath, _NotSure
from sandbox.settings import Settings
from sandbox.validation import validator_for

CONTRACTS = load_contracts(Settings.contracts_dir)
FAST = FastPath(CONTRACTS).operations


def cases():
    for contract in CONTRACTS:
        schema = schemathesis.openapi.from_dict(contract.spec)
        for result in schema.get_all_operations():
            operation = result.ok()
            fast = FAST.get(operation.definition.raw.get("operationId"))
            takes_input = fast is not None and (fast.path or fast.query or fast.headers
                                                or fast.body_schema is not None)
            if takes_input:
                for mode in GenerationMode:
                    yield pytest.param(operation, fast, mode,
                                       id=f"{fast.operation_id}-{mode.value}")


@pytest.mark.parametrize(("operation", "fast", "mode"), list(cases()))
def test_what_the_fast_path_accepts_connexion_accepts(operation, fast, mode):
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck),
              derandomize=True)
    @given(operation.as_strategy(generation_mode=mode))
    def check(case):
        if fast.body_schema is not None and isinstance(case.body, dict | list):
            if fast.body_validator.is_valid(case.body):
                reference = validator_for(fast.body_schema, Draft4RequestValidator)
                assert reference.is_valid(case.body), case.body
        for location, values in (("path", case.path_parameters), ("query", case.query),
                                 ("header", case.headers)):
            params = fast.query if location == "query" else {
                p.name: p for p in (fast.path if location == "path" else fast.headers)}
            for name, value in (values or {}).items():
                param = params.get(name)
                if param is None or isinstance(value, list | dict):
                    continue
                raw = str(value).lower() if isinstance(value, bool) else str(value)
                try:
                    typed = param.value(raw)
                except _NotSure:
                    continue
                if param.validator.is_valid(typed):
                    assert validator_for(param.schema, Draft4Validator).is_valid(typed), (
                        name, raw)

    check()


@pytest.mark.parametrize(("schema", "instance"), [
    ({"type": "string", "format": "date"}, "0000-01-01"),
    ({"type": "string", "format": "date-time"}, "2026-11-27T23:59:60Z"),
])
def test_where_jsonschema_rs_is_looser_the_python_validator_decides(schema, instance):
    import jsonschema_rs

    from sandbox.fastpath import _checker

    assert jsonschema_rs.Draft4Validator(schema, validate_formats=True).is_valid(instance)
    assert not _checker(schema, Draft4RequestValidator).is_valid(instance)
