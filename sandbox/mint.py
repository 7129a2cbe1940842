"""Every id and secret the sandbox makes, and the one digest it stores in place of a secret.

Record ids (`pay_1f0c…`: a prefix and 16 hex digits) must be unique, not secret: every read is
scoped to its partner. They come from a generator seeded once per process from the OS, not
from one system call each. A decision function, which must stay pure, does not draw them: it
is handed an `IdSource`, whose ids are derived from one number drawn before the decision (the
same number, the same ids).

Secrets (client secrets, access and refresh tokens, authorization codes, operator keys,
webhook signing secrets) come from `secrets`. The sandbox keeps only their SHA-256 digest
(`digest`), except the webhook secret, which it needs to sign with. Client secrets and tokens
are 256-bit random strings, so a plain digest resists guessing; no slow hash is needed.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import random
import secrets
import time

_random = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _random.seed(os.urandom(32)))


def record_id(prefix: str) -> str:
    """A new id for a record made now: `prefix_` and 16 hex digits."""
    return f"{prefix}_{_random.getrandbits(64):016x}"


class IdSource:
    """Ids for the records one decision makes, derived from `seed`: deterministic, unique as
    long as seeds are (`IdSource.fresh()` draws one).

    Keys only the store sees (a journal entry's movement id) may be `ordered`: the 16 digits
    follow 12 of `drawn_at`, the millisecond the source was drawn, so that each new entry goes
    at the end of the journal's indexes instead of a random page of them. Each page a commit
    touches is written and synced; ordered keys halve the journal's share of them."""

    __slots__ = ("seed", "drawn_at", "_count")

    def __init__(self, seed: int, drawn_at: int | None = None):
        self.seed = seed
        self.drawn_at = drawn_at
        self._count = itertools.count()

    @classmethod
    def fresh(cls) -> IdSource:
        return cls(_random.getrandbits(64), time.time_ns() // 1_000_000)

    def next(self, prefix: str, *, ordered: bool = False) -> str:
        mixed = _mix(self.seed + next(self._count))
        if ordered and self.drawn_at is not None:
            return f"{prefix}_{self.drawn_at:012x}{mixed:016x}"
        return f"{prefix}_{mixed:016x}"

    def rng(self) -> random.Random:
        """A generator for fields drawn at random (an account opened online: its card number),
        derived like the ids."""
        return random.Random(self.next("rng"))


_MASK = (1 << 64) - 1


def _mix(x: int) -> int:
    """SplitMix64's finaliser: distinct inputs give distinct, well-spread 64-bit outputs."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def secret(prefix: str = "", nbytes: int = 32) -> str:
    """A new secret: `prefix` and `nbytes` random bytes, URL-safe."""
    return prefix + secrets.token_urlsafe(nbytes)


def hex_secret(prefix: str, nbytes: int) -> str:
    """A new secret or public handle in hex: `prefix` and `2 * nbytes` hex digits."""
    return prefix + secrets.token_hex(nbytes)


def digest(value: str) -> str:
    """What the sandbox stores of a secret: its SHA-256, in hex."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def matches(value: str, expected_digest: str) -> bool:
    """Whether `value` is the secret `expected_digest` was made of (in constant time)."""
    return hmac.compare_digest(digest(value), expected_digest)
