"""Benchmark: requests/s of the authenticated balance read and of transfers on the sandbox, side
by side in one run with Stoplight Prism serving the same contracts from their static examples,
the sandbox with its fast path off (every request through Connexion's middleware chain),
Connexion's own `--mock` mode, and bare Starlette answering a constant body (the ceiling of
any Python server here).

    python loadtests/bench.py [--seconds 10] [--connections 32] [--rounds 2] [--json FILE]
                              [--warmup 2] [--write-warmup 10] [--no-prism]
                              [--baseline CHECKOUT]

`--baseline` also measures the sandbox of another checkout (e.g. `git worktree add /tmp/old
c043ed5`) in the same run, alternating with this one: how a change is measured, old commit
against new.

Every server runs as one process, without access logs, started here on free loopback ports;
they are measured one after the other, alternating, so drift on a noisy machine hits all of
them. The load comes from a small keep-alive HTTP/1.1 client in this process (raw asyncio
streams: far cheaper per request than any HTTP library, so it is the server that saturates).
Prism is installed from npm into a cache folder (~/.cache/openbank-sandbox/prism) on first use.
Prism checks that the bearer token is present; Connexion's mock cannot check tokens, so its copy
of the contract has no security and only the 2xx responses (with the problem+json error
responses its mock answers 500). Both comparisons favour the mocks: they look nothing up.
It prints the best and the median of the rounds, and their ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from sandbox.consent_client import customer_token

ROOT = Path(__file__).resolve().parent.parent
PRISM_CACHE = Path.home() / ".cache" / "openbank-sandbox" / "prism"
PRISM_VERSION = "5"


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


def start_sandbox(workdir: Path, name: str = "bench", *, fast_path: bool = True,
                  checkout: Path = ROOT) -> tuple[subprocess.Popen, str, dict, str]:
    """The sandbox on a fresh SQLite database with one partner: (process, url, partner, db).
    `fast_path=False` serves every request through Connexion's whole middleware chain;
    `checkout` runs the sandbox of another checkout (another commit) with this Python."""
    db = f"sqlite:///{workdir / name}.db"
    run_there = {"cwd": checkout, "env": {**os.environ, "PYTHONPATH": str(checkout),
                                           "SANDBOX_FAST_PATH": "1" if fast_path else "0"}}
    created = subprocess.run(
        [sys.executable, "-m", "sandbox.cli", "partner", "create", "bench", "--db", db, "--json"],
        check=True, capture_output=True, text=True, **run_there,
    )
    partner = json.loads(created.stdout)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox.cli", "serve", "--port", str(port), "--db", db,
         "--workers", "1", "--no-access-log", "--log-level", "warning"], **run_there,
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(url + "/contracts", proc)
    return proc, url, partner, db


def sandbox_load(url: str, partner: dict, db: str) -> tuple[str, dict, dict[str, str]]:
    """What to send a sandbox: the balance path, a customer's bearer header, and the maker
    tokens of its customers' basic accounts (account id → its holder's token), for transfers."""
    first = customer_token(url, partner["client_id"], partner["client_secret"])
    bearer = {"Authorization": f"Bearer {first['access_token']}"}
    account = httpx.get(url + "/accounts/v1/accounts?limit=1", headers=bearer).json()
    path = f"/accounts/v1/accounts/{account['items'][0]['account_id']}/balance"
    basic = [a for a in accounts_of(db, partner["partner_id"]) if a["account_class"] == "BASIC"]
    by_holder = {c: customer_token(url, partner["client_id"], partner["client_secret"],
                                   customer_id=c)["access_token"]
                 for c in {a["customer_id"] for a in basic}}
    tokens = {a["account_id"]: by_holder[a["customer_id"]] for a in basic}
    return path, bearer, tokens


def accounts_of(db: str, partner_id: str) -> list[dict]:
    """The partner's accounts, read from the SQLite file itself, so the same code serves a
    sandbox of any commit (`--baseline`)."""
    with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute(
            "SELECT account_id, customer_id, account_class FROM accounts WHERE partner_id = ?"
            " ORDER BY ordinal", (partner_id,))]


def start_mock(workdir: Path) -> tuple[subprocess.Popen, str]:
    """`connexion run --mock all` semantics over the same bundled accounts contract."""
    spec = bundled("accounts")
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


def bundled(name: str) -> dict:
    from sandbox.contracts import load_contracts

    return next(c for c in load_contracts(ROOT / "contracts") if c.name == name).spec


def start_prism(workdir: Path, name: str) -> tuple[subprocess.Popen, str]:
    """`prism mock` (static: each response from its example) over the bundled contract, with
    the server's base path kept, on a free port."""
    prism = PRISM_CACHE / "node_modules" / ".bin" / "prism"
    if not prism.exists():
        print(f"installing @stoplight/prism-cli@{PRISM_VERSION} into {PRISM_CACHE} …",
              file=sys.stderr, flush=True)
        PRISM_CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", str(PRISM_CACHE), "--no-audit",
                        "--no-fund", "--silent", f"@stoplight/prism-cli@{PRISM_VERSION}"],
                       check=True)
    spec_file = workdir / f"{name}-prism.json"
    spec_file.write_text(json.dumps(bundled(name)))
    port = free_port()
    proc = subprocess.Popen([str(prism), "mock", "-h", "127.0.0.1", "-p", str(port),
                             str(spec_file)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url + "/banks", proc, timeout=60)
    return proc, url


def serve_starlette(port: int) -> None:
    """Bare Starlette: one route, a constant body. What a Python server does with no work."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    body = json.dumps({"account_id": "acc_0000000000000000",
                       "booked": {"amount": "1024.50", "currency": "CNY"},
                       "available": {"amount": "1024.50", "currency": "CNY"},
                       "as_of": "2026-11-27T10:00:00+08:00"}).encode()

    async def balance(request):
        return Response(body, media_type="application/json")

    app = Starlette(routes=[Route("/accounts/v1/accounts/{account_id}/balance", balance)])
    uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_level="warning")


def start_helper(flag: str, *extra: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, flag, *extra, "--port", str(port)])
    return proc, f"http://127.0.0.1:{port}"


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
    replays = [0]  # transfers answered from an earlier try: not what a benchmark should count
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
                if b"idempotent-replayed: true" in head_bytes.lower():
                    replays[0] += 1
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
        "replays": replays[0],
        "p50_ms": round(latencies[total // 2] * 1000, 2) if total else None,
        "p99_ms": round(latencies[int(total * 0.99)] * 1000, 2) if total else None,
    }


def transfer_requests(url: str, tokens: dict[str, str], accounts: list[str],
                      path: str = "/payments/v1/transfers"):
    """Transfers of 0.01 back and forth among `accounts`, each with its own request id, so every
    one is a new order: validated, locked, booked, recorded for idempotency. Each carries the
    token of its payer's consent (`tokens`: account id → token)."""
    host = url.removeprefix("http://").split(":")[0]
    # Request ids of their own, not the n-th of this measurement: every measurement counts
    # from 0, and a repeated id is an idempotent replay (201 again, nothing booked).
    fresh = itertools.count()

    def make(n: int) -> bytes:
        n = next(fresh)
        body = json.dumps({
            "debtor_account_id": accounts[n % len(accounts)],
            "creditor": {"account_id": accounts[(n + 1) % len(accounts)]},
            "amount": {"amount": "0.01", "currency": "CNY"},
        }).encode()
        return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\n"
                f"Authorization: Bearer {tokens[accounts[n % len(accounts)]]}\r\n"
                f"X-Request-ID: bench-{n}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode() + body

    return make


def prism_path(url: str, path: str, base: str) -> str:
    """Where Prism serves `path`: with the contract's base path, or without it."""
    if httpx.get(url + path, headers={"Authorization": "Bearer x"}).status_code != 404:
        return path
    return path.removeprefix(base)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="per measurement (default 10)")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (default 2)")
    parser.add_argument("--warmup", type=float, default=2,
                        help="seconds of reads before measuring each server (default 2)")
    parser.add_argument("--write-warmup", type=float, default=10,
                        help="seconds of transfers before measuring them (default 10): a new "
                             "SQLite WAL file grows for its first seconds of writes, and each "
                             "fsync of a growing file flushes its metadata too")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--no-prism", action="store_true",
                        help="leave Prism out (it needs npm and, once, the npm registry)")
    parser.add_argument("--baseline", type=Path,
                        help="a checkout of another commit: its sandbox is measured too")
    parser.add_argument("--serve-mock", help=argparse.SUPPRESS)
    parser.add_argument("--serve-starlette", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_mock:
        serve_mock(args.serve_mock, args.port)
        return 0
    if args.serve_starlette:
        serve_starlette(args.port)
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        sandbox, sandbox_url, partner, db = start_sandbox(workdir)
        chain, chain_url, chain_partner, chain_db = start_sandbox(workdir, "chain",
                                                                  fast_path=False)
        mock, mock_url = start_mock(workdir)
        starlette, starlette_url = start_helper("--serve-starlette")
        wait_ready(starlette_url + "/", starlette)
        procs = [sandbox, chain, mock, starlette]
        if args.baseline:
            base, base_url, base_partner, base_db = start_sandbox(
                workdir, "baseline", checkout=args.baseline.resolve())
            procs.append(base)
        try:
            # Reads and payments need a customer's consent: tokens through the headless path.
            path, bearer, tokens = sandbox_load(sandbox_url, partner, db)
            chain_path, chain_bearer, chain_tokens = sandbox_load(chain_url, chain_partner,
                                                                  chain_db)
            reads = {
                "sandbox": (sandbox_url, path, bearer, None),
                "sandbox, chain only": (chain_url, chain_path, chain_bearer, None),
                "connexion --mock": (mock_url, path, {}, None),
                "bare starlette": (starlette_url, path, {}, None),
            }
            writes = {
                "sandbox transfer": (sandbox_url, path, {}, transfer_requests(
                    sandbox_url, tokens, list(tokens))),
                "sandbox transfer, chain": (chain_url, path, {}, transfer_requests(
                    chain_url, chain_tokens, list(chain_tokens))),
            }
            if args.baseline:
                base_path, base_bearer, base_tokens = sandbox_load(base_url, base_partner,
                                                                   base_db)
                reads["baseline"] = (base_url, base_path, base_bearer, None)
                writes["baseline transfer"] = (base_url, path, {}, transfer_requests(
                    base_url, base_tokens, list(base_tokens)))
            if not args.no_prism:
                prism_accounts, prism_accounts_url = start_prism(workdir, "accounts")
                prism_payments, prism_payments_url = start_prism(workdir, "payments")
                procs += [prism_accounts, prism_payments]
                reads["prism static"] = (prism_accounts_url, prism_path(
                    prism_accounts_url, path, "/accounts/v1"), bearer, None)
                transfers_path = prism_path(prism_payments_url, "/payments/v1/banks",
                                            "/payments/v1").replace("/banks", "/transfers")
                writes["prism static transfer"] = (prism_payments_url, path, {},
                                                   transfer_requests(prism_payments_url, tokens,
                                                                     list(tokens),
                                                                     transfers_path))
            targets = {**reads, **writes}
            results: dict[str, list[dict]] = {name: [] for name in targets}
            for name, (url, target, headers, make) in targets.items():  # warm-up, not counted
                warmup = args.write_warmup if name in writes else args.warmup
                asyncio.run(hammer(url, target, headers, warmup, args.connections, make))
            for round_no in range(1, args.rounds + 1):
                for name, (url, target, headers, make) in targets.items():
                    result = asyncio.run(hammer(url, target, headers, args.seconds,
                                                args.connections, make))
                    results[name].append(result)
                    print(f"round {round_no}  {name:<24} {result['rps']:>9.1f} req/s  "
                          f"p50 {result['p50_ms']} ms  p99 {result['p99_ms']} ms  "
                          f"statuses {result['statuses']}"
                          + (f" ({result['replays']} replays)"
                             if result["replays"] and not name.startswith("prism") else ""),
                          flush=True)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=10)

    best = {name: max(r["rps"] for r in runs) for name, runs in results.items()}
    median = {name: statistics.median(r["rps"] for r in runs) for name, runs in results.items()}
    ok = {name: {201} for name in writes}
    # Prism answers with the contract's example headers, `Idempotent-Replayed: true` among them.
    bad = {name: [r["statuses"] for r in runs if set(r["statuses"]) != ok.get(name, {200})
                  or (r["replays"] and not name.startswith("prism"))]
           for name, runs in results.items()}
    print(f"\n1 process each, {args.connections} connections, {os.cpu_count()} cores, "
          f"{args.rounds} rounds of {args.seconds:g} s:  {'best':>9}  {'median':>9}")
    for name in targets:
        print(f"  {name:<24} {best[name]:>9.1f}  {median[name]:>9.1f} req/s")
    pairs = {"read vs connexion --mock": ("sandbox", "connexion --mock"),
             "read vs chain only": ("sandbox", "sandbox, chain only"),
             "transfer vs chain only": ("sandbox transfer", "sandbox transfer, chain"),
             "read vs bare starlette": ("sandbox", "bare starlette")}
    if args.baseline:
        pairs["read vs baseline"] = ("sandbox", "baseline")
        pairs["transfer vs baseline"] = ("sandbox transfer", "baseline transfer")
    if not args.no_prism:
        pairs["read vs prism (target 4x)"] = ("sandbox", "prism static")
        pairs["transfer vs prism (target 3x)"] = ("sandbox transfer", "prism static transfer")
        if args.baseline:
            pairs["baseline read vs prism"] = ("baseline", "prism static")
            pairs["baseline transfer vs prism"] = ("baseline transfer", "prism static transfer")
    ratios = {label: {"best": best[a] / best[b], "median": median[a] / median[b]}
              for label, (a, b) in pairs.items()}
    print(f"  {'ratio':<32} {'best':>6}  {'median':>6}")
    for label, value in ratios.items():
        print(f"  {label:<32} {value['best']:>5.2f}x  {value['median']:>5.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"path": path, "results": results, "best_rps": best, "median_rps": median,
             "ratios": {k: {m: round(x, 3) for m, x in v.items()} for k, v in ratios.items()}},
            indent=2))
    if any(bad.values()):
        print(f"unexpected answers (status, or a replayed transfer): {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
