"""Ids of the records the sandbox makes while it runs: payments, movements, statement lines,
events (`pay_1f0c…`: a prefix and 16 hex digits).

They must be unique, not secret (every read is scoped to its partner, and tokens are made with
`secrets`), so they come from a generator seeded once per process from the OS, not from one
system call each: a transfer makes four.
"""

from __future__ import annotations

import os
import random

_random = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _random.seed(os.urandom(32)))


def new_id(prefix: str) -> str:
    return f"{prefix}_{_random.getrandbits(64):016x}"
