"""The body limit of sandbox.middleware.FastPathMiddleware, at the ASGI level.

A Content-Length over the limit is refused before the body is read. A body without one
(chunked) is counted as it is read; the read past the limit raises the 413 problem, and that is
what leaves the middleware whatever the reader made of it: Connexion's JSON validator (ours,
sandbox.validation) turns any exception into 400 MALFORMED_BODY, a handler may answer
something else. With Connexion 3.3 nothing of the sandbox's reads a chunked body (Connexion
refuses a required body without a Content-Length unread), so these readers are made here.
"""

from __future__ import annotations

import asyncio

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.app import create_app
from sandbox.middleware import FastPathMiddleware
from sandbox.refusals import Refusal
from sandbox.settings import Settings
from sandbox.validation import FieldJSONBodyValidator

LIMIT = 10


def http_scope(*, length: int | None = None, chunked: bool = True) -> dict:
    headers = [(b"content-type", b"application/json")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    elif chunked:
        headers.append((b"transfer-encoding", b"chunked"))
    return {"type": "http", "method": "POST", "path": "/anything", "raw_path": b"/anything",
            "query_string": b"", "headers": headers, "root_path": "", "scheme": "http",
            "server": ("testserver", 80), "client": ("127.0.0.1", 1234), "http_version": "1.1"}


def client(*parts: bytes):
    """A receive giving `parts` as body messages, and the list of the messages it gave."""
    given = []
    messages = [{"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
                for i, part in enumerate(parts)]

    async def receive():
        message = messages[len(given)] if len(given) < len(messages) else {
            "type": "http.disconnect"}
        given.append(message)
        return message

    return receive, given


def run(app, scope, receive) -> list[dict]:
    sent = []

    async def send(message):
        sent.append(message)

    asyncio.run(FastPathMiddleware(app, fast_path=None, max_body_bytes=LIMIT)(
        scope, receive, send))
    return sent


def assert_too_large(excinfo) -> None:
    problem = excinfo.value
    assert isinstance(problem, Refusal)
    assert (problem.status, problem.code) == (413, "PAYLOAD_TOO_LARGE")


async def json_validator_app(scope, receive, send):
    """What Connexion's body validation does with the body: our FieldJSONBodyValidator."""
    validator = FieldJSONBodyValidator(schema={"type": "object"}, required=True,
                                       encoding="utf-8", strict_validation=True)

    async def stream():
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
            yield message.get("body", b"")

    body = await validator._parse(stream(), scope)
    await JSONResponse(body)(scope, receive, send)


async def answering_app(scope, receive, send):
    """A reader that answers a 400 itself when reading the body fails."""
    try:
        await Request(scope, receive).body()
    except Exception:
        await Response("bad body", status_code=400)(scope, receive, send)
        return
    await Response("ok")(scope, receive, send)


async def silent_app(scope, receive, send):
    """A reader that swallows the failure and answers nothing."""
    try:
        await Request(scope, receive).body()
    except Exception:
        return


def test_a_content_length_over_the_limit_is_refused_unread():
    receive, given = client(b"x" * (LIMIT + 1))
    with pytest.raises(Refusal) as excinfo:
        run(answering_app, http_scope(length=LIMIT + 1), receive)
    assert_too_large(excinfo)
    assert given == []


def test_a_body_at_the_limit_is_served():
    for scope, parts in ((http_scope(length=LIMIT), [b'{"a": 12}', b" "]),
                         (http_scope(), [b'{"a": ', b"12} "])):
        receive, _ = client(*parts)
        sent = run(json_validator_app, scope, receive)
        assert sent[0]["status"] == 200 and sent[1]["body"] == b'{"a":12}'


@pytest.mark.parametrize("app", [json_validator_app, answering_app, silent_app])
def test_a_chunked_body_over_the_limit_is_refused_whatever_its_reader_makes_of_it(app):
    receive, given = client(b'{"a": ', b'"123456789"}', b"never read")
    with pytest.raises(Refusal) as excinfo:
        run(app, http_scope(), receive)
    assert_too_large(excinfo)
    assert len(given) == 2  # read only up to the limit


def test_the_413_is_the_apps_problem_on_a_route_that_reads_a_chunked_body(tmp_path):
    """Through the whole stack: the app's error handlers render the problem."""
    app = create_app(Settings.from_env({"SANDBOX_MAX_BODY_BYTES": str(LIMIT)},
                                       db=f"sqlite:///{tmp_path / 'sandbox.db'}"))

    lengths = []

    async def echo(request):
        lengths.append(request.headers.get("content-length"))
        try:
            return Response(await request.body())
        except Exception:
            return Response("unreadable", status_code=400)

    app.add_url_rule("/echo", "echo", echo, methods=["POST"])
    with app.test_client() as test_client:
        small = test_client.post("/echo", content=iter([b"12345", b"67890"]))
        assert (small.status_code, small.content) == (200, b"1234567890")
        assert lengths == [None]  # chunked: counted as it was read
        for content in (iter([b"12345", b"678901"]), b"12345678901"):
            answer = test_client.post("/echo", content=content)
            assert answer.status_code == 413
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["code"] == "PAYLOAD_TOO_LARGE"
        assert lengths == [None, None]  # the Content-Length one never reached the route


def test_without_framing_headers_only_http_1_has_no_body_to_count():
    receive, given = client(b"12345", b"678901")
    sent = run(answering_app, http_scope(chunked=False), receive)  # HTTP/1.1: no body
    assert sent[0]["status"] == 200 and len(given) == 2  # read as it came, uncounted
    receive, given = client(b"12345", b"678901")
    with pytest.raises(Refusal) as excinfo:
        run(answering_app, {**http_scope(chunked=False), "http_version": "2"}, receive)
    assert_too_large(excinfo)
