"""`openbank-sandbox load`: plan a run, start what it needs, run Locust headless, then write
the report (summary.json beside Locust's HTML and CSVs) with its reconciliation.

Without --host the command starts a sandbox of its own on a fresh SQLite database (or --db),
with the profile's partners and an operator, and tears it down afterwards. With --host it
loads any server that implements the contracts; --partners names the partners to act for (the
JSON that `partner create --json` prints, one object each, in a list) and --operator-key lets
the reconciliation read the ledger.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from sandbox.consent_client import ConsentFlowError, customer_token
from sandbox.load.profile import Profile, ProfileError, load_profile
from sandbox.load.reconcile import reconcile
from sandbox.settings import PROJECT_ROOT

LOCUSTFILE = PROJECT_ROOT / "loadtests" / "locustfile.py"
PLAN = "plan.json"  # in the report directory while a run lasts: the population's live tokens
MASTER_PORT = 5557  # Locust's own default, for workers on other machines
UNCAPPED = ("I", "BASIC")  # account classes without PBOC caps: payers and payees


class LoadError(Exception):
    """The run cannot start or finish; one line for the user."""


class UsageError(LoadError):
    """The command was asked for something it cannot do (exit 2)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cli(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "sandbox.cli", *args, "--json"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise LoadError(done.stderr.strip() or f"openbank-sandbox {args[0]} failed")
    return json.loads(done.stdout)


def _wait_ready(url: str, proc: subprocess.Popen | None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise LoadError(f"the sandbox exited with {proc.returncode} before it was ready")
        try:
            httpx.get(url + "/contracts", timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise LoadError(f"{url} did not answer within {timeout:.0f} s")


@contextlib.contextmanager
def own_sandbox(profile: Profile, db: str | None, server_workers: int, seed: int | None):
    """A sandbox for the run: (url, partners, operator key, db); stopped afterwards."""
    with tempfile.TemporaryDirectory(prefix="sandbox-load-") as work:
        db = db or f"sqlite:///{Path(work) / 'load.db'}"
        seed_flags = ["--seed", str(seed)] if seed is not None else []
        partners = [_cli("partner", "create", f"load-{n + 1}", "--db", db, *seed_flags)
                    for n in range(profile.partners)]
        operator = _cli("operator", "create", "load", "--db", db)
        port = free_port()
        log = open(Path(work) / "server.log", "w+")  # noqa: SIM115 - closed below
        server = subprocess.Popen(
            [sys.executable, "-m", "sandbox.cli", "serve", "--port", str(port), "--db", db,
             "--workers", str(server_workers), "--log-level", "warning", "--no-access-log",
             *seed_flags], stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(url, server)
            for partner in partners:
                partner["customer_ids"] = _customers(db, partner["partner_id"],
                                                     profile.customers_per_partner)
            yield url, partners, operator["operator_key"], db
        finally:
            server.terminate()
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
            log.close()


def _customers(db: str, partner_id: str, wanted: int) -> list[str]:
    """Customers with an uncapped account that holds money: they can pay many times."""
    from sandbox.store import open_store

    async def pick() -> list[str]:
        async with open_store(db) as store:
            accounts = await store.bank.accounts(partner_id, customer_id=None, after=0,
                                                 limit=10000)
        rich = sorted({a.customer_id for a in accounts
                       if a.account_class in UNCAPPED and a.balance_fen >= 100_000})
        return rich[:wanted]

    return asyncio.run(pick())


def population(url: str, partners: list[dict], families: int = 1) -> list[dict]:
    """What each simulated user needs: a customer's consent tokens, accounts to read, accounts
    to pay from and to. Gathered through the APIs, as a partner's app would.

    At least `families` entries, each with a token family of its own (its own consent, code
    and refresh token): a refresh token works once, so two users refreshing with copies of one
    would revoke each other's tokens. Customers are reused round-robin to make up the count."""
    wanted = [(partner, customer_id) for partner in partners
              for customer_id in partner.get("customer_ids") or [None]]
    people = []
    listed_for: dict[str, list[dict]] = {}
    with httpx.Client(base_url=url, timeout=30) as client:
        for number in range(max(families, len(wanted))):
            partner, customer_id = wanted[number % len(wanted)]
            try:
                token = customer_token(url, partner["client_id"], partner["client_secret"],
                                       customer_id=customer_id, client=client)
            except ConsentFlowError as exc:
                raise LoadError(f"partner {partner.get('name', partner['client_id'])}: "
                                f"{exc}") from None
            if token["customer_id"] not in listed_for:
                listed = client.get("/accounts/v1/accounts", params={"limit": 100}, headers={
                    "Authorization": f"Bearer {token['access_token']}"})
                if listed.status_code != 200:
                    raise LoadError(f"listing a customer's accounts answered "
                                    f"{listed.status_code}: {listed.text[:200]}")
                listed_for[token["customer_id"]] = listed.json()["items"]
            accounts = listed_for[token["customer_id"]]
            basic = base64.b64encode(
                f"{partner['client_id']}:{partner['client_secret']}".encode()).decode()
            people.append({
                "partner_id": partner.get("partner_id"), "customer_id": token["customer_id"],
                "access_token": token["access_token"],
                "refresh_token": token["refresh_token"], "basic": f"Basic {basic}",
                "accounts": [a["account_id"] for a in accounts],
                "payers": [a["account_id"] for a in accounts
                           if a.get("account_class") in UNCAPPED]
                or [a["account_id"] for a in accounts][:1],
            })
    for person in people:  # pay the partner's other customers, or oneself
        others = list(dict.fromkeys(
            a for p in people if p["partner_id"] == person["partner_id"]
            and p["basic"] == person["basic"] and p["customer_id"] != person["customer_id"]
            for a in p["payers"]))
        person["payees"] = others or [a for a in person["accounts"]
                                      if a not in person["payers"][:1]] or person["payers"]
    if not people or not all(p["accounts"] for p in people):
        raise LoadError("a customer of the population has no accounts to use")
    return people


def grace_s(duration_s: float) -> float:
    """How long after the day's curve ends a run may go on making the plan's last calls (a
    user that fell behind catches up). A run ends as soon as the plan's calls are made."""
    return max(5.0, duration_s * 0.02)


def run_locust(url: str, plan_path: Path, report: Path, *, users: int, workers: int,
               remote_workers: int, duration_s: float, quiet: bool) -> int:
    """Locust headless; with workers, its master here, `workers` worker processes on this
    machine and `remote_workers` more expected from others. Its exit code."""
    env = {**os.environ, "SANDBOX_LOAD_PLAN": str(plan_path)}
    common = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--loglevel", "WARNING"]
    spawn_rate = str(max(1, users // 5))
    master = [*common, "--headless", "--host", url, "-u", str(users), "-r", spawn_rate,
              "-t", f"{max(1, round(duration_s + grace_s(duration_s)))}s",
              "--stop-timeout", "15",
              "--html", str(report / "report.html"), "--csv", str(report / "locust"),
              "--only-summary", "--exit-code-on-error", "0"]
    helpers: list[subprocess.Popen] = []
    if workers + remote_workers > 0:
        port = MASTER_PORT if remote_workers else free_port()
        bind = "0.0.0.0" if remote_workers else "127.0.0.1"
        master += ["--master", "--master-bind-host", bind, "--master-bind-port", str(port),
                   "--expect-workers", str(workers + remote_workers)]
        if remote_workers and not quiet:
            print(f"waiting for {remote_workers} remote worker(s); on each, with a copy of "
                  f"{plan_path} and of this checkout:\n  SANDBOX_LOAD_PLAN=plan.json python -m "
                  f"locust -f loadtests/locustfile.py --worker --master-host THIS_HOST "
                  f"--master-port {port}", file=sys.stderr, flush=True)
        helpers = [subprocess.Popen([*common, "--worker", "--master-host", "127.0.0.1",
                                     "--master-port", str(port)], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                   for _ in range(workers)]
    output = open(report / "locust.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(master, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        started = time.monotonic()
        while proc.poll() is None:
            time.sleep(2)
            if not quiet:
                _progress(report / "locust_stats.csv", time.monotonic() - started, duration_s)
        return proc.returncode
    finally:
        if proc.poll() is None:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(15)  # so nothing writes to the report after the command has
        for helper in helpers:
            try:
                helper.wait(30)
            except subprocess.TimeoutExpired:
                helper.kill()
        output.close()


def _progress(stats_csv: Path, elapsed: float, duration_s: float) -> None:
    try:
        with stats_csv.open(encoding="utf-8") as stream:
            total = next(row for row in csv.DictReader(stream) if row["Name"] == "Aggregated")
    except (OSError, StopIteration, KeyError):
        return
    print(f"  [{elapsed:5.0f}/{duration_s:.0f} s] "
          f"{int(total['Request Count']):>9,} calls, {int(total['Failure Count']):,} failures, "
          f"{float(total['Requests/s']):,.0f} calls/s", file=sys.stderr, flush=True)


def summarise(profile: Profile, report: Path, reconciliation: dict, *, url: str, users: int,
              workers: int, wall_s: float) -> dict:
    try:
        figures = json.loads((report / "sections.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise LoadError(f"Locust wrote no statistics; see {report / 'locust.log'}") from None
    total = figures["total"]
    # From the first call to the last, as Locust timed them (the run ends when the plan's
    # calls are made, or a grace after the curve: see grace_s).
    run_s = total.get("run_s") or min(wall_s, profile.duration_s) or 1
    rps = total["calls"] / run_s
    busiest = profile.busiest_minute()
    capacity = {
        "busiest_minute_calls": round(busiest),
        "busiest_minute_rps_needed": round(busiest / 60, 1),
        "sustained_rps": round(rps, 1), "p99_ms_at_that_rate": total["p99_ms"],
        "headroom": round(rps / (busiest / 60), 2) if busiest else None,
    }
    capacity["note"] = (
        f"A real {profile.name} day of {profile.day_calls:,} calls has its busiest minute at "
        f"{capacity['busiest_minute_calls']:,} calls ({capacity['busiest_minute_rps_needed']} "
        f"calls/s). This run sustained {capacity['sustained_rps']} calls/s with p99 "
        f"{total['p99_ms']} ms: {capacity['headroom']}x what that minute needs.")
    return {
        "profile": profile.name, "target_calls": profile.calls, "duration_s": profile.duration_s,
        "host": url, "users": users, "locust_workers": workers,
        "calls": total["calls"], "failures": total["failures"], "rps": round(rps, 1),
        "p50_ms": total["p50_ms"], "p95_ms": total["p95_ms"], "p99_ms": total["p99_ms"],
        "max_ms": total["max_ms"], "run_s": round(run_s, 1), "wall_s": round(wall_s, 1),
        "sections": figures["sections"], "operations": figures["operations"],
        "failure_reasons": figures["failure_reasons"],
        "exceptions": figures["exceptions"],
        "capacity": capacity, "reconciliation": reconciliation,
    }


def command(profile_name: str, *, calls: int | None, duration_s: float | None,
            host: str | None, users: int, workers: int, remote_workers: int, report: str,
            server_workers: int,
            db: str | None, seed: int | None, partners_file: str | None,
            operator_key: str | None, quiet: bool = False) -> int:
    for flag, value, least in (("--calls", calls, 1), ("--duration", duration_s, 1),
                               ("--users", users, 1), ("--workers", workers, 0),
                               ("--remote-workers", remote_workers, 0),
                               ("--server-workers", server_workers, 1)):
        if value is not None and value < least:
            raise UsageError(f"{flag} must be at least {least}, not {value}")
    try:
        profile = load_profile(profile_name).scaled(calls, duration_s)
    except ProfileError as exc:
        raise UsageError(str(exc)) from None
    report_dir = Path(report)
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "summary.json").unlink(missing_ok=True)  # never a previous run's
    say = (lambda *a: None) if quiet else (lambda text: print(text, file=sys.stderr,
                                                                flush=True))
    if host is None:
        say(f"starting a sandbox ({server_workers} server process(es)) with "
            f"{profile.partners} partners…")
        context = own_sandbox(profile, db, server_workers, seed)
    else:
        context = contextlib.nullcontext((host.rstrip("/"), _partners(partners_file),
                                          operator_key, None))
    with context as (url, partners, key, _):
        _wait_ready(url, None, timeout=10)
        say(f"gathering {profile.partners * profile.customers_per_partner} customers' "
            "consents…")
        processes = workers + remote_workers or 1  # each user holds a token family
        people = population(url, partners, processes * -(-users // processes))
        before = _payments_before(url, people, key)
        plan = {"profile": profile.to_dict(), "population": people, "calls": profile.calls,
                "locust_workers": workers + remote_workers, "users": users,
                "report_dir": str(report_dir)}
        plan_path = report_dir / PLAN
        plan_path.write_text(json.dumps(plan), encoding="utf-8")
        say(f"{profile.name}: {profile.calls:,} calls over {profile.duration_s:.0f} s from "
            f"{users} users" + (f" on {workers} Locust workers" if workers else "") + f" → {url}")
        started = time.monotonic()
        code = run_locust(url, plan_path, report_dir, users=users, workers=workers,
                          remote_workers=remote_workers, duration_s=profile.duration_s,
                          quiet=quiet)
        wall = time.monotonic() - started
        if code not in (0, 1):
            raise LoadError(f"Locust exited with {code}; see {report_dir / 'locust.log'}")
        say("reconciling…")
        acknowledged = json.loads((report_dir / "acknowledged.json").read_text("utf-8"))
        reconciliation = reconcile(url, people, acknowledged, key, before)
        plan_path.unlink()  # it holds live tokens (and `cmd_load` removes it on any failure)
    summary = summarise(profile, report_dir, reconciliation, url=url, users=users,
                        workers=workers + remote_workers, wall_s=wall)
    (report_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False),
                                             encoding="utf-8")
    print(render(summary, report_dir))
    clean = not summary["failures"] and not summary["exceptions"] and reconciliation["ok"]
    return 0 if clean else 1


def _partners(path: str | None) -> list[dict]:
    if not path:
        raise UsageError("--host needs --partners FILE: a JSON list of the partners to act for "
                        "(what `openbank-sandbox partner create --json` prints)")
    try:
        partners = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read --partners {path}: {exc}") from None
    partners = partners if isinstance(partners, list) else [partners]
    if not partners or not all({"client_id", "client_secret"} <= set(p) for p in partners):
        raise UsageError(f"--partners {path}: each partner needs client_id and client_secret")
    return partners


def _payments_before(url: str, people: list[dict], key: str | None) -> dict[str, int]:
    if not key:
        return {}
    counts = {}
    with httpx.Client(base_url=url, headers={"X-Operator-Key": key}, timeout=30) as client:
        for partner_id in {p["partner_id"] for p in people if p["partner_id"]}:
            answer = client.get(f"/sandbox/v1/partners/{partner_id}/ledger")
            if answer.status_code == 200:
                counts[partner_id] = answer.json()["payments"]
    return counts


def render(summary: dict, report: Path) -> str:
    rec = summary["reconciliation"]
    lines = [f"{summary['profile']}: {summary['calls']:,} calls, {summary['failures']:,} "
             f"failures, {summary['rps']:,} calls/s; p50 {summary['p50_ms']} ms, p95 "
             f"{summary['p95_ms']} ms, p99 {summary['p99_ms']} ms"]
    if summary["calls"] < summary["target_calls"]:
        lines.append(f"  only {summary['calls']:,} of the plan's {summary['target_calls']:,} "
                     "calls were made before the run's time limit (the curve and "
                     f"{grace_s(summary['duration_s']):.0f} s of grace): the load generator "
                     "fell behind; try more --workers or a longer --duration")
    for name, section in summary["sections"].items():
        lines.append(f"  {name:<10} {section['calls']:>9,} calls  {section['failures']:>6,} "
                     f"failures  p50 {section['p50_ms']} ms  p99 {section['p99_ms']} ms")
    for reason in summary["failure_reasons"][:5]:
        lines.append(f"  failure x{reason['count']}: {reason['call']}: {reason['reason']}")
    for error in summary["exceptions"][:5]:
        lines.append(f"  exception in a user x{error['count']}: {error['message']} "
                     f"({' / '.join(line.strip() for line in error['where'])})")
    lines.append(f"reconciliation: {'ok' if rec['ok'] else 'NOT OK'} ({rec['summary']})")
    lines.append("capacity: " + summary["capacity"]["note"])
    lines.append(f"report: {report / 'summary.json'}, {report / 'report.html'}")
    return "\n".join(lines)
