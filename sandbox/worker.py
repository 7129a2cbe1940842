"""What a server process does besides answering requests: settles payments to other banks when
they fall due and delivers notifications. Every process runs one; the store keeps them apart."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sandbox import payments
from sandbox.clock import Clock
from sandbox.notify import Dispatcher
from sandbox.security.callbacks import policy_for
from sandbox.settings import Settings
from sandbox.store import Store

logger = logging.getLogger(__name__)

POLL_S = 0.25  # how often an idle process looks for due work


class Worker:
    def __init__(self, store: Store, clock: Clock, settings: Settings):
        self.store = store
        self.clock = clock
        self.dispatcher = Dispatcher(store, clock, settings.notify_backoff,
                                     settings.notify_timeout, policy=policy_for(settings))
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    def wake(self) -> None:
        """New work was committed in this process: look now rather than at the next poll."""
        self._wake.set()

    async def run_once(self) -> int:
        """One round of due work; how many payments and notifications it handled."""
        settled = await payments.settle_due(self.store, self.clock)
        return settled + await self.dispatcher.deliver_due()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                busy = await self.run_once()
            except Exception:  # a database hiccup must not end delivery for good
                logger.exception("background round failed; trying again shortly")
                busy = 0
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), POLL_S)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sandbox-worker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.dispatcher.close()
