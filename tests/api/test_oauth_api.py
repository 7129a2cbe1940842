"""The authorisation server's guarantees, against a real server on both backends: a code is
spent only by a correct presentation, PKCE is S256 with a challenge of the length RFC 7636
gives, and refresh tokens rotate, a reused one revoking its whole family."""

from __future__ import annotations

import urllib.parse

import httpx
import pytest
from conftest import create_partner, get_token
from test_accounts_api import assert_problem
from test_consents_api import REDIRECT, bearer, exchange, new_consent

from sandbox.consent_client import authorised_code, customer_token
from sandbox.security.pkce import new_pkce

pytestmark = pytest.mark.slow


@pytest.fixture
def partner_client(server, partner):
    with httpx.Client(base_url=server.url,
                      headers=bearer(get_token(server.url, partner))) as client:
        yield client


def a_code(server, partner) -> dict:
    with httpx.Client(base_url=server.url) as client:
        return authorised_code(client, partner["client_id"], partner["client_secret"])


def presented(code: dict, **changes) -> dict:
    return {"code": code["code"], "redirect_uri": code["redirect_uri"],
            "code_verifier": code["code_verifier"], **changes}


def reads(server, access_token: str) -> int:
    return httpx.get(server.url + "/accounts/v1/accounts",
                     headers=bearer(access_token)).status_code


def refresh(server, partner, refresh_token: str) -> httpx.Response:
    return httpx.post(server.url + "/oauth2/token",
                      auth=(partner["client_id"], partner["client_secret"]),
                      data={"grant_type": "refresh_token", "refresh_token": refresh_token})


# -- a code is spent only by the client it was issued to, presented correctly -------------------

def test_another_client_cannot_burn_a_code_before_or_after_its_exchange(server, partner):
    thief = create_partner(server.db, "globex")
    code = a_code(server, partner)
    # Before the rightful exchange: refused, and the code still works for its client.
    assert_problem(exchange(server, thief, **presented(code)), 400, "INVALID_GRANT")
    mine = exchange(server, partner, **presented(code))
    assert mine.status_code == 200, mine.text
    tokens = mine.json()
    # After it: refused again, and what the rightful client got stays valid.
    assert_problem(exchange(server, thief, **presented(code)), 400, "INVALID_GRANT")
    assert reads(server, tokens["access_token"]) == 200
    assert refresh(server, partner, tokens["refresh_token"]).status_code == 200


@pytest.mark.parametrize(("change", "field"), (
    ({"redirect_uri": "http://127.0.0.1:8080/other"}, "body.redirect_uri"),
    ({"code_verifier": "another-verifier-" + "x" * 40}, "body.code_verifier"),
))
def test_a_wrong_presentation_leaves_the_code_to_the_right_one(server, partner, change,
                                                               field):
    code = a_code(server, partner)
    first = exchange(server, partner, **presented(code))
    assert first.status_code == 200, first.text
    # A wrong presentation of a spent code is refused as wrong, and revokes nothing.
    assert_problem(exchange(server, partner, **presented(code, **change)), 400,
                   "INVALID_GRANT", field)
    assert reads(server, first.json()["access_token"]) == 200

    fresh = a_code(server, partner)
    assert_problem(exchange(server, partner, **presented(fresh, **change)), 400,
                   "INVALID_GRANT", field)
    assert exchange(server, partner, **presented(fresh)).status_code == 200


# -- PKCE: S256 only, with a challenge of 43 characters ----------------------------------------

@pytest.mark.parametrize(("pkce", "why"), (
    ({"code_challenge_method": "plain"}, "plain"),
    ({"code_challenge_method": None}, "no method, which means plain"),
    ({"code_challenge": "x"}, "a one-character challenge"),
    ({"code_challenge": None, "code_challenge_method": None}, "no challenge"),
))
def test_the_authorisation_page_accepts_only_an_s256_challenge(server, partner, partner_client,
                                                               pkce, why):
    consent = new_consent(partner_client)
    _, challenge = new_pkce()
    query = {"response_type": "code", "client_id": partner["client_id"],
             "redirect_uri": REDIRECT, "consent_id": consent["consent_id"], "state": "s-1",
             "code_challenge": challenge, "code_challenge_method": "S256"}
    query = {k: v for k, v in {**query, **pkce}.items() if v is not None}
    for answer in (httpx.get(server.url + "/oauth2/authorize", params=query),
                   httpx.post(server.url + "/oauth2/authorize",
                              data={**query, "username": "cus_x", "password": "sandbox"})):
        assert answer.status_code == 302, (why, answer.text)
        back = urllib.parse.parse_qs(urllib.parse.urlsplit(answer.headers["location"]).query)
        assert back["error"] == ["invalid_request"] and back["state"] == ["s-1"], why
        assert "S256" in back["error_description"][0] or "43" in back[
            "error_description"][0], why


@pytest.mark.parametrize(("pkce", "field"), (
    ({"code_challenge_method": "S256"}, "body"),  # the detail names it: "is required"
    ({"code_challenge": "x", "code_challenge_method": "S256"}, "body.code_challenge"),
    ({"code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
      "code_challenge_method": "plain"}, "body.code_challenge_method"),
    ({"code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "body"),
))
def test_the_headless_path_requires_an_s256_challenge(partner_client, pkce, field):
    consent = new_consent(partner_client)
    refused = partner_client.post(f"/consents/v1/consents/{consent['consent_id']}/authorisation",
                                  json={"decision": "approve", **pkce})
    problem = assert_problem(refused, 400, "VALIDATION_FAILED", field)
    assert "code_challenge" in problem["detail"] + problem["field"]
    # Nothing was authorised: the consent still awaits its customer.
    assert partner_client.get(f"/consents/v1/consents/{consent['consent_id']}").json()[
        "status"] == "AWAITING_AUTHORISATION"


# -- refresh tokens rotate; a reused one revokes its family ------------------------------------

def test_a_refresh_answers_a_new_refresh_token_and_the_old_one_is_spent(server, partner):
    first = customer_token(server.url, partner["client_id"], partner["client_secret"])
    renewed = refresh(server, partner, first["refresh_token"])
    assert renewed.status_code == 200, renewed.text
    second = renewed.json()
    assert second["refresh_token"] not in (None, first["refresh_token"])
    assert second["consent_id"] == first["consent_id"]
    third = refresh(server, partner, second["refresh_token"])
    assert third.status_code == 200, third.text
    assert reads(server, third.json()["access_token"]) == 200


def test_a_reused_refresh_token_revokes_every_token_of_its_family(server, partner):
    first = customer_token(server.url, partner["client_id"], partner["client_secret"])
    other = customer_token(server.url, partner["client_id"], partner["client_secret"])
    second = refresh(server, partner, first["refresh_token"]).json()
    third = refresh(server, partner, second["refresh_token"]).json()
    # Someone presents a refresh token that was spent already: a copy is about.
    reused = refresh(server, partner, first["refresh_token"])
    assert "used already" in assert_problem(reused, 400, "INVALID_GRANT",
                                            "body.refresh_token")["detail"]
    for access in (first, second, third):
        assert_problem(httpx.get(server.url + "/accounts/v1/accounts",
                                 headers=bearer(access["access_token"])), 401, "TOKEN_REVOKED")
    assert_problem(refresh(server, partner, third["refresh_token"]), 400, "INVALID_GRANT",
                   "body.refresh_token")
    # Another family, of the same customer and client, is untouched.
    assert reads(server, other["access_token"]) == 200
    assert refresh(server, partner, other["refresh_token"]).status_code == 200


def test_another_client_cannot_spend_a_refresh_token(server, partner):
    thief = create_partner(server.db, "globex")
    mine = customer_token(server.url, partner["client_id"], partner["client_secret"])
    assert_problem(refresh(server, thief, mine["refresh_token"]), 400, "INVALID_GRANT")
    assert refresh(server, partner, mine["refresh_token"]).status_code == 200
    assert reads(server, mine["access_token"]) == 200
