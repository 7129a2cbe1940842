"""PKCE (RFC 7636): the challenge a client sends with a customer to the authorisation page, and
the verifier that proves, at the token endpoint, that it is the same client.

Only S256: a `plain` challenge is the verifier itself, so whoever sees the authorisation request
(a browser history, a proxy log) could redeem the code; RFC 9700 §2.1.1 forbids it for that."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

#: RFC 7636 §4.1: 43 to 128 characters of the unreserved set.
VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")
#: §4.2: BASE64URL(SHA256(verifier)) without padding is 43 characters, always.
S256_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")


def s256_challenge(verifier: str) -> str:
    """BASE64URL(SHA256(verifier)), unpadded."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def new_pkce() -> tuple[str, str]:
    """(verifier, S256 challenge): what a client makes before sending a customer to authorise."""
    verifier = secrets.token_urlsafe(48)
    return verifier, s256_challenge(verifier)


def challenge_problem(challenge: str | None, method: str | None) -> str | None:
    """What is wrong with a PKCE challenge sent to authorise, in words; None if nothing."""
    if not challenge:
        return "PKCE is required: send code_challenge and code_challenge_method=S256."
    if method != "S256":
        return ("code_challenge_method must be S256 (plain is not accepted, nor is leaving it "
                "out, which means plain).")
    if not S256_CHALLENGE.fullmatch(challenge):
        return ("code_challenge must be the 43-character unpadded base64url SHA-256 of the "
                "code_verifier.")
    return None


def pkce_matches(verifier: str, challenge: str) -> bool:
    """The verifier is well formed and its S256 challenge is the one sent."""
    if not VERIFIER.fullmatch(verifier):
        return False
    return hmac.compare_digest(s256_challenge(verifier), challenge)
