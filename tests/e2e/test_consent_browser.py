"""A customer authorises (or refuses) a partner's consent in a real headless browser (Debian's
chromium), driven over the DevTools protocol: the OAuth2 authorization-code flow with PKCE, from
the partner's consent request to the partner's redirect endpoint and the customer-bound token."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import threading
import time
import urllib.parse

import flask
import httpx
import pytest
from conftest import IN_CI, create_partner, free_port
from receiver import wait_for
from websockets.sync.client import connect
from werkzeug.serving import make_server

from sandbox.security.pkce import new_pkce

pytestmark = pytest.mark.slow
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium")
TIMEOUT = 30


class CdpError(Exception):
    """The browser answered a DevTools call with an error (or threw in evaluated script)."""


class Browser:
    """One headless chromium with one page, driven over the Chrome DevTools protocol."""

    def __init__(self, profile_dir):
        self.log = open(profile_dir.parent / "chromium.log", "w")
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile_dir}", "--remote-debugging-port=0", "about:blank"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        self.sockets = contextlib.ExitStack()
        self.next_id = 0
        try:
            port = self._devtools_port(profile_dir / "DevToolsActivePort")
            page = self._until(lambda: next(
                (t for t in httpx.get(f"http://127.0.0.1:{port}/json").json()
                 if t["type"] == "page"), None), "a page target")
            self.ws = self.sockets.enter_context(
                connect(page["webSocketDebuggerUrl"], max_size=None))
            self.call("Page.enable")
        except BaseException:
            self.close()
            raise

    def _devtools_port(self, path) -> int:
        def port():
            if self.proc.poll() is not None:
                self.log.flush()
                raise AssertionError(f"chromium exited: {path.parent.parent / 'chromium.log'}")
            lines = path.read_text().splitlines() if path.exists() else []
            return int(lines[0]) if lines and lines[0].strip() else None
        return self._until(port, "DevToolsActivePort")

    @staticmethod
    def _until(condition, what: str, timeout: float = TIMEOUT):
        return wait_for(condition, timeout, what)

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        deadline = time.monotonic() + TIMEOUT
        while True:
            message = json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))
            if message.get("id") != self.next_id:
                continue  # an event
            if "error" in message:
                raise CdpError(f"{method}: {message['error']}")
            return message["result"]

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise CdpError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, what: str | None = None):
        """The value of `expression` once the page has loaded and it is truthy."""
        def ready():
            try:
                return (self.evaluate("document.readyState") == "complete"
                        and self.evaluate(expression))
            except CdpError:  # the page is between two documents
                return None
        return self._until(ready, what or expression)

    def goto(self, url: str) -> None:
        answer = self.call("Page.navigate", url=url)
        assert "errorText" not in answer, answer

    def click(self, selector: str) -> None:
        self.evaluate(f"document.querySelector({json.dumps(selector)}).click()")

    def type(self, selector: str, text: str) -> None:
        self.evaluate(f"document.querySelector({json.dumps(selector)}).value = "
                      f"{json.dumps(text)}")

    def close(self) -> None:
        try:
            self.sockets.close()
        finally:
            self.proc.terminate()  # chromium then ends its own child processes
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.log.close()


class Callback:
    """The partner's redirect endpoint: a real Flask app on a real port, in a thread; it records
    the query string of every request to /callback."""

    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}/callback"
        self.received: list[dict[str, str]] = []
        self._lock = threading.Lock()
        app = flask.Flask("partner")

        @app.get("/callback")
        def callback():
            with self._lock:
                self.received.append(flask.request.args.to_dict())
            return '<!doctype html><p id="back">Back at acme</p>'

        self._server = make_server("127.0.0.1", port, app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def calls(self) -> list[dict[str, str]]:
        with self._lock:
            return list(self.received)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def browser(tmp_path):
    if not CHROMIUM:
        if IN_CI:
            pytest.fail("CI=true but chromium is not installed: .ci/run must install it")
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    (tmp_path / "profile").mkdir()
    chromium = Browser(tmp_path / "profile")
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture
def callback():
    receiver = Callback(free_port())
    yield receiver
    receiver.stop()


@pytest.fixture
def sandbox(tmp_path, start_server, callback):
    """(server, partner acme whose redirect URI is the callback, acme's consents token)."""
    server = start_server(f"sqlite:///{tmp_path / 'e2e.db'}")
    partner = create_partner(server.db, "acme", "--redirect-uri", callback.url)
    token = httpx.post(server.url + "/oauth2/token",
                       data={"grant_type": "client_credentials", "scope": "consents"},
                       auth=(partner["client_id"], partner["client_secret"]))
    assert token.status_code == 200, token.text
    return server, partner, token.json()["access_token"]


def request_consent(server, cc_token: str) -> str:
    response = httpx.post(server.url + "/consents/v1/consents",
                          json={"permissions": ["ReadAccounts", "ReadBalances"]},
                          headers={"Authorization": f"Bearer {cc_token}"})
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "AWAITING_AUTHORISATION"
    return response.json()["consent_id"]


def read_consent(server, cc_token: str, consent_id: str) -> dict:
    response = httpx.get(f"{server.url}/consents/v1/consents/{consent_id}",
                         headers={"Authorization": f"Bearer {cc_token}"})
    assert response.status_code == 200, response.text
    return response.json()


def open_authorisation_page(browser: Browser, server, partner: dict, redirect_uri: str,
                            consent_id: str, state: str, challenge: str) -> None:
    query = urllib.parse.urlencode({
        "response_type": "code", "client_id": partner["client_id"], "redirect_uri": redirect_uri,
        "consent_id": consent_id, "state": state, "code_challenge": challenge,
        "code_challenge_method": "S256"})
    browser.goto(f"{server.url}/oauth2/authorize?{query}")
    browser.wait_for("document.querySelector('#sign-in') !== null", "the sign-in page")


def page_texts(browser: Browser, selector: str) -> list[str]:
    return browser.evaluate(
        f"Array.from(document.querySelectorAll({json.dumps(selector)}), e => e.textContent)")


def listed_mobiles(browser: Browser) -> list[str]:
    """The test customers' mobiles the sign-in page's hint table lists."""
    mobiles = [m.strip() for m in page_texts(browser, "table code")]
    assert mobiles, "the sign-in page lists no test customer"
    return mobiles


def sign_in(browser: Browser, mobile: str | None = None, password: str = "sandbox") -> str:
    """Signs in (as the first test customer the page lists, unless told); the mobile used."""
    mobile = mobile or listed_mobiles(browser)[0]
    browser.type("#username", mobile)
    browser.type("#password", password)
    browser.click("#sign-in")
    return mobile


def offered_accounts(browser: Browser) -> list[list]:
    """[account_id, checked] of each account the account picker offers, once it shows."""
    browser.wait_for("document.querySelector('#approve') !== null", "the account picker")
    return browser.evaluate("Array.from(document.querySelectorAll("
                            "'input[name=account_id]'), e => [e.value, e.checked])")


def test_a_customer_authorises_a_consent_in_a_real_browser(browser, callback, sandbox):
    server, partner, cc_token = sandbox
    consent_id = request_consent(server, cc_token)
    verifier, challenge = new_pkce()
    state = secrets.token_urlsafe(16)

    open_authorisation_page(browser, server, partner, callback.url, consent_id, state, challenge)
    assert browser.evaluate("document.querySelector('#partner').textContent") == "acme"
    labels = page_texts(browser, "#permissions li")
    assert len(labels) == 2, labels
    assert any("账户" in t and "accounts" in t for t in labels), labels
    assert any("余额" in t and "balances" in t for t in labels), labels

    # Sign in as the first listed customer with more than one account (the seeded bank has
    # some), so that sharing only one of them means something; else the last one listed.
    mobiles = listed_mobiles(browser)
    for mobile in mobiles:
        sign_in(browser, mobile)
        offered = offered_accounts(browser)
        if len(offered) > 1 or mobile == mobiles[-1]:
            break
        open_authorisation_page(browser, server, partner, callback.url, consent_id, state,
                                challenge)
    assert browser.evaluate("document.querySelector('#customer').textContent").strip()
    assert browser.evaluate("document.querySelector('#partner').textContent") == "acme"
    assert offered and all(checked for _, checked in offered), offered
    # The customer shares only the first account.
    chosen = offered[0][0]
    browser.evaluate("document.querySelectorAll('input[name=account_id]')"
                     ".forEach((e, i) => { e.checked = i === 0; })")
    browser.click("#approve")

    browser.wait_for(f"location.href.startsWith({json.dumps(callback.url)})"
                     " && document.querySelector('#back') !== null", "the partner's callback")
    [back] = callback.calls()
    assert back["state"] == state and back["code"] and "error" not in back, back

    token = httpx.post(server.url + "/oauth2/token",
                       data={"grant_type": "authorization_code", "code": back["code"],
                             "redirect_uri": callback.url, "code_verifier": verifier},
                       auth=(partner["client_id"], partner["client_secret"]))
    assert token.status_code == 200, token.text
    grant = token.json()
    assert grant["access_token"] and grant["refresh_token"], grant
    assert grant["consent_id"] == consent_id and grant["scope"] == "accounts", grant
    customer_id = grant["customer_id"]

    with httpx.Client(base_url=server.url,
                      headers={"Authorization": f"Bearer {grant['access_token']}"}) as client:
        listed = client.get("/accounts/v1/accounts", params={"limit": 100})
        assert listed.status_code == 200, listed.text
        accounts = listed.json()["items"]
        assert [a["account_id"] for a in accounts] == [chosen], (accounts, offered)
        assert all(a["customer_id"] == customer_id for a in accounts), accounts
        balance = client.get(f"/accounts/v1/accounts/{chosen}/balance")
        assert balance.status_code == 200, balance.text
        if len(offered) > 1:  # an account the customer did not share stays hidden
            hidden = client.get(f"/accounts/v1/accounts/{offered[1][0]}/balance")
            assert hidden.status_code == 403, hidden.text

    consent = read_consent(server, cc_token, consent_id)
    assert consent["status"] == "AUTHORISED" and consent["customer_id"] == customer_id, consent


def test_a_refused_consent_returns_to_the_partner_with_access_denied(browser, callback, sandbox):
    server, partner, cc_token = sandbox
    consent_id = request_consent(server, cc_token)
    _, challenge = new_pkce()
    state = secrets.token_urlsafe(16)

    open_authorisation_page(browser, server, partner, callback.url, consent_id, state, challenge)
    sign_in(browser)
    assert offered_accounts(browser)
    browser.click("#refuse")

    browser.wait_for(f"location.href.startsWith({json.dumps(callback.url)})"
                     " && document.querySelector('#back') !== null", "the partner's callback")
    [back] = callback.calls()
    assert back["error"] == "access_denied" and back["state"] == state, back
    assert "code" not in back, back
    assert read_consent(server, cc_token, consent_id)["status"] == "REJECTED"


def test_a_wrong_password_shows_an_error_and_no_redirect(browser, callback, sandbox):
    server, partner, cc_token = sandbox
    consent_id = request_consent(server, cc_token)
    _, challenge = new_pkce()

    open_authorisation_page(browser, server, partner, callback.url, consent_id,
                            secrets.token_urlsafe(16), challenge)
    sign_in(browser, password="wrong")

    error = browser.wait_for("document.querySelector('#error')?.textContent", "#error")
    assert "wrong password" in error, error
    assert browser.evaluate("document.querySelector('#error').offsetParent !== null")
    assert browser.evaluate("location.origin + location.pathname") == (
        server.url + "/oauth2/authorize")
    assert browser.evaluate("document.querySelector('#customer')") is None
    assert callback.calls() == []
    assert read_consent(server, cc_token, consent_id)["status"] == "AWAITING_AUTHORISATION"
