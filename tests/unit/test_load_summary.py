"""What `load` prints at the end: a run that made fewer calls than its plan says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.load.run import render


def summary(calls: int) -> dict:
    return {"profile": "daily", "calls": calls, "target_calls": 3000, "duration_s": 30.0,
            "failures": 0, "rps": 90.0, "p50_ms": 1, "p95_ms": 5, "p99_ms": 8,
            "sections": {}, "failure_reasons": [], "exceptions": [],
            "reconciliation": {"ok": True, "summary": "4 ledgers balanced"},
            "capacity": {"note": "…"}}


@pytest.mark.parametrize(("calls", "warned"), ((3000, False), (3004, False), (2990, True)))
def test_a_run_short_of_its_plan_says_how_short(calls, warned):
    text = render(summary(calls), Path("report"))
    assert ("only 2,990 of the plan's 3,000 calls were made" in text) is warned
    assert ("fell behind" in text) is warned
