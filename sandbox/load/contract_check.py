"""Each response of a load run, checked against its contract: a documented status, and a body
that validates against that response's schema. Validators are compiled once per (operation,
status) with jsonschema-rs, so the check costs microseconds, not a share of the load."""

from __future__ import annotations

import jsonschema_rs
import orjson

from sandbox.contracts import load_contracts
from sandbox.settings import Settings


class ResponseCheck:
    def __init__(self, contracts_dir=Settings.contracts_dir):
        self._responses: dict[str, dict[str, dict]] = {}  # operationId -> status -> response
        self._components: dict[str, dict] = {}  # operationId -> its contract's components
        self._validators: dict[tuple[str, str], object] = {}
        for contract in load_contracts(contracts_dir):
            for item in contract.spec["paths"].values():
                for operation in item.values():
                    if isinstance(operation, dict) and "operationId" in operation:
                        self._responses[operation["operationId"]] = operation["responses"]
                        self._components[operation["operationId"]] = contract.spec.get(
                            "components", {})

    def violation(self, operation_id: str, status: int, body: bytes | None) -> str | None:
        """Why this answer breaks the contract, or None if it keeps it."""
        responses = self._responses[operation_id]
        key = next((k for k in (str(status), f"{str(status)[0]}XX", "default")
                    if k in responses), None)
        if key is None:
            return f"undocumented status {status}"
        validator = self._validator(operation_id, key)
        if validator is None:
            return None
        try:
            document = orjson.loads(body or b"")
        except orjson.JSONDecodeError:
            return f"{status} body is not JSON"
        error = next(validator.iter_errors(document), None)
        if error is None:
            return None
        where = "/".join(str(part) for part in error.instance_path) or "(root)"
        return f"{status} body at {where}: {error.message}"

    def _validator(self, operation_id: str, key: str):
        cache_key = (operation_id, key)
        if cache_key not in self._validators:
            response = self._responses[operation_id][key]
            if "$ref" in response:
                name = response["$ref"].rsplit("/", 1)[-1]
                response = self._components[operation_id]["responses"][name]
            content = response.get("content") or {}
            media = content.get("application/json") or content.get("application/problem+json")
            schema = (media or {}).get("schema")
            self._validators[cache_key] = None if schema is None else jsonschema_rs.Draft4Validator(
                {**schema, "components": self._components[operation_id]}, validate_formats=True)
        return self._validators[cache_key]
