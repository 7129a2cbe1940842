"""The command line as a new user meets it: the README's serve command, help, and bad input."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import cli, free_port

pytestmark = pytest.mark.slow


def test_the_installed_command_serves_with_defaults_and_env_twins(tmp_path):
    """`openbank-sandbox serve` with no flags: embedded SQLite file in the working directory."""
    beside_python = Path(sys.executable).parent / "openbank-sandbox"
    command = str(beside_python) if beside_python.exists() else shutil.which("openbank-sandbox")
    assert command, "the console script is installed with the package"
    port = free_port()
    env = {**os.environ, "SANDBOX_PORT": str(port), "SANDBOX_LOG_LEVEL": "warning"}
    env.pop("SANDBOX_DB", None)
    proc = subprocess.Popen([command, "serve"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/contracts", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        assert response.status_code == 200
        assert (tmp_path / "sandbox.db").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_help_names_every_command():
    out = cli("--help").stdout
    assert "serve" in out and "partner" in out
    serve_help = cli("serve", "--help").stdout
    for flag in ("--host", "--port", "--db", "--seed", "--workers", "--callback-allow"):
        assert flag in serve_help


@pytest.mark.parametrize(("args", "env", "message"), (
    (("serve",), {"SANDBOX_PORT": "eighty"}, "SANDBOX_PORT must be a whole number"),
    (("serve", "--db", "mysql://x"), {}, "db must be a sqlite:/// or postgresql:// URL"),
    (("serve", "--port", "70000"), {}, "port must be between"),
    (("partner", "create", "acme", "--profile", "huge"), {}, "no bank profile 'huge'"),
    (("serve", "--workers", "0"), {}, "workers must be at least 1"),
    (("serve", "--callback-allow", "10.0.0.0/33"), {}, "callback_allow must be CIDR ranges"),
    (("serve",), {"SANDBOX_CALLBACK_ALLOW": "172.18.0.0/16,docker"},
     "callback_allow must be CIDR ranges such as 172.18.0.0/16, got 'docker'"),
))
def test_bad_settings_fail_at_start_with_a_clear_message(tmp_path, args, env, message):
    result = cli(*args, "--db" if "--db" not in args else "--seed",
                 f"sqlite:///{tmp_path / 'x.db'}" if "--db" not in args else "1",
                 env=env, check=False)
    assert result.returncode in (1, 2)
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_command_is_a_usage_error():
    result = cli(check=False)
    assert result.returncode == 2 and "usage:" in result.stderr
