"""A partner's credentials work where the README uses them: on a command line."""

from __future__ import annotations

import asyncio
import secrets

from sandbox.bank import load_profile
from sandbox.partners import create_partner
from sandbox.settings import Settings
from sandbox.store import open_store

SMALL = load_profile(Settings.from_env({}).fixtures_dir, "small")


def test_a_client_secret_never_starts_with_a_dash(tmp_path, monkeypatch):
    # One in 64 random URL-safe secrets starts with "-", which `--client-secret -x…` would
    # read as another flag: make every one of them start that way.
    real = secrets.token_urlsafe
    monkeypatch.setattr(secrets, "token_urlsafe", lambda n=None: "-" + real(n)[1:])

    async def made() -> dict:
        async with open_store(f"sqlite:///{tmp_path / 'p.db'}") as store:
            return await create_partner(store, "dashing", SMALL, seed=1)

    assert not asyncio.run(made())["client_secret"].startswith("-")
