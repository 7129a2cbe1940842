"""Commands that run the sandbox and provision it: serve, partner create, operator create, token."""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import os
import socket
import sys

from sandbox import __version__
from sandbox.cli.base import PROG, CommandError
from sandbox.settings import Settings, SettingsError


def _settings(args: argparse.Namespace, **extra) -> Settings:
    flags = {
        name: getattr(args, name, None)
        for name in ("host", "port", "db", "seed", "workers", "profile", "token_ttl", "log_level")
    }
    return Settings.from_env(**flags, **extra)


async def _check_database(settings: Settings) -> None:
    from sandbox.store import StoreError, open_store

    try:
        async with open_store(settings.db) as store:
            await store.partners.bank_seed(settings.seed)
    except StoreError as exc:
        raise CommandError(str(exc)) from exc


def _new_database(url: str) -> str | None:
    """The absolute path of the SQLite file a command is about to make, if there is none yet:
    run from another folder, the default `sqlite:///sandbox.db` is a new, empty database."""
    from sandbox.store import StoreError, sqlite_path

    try:
        path = sqlite_path(url) if url.startswith("sqlite:") else ":memory:"
    except StoreError:  # opening it says what is wrong
        return None
    return os.path.abspath(path) if path != ":memory:" and not os.path.exists(path) else None


def _say_if_new(new: str | None, what: str) -> None:
    if new:
        print(f"{PROG}: note: {new} did not exist: this is a new, empty database. A server "
              f"started on another database will not know this {what}; pass --db (or "
              "SANDBOX_DB) to use the one `serve` printed at start.", file=sys.stderr)


def _check_port(host: str, port: int) -> None:
    """Refuse a port another process listens on, before anything says "serving on". Bound as
    uvicorn binds (SO_REUSEADDR), so a port in TIME_WAIT is not taken for one in use."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise SettingsError(f"port {port} is in use on {host}; pick another with --port or "
                                "SANDBOX_PORT") from None
        raise SettingsError(f"cannot serve on {host}:{port}: {exc.strerror or exc}; pick "
                            "another --host or --port") from None


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from sandbox.store import database_name

    allow = getattr(args, "callback_allow", None)
    settings = _settings(args, callback_allow=tuple(allow) if allow else None)
    _check_port(settings.host, settings.port)
    from sandbox.contracts import ContractError, load_contracts

    try:
        load_contracts(settings.contracts_dir)
    except ContractError as exc:
        raise CommandError(str(exc)) from exc
    asyncio.run(_check_database(settings))
    # Workers are separate processes: they read the settings from the environment.
    for name in ("host", "port", "db", "seed", "workers", "profile", "token_ttl", "log_level"):
        value = getattr(settings, name)
        if value is not None:
            os.environ["SANDBOX_" + name.upper()] = str(value)
    os.environ["SANDBOX_CALLBACK_ALLOW"] = ",".join(settings.callback_allow)
    print(
        f"{PROG} {__version__}: serving on http://{settings.host}:{settings.port} "
        f"(database {database_name(settings.db)}); contracts at "
        f"http://{settings.host}:{settings.port}/contracts",
        file=sys.stderr,
        flush=True,
    )
    try:
        uvicorn.run(
            "sandbox.app:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=settings.log_level,
            access_log=args.access_log,
            lifespan="on",
            # uvicorn's httptools protocol, with the request head bounded in size and time.
            http="sandbox.protocol:GuardedHttpToolsProtocol",
            timeout_keep_alive=settings.keep_alive_timeout,
        )
    except SystemExit as exc:  # uvicorn's own codes (3: could not start) are not ours
        if exc.code not in (None, 0):
            raise CommandError("the server could not start or stopped on an error; see the "
                               "messages above") from None
    return 0


def cmd_partner_create(args: argparse.Namespace) -> int:
    from sandbox.bank.profile import ProfileError, load_profile
    from sandbox.partners import DEFAULT_REDIRECT_URIS, PartnerError, create_partner
    from sandbox.store import StoreError, database_name, open_store

    settings = _settings(args)
    database, new = database_name(settings.db), _new_database(settings.db)

    async def run() -> dict:
        profile = load_profile(settings.fixtures_dir, settings.profile)
        async with open_store(settings.db) as store:
            return await create_partner(store, args.name, profile, seed=settings.seed,
                                        redirect_uris=args.redirect_uri or DEFAULT_REDIRECT_URIS)

    try:
        created = asyncio.run(run())
    except (PartnerError, ProfileError, StoreError) as exc:
        raise CommandError(str(exc)) from exc
    created["database"] = database
    _say_if_new(new, "partner")
    if args.json:
        print(json.dumps(created, ensure_ascii=False))
    else:
        print(
            f"Partner {created['name']} ({created['partner_id']}) created in {database} with "
            f"{created['customers']} customers, {created['accounts']} accounts and "
            f"{created['transactions']} transactions (seed {created['seed']}).\n"
            f"  client_id:     {created['client_id']}\n"
            f"  client_secret: {created['client_secret']}   (shown only now)\n"
            f"Get a token:\n"
            f"  curl -s -u {created['client_id']}:{created['client_secret']} "
            f"-d grant_type=client_credentials http://127.0.0.1:{settings.port}/oauth2/token"
        )
    return 0


def cmd_operator_create(args: argparse.Namespace) -> int:
    from sandbox.security.operators import OperatorError, create_operator
    from sandbox.store import StoreError, database_name, open_store

    settings = _settings(args)
    database, new = database_name(settings.db), _new_database(settings.db)

    async def run() -> dict:
        async with open_store(settings.db) as store:
            return await create_operator(store, args.name)

    try:
        created = asyncio.run(run())
    except (OperatorError, StoreError) as exc:
        raise CommandError(str(exc)) from exc
    created["database"] = database
    _say_if_new(new, "key")
    if args.json:
        print(json.dumps(created))
    else:
        print(f"Operator {created['name']} ({created['operator_id']}) created in {database}.\n"
              f"  operator_key: {created['operator_key']}   (shown only now)\n"
              "Send it as X-Operator-Key to the control plane at /sandbox/v1.")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from sandbox.consent_client import ConsentFlowError, customer_token
    from sandbox.rules.consents import PERMISSIONS

    permissions = None
    if args.permissions:
        permissions = [p.strip() for p in args.permissions.split(",") if p.strip()]
        unknown = sorted(set(permissions) - set(PERMISSIONS))
        if unknown:
            raise SettingsError(f"unknown permission(s) {', '.join(unknown)}; known: "
                                f"{', '.join(PERMISSIONS)}")
    # Where `serve` is by default: SANDBOX_PORT is the one variable both commands read.
    base_url = (args.base_url or os.environ.get("SANDBOX_BASE_URL")
                or f"http://127.0.0.1:{Settings.from_env().port}")
    try:
        token = customer_token(base_url.rstrip("/"), args.client_id, args.client_secret,
                               customer_id=args.customer, permissions=permissions)
    except ConsentFlowError as exc:
        raise CommandError(str(exc)) from exc
    out = {key: token[key] for key in ("access_token", "refresh_token", "consent_id",
                                        "customer_id")}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"Customer {out['customer_id']} authorised consent {out['consent_id']}.\n"
              f"  access_token:  {out['access_token']}\n"
              f"  refresh_token: {out['refresh_token']}\n"
              f"Try it:\n  curl -s -H 'Authorization: Bearer {out['access_token']}' "
              f"{base_url.rstrip('/')}/accounts/v1/accounts")
    return 0
