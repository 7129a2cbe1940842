"""A new user's first hour: the commands say which database they use, `token` finds the server
where `serve` put it, and a port in use is said plainly before anything claims to serve."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import httpx
import pytest
from conftest import cli, create_partner, free_port

pytestmark = pytest.mark.slow


def cli_in(folder, *args: str, env: dict | None = None, check: bool = True):
    """The command line run from `folder`, with no SANDBOX_DB: the default, relative database."""
    environment = {**os.environ, **(env or {})}
    environment.pop("SANDBOX_DB", None)
    result = subprocess.run([sys.executable, "-m", "sandbox.cli", *args], cwd=folder,
                            capture_output=True, text=True, timeout=120, env=environment)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_operator_create_names_the_absolute_database_and_warns_when_it_is_new(tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    first = cli_in(other, "operator", "create", "ops", "--json")
    created = json.loads(first.stdout)
    where = str(other / "sandbox.db")
    assert created["database"] == where
    assert "operator_key" in created
    # A database made just now, by this command, is the classic mistake: said on stderr.
    assert where in first.stderr and "new" in first.stderr
    again = cli_in(other, "operator", "create", "ops2")
    assert where in again.stdout
    assert "new" not in again.stderr


def test_partner_create_names_the_absolute_database(tmp_path):
    created = json.loads(cli_in(tmp_path, "partner", "create", "acme", "--json").stdout)
    assert created["database"] == str(tmp_path / "sandbox.db")
    text = cli_in(tmp_path, "partner", "create", "beta").stdout
    assert str(tmp_path / "sandbox.db") in text


def test_serve_prints_the_absolute_database_it_serves(tmp_path):
    environment = {**os.environ, "SANDBOX_PORT": str(free_port())}
    environment.pop("SANDBOX_DB", None)
    proc = subprocess.Popen([sys.executable, "-m", "sandbox.cli", "serve"], cwd=tmp_path,
                            env=environment, stderr=subprocess.PIPE, text=True)
    with proc:
        try:
            first_line = proc.stderr.readline()
        finally:
            proc.terminate()
    assert "serving on" in first_line
    assert str(tmp_path / "sandbox.db") in first_line


def test_a_key_from_another_database_is_refused_naming_where_it_was_looked_up(
        tmp_path, start_server):
    served = tmp_path / "served"
    elsewhere = tmp_path / "elsewhere"
    served.mkdir()
    elsewhere.mkdir()
    server = start_server("sqlite:///" + str(served / "sandbox.db"))
    key = json.loads(cli_in(elsewhere, "operator", "create", "ops", "--json").stdout)[
        "operator_key"]
    partner = create_partner(server.db, "acme")
    answer = httpx.get(f"{server.url}/sandbox/v1/partners/{partner['partner_id']}/ledger",
                       headers={"X-Operator-Key": key})
    assert answer.status_code == 401
    problem = answer.json()
    assert problem["code"] == "INVALID_OPERATOR_KEY"
    # The file's name and where to see its full path; never the server's directories.
    assert "sandbox.db" in problem["detail"] and "serve" in problem["detail"]
    assert str(tmp_path) not in problem["detail"]


def test_token_finds_the_server_on_sandbox_port(tmp_path, start_server):
    server = start_server("sqlite:///" + str(tmp_path / "sandbox.db"))
    partner = create_partner(server.db, "acme")
    result = cli("token", "--client-id", partner["client_id"], "--client-secret",
                 partner["client_secret"], "--json",
                 env={"SANDBOX_PORT": str(server.port), "SANDBOX_BASE_URL": ""}, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["access_token"]


def test_token_help_documents_where_it_looks_for_the_server():
    out = cli("token", "--help").stdout
    assert "SANDBOX_BASE_URL" in out and "SANDBOX_PORT" in out


def test_serve_on_a_port_in_use_says_so_and_never_claims_to_serve(tmp_path):
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = cli("serve", "--port", str(port), "--db", f"sqlite:///{tmp_path / 'x.db'}",
                     check=False)
    assert result.returncode == 2, result.stderr
    assert f"port {port}" in result.stderr and "in use" in result.stderr
    assert "--port" in result.stderr and "SANDBOX_PORT" in result.stderr
    assert "serving on" not in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_help_documents_its_exit_codes():
    out = cli("serve", "--help").stdout
    assert "Exit status" in out and "in use" in out
