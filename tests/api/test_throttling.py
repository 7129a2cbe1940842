"""Guessing is throttled: past SANDBOX_AUTH_FAILURES wrong client secrets for one client id, or
wrong passwords for one customer on the authorisation page, within SANDBOX_AUTH_WINDOW_S
seconds, every try for that client or customer (the right one too) is answered 429
TOO_MANY_ATTEMPTS with Retry-After until the window ends. The counts are the database's, so two
server processes on one database share them; successful calls are never throttled."""

from __future__ import annotations

import concurrent.futures
import time

import httpx
import pytest
from conftest import bank_rows, create_partner, get_token
from test_accounts_api import assert_problem

from sandbox.security.pkce import new_pkce

pytestmark = pytest.mark.slow

FAILURES = 5
WINDOW_S = 6
THROTTLED = {"SANDBOX_AUTH_FAILURES": str(FAILURES), "SANDBOX_AUTH_WINDOW_S": str(WINDOW_S)}
REDIRECT = "http://127.0.0.1:8080/callback"


def client_credentials(url: str, client_id: str, secret: str) -> httpx.Response:
    return httpx.post(url + "/oauth2/token", auth=(client_id, secret),
                      data={"grant_type": "client_credentials"})


def assert_throttled(response: httpx.Response) -> int:
    """The 429 problem; the seconds its Retry-After asks for."""
    assert_problem(response, 429, "TOO_MANY_ATTEMPTS")
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= WINDOW_S, retry_after
    return retry_after


def wait_out(since: float, retry_after: int) -> None:
    """Until the Retry-After answered at `since` (monotonic) has passed."""
    time.sleep(max(0.0, since + retry_after - time.monotonic()))


@pytest.fixture
def servers(db_url, start_server):
    """Two server processes on one database, throttling after FAILURES in WINDOW_S."""
    return [start_server(db_url, env=THROTTLED), start_server(db_url, env=THROTTLED)]


def test_wrong_client_secrets_are_throttled_per_client_across_server_processes(servers):
    first, second = servers
    partner = create_partner(first.db, "acme")
    bystander = create_partner(first.db, "globex")
    client_id, secret = partner["client_id"], partner["client_secret"]
    for attempt in range(FAILURES):  # alternating between the processes
        wrong = client_credentials(servers[attempt % 2].url, client_id, f"wrong-{attempt}")
        assert_problem(wrong, 401, "INVALID_CLIENT")
    # One more, on either process: throttled, and so is the right secret, in the form too.
    assert_throttled(client_credentials(first.url, client_id, "wrong-again"))
    since, retry_after = time.monotonic(), assert_throttled(
        client_credentials(second.url, client_id, secret))
    in_form = httpx.post(second.url + "/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret})
    assert assert_problem(in_form, 429, "TOO_MANY_ATTEMPTS")["error"] == "invalid_client"
    # Another client is not held up by this one's guesser, nor are its many good calls.
    for _ in range(2 * FAILURES):
        get_token(first.url, bystander)
    # When the window ends, the right secret works again.
    wait_out(since, retry_after)
    assert client_credentials(second.url, client_id, secret).status_code == 200


def test_a_burst_of_wrong_secrets_gets_no_more_than_the_limit_of_answers(db_url,
                                                                         start_server):
    # A long window: the burst ends well within it, however slow the machine.
    env = {**THROTTLED, "SANDBOX_AUTH_WINDOW_S": "300"}
    servers = [start_server(db_url, env=env), start_server(db_url, env=env)]
    partner = create_partner(db_url, "acme")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(
            lambda n: client_credentials(servers[n % 2].url, partner["client_id"], f"w{n}"),
            range(40)))
    # Every failure is counted at once, in the database: tries that raced past the check
    # while the others were failing are throttled too.
    assert sum(a.status_code == 401 for a in answers) == FAILURES
    assert sum(a.status_code == 429 for a in answers) == 40 - FAILURES
    assert_problem(client_credentials(servers[1].url, partner["client_id"],
                                      partner["client_secret"]), 429, "TOO_MANY_ATTEMPTS")


def test_wrong_passwords_are_throttled_per_customer_across_server_processes(servers):
    first, second = servers
    partner = create_partner(first.db, "acme")
    token = get_token(first.url, partner)
    consent = httpx.post(first.url + "/consents/v1/consents",
                         headers={"Authorization": f"Bearer {token}"},
                         json={"permissions": ["ReadAccounts"]}).json()
    _, challenge = new_pkce()
    flow = {"response_type": "code", "client_id": partner["client_id"],
            "redirect_uri": REDIRECT, "consent_id": consent["consent_id"],
            "code_challenge": challenge, "code_challenge_method": "S256"}
    customers = [c for c in bank_rows(first.db, partner["partner_id"])[0]
                 if c["kind"] == "individual"]
    victim, bystander = customers[0], customers[1]

    def sign_in(server, username: str, password: str) -> httpx.Response:
        return httpx.post(server.url + "/oauth2/authorize",
                          data={**flow, "username": username, "password": password})

    for attempt in range(FAILURES):  # by mobile and by customer id: one customer, one count
        username = victim["mobile"] if attempt % 2 else victim["customer_id"]
        page = sign_in(servers[attempt % 2], username, f"guess-{attempt}")
        assert page.status_code == 200 and 'id="error"' in page.text
    assert_throttled(sign_in(first, victim["mobile"], "guess-again"))
    right = sign_in(second, victim["customer_id"], "sandbox")
    since, retry_after = time.monotonic(), assert_throttled(right)
    assert right.json()["field"] == "body.password"
    # Another customer signs in as usual.
    picker = sign_in(first, bystander["mobile"], "sandbox")
    assert picker.status_code == 200 and 'id="approve"' in picker.text
    wait_out(since, retry_after)
    again = sign_in(second, victim["mobile"], "sandbox")
    assert again.status_code == 200 and 'id="approve"' in again.text
