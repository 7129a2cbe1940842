"""Partners are tenants: creating one provisions its credentials and its own synthetic bank."""

from __future__ import annotations

import re

from sandbox import mint
from sandbox.bank import BankProfile, generate_bank
from sandbox.bank.generate import partner_id_for
from sandbox.clock import Clock
from sandbox.records import Partner
from sandbox.store import DuplicateError, Store

__all__ = ["DEFAULT_REDIRECT_URIS", "PartnerError", "create_partner", "partner_id_for"]

PARTNER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
REDIRECT_URI = re.compile(r"^https?://[A-Za-z0-9.:\[\]-]+(/[!-~]*)?$")
#: Where customers are sent back after authorising, unless the partner registers its own.
DEFAULT_REDIRECT_URIS = ("http://127.0.0.1:8080/callback",)


class PartnerError(ValueError):
    """A partner cannot be created as asked."""


async def create_partner(
    store: Store, name: str, profile: BankProfile, *, seed: int | None = None,
    redirect_uris: tuple[str, ...] | list[str] = DEFAULT_REDIRECT_URIS,
    clock: Clock | None = None,
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
    bank_seed = await store.partners.bank_seed(seed)
    bank = generate_bank(bank_seed, name, profile)
    # Prefixed: a secret starting with "-" reads as a flag on a command line
    # (`--client-secret -x…`), and one in 64 of the URL-safe alphabet's first letters is "-".
    client_secret = mint.secret("cs_")
    partner = Partner(
        partner_id=bank.partner_id, name=name, client_id=mint.hex_secret("cli_", 10),
        secret_hash=mint.digest(client_secret), seed=bank_seed, profile=profile.name,
        created_at=(clock or Clock()).now().isoformat(timespec="seconds"),
        redirect_uris=" ".join(redirect_uris), clock_offset_s=0)
    try:
        await store.partners.add_with_bank(partner, bank.booking)
    except DuplicateError:
        raise PartnerError(f"a partner named {name!r} exists already in this database") from None
    return {
        "partner_id": partner.partner_id,
        "name": name,
        "client_id": partner.client_id,
        "client_secret": client_secret,
        "redirect_uris": list(redirect_uris),
        "seed": bank_seed,
        "profile": profile.name,
        "customers": len(bank.customers),
        "accounts": len(bank.accounts),
        "transactions": len(bank.booking.lines),
    }
