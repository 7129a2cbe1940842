"""The argparse parser of every command and subcommand, each bound to its handler."""

from __future__ import annotations

import argparse
import shutil
import textwrap

from sandbox import __version__
from sandbox.cli.admin import cmd_operator_create, cmd_partner_create, cmd_serve, cmd_token
from sandbox.cli.base import PROG
from sandbox.cli.checks import cmd_contracts_diff, cmd_contracts_lint, cmd_load, cmd_verify


def _paragraphs(*paragraphs: str) -> str:
    return "\n\n".join(textwrap.fill(p, width=min(shutil.get_terminal_size().columns, 100) - 2)
                       for p in paragraphs)


def _db_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="database URL: sqlite:///rel.db, sqlite:////abs/path.db, "
                        "postgresql://user@host/db (env SANDBOX_DB; default sqlite:///sandbox.db)")
    parser.add_argument("--seed", type=int, help="seed of the synthetic banks; fixed for a "
                        "database when it is first used (env SANDBOX_SEED; default 1)")
    parser.add_argument("--profile", help="bank profile from fixtures/profiles "
                        "(env SANDBOX_PROFILE; default 'default')")


def _at_least_one(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Open-banking sandbox: mock banking APIs served from OpenAPI contracts, "
        "over a deterministic synthetic bank per partner.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser(
        "serve", help="serve every contract in contracts/",
        description="Serve every contract in contracts/ over HTTP. Prints the address and the "
        "database's absolute path at start (a relative SQLite URL is relative to the folder "
        "serve runs in). Exit status: 0 stopped, 1 the server failed (message on stderr), "
        "2 usage error: a bad setting, or the port in use.")
    serve.add_argument("--host", help="interface to bind (env SANDBOX_HOST; default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (env SANDBOX_PORT; default 8000)")
    serve.add_argument("--workers", type=int, help="server processes (env SANDBOX_WORKERS; "
                       "default 1; use PostgreSQL for many)")
    serve.add_argument("--token-ttl", type=int, help="access token lifetime in seconds "
                       "(env SANDBOX_TOKEN_TTL; default 3600)")
    serve.add_argument("--log-level", choices=["critical", "error", "warning", "info", "debug"],
                       help="(env SANDBOX_LOG_LEVEL; default info)")
    serve.add_argument("--callback-allow", action="append", metavar="CIDR",
                       help="also send callbacks to addresses in this range, e.g. a container "
                       "network's 172.18.0.0/16; repeat for several (env SANDBOX_CALLBACK_ALLOW, "
                       "comma-separated; default none: public addresses, and loopback while "
                       "--host is loopback)")
    serve.add_argument("--no-access-log", dest="access_log", action="store_false",
                       help="do not log each request (faster under load)")
    _db_flags(serve)
    serve.set_defaults(handler=cmd_serve)

    partner = commands.add_parser("partner", help="manage partners",
                                  description="Manage partners (tenants of the sandbox).")
    partner_commands = partner.add_subparsers(dest="partner_command", metavar="COMMAND",
                                              required=True)
    create = partner_commands.add_parser(
        "create", help="create a partner and its synthetic bank",
        description="Create a partner: prints its credentials and provisions its synthetic "
        "bank, generated from (seed, NAME), in the database. A running server sees it at once.",
    )
    create.add_argument("name", metavar="NAME", help="partner name, e.g. acme")
    create.add_argument("--redirect-uri", action="append", metavar="URL",
                        help="where customers return after authorising a consent; repeat for "
                        "several (default http://127.0.0.1:8080/callback)")
    create.add_argument("--json", action="store_true", help="print the result as JSON")
    _db_flags(create)
    create.set_defaults(handler=cmd_partner_create)

    operator = commands.add_parser("operator", help="manage bank operators",
                                   description="Manage bank operators (control-plane users).")
    operator_commands = operator.add_subparsers(dest="operator_command", metavar="COMMAND",
                                                required=True)
    make = operator_commands.add_parser(
        "create", help="create an operator and print its key",
        description="Create a bank operator for the control plane (/sandbox/v1) and print its "
        "key, which is stored only as a digest.")
    make.add_argument("name", metavar="NAME", help="operator name, e.g. ops")
    make.add_argument("--json", action="store_true", help="print the result as JSON")
    make.add_argument("--db", help="database URL (env SANDBOX_DB; default sqlite:///sandbox.db)")
    make.set_defaults(handler=cmd_operator_create)

    token = commands.add_parser(
        "token", help="get a customer-bound token through the headless consent path",
        description="Create a consent, have one of the partner's synthetic customers approve "
        "it headlessly (with PKCE), and exchange the code: prints an access token and a "
        "refresh token bound to that customer and consent. Needs a running sandbox.")
    token.add_argument("--client-id", required=True, help="the partner's client_id")
    token.add_argument("--client-secret", required=True, help="the partner's client_secret")
    token.add_argument("--customer", metavar="ID",
                       help="the customer who approves (default: the partner's first)")
    token.add_argument("--permissions", metavar="P,...",
                       help="ReadAccounts,ReadBalances,ReadTransactions,InitiatePayments "
                       "(default: all)")
    token.add_argument("--base-url", help="the sandbox (env SANDBOX_BASE_URL; default "
                       "http://127.0.0.1:PORT, PORT from SANDBOX_PORT as for serve, or 8000)")
    token.add_argument("--json", action="store_true", help="print the result as JSON")
    token.set_defaults(handler=cmd_token)

    verify = commands.add_parser(
        "verify", help="fuzz a running server against an OpenAPI 3 contract",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=_paragraphs(
            "Fuzz a running server against an OpenAPI 3 contract with schemathesis: the "
            "contract's examples, coverage (boundaries, missing and wrong parameters), random "
            "fuzzing and stateful scenarios along its links; schema-valid and schema-invalid "
            "requests; every check (server errors, undocumented status codes and content "
            "types, response schemas and headers, valid data refused, invalid data accepted, "
            "authentication ignored). A 422 to schema-valid data is a business refusal, not a "
            "violation; a 400 to it is.",
            "Only safe operations (GET, HEAD, OPTIONS, TRACE) are run unless --unsafe is given: "
            "every other method may change the server (a POST that only reads too), so POST, "
            "PUT, PATCH and DELETE operations are skipped, and the summary lists them. If every "
            "secured operation refuses every schema-valid request with 401/403, the credentials "
            "are wrong and the run tested nothing: exit 2, unless --expect-refusals. Operations "
            "that refuse them while others accept are listed as not exercised.",
            "With --receiver, check a partner's notification receiver instead: it must "
            "acknowledge a notification signed as the sandbox signs them and its retry, and "
            "refuse unsigned, malformed, wrongly signed, tampered, stale and replayed ones.",
            "Exit status: 0 conforms, 1 violations found, 2 usage error (unreadable contract, "
            "unreachable server, every secured operation refused the credentials)."),
        epilog="examples:\n"
        "  openbank-sandbox verify --contract accounts \\\n"
        "      --base-url http://127.0.0.1:8000/accounts/v1 \\\n"
        "      --header \"Authorization: Bearer $TOKEN\" --junit-xml verify.xml\n"
        "  openbank-sandbox verify --contract ./openapi.yaml --base-url http://127.0.0.1:5000 \\\n"
        "      --header \"Authorization: Bearer $TOKEN\" --unsafe  # writes too\n"
        "  openbank-sandbox verify --receiver http://127.0.0.1:5000/hooks/payments \\\n"
        "      --signing-secret $SECRET")
    verify.add_argument("--contract", metavar="PATH|NAME",
                        help="an OpenAPI 3 file (YAML or JSON), or the name of one of the "
                        "sandbox's contracts (accounts, payments, consents, platform, sandbox)")
    verify.add_argument("--base-url", metavar="URL",
                        help="where the contract's paths are served, e.g. "
                        "http://127.0.0.1:8000/accounts/v1")
    verify.add_argument("--header", action="append", metavar="'K: V'",
                        help="a header sent with every request, e.g. credentials; repeat for "
                        "several")
    verify.add_argument("--junit-xml", metavar="FILE", help="write a JUnit XML report")
    verify.add_argument("--max-examples", type=_at_least_one, default=50, metavar="N",
                        help="random requests per operation in the fuzzing phase (default 50)")
    verify.add_argument("--seed", type=int, metavar="N",
                        help="fix the random choices: the same seed sends the same requests")
    verify.add_argument("--phases", default="examples,coverage,fuzzing,stateful",
                        metavar="P,...", help="which of examples,coverage,fuzzing,stateful "
                        "to run (default all)")
    verify.add_argument("--workers", type=_at_least_one, default=1, metavar="N",
                        help="operations tested at once (default 1)")
    verify.add_argument("--unsafe", action="store_true",
                        help="also run POST, PUT, PATCH and DELETE operations, which may change "
                        "the server (default: skipped and listed)")
    verify.add_argument("--expect-refusals", action="store_true",
                        help="the credentials are meant to be refused: a run where every "
                        "secured operation answers 401/403 is not an error")
    verify.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="per request (default 10)")
    verify.add_argument("--receiver", metavar="URL",
                        help="check a notification receiver at URL instead of a contract")
    verify.add_argument("--signing-secret", metavar="SECRET",
                        help="with --receiver: the callback's signing secret")
    verify.set_defaults(handler=cmd_verify)

    contracts = commands.add_parser(
        "contracts", help="lint contracts and find breaking changes between two versions",
        description="Check OpenAPI contracts without a server.")
    contract_commands = contracts.add_subparsers(dest="contracts_command", metavar="COMMAND",
                                                 required=True)
    lint = contract_commands.add_parser(
        "lint", help="validate documents and the house rules",
        description="Validate OpenAPI 3.0 documents against the specification's schema and the "
        "house rules: every operation has an operationId, a summary and documented 4xx "
        "responses that use the Problem schema (RFC 7807); every example validates against its "
        "schema; money fields use the Money schema. Exit 0 clean, 1 findings, 2 unreadable.")
    lint.add_argument("paths", nargs="*", metavar="PATH",
                      help="files or directories (default: the sandbox's contracts/)")
    lint.add_argument("--format", choices=["text", "json", "junit"], default="text")
    lint.set_defaults(handler=cmd_contracts_lint)
    diff = contract_commands.add_parser(
        "diff", help="report breaking and non-breaking changes from OLD to NEW",
        description="Compare two versions of a contract. Breaking changes are those that can "
        "break a client written against OLD: a removed operation, response or property; a new "
        "required parameter or property; a narrowed type or enum; a tightened pattern or "
        "bound; changed security. Exit 0 no breaking change, 1 breaking, 2 unreadable.")
    diff.add_argument("old", metavar="OLD", help="the earlier version (file, or contract name)")
    diff.add_argument("new", metavar="NEW", help="the later version (file, or contract name)")
    diff.add_argument("--format", choices=["text", "json", "junit"], default="text")
    diff.set_defaults(handler=cmd_contracts_diff)
    load = commands.add_parser(
        "load", help="replay a day of partners' traffic with Locust, then reconcile",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=_paragraphs(
            "Run Locust headless: users act as partners' apps (consent tokens, account reads, "
            "idempotent transfers retried on timeouts, payment polling), paced to follow the "
            "profile's 24-hour curve compressed into --duration, every answer checked against "
            "its contract. Afterwards every payment acknowledged to a user is read back, and "
            "the ledger is checked: nothing lost, nothing doubled.",
            "Without --host a sandbox is started for the run (and stopped after it). The "
            "report directory gets Locust's report.html and CSVs, and summary.json.",
            "Exit status: 0 no failures and reconciliation ok, 1 otherwise, 2 usage error, "
            "130 interrupted (Ctrl-C): plan.json (live tokens) removed, the report marked "
            "partial in summary.json."),
        epilog="examples:\n"
        "  openbank-sandbox load --profile daily --calls 20000 --duration 60\n"
        "  openbank-sandbox load --profile peak --workers 2 --server-workers 2 "
        "--report peak-report\n"
        "  openbank-sandbox load --profile daily --host http://10.0.0.5:8000 "
        "--partners partners.json --operator-key $KEY")
    load.add_argument("--profile", default="daily", metavar="daily|peak|PATH",
                      help="traffic profile from fixtures/traffic, or a file (default daily)")
    load.add_argument("--calls", type=int, metavar="N",
                      help="total calls (default: the profile's: daily 250,000, peak 1,000,000)")
    load.add_argument("--duration", type=float, metavar="SECONDS",
                      help="the day compressed into this long (default: the profile's, 600)")
    load.add_argument("--host", metavar="URL",
                      help="load this server instead of starting a sandbox")
    load.add_argument("--users", type=int, default=50, metavar="N",
                      help="simulated partner apps at once (default 50)")
    load.add_argument("--workers", type=int, default=0, metavar="N",
                      help="Locust worker processes (distributed mode: one master, N workers; "
                      "default 0, a single Locust process)")
    load.add_argument("--remote-workers", type=int, default=0, metavar="N",
                      help="Locust workers to expect from other machines: the master listens "
                      "on 0.0.0.0:5557 and prints the command to start them (default 0)")
    load.add_argument("--server-workers", type=int, default=1, metavar="N",
                      help="server processes of the sandbox started for the run (default 1)")
    load.add_argument("--report", default="load-report", metavar="DIR",
                      help="where to write the report (default ./load-report)")
    load.add_argument("--db", help="database of the sandbox started for the run "
                      "(default a new SQLite file, removed afterwards)")
    load.add_argument("--seed", type=int, help="seed of its synthetic banks")
    load.add_argument("--partners", metavar="FILE",
                      help="with --host: a JSON list of partners (as `partner create --json` "
                      "prints them) to act for")
    load.add_argument("--operator-key", metavar="KEY",
                      help="with --host: an operator key, so the ledger is reconciled too")
    load.add_argument("--quiet", action="store_true", help="no progress on stderr")
    load.set_defaults(handler=cmd_load)
    return parser
