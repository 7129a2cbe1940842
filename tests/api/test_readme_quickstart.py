"""The README's quick start, as a new user runs it: its shell blocks (those between
`<!-- quickstart:begin -->` and `<!-- quickstart:end -->`), copied into one script and run top
to bottom with `bash -euo pipefail` against a fresh server. Every curl is `curl -fsS`, so any
answer but a 2xx stops the script."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
REGION = re.compile(r"<!-- quickstart:begin -->(.*?)<!-- quickstart:end -->", re.S)
SHELL_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.S | re.M)
# The one step the test does itself: a server on a free port, with a database of its own.
SERVE = re.compile(r"^openbank-sandbox serve\b.*$", re.M)


def quickstart() -> str:
    regions = REGION.findall(README.read_text(encoding="utf-8"))
    return "\n".join(block for region in regions for block in SHELL_BLOCK.findall(region))


def test_the_quick_start_is_marked_and_every_curl_fails_on_an_error():
    script = quickstart()
    assert "openbank-sandbox partner create" in script and "openbank-sandbox token" in script
    for variable in ("CLIENT_ID", "CLIENT_SECRET", "TOKEN", "CC"):
        assert re.search(rf"(^|;\s*){variable}=", script, re.M), (
            f"the quick start shows how to set ${variable}")
    assert "jq" not in script.split(), "jq is not on every machine"
    calls = re.findall(r"\bcurl\b[^\n]*", script)
    assert calls and all(call.startswith("curl -fsS ") for call in calls), calls


@pytest.mark.slow
def test_the_quick_start_runs_top_to_bottom_against_a_fresh_server(tmp_path, start_server):
    server = start_server(f"sqlite:///{tmp_path / 'sandbox.db'}")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # `openbank-sandbox` as installed: this interpreter and this checkout.
    command = bin_dir / "openbank-sandbox"
    command.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m sandbox.cli "$@"\n')
    command.chmod(command.stat().st_mode | stat.S_IEXEC)
    script = quickstart()
    assert "openbank-sandbox token" in script, "the quick start is marked in the README"
    script = SERVE.sub("", script).replace("http://127.0.0.1:8000", server.url)
    (tmp_path / "quickstart.sh").write_text(script, encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "SANDBOX_DB": server.db, "SANDBOX_PORT": str(server.port)}
    env.pop("SANDBOX_BASE_URL", None)
    run = subprocess.run(["bash", "-euo", "pipefail", str(tmp_path / "quickstart.sh")],
                         cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, (
        f"the quick start failed ({run.returncode}):\n{run.stderr[-3000:]}\n"
        f"--- stdout ---\n{run.stdout[-3000:]}\n--- server ---\n{server.output()[-2000:]}")
