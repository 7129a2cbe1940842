"""Throttling of guesses: failed client secret checks, counted per client id, and failed
password checks on the authorisation page, counted per customer. Past
`settings.auth_failures` failures in a window of `settings.auth_window_s` seconds, every check of
that client or customer is refused with 429 and Retry-After until the window ends, the right
secret too: otherwise a guesser would learn the secret from the one answer that differs.

The counts are in the database, so every server process sees the same ones. Successes are
never counted nor throttled (tests, `verify` and `load` make many good token calls from one
address). Unknown client ids and usernames are not counted: there is nothing to guess there.
"""

from __future__ import annotations

import math

from sandbox.context import Context
from sandbox.refusals import TooManyAttempts, decides


def client(client_id: str) -> str:
    return f"client:{client_id}"


def customer(partner_id: str, customer_id: str) -> str:
    return f"customer:{partner_id}:{customer_id}"


@decides(TooManyAttempts)
async def check(ctx: Context, subject: str, what: str, **extra: str) -> None:
    """Refuses while `subject` has used up its failures in the current window."""
    failures, started = await ctx.store.partners.failures(subject)
    if failures >= ctx.settings.auth_failures:
        _refuse(ctx, what, started, extra)


@decides(TooManyAttempts)
async def failed(ctx: Context, subject: str, what: str, **extra: str) -> None:
    """Counts a failure; refuses if it is past the limit: checks that raced past `check` while
    others were failing are refused too, so a window answers at most the limit of failures."""
    failures, started = await ctx.store.partners.count_failure(
        subject, int(ctx.clock.timestamp()), _window(ctx))
    if failures > ctx.settings.auth_failures:
        _refuse(ctx, what, started, extra)


def _refuse(ctx: Context, what: str, started: int, extra: dict) -> None:
    left = started + _window(ctx) - ctx.clock.timestamp()
    if left > 0:
        raise TooManyAttempts(
            f"Too many failed {what} in {_window(ctx)} s; try again in {math.ceil(left)} s.",
            retry_after=math.ceil(left), **extra)


def _window(ctx: Context) -> int:
    return math.ceil(ctx.settings.auth_window_s)
