"""Benchmark: requests/s of the authenticated balance read, side by side with Connexion's own
`--mock` mode serving the same contract, and transfers/s on the same server, in one run.

    python loadtests/bench.py [--seconds 10] [--connections 32] [--rounds 2] [--json FILE]

Both servers run as one uvicorn process each, without access logs, started here on free
loopback ports; they are measured one after the other, alternating, so drift on a noisy
machine hits both. The load comes from a small keep-alive HTTP/1.1 client in this process
(raw asyncio streams: far cheaper per request than any HTTP library, so it is the server that
saturates). Connexion's mock cannot check tokens, so its copy of the contract has no security
and only the 2xx responses (with the problem+json error responses its mock answers 500): the
comparison favours the mock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from sandbox.consent_client import customer_token

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode} before it was ready")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise SystemExit(f"{url} not ready after {timeout} s")


def start_sandbox(workdir: Path) -> tuple[subprocess.Popen, str, dict, str]:
    """The sandbox on a fresh SQLite database with one partner: (process, url, partner, db)."""
    db = f"sqlite:///{workdir / 'bench.db'}"
    created = subprocess.run(
        [sys.executable, "-m", "sandbox.cli", "partner", "create", "bench", "--db", db, "--json"],
        check=True, capture_output=True, text=True,
    )
    partner = json.loads(created.stdout)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox.cli", "serve", "--port", str(port), "--db", db,
         "--workers", "1", "--no-access-log", "--log-level", "warning"],
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(url + "/contracts", proc)
    return proc, url, partner, db


def accounts_of(db: str, partner_id: str) -> list[dict]:
    from sandbox.store import open_store

    async def read():
        async with open_store(db) as store:
            return await store.accounts(partner_id, customer_id=None, after=0, limit=10_000)

    return asyncio.run(read())


def start_mock(workdir: Path) -> tuple[subprocess.Popen, str]:
    """`connexion run --mock all` semantics over the same bundled accounts contract."""
    from sandbox.contracts import load_contracts

    contract = next(c for c in load_contracts(ROOT / "contracts") if c.name == "accounts")
    spec = json.loads(json.dumps(contract.spec))
    # The mock has no token store to check against: serve the contract without security.
    spec.pop("security", None)
    spec["components"].pop("securitySchemes", None)
    for item in spec["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict):
                operation.pop("security", None)
                # Connexion's mock answers 500 when an operation documents two media types
                # (application/json and application/problem+json): keep only the 2xx answers.
                operation["responses"] = {
                    code: response for code, response in operation["responses"].items()
                    if code.startswith("2")
                }
    spec_file = workdir / "accounts.json"
    spec_file.write_text(json.dumps(spec))
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve-mock", str(spec_file),
                             "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    wait_ready(url + "/accounts/v1/openapi.json", proc)
    return proc, url


def serve_mock(spec_file: str, port: int) -> None:
    """Connexion's CLI app in mock mode, run by uvicorn with the sandbox's server options."""
    import logging

    import uvicorn
    from connexion.cli import create_app, parser

    logging.disable(logging.WARNING)  # the mock warns once per unsecured operation
    app = create_app(parser.parse_args(["run", spec_file, "--mock", "all"]))
    uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_level="warning")


async def hammer(url: str, path: str, headers: dict, seconds: float, connections: int,
                 make_request=None) -> dict:
    """Keep `connections` keep-alive connections busy for `seconds`; count answers by status.
    `make_request(n)` gives the bytes of the n-th request; by default a GET of `path`."""
    host, port = url.removeprefix("http://").split(":")
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    fixed = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{head}\r\n".encode()
    counter = iter(range(10**12))
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                writer.write(make_request(next(counter)) if make_request else fixed)
                head_bytes = await reader.readuntil(b"\r\n\r\n")
                status = int(head_bytes[9:12])
                length = 0
                for line in head_bytes.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    total = sum(statuses.values())
    return {
        "requests": total,
        "rps": round(total / elapsed, 1),
        "statuses": statuses,
        "p50_ms": round(latencies[total // 2] * 1000, 2) if total else None,
        "p99_ms": round(latencies[int(total * 0.99)] * 1000, 2) if total else None,
    }


def transfer_requests(url: str, tokens: dict[str, str], accounts: list[str]):
    """Transfers of 0.01 back and forth among `accounts`, each with its own request id, so every
    one is a new order: validated, locked, booked, recorded for idempotency. Each carries the
    token of its payer's consent (`tokens`: account id → token)."""
    host = url.removeprefix("http://").split(":")[0]

    def make(n: int) -> bytes:
        body = json.dumps({
            "debtor_account_id": accounts[n % len(accounts)],
            "creditor": {"account_id": accounts[(n + 1) % len(accounts)]},
            "amount": {"amount": "0.01", "currency": "CNY"},
        }).encode()
        return (f"POST /payments/v1/transfers HTTP/1.1\r\nHost: {host}\r\n"
                f"Authorization: Bearer {tokens[accounts[n % len(accounts)]]}\r\n"
                f"X-Request-ID: bench-{n}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode() + body

    return make


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="per measurement (default 10)")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (default 2)")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--serve-mock", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_mock:
        serve_mock(args.serve_mock, args.port)
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        sandbox, sandbox_url, partner, db = start_sandbox(workdir)
        mock, mock_url = start_mock(workdir)
        try:
            # Reads and payments need a customer's consent: tokens through the headless path.
            first = customer_token(sandbox_url, partner["client_id"], partner["client_secret"])
            token = first["access_token"]
            account = httpx.get(sandbox_url + "/accounts/v1/accounts?limit=1",
                                headers={"Authorization": f"Bearer {token}"}).json()
            account_id = account["items"][0]["account_id"]
            path = f"/accounts/v1/accounts/{account_id}/balance"
            basic = [a for a in accounts_of(db, partner["partner_id"])
                     if a["account_class"] == "BASIC"]
            holders = {a["customer_id"] for a in basic}
            by_holder = {c: customer_token(sandbox_url, partner["client_id"],
                                           partner["client_secret"],
                                           customer_id=c)["access_token"] for c in holders}
            tokens = {a["account_id"]: by_holder[a["customer_id"]] for a in basic}
            transfers = transfer_requests(sandbox_url, tokens, list(tokens))
            targets = {
                "sandbox": (sandbox_url, {"Authorization": f"Bearer {token}"}, None),
                "connexion --mock": (mock_url, {}, None),
                "sandbox transfer": (sandbox_url, {}, transfers),
            }
            results: dict[str, list[dict]] = {name: [] for name in targets}
            for url, headers, make in targets.values():  # warm-up, not counted
                asyncio.run(hammer(url, path, headers, 1.5, args.connections, make))
            for round_no in range(1, args.rounds + 1):
                for name, (url, headers, make) in targets.items():
                    result = asyncio.run(hammer(url, path, headers, args.seconds,
                                                args.connections, make))
                    results[name].append(result)
                    print(f"round {round_no}  {name:<17} {result['rps']:>9.1f} req/s  "
                          f"p50 {result['p50_ms']} ms  p99 {result['p99_ms']} ms  "
                          f"statuses {result['statuses']}", flush=True)
        finally:
            for proc in (sandbox, mock):
                proc.terminate()
                proc.wait(timeout=10)

    best = {name: max(r["rps"] for r in runs) for name, runs in results.items()}
    ratio = best["sandbox"] / best["connexion --mock"]
    expected = {"sandbox": {200}, "connexion --mock": {200}, "sandbox transfer": {201}}
    bad = {name: [r["statuses"] for r in runs if set(r["statuses"]) != expected[name]]
           for name, runs in results.items()}
    print(f"\nauthenticated balance read, 1 process each, {args.connections} connections, "
          f"{os.cpu_count()} cores:")
    print(f"  sandbox          {best['sandbox']:>9.1f} req/s (best of {args.rounds})")
    print(f"  connexion --mock {best['connexion --mock']:>9.1f} req/s (best of {args.rounds})")
    print(f"  ratio            {ratio:>9.2f}x")
    print("transfer (validated, ledger write, idempotency record), same server:")
    print(f"  sandbox          {best['sandbox transfer']:>9.1f} transfers/s "
          f"(best of {args.rounds})")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"path": path, "results": results, "best_rps": best, "ratio": round(ratio, 3)},
            indent=2))
    if any(bad.values()):
        print(f"non-200 answers: {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
