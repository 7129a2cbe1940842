"""Commands that run the sandbox and provision it: serve, partner create, operator create, token."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _settings(args)
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
    print(
        f"{PROG} {__version__}: serving on http://{settings.host}:{settings.port} "
        f"(db {settings.db}); contracts at http://{settings.host}:{settings.port}/contracts",
        file=sys.stderr,
        flush=True,
    )
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
    return 0


def cmd_partner_create(args: argparse.Namespace) -> int:
    from sandbox.bank.profile import ProfileError, load_profile
    from sandbox.partners import DEFAULT_REDIRECT_URIS, PartnerError, create_partner
    from sandbox.store import StoreError, open_store

    settings = _settings(args)

    async def run() -> dict:
        profile = load_profile(settings.fixtures_dir, settings.profile)
        async with open_store(settings.db) as store:
            return await create_partner(store, args.name, profile, seed=settings.seed,
                                        redirect_uris=args.redirect_uri or DEFAULT_REDIRECT_URIS)

    try:
        created = asyncio.run(run())
    except (PartnerError, ProfileError, StoreError) as exc:
        raise CommandError(str(exc)) from exc
    if args.json:
        print(json.dumps(created, ensure_ascii=False))
    else:
        print(
            f"Partner {created['name']} ({created['partner_id']}) created with "
            f"{created['customers']} customers, {created['accounts']} accounts and "
            f"{created['transactions']} transactions (seed {created['seed']}).\n"
            f"  client_id:     {created['client_id']}\n"
            f"  client_secret: {created['client_secret']}   (shown only now)\n"
            f"Get a token:\n"
            f"  curl -s -u {created['client_id']}:{created['client_secret']} "
            f"-d grant_type=client_credentials http://127.0.0.1:8000/oauth2/token"
        )
    return 0


def cmd_operator_create(args: argparse.Namespace) -> int:
    from sandbox.security.operators import OperatorError, create_operator
    from sandbox.store import StoreError, open_store

    settings = _settings(args)

    async def run() -> dict:
        async with open_store(settings.db) as store:
            return await create_operator(store, args.name)

    try:
        created = asyncio.run(run())
    except (OperatorError, StoreError) as exc:
        raise CommandError(str(exc)) from exc
    if args.json:
        print(json.dumps(created))
    else:
        print(f"Operator {created['name']} ({created['operator_id']}) created.\n"
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
    base_url = args.base_url or os.environ.get("SANDBOX_BASE_URL") or "http://127.0.0.1:8000"
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
