"""The HTTP/1.1 protocol `serve` runs uvicorn with: uvicorn's httptools protocol, with a bound
on the size of a request's head (its request line and headers) and on how slowly a client may
send a request.

uvicorn bounds neither with httptools: a 1 MB header was read and handed to the app, and a
client that opened a connection and sent nothing, or a byte of its request every few
seconds, held the connection for ever (uvicorn's keep-alive timeout runs only between
requests, and any byte stops it). Here:

- the head must arrive in full within `SANDBOX_HEADER_TIMEOUT` seconds of the connection
  opening or of the previous answer; else 408 and the connection closed (or, if not a byte of
  it came, just closed, as an idle keep-alive connection is);
- a body whose next bytes do not come within `SANDBOX_BODY_TIMEOUT` seconds: 408 (if the app
  has not answered yet) and the connection closed; the app reading it sees the client gone;
- a head larger than `SANDBOX_MAX_HEADER_BYTES` (the request line and every header, counted
  as sent) is answered 431 and the connection closed, before the app sees it. While it is
  still arriving, the bytes received for it are counted too, so that the parser never holds
  much more than the limit.

The limits are read from the environment once per process (`serve` sets it for its workers).
These answers come before there is a request for the app: `sandbox.problems.raw_http` writes
them whole.
"""

from __future__ import annotations

import functools

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from sandbox.problems import raw_http
from sandbox.refusals import HeadersTooLarge, Refusal, RequestTimeout
from sandbox.settings import Settings

_LINGER_S = 1.0


@functools.cache
def _limits() -> tuple[int, float, float]:
    settings = Settings.from_env()
    return settings.max_header_bytes, settings.header_timeout, settings.body_timeout


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a head that must be small and come soon, and a body
    that must keep coming."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_head_bytes, self.head_timeout, self.body_timeout = _limits()
        self._head_timer = None
        self._body_timer = None
        self._body_open = False  # a request's headers came, the end of its body has not
        self._body_seen = 0.0  # when its body's last bytes came
        self._head_open = False  # a request's first byte came, its last header has not
        self._head_received = 0  # bytes received since the open head began (an upper bound)
        self._refused = False

    # -- the clocks: from the connection or the last answer to the end of the next head; ------
    # -- from the last bytes of a body to its next ones ------------------------------------------

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._head_open:
            self._refuse(RequestTimeout(
                f"The request line and headers did not arrive within {self.head_timeout:g} s "
                "(SANDBOX_HEADER_TIMEOUT)."))
        else:
            self.transport.close()

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc) -> None:
        self._disarm()
        if self._body_timer is not None:
            self._body_timer.cancel()
        super().connection_lost(exc)

    def _body_stalled(self) -> None:
        """The body's timer: armed only when a read ends with the body unfinished, and moved
        on rather than re-armed for every read that brings more of it."""
        self._body_timer = None
        if not self._body_open or self._refused or self.transport.is_closing():
            return
        if self.flow.read_paused:  # the app is not reading it yet: not the client's delay
            self._body_seen = self.loop.time()
        idle = self.loop.time() - self._body_seen
        if idle < self.body_timeout:
            self._body_timer = self.loop.call_later(self.body_timeout - idle, self._body_stalled)
            return
        refusal = RequestTimeout(f"The request body stopped for {self.body_timeout:g} s "
                                 "(SANDBOX_BODY_TIMEOUT).")
        if self.cycle is not None and self.cycle.response_started:
            self._refused = True
            self.transport.close()  # answered already: nothing more to say
        else:
            self._refuse(refusal)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self.pipeline:
            self._arm()  # the next request's head; uvicorn's keep-alive timer runs as well

    # -- the size ---------------------------------------------------------------------------

    def _refuse(self, refusal: Refusal) -> None:
        self._refused = True
        self._disarm()
        self.logger.warning("refused a request: %s", refusal.detail)
        self.transport.write(raw_http(refusal))
        # A lingering close: what the client is still sending is read and dropped for a
        # moment, so that closing with it unread (a TCP reset) does not destroy the answer
        # before the client reads it.
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(_LINGER_S, self.transport.close)
        else:
            self.transport.close()

    def _too_large(self) -> None:
        self._refuse(HeadersTooLarge(
            f"The request line and headers are larger than the {self.max_head_bytes} bytes "
            "the sandbox accepts (SANDBOX_MAX_HEADER_BYTES)."))

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)
        if self._body_open:
            self._body_seen = self.loop.time()
            if self._body_timer is None:
                self._body_timer = self.loop.call_later(self.body_timeout, self._body_stalled)
        if self._head_open and not self._refused:
            self._head_received += len(data)
            if self._head_received > self.max_head_bytes and not self.transport.is_closing():
                self._too_large()

    def on_message_begin(self) -> None:
        if self._refused:
            return
        super().on_message_begin()
        self._head_open = True
        self._head_received = 0

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._head_open = False
        self._disarm()
        # The head as sent: the target and each header with its ": " and CRLF (counted once
        # here, not in a callback per header).
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.max_head_bytes:
            self._too_large()
            return
        self._body_open = True
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._body_open = False
        if not self._refused:
            super().on_message_complete()
