"""What a partner developer does on day one, against a real server on a real port, on both
store backends: credentials, a token, a customer's consent, accounts, balances, transactions,
errors."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from conftest import all_pages, bank_rows, cli, create_partner, get_token

from sandbox import ids
from sandbox.consent_client import customer_token
from sandbox.contracts import load_contracts
from sandbox.money import to_yuan
from sandbox.records import Account, Customer
from sandbox.resources import account_resource, customer_resource

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


def token_of(server, partner: dict, **consent) -> dict:
    """A customer-bound token through the headless consent path (customer_id, permissions,
    account_ids as in `customer_token`; by default the first customer, everything)."""
    return customer_token(server.url, partner["client_id"], partner["client_secret"], **consent)


def bearer(server, access_token: str) -> httpx.Client:
    """A client that sends this one token, whatever it asks."""
    return httpx.Client(base_url=server.url, timeout=30,
                        headers={"Authorization": f"Bearer {access_token}"})


def holdings(server, partner: dict) -> tuple[dict, list[dict], list[dict]]:
    """(a customer holding more than one account, that customer's account rows, the rows of
    the partner's other customers' accounts), from the database."""
    customers, rows = bank_rows(server.db, partner["partner_id"])
    holder = next(c for c in customers
                  if sum(a["customer_id"] == c["customer_id"] for a in rows) > 1)
    mine = [a for a in rows if a["customer_id"] == holder["customer_id"]]
    return holder, mine, [a for a in rows if a["customer_id"] != holder["customer_id"]]


def first_account(server, partner: dict) -> dict:
    """The partner's first account (the lowest ordinal), as the API shows it."""
    rows = bank_rows(server.db, partner["partner_id"])[1]
    return account_resource(Account.of(min(rows, key=lambda row: row["ordinal"])))


# -- 2. a partner gets credentials and its own bank --------------------------------------------


def test_partner_create_prints_credentials_and_provisions_a_bank(server, partner):
    assert partner["partner_id"].startswith("ptn_")
    assert partner["client_id"] and len(partner["client_secret"]) >= 40
    customers, accounts = bank_rows(server.db, partner["partner_id"])
    assert len(accounts) == partner["accounts"] > 0
    assert len({a["account_id"] for a in accounts}) == len(accounts)
    assert len(customers) == partner["customers"] > 0
    assert len({c["customer_id"] for c in customers}) == len(customers)
    # Each customer, once they consent, sees themselves and exactly their accounts, page by page.
    listed = []
    for customer in customers:
        token = token_of(server, partner, customer_id=customer["customer_id"])
        assert token["customer_id"] == customer["customer_id"]
        with bearer(server, token["access_token"]) as as_customer:
            assert all_pages(as_customer, "/accounts/v1/customers", limit=1) == [
                customer_resource(Customer.of(customer))]
            theirs = all_pages(as_customer, "/accounts/v1/accounts", limit=1)
        assert theirs == [account_resource(Account.of(a)) for a in accounts
                          if a["customer_id"] == customer["customer_id"]]
        listed.append(theirs)
    assert max(len(theirs) for theirs in listed) > 1  # some listing did take several pages
    assert sorted(a["account_id"] for theirs in listed for a in theirs) == sorted(
        a["account_id"] for a in accounts)


def test_a_partner_name_can_be_used_once_per_database(server, partner):
    again = cli("partner", "create", "acme", "--db", server.db, "--json", check=False)
    assert again.returncode == 1 and "exists already" in again.stderr


def test_a_bad_partner_name_is_refused_with_a_reason(server):
    result = cli("partner", "create", "no spaces", "--db", server.db, check=False)
    assert result.returncode == 1 and "partner name" in result.stderr


# -- 3. tokens, accounts, balances, transactions -----------------------------------------------


@pytest.mark.parametrize("method", ("basic", "form"))
def test_client_credentials_token_by_basic_or_form(server, partner, method):
    form = {"grant_type": "client_credentials", "scope": "accounts payments"}
    auth = None
    if method == "basic":
        auth = (partner["client_id"], partner["client_secret"])
    else:
        form |= {"client_id": partner["client_id"], "client_secret": partner["client_secret"]}
    response = httpx.post(server.url + "/oauth2/token", data=form, auth=auth)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    token = response.json()
    assert token["token_type"] == "Bearer" and token["scope"] == "accounts payments"
    assert token["expires_in"] == 3600
    assert "consent_id" not in token and "customer_id" not in token
    with bearer(server, token["access_token"]) as as_partner:
        banks = as_partner.get("/payments/v1/banks")
        assert banks.status_code == 200, banks.text
        assert banks.json()["items"]
        # A partner's own token is no customer's consent: customers' data stays closed to it.
        assert_problem(as_partner.get("/accounts/v1/accounts"), 403, "CONSENT_REQUIRED")


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


def test_list_read_an_account_its_balance_and_its_customer(server, partner, client):
    holder, rows, _ = holdings(server, partner)
    listed = client.get("/accounts/v1/accounts", params={"customer_id": holder["customer_id"]})
    assert listed.status_code == 200, listed.text
    mine = listed.json()["items"]
    assert mine == [account_resource(Account.of(row)) for row in rows]
    assert all(a["customer_id"] == holder["customer_id"] for a in mine)
    first = mine[0]
    account = client.get(f"/accounts/v1/accounts/{first['account_id']}")
    assert account.status_code == 200, account.text
    assert account.json() == first
    assert ids.is_valid_unionpay_card(first["account_number"])
    balance = client.get(f"/accounts/v1/accounts/{first['account_id']}/balance")
    assert balance.status_code == 200, balance.text
    balance = balance.json()
    assert balance["account_id"] == first["account_id"]
    assert balance["booked"] == {"amount": to_yuan(rows[0]["balance_fen"]), "currency": "CNY"}
    assert balance["booked"] == balance["available"]
    customer = client.get(f"/accounts/v1/customers/{first['customer_id']}")
    assert customer.status_code == 200, customer.text
    assert customer.json() == customer_resource(Customer.of(holder))
    assert ids.is_valid_resident_id(customer.json()["resident_id"])


def test_transactions_page_with_a_cursor_and_sum_to_the_balance(server, partner, client):
    account = first_account(server, partner)  # read with its holder's token (see client)
    path = f"/accounts/v1/accounts/{account['account_id']}"
    history = all_pages(client, path + "/transactions", limit=13)
    assert len({t["transaction_id"] for t in history}) == len(history) > 13
    assert [t["booked_at"] for t in history] == sorted((t["booked_at"] for t in history),
                                                       reverse=True)
    fen = sum((1 if t["credit_debit_indicator"] == "credit" else -1)
              * round(float(t["amount"]["amount"]) * 100) for t in history)
    assert all(t["account_id"] == account["account_id"] for t in history)
    balance = client.get(path + "/balance").json()["booked"]["amount"]
    assert fen == round(float(balance) * 100)
    assert history[0]["balance_after"]["amount"] == balance


def test_transactions_filter_by_an_inclusive_date_range(server, partner, client):
    account = first_account(server, partner)
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
    """A client-credentials token and a customer's token alike stop at --token-ttl."""
    ttl = 3  # long enough for the first call to land inside it on a loaded machine
    server = start_server(db_url, "--token-ttl", str(ttl))
    partner = create_partner(db_url, "acme")
    issued = time.monotonic()
    response = httpx.post(server.url + "/oauth2/token",
                          data={"grant_type": "client_credentials", "scope": "payments"},
                          auth=(partner["client_id"], partner["client_secret"]))
    assert response.status_code == 200, response.text
    assert response.json()["expires_in"] == ttl and response.json()["scope"] == "payments"
    with bearer(server, response.json()["access_token"]) as as_partner:
        assert as_partner.get("/payments/v1/banks").status_code == 200
        customer_issued = time.monotonic()
        token = token_of(server, partner)
        assert token["expires_in"] == ttl
        with bearer(server, token["access_token"]) as as_customer:
            assert as_customer.get("/accounts/v1/accounts").status_code == 200
            time.sleep(max(0.0, max(issued, customer_issued) + ttl + 0.3 - time.monotonic()))
            assert_problem(as_partner.get("/payments/v1/banks"), 401, "TOKEN_EXPIRED")
            assert_problem(as_customer.get("/accounts/v1/accounts"), 401, "TOKEN_EXPIRED")


def test_a_token_lacking_the_scope_is_403(server, partner):
    token = get_token(server.url, partner, scope="accounts:open")
    response = httpx.get(server.url + "/accounts/v1/accounts",
                         headers={"Authorization": f"Bearer {token}"})
    assert "accounts" in assert_problem(response, 403, "INSUFFICIENT_SCOPE")["detail"]


def test_another_partners_account_is_404_as_if_it_did_not_exist(server, partner, client):
    other = create_partner(server.db, "globex")
    their_customers, their_accounts = bank_rows(server.db, other["partner_id"])
    theirs, customer = their_accounts[0]["account_id"], their_customers[0]["customer_id"]
    unknown = "acc_" + "0" * 16
    assert unknown not in {a["account_id"] for a in their_accounts
                           + bank_rows(server.db, partner["partner_id"])[1]}
    # `client` holds no token for an account no acme customer holds: it sends acme's
    # client-credentials token, so the 404 must come before the consent check; a token of
    # one of acme's own customers gets the same 404.
    acme_customer = token_of(server, partner)
    with bearer(server, acme_customer["access_token"]) as as_customer:
        for account_id in (theirs, unknown):
            for suffix in ("", "/balance", "/transactions"):
                for reader in (client, as_customer):
                    assert_problem(reader.get(f"/accounts/v1/accounts/{account_id}{suffix}"),
                                   404, "ACCOUNT_NOT_FOUND", "path.account_id")
        assert theirs not in {a["account_id"]
                              for a in all_pages(as_customer, "/accounts/v1/accounts")}
        for customer_id in (customer, "cus_" + "0" * 16):
            assert_problem(as_customer.get(f"/accounts/v1/customers/{customer_id}"), 404,
                           "CUSTOMER_NOT_FOUND", "path.customer_id")


@pytest.mark.parametrize(("path", "field"), (
    ("/accounts/v1/accounts/12345", "path.account_id"),
    ("/accounts/v1/accounts/acc_XYZ/balance", "path.account_id"),
    ("/accounts/v1/customers/robert'); DROP TABLE--", "path.customer_id"),
    ("/accounts/v1/accounts?limit=0", "query.limit"),
    ("/accounts/v1/accounts?limit=abc", "query.limit"),
))
def test_malformed_input_is_400_naming_the_field(client, path, field):
    assert_problem(client.get(path), 400, "VALIDATION_FAILED", field)


def test_a_date_range_the_wrong_way_round_is_400(server, partner, client):
    account = first_account(server, partner)["account_id"]
    response = client.get(f"/accounts/v1/accounts/{account}/transactions",
                          params={"from_date": "2026-10-31", "to_date": "2026-10-01"})
    assert_problem(response, 422, "INVALID_DATE_RANGE", "query.from_date")


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


def an_individual(server, partner: dict) -> dict:
    """The partner's first individual customer (a company has no four factors)."""
    customers, _ = bank_rows(server.db, partner["partner_id"])
    return next(c for c in customers if c["kind"] == "individual")


def four_factors(person: dict) -> dict:
    """The four factors of a customer as the API shows them."""
    return {
        "name": person["name"], "resident_id": person["resident_id"], "mobile": person["mobile"],
        "bound_card_number": person["other_bank_card"]["card_number"],
    }


@pytest.mark.parametrize("account_class", ("II", "III"))
def test_opening_an_account_online_with_matching_four_factors(server, partner, client,
                                                              account_class):
    customer_id = an_individual(server, partner)["customer_id"]
    before = token_of(server, partner, customer_id=customer_id)
    with bearer(server, before["access_token"]) as consented_before:
        person = consented_before.get(f"/accounts/v1/customers/{customer_id}")
        assert person.status_code == 200, person.text
        factors = four_factors(person.json())
        # The opening takes the partner's client-credentials token (scope accounts:open).
        response = client.post("/accounts/v1/account-openings",
                               json={"account_class": account_class, **factors})
        assert response.status_code == 201, response.text
        account = response.json()
        assert account["account_class"] == account_class
        assert account["customer_id"] == customer_id
        assert account["bound_account_number"] == factors["bound_card_number"]
        assert ids.is_valid_unionpay_card(account["account_number"])
        assert response.headers["location"].endswith(account["account_id"])
        # A consent names the accounts the customer picked then: not one opened since.
        assert_problem(consented_before.get(response.headers["location"]), 403,
                       "ACCOUNT_NOT_IN_CONSENT", "path.account_id")
        assert account not in all_pages(consented_before, "/accounts/v1/accounts")
    after = token_of(server, partner, customer_id=customer_id)
    with bearer(server, after["access_token"]) as consented_after:
        fetched = consented_after.get(response.headers["location"])
        assert fetched.status_code == 200, fetched.text
        assert fetched.json() == account
        balance = consented_after.get(f"/accounts/v1/accounts/{account['account_id']}/balance")
        assert balance.status_code == 200, balance.text
        assert balance.json()["booked"]["amount"] == "0.00"
        assert account in all_pages(consented_after, "/accounts/v1/accounts",
                                    customer_id=customer_id)
    rows = bank_rows(server.db, partner["partner_id"])[1]
    opened = [row for row in rows if row["account_id"] == account["account_id"]]
    assert [account_resource(Account.of(row)) for row in opened] == [account]
    assert opened[0]["balance_fen"] == 0


@pytest.mark.parametrize(("change", "status", "code", "field"), (
    ({"mobile": "13800000000"}, 422, "FOUR_FACTOR_MISMATCH", None),
    ({"name": "不是本人"}, 422, "FOUR_FACTOR_MISMATCH", None),
    ({"resident_id": "11010519491231002X"}, 422, "FOUR_FACTOR_MISMATCH", None),
    ({"resident_id": "110105194912310021"}, 422, "INVALID_RESIDENT_ID", "body.resident_id"),
    ({"bound_card_number": "last digit off by one"}, 422, "INVALID_CARD_NUMBER",
     "body.bound_card_number"),
    ({"bound_card_number": "6235011993399821601"}, 422, "BOUND_CARD_SAME_BANK",
     "body.bound_card_number"),
    ({"account_class": "I"}, 400, "VALIDATION_FAILED", "body.account_class"),
    ({"mobile": 13800000000}, 400, "VALIDATION_FAILED", "body.mobile"),
))
def test_opening_is_refused_with_the_reason_and_opens_nothing(server, partner, client, change,
                                                              status, code, field):
    before = bank_rows(server.db, partner["partner_id"])
    factors = four_factors(customer_resource(Customer.of(an_individual(server, partner))))
    if change.get("bound_card_number") == "last digit off by one":
        card = factors["bound_card_number"]
        change = {"bound_card_number": card[:-1] + str((int(card[-1]) + 1) % 10)}
    response = client.post("/accounts/v1/account-openings",
                           json={"account_class": "II", **factors, **change})
    assert_problem(response, status, code, field)
    assert bank_rows(server.db, partner["partner_id"]) == before


def test_opening_needs_the_accounts_open_scope(server, partner):
    token = get_token(server.url, partner, scope="accounts")
    response = httpx.post(server.url + "/accounts/v1/account-openings", json={},
                          headers={"Authorization": f"Bearer {token}"})
    assert response.status_code in (400, 403)
    if response.status_code == 403:
        assert response.json()["code"] == "INSUFFICIENT_SCOPE"


def test_several_worker_processes_share_partners_and_tokens(db_url, start_server):
    """`--workers 2`: a token issued by one process is honoured by the other, and so is the
    consent behind it."""
    server = start_server(db_url, "--workers", "2")
    partner = create_partner(db_url, "acme")
    customers, rows = bank_rows(db_url, partner["partner_id"])
    for customer in customers[:8]:
        # Each step of the consent path is a request of its own, which either process may take.
        token = token_of(server, partner, customer_id=customer["customer_id"])
        account = next(a for a in rows if a["customer_id"] == customer["customer_id"])
        for _ in range(3):
            # Each client opens its own connection, which either process may accept.
            with bearer(server, token["access_token"]) as as_customer:
                response = as_customer.get(
                    f"/accounts/v1/accounts/{account['account_id']}/balance")
                assert response.status_code == 200, response.text
                assert response.json()["booked"]["amount"] == to_yuan(account["balance_fen"])


# -- consent: a customer's data needs that customer's consent -----------------------------------


def test_a_client_credentials_token_cannot_read_customers_data(server, partner):
    _, rows = bank_rows(server.db, partner["partner_id"])
    account, customer = rows[0]["account_id"], rows[0]["customer_id"]
    token = get_token(server.url, partner)  # every scope: what is missing is no scope
    with bearer(server, token) as as_partner:
        for path in (
            "/accounts/v1/customers",
            f"/accounts/v1/customers/{customer}",
            "/accounts/v1/accounts",
            f"/accounts/v1/accounts?customer_id={customer}",
            f"/accounts/v1/accounts/{account}",
            f"/accounts/v1/accounts/{account}/balance",
            f"/accounts/v1/accounts/{account}/transactions",
        ):
            assert_problem(as_partner.get(path), 403, "CONSENT_REQUIRED")
        assert as_partner.get("/payments/v1/banks").status_code == 200  # the token is good


def test_a_consent_to_read_accounts_only_reads_no_balance_nor_transactions(server, partner):
    holder, mine, others = holdings(server, partner)
    token = token_of(server, partner, customer_id=holder["customer_id"],
                     permissions=["ReadAccounts"])
    assert token["customer_id"] == holder["customer_id"] and token["scope"] == "accounts"
    with bearer(server, token["access_token"]) as as_customer:
        listed = all_pages(as_customer, "/accounts/v1/accounts", limit=1)
        assert listed == [account_resource(Account.of(row)) for row in mine]
        assert all_pages(as_customer, "/accounts/v1/accounts", limit=1,
                         customer_id=holder["customer_id"]) == listed
        customer = as_customer.get(f"/accounts/v1/customers/{holder['customer_id']}")
        assert customer.status_code == 200, customer.text
        assert customer.json() == customer_resource(Customer.of(holder))
        for account in listed:
            path = f"/accounts/v1/accounts/{account['account_id']}"
            read = as_customer.get(path)
            assert read.status_code == 200, read.text
            assert read.json() == account
            for suffix, permission in (("/balance", "ReadBalances"),
                                       ("/transactions", "ReadTransactions")):
                refused = assert_problem(as_customer.get(path + suffix), 403,
                                         "PERMISSION_NOT_GRANTED")
                assert permission in refused["detail"]
        # The same partner's other customers did not consent: neither they nor their accounts.
        other = others[0]
        assert_problem(as_customer.get(f"/accounts/v1/accounts/{other['account_id']}"), 403,
                       "ACCOUNT_NOT_IN_CONSENT", "path.account_id")
        assert_problem(as_customer.get(f"/accounts/v1/customers/{other['customer_id']}"), 403,
                       "CUSTOMER_NOT_IN_CONSENT", "path.customer_id")
        assert_problem(as_customer.get("/accounts/v1/accounts",
                                       params={"customer_id": other["customer_id"]}),
                       403, "CUSTOMER_NOT_IN_CONSENT", "query.customer_id")
