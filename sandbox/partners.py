"""Partners are tenants: creating one provisions its credentials and its own synthetic bank."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
import secrets

from sandbox.bank import BankProfile, generate_bank
from sandbox.ledger import history_journal
from sandbox.security import tokens
from sandbox.store.base import DuplicateError, Store

PARTNER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
REDIRECT_URI = re.compile(r"^https?://[A-Za-z0-9.:\[\]-]+(/[!-~]*)?$")
#: Where customers are sent back after authorising, unless the partner registers its own.
DEFAULT_REDIRECT_URIS = ("http://127.0.0.1:8080/callback",)


class PartnerError(ValueError):
    """A partner cannot be created as asked."""


def partner_id_for(name: str) -> str:
    # Derived from the name, so the same partner has the same id in every sandbox.
    return "ptn_" + hashlib.sha256(name.encode()).hexdigest()[:16]


async def create_partner(
    store: Store, name: str, profile: BankProfile, *, seed: int | None = None,
    redirect_uris: tuple[str, ...] | list[str] = DEFAULT_REDIRECT_URIS,
) -> dict:
    """Credentials (the secret is shown only now) and a bank generated from (seed, name)."""
    if not PARTNER_NAME.match(name):
        raise PartnerError(
            f"partner name {name!r} must be 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    for uri in redirect_uris:
        if not REDIRECT_URI.match(uri) or "#" in uri:
            raise PartnerError(f"redirect URI {uri!r} must be an http(s) URL in printable ASCII "
                               "without a fragment")
    bank_seed = await store.bank_seed(seed)
    bank = generate_bank(bank_seed, name, profile)
    partner_id = partner_id_for(name)
    client_id = "cli_" + secrets.token_hex(10)
    client_secret = tokens.new_secret()
    partner = {
        "partner_id": partner_id, "name": name, "client_id": client_id,
        "secret_hash": tokens.digest(client_secret), "seed": bank_seed,
        "profile": profile.name,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "redirect_uris": " ".join(redirect_uris), "clock_offset_s": 0,
    }

    def rows(items):
        return [{"partner_id": partner_id, **dataclasses.asdict(item)} for item in items]

    try:
        await store.add_partner_with_bank(
            partner, rows(bank.customers), rows(bank.accounts), rows(bank.postings),
            [{"partner_id": partner_id, **leg} for leg in history_journal(bank.postings)],
        )
    except DuplicateError:
        raise PartnerError(f"a partner named {name!r} exists already in this database") from None
    return {
        "partner_id": partner_id,
        "name": name,
        "client_id": client_id,
        "client_secret": client_secret,
        "redirect_uris": list(redirect_uris),
        "seed": bank_seed,
        "profile": profile.name,
        "customers": len(bank.customers),
        "accounts": len(bank.accounts),
        "transactions": len(bank.postings),
    }
