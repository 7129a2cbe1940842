"""Ctrl-C on `openbank-sandbox load`: the plan's live tokens do not outlive the run, a report cut
short says so, and the command says what it did and exits 130, as a shell expects."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow


def test_ctrl_c_removes_the_plan_marks_the_report_partial_and_exits_130(tmp_path):
    report = tmp_path / "report"
    report.mkdir()
    # A previous run's summary must not pass for this one's.
    (report / "summary.json").write_text(json.dumps({"calls": 3000, "failures": 0}))
    # Its own session, as a terminal's foreground job: Ctrl-C reaches every process in it.
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox.cli", "load", "--profile", "daily", "--calls", "5000",
         "--duration", "120", "--users", "4", "--report", str(report)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while not (report / "locust_stats.csv").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run did not start in 90 s"
            time.sleep(0.2)
        assert (report / "plan.json").exists()
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 130, err
    assert not (report / "plan.json").exists(), "the plan holds live tokens"
    summary = json.loads((report / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["complete"] is False
    assert "interrupted" in err and "plan.json" in err and "partial" in err
    assert "Traceback" not in err
