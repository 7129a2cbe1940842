"""`openbank-sandbox verify`: fuzz a running server against an OpenAPI 3 contract.

schemathesis does the work (its engine, through the Python API): the contract's own examples,
the coverage phase (boundaries, missing and wrong-typed parameters, undeclared methods and media
types), Hypothesis fuzzing, and stateful scenarios along the links it infers; schema-valid and
schema-invalid requests; every registered check, plus `ignored_oauth2_auth` below, because
schemathesis probes only apiKey and HTTP schemes for ignored authentication.

One decision differs from schemathesis' defaults, because these are banking APIs: a schema-valid
request refused with 422 is not a violation. A schema says what is well formed, not whether the
payer has the funds or the limit allows it; 422 is how a bank says no to a well-formed request
(RFC 9110 §15.5.21). A 400 to a schema-valid request still is a violation: it means the server
checks something its contract does not say.

Two more keep a green run honest. Only safe operations (RFC 9110 §9.2.1: GET, HEAD, OPTIONS,
TRACE) run unless `unsafe` is asked for: every other method may change the server under test
(register or delete a callback, move money, redeliver events), whatever the operation is for,
so a POST that only reads (a search, a token endpoint) is skipped too. They are taken out of
the schema before the engine sees it, so no phase sends them, and the coverage phase's probes
for undeclared methods send only safe methods. And a run in which every secured operation
refused every schema-valid request for its credentials (401/403) tested nothing past the
security layer: it is an error (exit 2, CredentialsRefused), unless the refusals are expected.

Failures are printed once per (operation, check, what went wrong), each with a curl line that
reproduces it (credentials masked), then a count by check and what was not exercised. Exit 0
conforms, 1 violations or errors, 2 usage error (raised as DocumentError).
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import TextIO

import httpx
import requests
import schemathesis
from schemathesis.config import ConfigError
from schemathesis.core.result import Ok
from schemathesis.engine import events
from schemathesis.engine import from_schema as engine_for

from sandbox.verify import documents
from sandbox.verify.fuzz_outcome import Outcome, Violation, junit_cases, render
from sandbox.verify.report import write_junit

PHASES = ("examples", "coverage", "fuzzing", "stateful")
# schemathesis' default for positive data, plus 422: a bank's refusal of a well-formed request.
POSITIVE_STATUSES = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]
PROBE_TIMEOUT_S = 10
# RFC 9110 §9.2.1: methods whose semantics are read-only. Every other one is unsafe.
SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")


class CredentialsRefused(documents.DocumentError):
    """Every secured operation refused the run's credentials: nothing past the security layer
    was tested. Exit 2, like a usage error, because the fix is in the command line."""


def parse_headers(values: list[str]) -> dict[str, str]:
    headers = {}
    for value in values:
        name, sep, content = value.partition(":")
        if not sep or not name.strip() or " " in name.strip():
            raise documents.DocumentError(f"--header {value!r} is not 'Name: value'")
        headers[name.strip()] = content.strip()
    return headers


def parse_phases(value: str) -> list[str]:
    phases = [p.strip() for p in value.split(",") if p.strip()]
    unknown = sorted(set(phases) - set(PHASES))
    if unknown or not phases:
        raise documents.DocumentError(f"--phases {value!r}: choose from {','.join(PHASES)}")
    return phases


def check_reachable(base_url: str, timeout: float) -> None:
    if not base_url.startswith(("http://", "https://")):
        raise documents.DocumentError(f"--base-url {base_url!r} is not an http(s) URL")
    try:
        httpx.get(base_url, timeout=timeout)
    except httpx.HTTPError as exc:
        raise documents.DocumentError(f"cannot reach {base_url}: {exc or type(exc).__name__}"
                                      ) from None


def config(base_url: str, headers: dict[str, str], *, max_examples: int, seed: int | None,
           timeout: float, phases: list[str], workers: int,
           unsafe: bool = False) -> schemathesis.Config:
    data: dict = {
        "base-url": base_url,
        "request-timeout": timeout,
        "workers": workers,
        "generation": {"mode": "all", "max-examples": max_examples, "database": "none",
                       "deterministic": seed is not None},
        "phases": {name: {"enabled": name in phases} for name in PHASES},
        "checks": {"enabled": True,
                   "positive_data_acceptance": {"expected-statuses": POSITIVE_STATUSES}},
    }
    if not unsafe:
        # The probes for undeclared methods would otherwise POST, PUT and DELETE every path.
        # (schemathesis sends no HEAD: the rest of the safe ones.)
        data["phases"]["coverage"]["unexpected-methods"] = ["GET", "OPTIONS", "TRACE"]
    if headers:
        data["headers"] = headers
    if seed is not None:
        data["seed"] = seed
    return schemathesis.Config.from_dict(data)


def run(document: dict, cfg: schemathesis.Config, progress: TextIO | None = None, *,
        phases: tuple[str, ...] = PHASES, unsafe: bool = False) -> Outcome:
    """Run every enabled phase against the server; report progress as operations finish.
    Without `unsafe`, only the safe operations are run; the others are listed as skipped."""
    schema = schemathesis.openapi.from_dict(document, config=cfg)
    everything = [result.ok() for result in schema.get_all_operations()
                  if isinstance(result, Ok)]
    if not unsafe:
        schema = schema.include(method=list(SAFE_METHODS))
    outcome = Outcome(secured={op.label: hint for op in everything
                               if (hint := _credentials_header(op)) is not None},
                      unsafe_skipped=sorted(op.label for op in everything
                                            if not unsafe and op.method.upper()
                                            not in SAFE_METHODS))
    started = time.monotonic()
    total = len(everything) - len(outcome.unsafe_skipped)
    try:
        _consume(engine_for(schema).execute(), outcome, total, progress, phases)
    except documents.DocumentError:
        raise
    except Exception as exc:  # schemathesis itself failed: say so, do not claim conformance
        outcome.errors.append(f"the fuzzing engine failed: {type(exc).__name__}: {exc}")
    outcome.seconds = time.monotonic() - started
    return outcome


def _consume(stream, outcome: Outcome, total: int, progress: TextIO | None,
             phases: tuple[str, ...]) -> None:
    done: Counter[str] = Counter()
    for event in stream:
        if isinstance(event, events.PhaseStarted) and progress is not None \
                and event.phase.name.value in phases:
            # schemathesis starts (and at once skips) the phases it was told not to run.
            print(f"{event.phase.name.value} phase…", file=progress, flush=True)
        elif isinstance(event, events.PhaseFinished) and progress is not None \
                and event.phase.name.value in phases and event.status.value == "skip":
            print("  nothing to test in this phase", file=progress, flush=True)
        elif isinstance(event, (events.ScenarioFinished, events.FuzzScenarioFinished)):
            phase = getattr(event, "phase", None)
            phase_name = phase.value if phase is not None else "fuzzing"
            failed = _collect(event.recorder, phase_name, outcome)
            label = event.recorder.label
            if event.status.value == "skip" or phase_name == "stateful":
                continue  # stateful scenarios span operations: their failures name them
            outcome.operations.add(label)
            outcome.seconds_by_operation[label] += event.elapsed_time
            if progress is not None and isinstance(event, events.ScenarioFinished):
                done[phase_name] += 1
                mark = "FAIL" if failed else "ok"
                print(f"  {phase_name:<9} {done[phase_name]:>3}/{total:<3}  {mark:<4}  {label}",
                      file=progress, flush=True)
        elif isinstance(event, events.NonFatalError):
            outcome.errors.append(f"{event.label}: {_first_line(event.info.message)}")
        elif isinstance(event, events.FatalError):
            raise documents.DocumentError(_first_line(str(event.exception)))
        elif isinstance(event, events.EngineFinished):
            if event.stop_reason.value == "server_unavailable":
                outcome.errors.append("the server stopped answering")


def _collect(recorder, phase: str, outcome: Outcome) -> bool:
    outcome.requests += len(recorder.interactions)
    for case_id, node in recorder.cases.items():
        interaction = recorder.interactions.get(case_id)
        case = node.value
        if interaction is None or interaction.response is None:
            continue
        if phase == "stateful":  # its steps' time goes to the operation each step calls
            outcome.seconds_by_operation[case.operation.label] += interaction.response.elapsed
        if case.meta is not None and case.meta.generation.mode.is_positive:
            outcome.record_answer(case.operation.label, interaction.response.status_code)
    failed = False
    for case_id, checks in recorder.checks.items():
        interaction = recorder.interactions.get(case_id)
        status = interaction.response.status_code if (interaction and interaction.response) \
            else None
        for check in checks:
            info = check.failure_info
            if info is None:
                continue
            failed = True
            failure = info.failure
            violation = Violation(
                operation=failure.operation or recorder.label, check=check.name,
                title=failure.title, message=failure.message.strip(), status=status,
                curl=info.code_sample, phase=phase)
            outcome.violations.setdefault(violation.key, violation)
    return failed


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), text)


def command(contract: str, base_url: str, *, headers: list[str], junit_xml: str | None,
            max_examples: int, seed: int | None, timeout: float, phases: str, workers: int,
            unsafe: bool = False, expect_refusals: bool = False,
            out: TextIO | None = None, quiet: bool = False) -> int:
    out = out or sys.stdout
    progress = None if quiet else sys.stderr
    path, document = documents.load(contract)
    header_values, phase_names = parse_headers(headers), parse_phases(phases)
    check_reachable(base_url, timeout)
    try:
        cfg = config(base_url.rstrip("/"), header_values, max_examples=max_examples, seed=seed,
                     timeout=timeout, phases=phase_names, workers=workers, unsafe=unsafe)
    except ConfigError as exc:
        raise documents.DocumentError(_first_line(str(exc))) from None
    outcome = run(document, cfg, progress, phases=tuple(phase_names), unsafe=unsafe)
    outcome.refusals_expected = expect_refusals
    render(outcome, path.name, base_url, out)
    if junit_xml:
        write_junit(junit_xml, f"verify {path.name}", junit_cases(outcome, path.stem))
    if outcome.credentials_error and not expect_refusals:
        out.flush()
        raise CredentialsRefused(outcome.credentials_error)
    return 0 if outcome.conforms else 1


def _requirements(operation) -> list[dict]:
    """The operation's security requirements: alternatives, each naming the schemes it needs."""
    raw = operation.schema.raw_schema
    return operation.definition.raw.get("security", raw.get("security", [])) or []


def _credentials_header(operation) -> str | None:
    """The header that carries the credentials `operation` needs ("Authorization: Bearer"), or
    None if it needs none: no requirement, or an empty alternative (anyone may call it)."""
    requirements = _requirements(operation)
    if not requirements or not all(requirements):
        return None
    schemes = operation.schema.raw_schema.get("components", {}).get("securitySchemes", {})
    scheme = schemes.get(next(iter(requirements[0])), {})
    if scheme.get("type") == "apiKey" and scheme.get("in") == "header":
        return f"{scheme.get('name')}:"
    if scheme.get("type") == "http" and str(scheme.get("scheme")).lower() == "basic":
        return "Authorization: Basic"
    return "Authorization: Bearer"


def _secured_by_oauth2_only(operation) -> bool:
    schemes = operation.schema.raw_schema.get("components", {}).get("securitySchemes", {})
    requirements = _requirements(operation)
    return bool(requirements) and all(
        requirement and all(schemes.get(name, {}).get("type") == "oauth2"
                            for name in requirement)
        for requirement in requirements)


_probes = requests.Session()


@schemathesis.check
def ignored_oauth2_auth(ctx, response, case):
    """Authentication ignored, for OAuth2: after a 2xx, the same request with no token, and with
    a token the server never issued, must be refused with a 401 the contract documents.

    schemathesis' own `ignored_auth` probes only apiKey and HTTP schemes, so it passes every
    OAuth2-secured operation without a probe."""
    if not 200 <= response.status_code < 300 or not _secured_by_oauth2_only(case.operation):
        return None
    sent = response.request
    for credentials, authorization in (("no token", None),
                                       ("an unknown token", "Bearer not-an-issued-token")):
        probe = sent.copy()
        probe.headers.pop("Authorization", None)
        if authorization is not None:
            probe.headers["Authorization"] = authorization
        answer = _probes.send(probe, timeout=PROBE_TIMEOUT_S)
        if answer.status_code != 401:
            raise AssertionError(f"{case.operation.label} answered {answer.status_code} "
                                 f"to a request with {credentials}, not 401")
        case.operation.validate_response(answer)  # the 401 itself keeps the contract
    return None
