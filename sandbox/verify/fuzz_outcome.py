"""What a `verify` run found, and its report: the summary printed at the end and the JUnit cases.

A run is only as good as what it exercised, so the report says what it did not test as plainly
as what failed: operations whose every schema-valid request was refused for its credentials,
and unsafe operations left out because they change the server.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import TextIO

from sandbox.verify.report import TestCase

# What a server answers to a request whose credentials it does not accept.
REFUSED_STATUSES = frozenset({401, 403})
UNSAFE_HINT = "use --unsafe to include them"


@dataclasses.dataclass(frozen=True)
class Violation:
    operation: str
    check: str
    title: str
    message: str
    status: int | None
    curl: str
    phase: str

    @property
    def key(self) -> tuple[str, str, str]:
        return self.operation, self.check, self.title


@dataclasses.dataclass
class Outcome:
    """What a verify run found, operation by operation (operations by label, "GET /items")."""

    operations: set[str] = dataclasses.field(default_factory=set)  # labels tested
    violations: dict[tuple[str, str, str], Violation] = dataclasses.field(default_factory=dict)
    errors: list[str] = dataclasses.field(default_factory=list)
    requests: int = 0
    seconds: float = 0.0
    # Operations that need credentials -> the header that carries them ("Authorization: Bearer").
    secured: dict[str, str] = dataclasses.field(default_factory=dict)
    unsafe_skipped: list[str] = dataclasses.field(default_factory=list)  # not run: no --unsafe
    # Schema-valid requests: operations that answered one with anything but 401/403, and the
    # refusals (status -> count) of each operation.
    answered: set[str] = dataclasses.field(default_factory=set)
    refusals: dict[str, Counter[int]] = dataclasses.field(default_factory=dict)
    seconds_by_operation: Counter[str] = dataclasses.field(default_factory=Counter)
    refusals_expected: bool = False  # --expect-refusals

    def record_answer(self, label: str, status: int) -> None:
        """A schema-valid request to `label` was answered `status`."""
        if status in REFUSED_STATUSES:
            self.refusals.setdefault(label, Counter())[status] += 1
        else:
            self.answered.add(label)

    @property
    def refused(self) -> list[str]:
        """Secured operations that refused every schema-valid request they were sent: nothing
        of them past their security was exercised."""
        return sorted(label for label in self.refusals
                      if label in self.secured and label not in self.answered)

    @property
    def credentials_error(self) -> str | None:
        """Why the run tested nothing, when every secured operation it sent schema-valid
        requests to refused them all; None otherwise."""
        exercised = {label for label in self.secured
                     if label in self.answered or label in self.refusals}
        refused = self.refused
        if not exercised or len(refused) < len(exercised):
            return None
        statuses = sum((self.refusals[label] for label in refused), Counter())
        hints = sorted({self.secured[label] for label in refused})
        return (f"every secured operation refused the credentials ({_statuses(statuses)} to all "
                f"{sum(statuses.values())} schema-valid requests): pass valid credentials with "
                + " or ".join(f"--header '{hint} …'" for hint in hints)
                + " (or --expect-refusals if refusing them is what you are testing)")

    @property
    def conforms(self) -> bool:
        return not self.violations and not self.errors and (
            self.refusals_expected or self.credentials_error is None)


def _statuses(counts: Counter[int]) -> str:
    return "/".join(str(status) for status in sorted(counts))


def render(outcome: Outcome, contract: str, base_url: str, out: TextIO) -> None:
    violations = sorted(outcome.violations.values(), key=lambda v: (v.operation, v.check))
    for number, v in enumerate(violations, 1):
        print(f"\n{number}. {v.operation}: {v.title} [{v.check}]"
              + (f", answered {v.status}" if v.status else ""), file=out)
        for line in v.message.splitlines():
            print(f"   {line}", file=out)
        print("   reproduce:", file=out)
        for line in v.curl.splitlines():
            if line.strip():
                print(f"     {line.strip()}", file=out)
    for error in outcome.errors:
        print(f"\nerror: {error}", file=out)
    by_check = Counter(v.check for v in violations)
    print(f"\n{contract} at {base_url}: {len(outcome.operations)} operations, "
          f"{outcome.requests} requests in {outcome.seconds:.1f} s", file=out)
    if outcome.refused:
        print("not exercised: credentials refused (every schema-valid request answered "
              "401 or 403): " + ", ".join(
                  f"{label} ({_statuses(outcome.refusals[label])} to "
                  f"{sum(outcome.refusals[label].values())})" for label in outcome.refused),
              file=out)
    if outcome.unsafe_skipped:
        print(f"skipped: {len(outcome.unsafe_skipped)} unsafe operations ({UNSAFE_HINT}): "
              + ", ".join(outcome.unsafe_skipped), file=out)
    if by_check:
        print("violations by check:", file=out)
        for check, count in sorted(by_check.items()):
            print(f"  {check:<36} {count}", file=out)
    if outcome.conforms:
        verdict = "conforms"
    elif violations or outcome.errors:
        verdict = f"{len(violations)} violations, {len(outcome.errors)} errors"
    else:
        verdict = "not verified: every secured operation refused the credentials"
    print(f"result: {verdict}", file=out)


def junit_cases(outcome: Outcome, contract: str) -> list[TestCase]:
    refused = set(outcome.refused)
    cases = []
    for label in sorted(outcome.operations | {v.operation for v in
                                                   outcome.violations.values()}):
        failures = tuple(
            (f"{v.check}: {v.title}", f"{v.message}\n\nreproduce: {v.curl}")
            for v in outcome.violations.values() if v.operation == label)
        skipped = (f"credentials refused: {_statuses(outcome.refusals[label])} to every "
                   "schema-valid request" if label in refused else None)
        cases.append(TestCase(name=label, classname=contract, failures=failures,
                              seconds=outcome.seconds_by_operation[label], skipped=skipped))
    for label in outcome.unsafe_skipped:
        cases.append(TestCase(name=label, classname=contract,
                              skipped=f"unsafe: it changes the server ({UNSAFE_HINT})"))
    errors = outcome.errors + ([outcome.credentials_error] if outcome.credentials_error
                               and not outcome.refusals_expected else [])
    for error in errors:
        cases.append(TestCase(name="error", classname=contract, failures=((error, error),)))
    return cases
