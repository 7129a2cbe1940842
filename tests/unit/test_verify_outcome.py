"""What `verify` makes of the answers to schema-valid requests: refused credentials everywhere is
an error of the run, refused credentials somewhere is an operation not exercised."""

from __future__ import annotations

import io

from sandbox.verify.fuzz_outcome import Outcome, junit_cases, render

SECURED = {"GET /accounts": "Authorization: Bearer", "GET /balances": "Authorization: Bearer"}


def outcome(answers: dict[str, list[int]], **extra) -> Outcome:
    run = Outcome(secured=dict(SECURED), operations=set(answers) | {"GET /health"}, **extra)
    for label, statuses in answers.items():
        for status in statuses:
            run.record_answer(label, status)
    run.record_answer("GET /health", 401)  # not secured: its refusals say nothing of ours
    return run


def summary(run: Outcome) -> str:
    out = io.StringIO()
    render(run, "accounts.yaml", "http://127.0.0.1:5000", out)
    return out.getvalue()


def test_refusals_from_every_secured_operation_are_an_error_naming_the_header():
    run = outcome({"GET /accounts": [401, 401], "GET /balances": [403]})
    assert run.refused == ["GET /accounts", "GET /balances"]
    assert run.credentials_error.startswith(
        "every secured operation refused the credentials (401/403 to all 3 schema-valid "
        "requests): pass valid credentials with --header 'Authorization: Bearer …'")
    assert not run.conforms
    assert "result: not verified" in summary(run)
    assert any(case.name == "error" and case.failures for case in junit_cases(run, "accounts"))


def test_one_answer_past_the_security_layer_makes_the_run_count():
    run = outcome({"GET /accounts": [401, 200], "GET /balances": [403, 403]})
    assert run.refused == ["GET /balances"] and run.credentials_error is None
    assert run.conforms
    text = summary(run)
    assert "not exercised: credentials refused" in text and "GET /balances (403 to 2)" in text
    assert "result: conforms" in text
    skipped = {case.name: case.skipped for case in junit_cases(run, "accounts")}
    assert skipped["GET /balances"] and skipped["GET /accounts"] is None


def test_a_business_refusal_is_an_answer_not_a_credentials_refusal():
    run = outcome({"GET /accounts": [422], "GET /balances": [404]})
    assert run.refused == [] and run.credentials_error is None


def test_expected_refusals_keep_the_run_green():
    run = outcome({"GET /accounts": [401], "GET /balances": [401]}, refusals_expected=True)
    assert run.conforms and "result: conforms" in summary(run)
    assert not [case for case in junit_cases(run, "accounts") if case.failures]


def test_unsafe_operations_skipped_are_counted_and_named():
    run = outcome({"GET /accounts": [200]}, unsafe_skipped=["DELETE /callback", "POST /transfers"])
    assert ("skipped: 2 unsafe operations (use --unsafe to include them): DELETE /callback, "
            "POST /transfers") in summary(run)
    skipped = {case.name: case.skipped for case in junit_cases(run, "accounts")}
    assert "--unsafe" in skipped["POST /transfers"]
