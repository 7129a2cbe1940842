"""The one clock: Beijing time (UTC+8, no daylight saving), injectable so tests can move it."""

from __future__ import annotations

import datetime as dt
import time

BEIJING = dt.timezone(dt.timedelta(hours=8), "CST")


class Clock:
    """Wall-clock time, optionally shifted; every 'now' in the sandbox comes from one of these."""

    def __init__(self, offset: dt.timedelta = dt.timedelta(0)):
        self.offset = offset

    def timestamp(self) -> float:
        return time.time() + self.offset.total_seconds()

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.timestamp(), BEIJING)

    def now_for(self, offset_s: int) -> dt.datetime:
        """Now by a partner's clock: this one moved by the partner's `clock_offset_s` (the
        operator's time travel for that partner)."""
        return self.now() + dt.timedelta(seconds=offset_s)

    def move(self, delta: dt.timedelta) -> None:
        self.offset += delta
