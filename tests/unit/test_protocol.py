"""`sandbox.protocol` in-process, over a transport that records what the server writes: the
body's clock counts only the client's delay, never the app's (tests/api/test_bad_input.py has
the rest, against a real server)."""

from __future__ import annotations

import asyncio

import pytest
import uvicorn
from uvicorn.server import ServerState

from sandbox import protocol

pytestmark = pytest.mark.slow


class Transport(asyncio.Transport):
    def __init__(self):
        super().__init__()
        self.written, self.closed = b"", False

    def get_extra_info(self, name, default=None):
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default)

    def write(self, data):
        self.written += data

    def is_closing(self):
        return self.closed

    def close(self):
        self.closed = True

    def can_write_eof(self):
        return False

    def pause_reading(self):
        pass

    def resume_reading(self):
        pass


async def never_reads(scope, receive, send):
    await asyncio.Event().wait()


def connect(monkeypatch, app) -> tuple[protocol.GuardedHttpToolsProtocol, Transport]:
    monkeypatch.setattr(protocol, "_limits", lambda: (16_384, 5.0, 0.2))
    config = uvicorn.Config(app=app, lifespan="off", log_level="critical")
    config.load()
    guarded = protocol.GuardedHttpToolsProtocol(config=config, server_state=ServerState(),
                                                app_state={})
    transport = Transport()
    guarded.connection_made(transport)
    return guarded, transport


HEAD = (b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n\r\n")


@pytest.mark.parametrize("app_reads", [False, True])
def test_a_body_held_back_by_the_app_does_not_time_out_one_held_back_by_the_client_does(
        monkeypatch, app_reads):
    async def scenario():
        guarded, transport = connect(monkeypatch, never_reads)
        guarded.data_received(HEAD + b"grant_type=")
        if not app_reads:
            guarded.flow.pause_reading()  # as uvicorn does when the app leaves a body unread
        await asyncio.sleep(0.6)
        return transport.written, transport.closed  # before the app's task is cancelled

    written, closed = asyncio.run(scenario())
    if app_reads:  # reading, and the client sent nothing more: 408
        assert written.startswith(b"HTTP/1.1 408 ") and closed
        assert b"SANDBOX_BODY_TIMEOUT" in written
    else:
        assert written == b"" and not closed


def test_a_body_that_keeps_coming_does_not_time_out(monkeypatch):
    async def scenario():
        guarded, transport = connect(monkeypatch, never_reads)
        guarded.data_received(HEAD)
        for _ in range(8):  # 0.8 s in all, never 0.2 s without a byte
            await asyncio.sleep(0.1)
            guarded.data_received(b"a")
        return transport.written, transport.closed

    assert asyncio.run(scenario()) == (b"", False)
