"""PKCE (RFC 7636): the challenge a client sends with a customer to the authorisation page, and
the verifier that proves, at the token endpoint, that it is the same client."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets


def s256_challenge(verifier: str) -> str:
    """BASE64URL(SHA256(verifier)), unpadded."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def new_pkce() -> tuple[str, str]:
    """(verifier, S256 challenge): what a client makes before sending a customer to authorise."""
    verifier = secrets.token_urlsafe(48)
    return verifier, s256_challenge(verifier)


def pkce_matches(verifier: str, challenge: str, method: str) -> bool:
    """S256 compares the verifier's challenge with the one sent; plain, as is."""
    computed = s256_challenge(verifier) if method == "S256" else verifier
    return hmac.compare_digest(computed, challenge)
