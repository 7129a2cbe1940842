"""What a partner developer does on day one, against a real server on a real port, on both
store backends: credentials, a token, accounts, balances, transactions, errors."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from conftest import all_pages, cli, create_partner, get_token

from sandbox import ids
from sandbox.contracts import load_contracts

pytestmark = pytest.mark.slow
PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, code: str, field: str | None = None):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status and body["code"] == code
    assert body["title"] and body["detail"] and body["type"].startswith("https://")
    if field is not None:
        assert body["field"] == field
    return body


# -- 2. a partner gets credentials and its own bank --------------------------------------------


def test_partner_create_prints_credentials_and_provisions_a_bank(client, partner):
    assert partner["partner_id"].startswith("ptn_")
    assert partner["client_id"] and len(partner["client_secret"]) >= 40
    accounts = all_pages(client, "/accounts/v1/accounts", limit=7)
    assert len(accounts) == partner["accounts"] > 0
    assert len({a["account_id"] for a in accounts}) == len(accounts)
    customers = all_pages(client, "/accounts/v1/customers", limit=5)
    assert len(customers) == partner["customers"]


def test_a_partner_name_can_be_used_once_per_database(server, partner):
    again = cli("partner", "create", "acme", "--db", server.db, "--json", check=False)
    assert again.returncode == 1 and "exists already" in again.stderr


def test_a_bad_partner_name_is_refused_with_a_reason(server):
    result = cli("partner", "create", "no spaces", "--db", server.db, check=False)
    assert result.returncode == 1 and "partner name" in result.stderr


# -- 3. tokens, accounts, balances, transactions -----------------------------------------------


@pytest.mark.parametrize("method", ("basic", "form"))
def test_client_credentials_token_by_basic_or_form(server, partner, method):
    form = {"grant_type": "client_credentials", "scope": "accounts"}
    auth = None
    if method == "basic":
        auth = (partner["client_id"], partner["client_secret"])
    else:
        form |= {"client_id": partner["client_id"], "client_secret": partner["client_secret"]}
    response = httpx.post(server.url + "/oauth2/token", data=form, auth=auth)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    token = response.json()
    assert token["token_type"] == "Bearer" and token["scope"] == "accounts"
    assert token["expires_in"] == 3600
    listed = httpx.get(server.url + "/accounts/v1/accounts",
                       headers={"Authorization": f"Bearer {token['access_token']}"})
    assert listed.status_code == 200


def test_a_token_without_scope_gets_every_declared_scope(server, partner):
    response = httpx.post(server.url + "/oauth2/token", data={"grant_type": "client_credentials"},
                          auth=(partner["client_id"], partner["client_secret"]))
    declared = set().union(*(c.declared_scopes() for c in load_contracts(
        Path(__file__).resolve().parents[2] / "contracts")))
    assert {"accounts", "accounts:open", "payments"} <= declared
    assert set(response.json()["scope"].split()) == declared


@pytest.mark.parametrize(("form", "status", "code", "error"), (
    ({"grant_type": "client_credentials"}, 401, "INVALID_CLIENT", "invalid_client"),
    ({"grant_type": "password"}, 400, "UNSUPPORTED_GRANT_TYPE", "unsupported_grant_type"),
    ({"grant_type": "client_credentials", "scope": "everything"}, 400, "INVALID_SCOPE",
     "invalid_scope"),
))
def test_token_endpoint_errors_speak_problem_and_oauth2(server, partner, form, status, code,
                                                        error):
    secret = "wrong" if code == "INVALID_CLIENT" else partner["client_secret"]
    response = httpx.post(server.url + "/oauth2/token", data=form,
                          auth=(partner["client_id"], secret))
    assert assert_problem(response, status, code)["error"] == error


def test_list_read_an_account_its_balance_and_its_customer(client):
    accounts = client.get("/accounts/v1/accounts").json()["items"]
    first = accounts[0]
    account = client.get(f"/accounts/v1/accounts/{first['account_id']}").json()
    assert account == first
    assert ids.is_valid_unionpay_card(account["account_number"])
    balance = client.get(f"/accounts/v1/accounts/{first['account_id']}/balance").json()
    assert balance["booked"]["currency"] == "CNY"
    assert balance["booked"] == balance["available"]
    customer = client.get(f"/accounts/v1/customers/{first['customer_id']}").json()
    assert ids.is_valid_resident_id(customer["resident_id"])
    mine = client.get("/accounts/v1/accounts",
                      params={"customer_id": first["customer_id"]}).json()["items"]
    assert first in mine and all(a["customer_id"] == first["customer_id"] for a in mine)


def test_transactions_page_with_a_cursor_and_sum_to_the_balance(client):
    account = client.get("/accounts/v1/accounts").json()["items"][0]
    path = f"/accounts/v1/accounts/{account['account_id']}"
    history = all_pages(client, path + "/transactions", limit=13)
    assert len({t["transaction_id"] for t in history}) == len(history) > 13
    assert [t["booked_at"] for t in history] == sorted((t["booked_at"] for t in history),
                                                       reverse=True)
    fen = sum((1 if t["credit_debit_indicator"] == "credit" else -1)
              * round(float(t["amount"]["amount"]) * 100) for t in history)
    balance = client.get(path + "/balance").json()["booked"]["amount"]
    assert fen == round(float(balance) * 100)
    assert history[0]["balance_after"]["amount"] == balance


def test_transactions_filter_by_an_inclusive_date_range(client):
    account = client.get("/accounts/v1/accounts").json()["items"][0]
    path = f"/accounts/v1/accounts/{account['account_id']}/transactions"
    everything = all_pages(client, path, limit=100)
    october = all_pages(client, path, from_date="2026-10-01", to_date="2026-10-31", limit=5)
    assert october and all("2026-10-01" <= t["booking_date"] <= "2026-10-31" for t in october)
    assert october == [t for t in everything if t["booking_date"].startswith("2026-10")]


# -- 4. the contracts and their docs -----------------------------------------------------------


def test_contracts_list_links_each_document_and_its_swagger_ui(server):
    entries = httpx.get(server.url + "/contracts").json()
    accounts = next(e for e in entries if e["name"] == "accounts")
    assert accounts["base_path"] == "/accounts/v1"
    spec = httpx.get(server.url + accounts["spec_url"]).json()
    assert spec["info"]["title"] == accounts["title"] and "$ref" not in str(spec["paths"])[:0]
    docs = httpx.get(server.url + accounts["docs_url"])
    assert docs.status_code == 200 and "swagger-ui" in docs.text


# -- 5. errors -------------------------------------------------------------------------------


def test_no_token_is_401(server, partner):
    response = httpx.get(server.url + "/accounts/v1/accounts")
    assert_problem(response, 401, "UNAUTHENTICATED")
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_an_unknown_token_is_401(server, partner):
    response = httpx.get(server.url + "/accounts/v1/accounts",
                         headers={"Authorization": "Bearer not-a-token"})
    assert_problem(response, 401, "INVALID_TOKEN")


def test_an_expired_token_is_401(db_url, start_server):
    ttl = 3  # long enough for the first call to land inside it on a loaded machine
    server = start_server(db_url, "--token-ttl", str(ttl))
    partner = create_partner(db_url, "acme")
    issued = time.monotonic()
    token = get_token(server.url, partner)
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(server.url + "/accounts/v1/accounts", headers=headers).status_code == 200
    time.sleep(max(0.0, issued + ttl + 0.3 - time.monotonic()))
    response = httpx.get(server.url + "/accounts/v1/accounts", headers=headers)
    assert_problem(response, 401, "TOKEN_EXPIRED")


def test_a_token_lacking_the_scope_is_403(server, partner):
    token = get_token(server.url, partner, scope="accounts:open")
    response = httpx.get(server.url + "/accounts/v1/accounts",
                         headers={"Authorization": f"Bearer {token}"})
    assert "accounts" in assert_problem(response, 403, "INSUFFICIENT_SCOPE")["detail"]


def test_another_partners_account_is_404_as_if_it_did_not_exist(server, client):
    other = create_partner(server.db, "globex")
    headers = {"Authorization": f"Bearer {get_token(server.url, other)}"}
    with httpx.Client(base_url=server.url, headers=headers) as other_client:
        theirs = other_client.get("/accounts/v1/accounts").json()["items"][0]["account_id"]
        customer = other_client.get("/accounts/v1/customers").json()["items"][0]["customer_id"]
    for suffix in ("", "/balance", "/transactions"):
        assert_problem(client.get(f"/accounts/v1/accounts/{theirs}{suffix}"), 404,
                       "ACCOUNT_NOT_FOUND")
    assert theirs not in {a["account_id"] for a in all_pages(client, "/accounts/v1/accounts")}
    assert_problem(client.get(f"/accounts/v1/customers/{customer}"), 404, "CUSTOMER_NOT_FOUND")


@pytest.mark.parametrize(("path", "field"), (
    ("/accounts/v1/accounts/12345", "path.account_id"),
    ("/accounts/v1/accounts/acc_XYZ/balance", "path.account_id"),
    ("/accounts/v1/customers/robert'); DROP TABLE--", "path.customer_id"),
    ("/accounts/v1/accounts?limit=0", "query.limit"),
    ("/accounts/v1/accounts?limit=abc", "query.limit"),
))
def test_malformed_input_is_400_naming_the_field(client, path, field):
    assert_problem(client.get(path), 400, "VALIDATION_FAILED", field)


def test_a_date_range_the_wrong_way_round_is_400(client):
    account = client.get("/accounts/v1/accounts").json()["items"][0]["account_id"]
    response = client.get(f"/accounts/v1/accounts/{account}/transactions",
                          params={"from_date": "2026-10-31", "to_date": "2026-10-01"})
    assert_problem(response, 400, "INVALID_DATE_RANGE", "query.from_date")


@pytest.mark.parametrize("cursor", ("bm9wZQ", "!!!", "A"))
def test_a_forged_cursor_is_400(client, cursor):
    response = client.get("/accounts/v1/accounts", params={"cursor": cursor})
    assert response.status_code == 400
    assert response.json()["code"] in ("INVALID_CURSOR", "VALIDATION_FAILED")


def test_an_unknown_query_parameter_is_400(client):
    assert_problem(client.get("/accounts/v1/accounts?colour=red"), 400, "UNKNOWN_PARAMETER",
                   "query.colour")


def test_unknown_routes_and_methods_are_problems(client):
    assert_problem(client.get("/nope"), 404, "NOT_FOUND")
    response = client.delete("/accounts/v1/accounts")
    assert_problem(response, 405, "METHOD_NOT_ALLOWED")
    assert "GET" in response.headers["allow"]


# -- online opening of Type II and III accounts -------------------------------------------------


def four_factors(client) -> dict:
    customers = all_pages(client, "/accounts/v1/customers", limit=100)
    person = next(c for c in customers if c["kind"] == "individual")
    return {
        "name": person["name"], "resident_id": person["resident_id"], "mobile": person["mobile"],
        "bound_card_number": person["other_bank_card"]["card_number"],
        "_customer_id": person["customer_id"],
    }


@pytest.mark.parametrize("account_class", ("II", "III"))
def test_opening_an_account_online_with_matching_four_factors(client, account_class):
    factors = four_factors(client)
    customer_id = factors.pop("_customer_id")
    response = client.post("/accounts/v1/account-openings",
                           json={"account_class": account_class, **factors})
    assert response.status_code == 201, response.text
    account = response.json()
    assert account["account_class"] == account_class
    assert account["customer_id"] == customer_id
    assert account["bound_account_number"] == factors["bound_card_number"]
    assert ids.is_valid_unionpay_card(account["account_number"])
    assert response.headers["location"].endswith(account["account_id"])
    fetched = client.get(response.headers["location"])
    assert fetched.json() == account
    balance = client.get(f"/accounts/v1/accounts/{account['account_id']}/balance").json()
    assert balance["booked"]["amount"] == "0.00"
    assert account in all_pages(client, "/accounts/v1/accounts", customer_id=customer_id)


@pytest.mark.parametrize(("change", "status", "code", "field"), (
    ({"mobile": "13800000000"}, 422, "FOUR_FACTOR_MISMATCH", None),
    ({"name": "不是本人"}, 422, "FOUR_FACTOR_MISMATCH", None),
    ({"resident_id": "11010519491231002X"}, 422, "FOUR_FACTOR_MISMATCH", None),
    ({"resident_id": "110105194912310021"}, 400, "INVALID_RESIDENT_ID", "body.resident_id"),
    ({"bound_card_number": "last digit off by one"}, 400, "INVALID_CARD_NUMBER",
     "body.bound_card_number"),
    ({"bound_card_number": "6235011993399821601"}, 422, "BOUND_CARD_SAME_BANK",
     "body.bound_card_number"),
    ({"account_class": "I"}, 400, "VALIDATION_FAILED", "body.account_class"),
    ({"mobile": 13800000000}, 400, "VALIDATION_FAILED", "body.mobile"),
))
def test_opening_is_refused_with_the_reason_and_opens_nothing(client, change, status, code,
                                                              field):
    before = all_pages(client, "/accounts/v1/accounts", limit=100)
    factors = four_factors(client)
    factors.pop("_customer_id")
    if change.get("bound_card_number") == "last digit off by one":
        card = factors["bound_card_number"]
        change = {"bound_card_number": card[:-1] + str((int(card[-1]) + 1) % 10)}
    response = client.post("/accounts/v1/account-openings",
                           json={"account_class": "II", **factors, **change})
    assert_problem(response, status, code, field)
    assert all_pages(client, "/accounts/v1/accounts", limit=100) == before


def test_opening_needs_the_accounts_open_scope(server, partner):
    token = get_token(server.url, partner, scope="accounts")
    response = httpx.post(server.url + "/accounts/v1/account-openings", json={},
                          headers={"Authorization": f"Bearer {token}"})
    assert response.status_code in (400, 403)
    if response.status_code == 403:
        assert response.json()["code"] == "INSUFFICIENT_SCOPE"


def test_several_worker_processes_share_partners_and_tokens(db_url, start_server):
    """`--workers 2`: a token issued by one process is honoured by the other."""
    server = start_server(db_url, "--workers", "2")
    partner = create_partner(db_url, "acme")
    tokens = [get_token(server.url, partner) for _ in range(8)]
    for token in tokens:
        # Each client opens its own connection, which either process may accept.
        with httpx.Client(base_url=server.url,
                          headers={"Authorization": f"Bearer {token}"}) as client:
            assert client.get("/accounts/v1/accounts?limit=1").status_code == 200
