"""After a load run: was anything acknowledged lost, or anything done twice? Checked through the
APIs, as an auditor outside the server would:

- every payment acknowledged to a user (201, or 200 for a replayed request id) can be read
  back (GET /payments/{id}), with the amount the user was told;
- no two request ids were acknowledged with the same payment, and no request id with two;
- with an operator key: the partner's ledger balances (GET /sandbox/v1/partners/{p}/ledger),
  and the payments it recorded during the run are no more than the request ids sent (a
  retried request recorded twice would exceed them) and no fewer than those acknowledged.
"""

from __future__ import annotations

import asyncio
import base64
import collections

import httpx

from sandbox.consent_client import customer_token

CONCURRENCY = 32
SHOWN = 10  # examples of each problem kept in the report


def reconcile(url: str, people: list[dict], acknowledged: dict, operator_key: str | None,
              payments_before: dict[str, int]) -> dict:
    acks, attempts = acknowledged["acks"], acknowledged["attempts"]
    problems: dict[str, list] = collections.defaultdict(list)
    by_request = collections.defaultdict(set)
    by_payment = collections.defaultdict(set)
    for ack in acks:
        by_request[ack["request_id"]].add(ack["payment_id"])
        by_payment[ack["payment_id"]].add(ack["request_id"])
    for request_id, payment_ids in by_request.items():
        if len(payment_ids) > 1:
            problems["request_id_with_two_payments"].append(request_id)
    for payment_id, request_ids in by_payment.items():
        if len(request_ids) > 1:
            problems["payment_for_two_request_ids"].append(payment_id)
    unique = {ack["payment_id"]: ack for ack in acks}
    tokens = _customer_tokens(url, people)
    answers = asyncio.run(_read_back(url, list(unique.values()), tokens))
    for ack, (status, body) in zip(unique.values(), answers, strict=True):
        if status != 200:
            problems["acknowledged_but_missing"].append(
                {"payment_id": ack["payment_id"], "status": status})
        elif body["amount"]["amount"] != ack["amount"]:
            problems["amount_differs"].append(
                {"payment_id": ack["payment_id"], "acknowledged": ack["amount"],
                 "stored": body["amount"]["amount"]})
    ledgers = _ledgers(url, operator_key, {p["partner_id"] for p in people if p["partner_id"]})
    sent = collections.Counter(attempts.values())
    acked = collections.Counter(ack["partner_id"] for ack in unique.values())
    for partner_id, ledger in ledgers.items():
        recorded = ledger["payments"] - payments_before.get(partner_id, 0)
        ledger["recorded_during_run"] = recorded
        if not ledger["balanced"]:
            problems["ledger_unbalanced"].append(partner_id)
        if recorded > sent[partner_id]:
            problems["more_payments_than_requests"].append(
                {"partner_id": partner_id, "recorded": recorded, "requests": sent[partner_id]})
        if recorded < acked[partner_id]:
            problems["fewer_payments_than_acknowledged"].append(
                {"partner_id": partner_id, "recorded": recorded,
                 "acknowledged": acked[partner_id]})
    counts = {name: len(found) for name, found in problems.items()}
    ok = not problems
    summary = (f"{len(unique):,} acknowledged payments read back"
               + (f", {len(ledgers)} ledgers balanced" if ledgers and ok else "")
               + ("" if ok else "; " + ", ".join(f"{n} {name.replace('_', ' ')}"
                                                for name, n in counts.items()))
               + ("" if operator_key else "; ledger not checked (no operator key)"))
    return {"ok": ok, "summary": summary, "acknowledged": len(unique),
            "transfers_sent": len(attempts), "problems": counts,
            "examples": {name: found[:SHOWN] for name, found in problems.items()},
            "ledgers": ledgers, "ledger_checked": bool(operator_key)}


def _payer(ack: dict) -> tuple[str, str]:
    return ack["partner_id"], ack["customer_id"]


def _customer_tokens(url: str, people: list[dict]) -> dict[tuple[str, str], str]:
    """A fresh consent token per customer of the run: a payment is its payer's record, seen
    with the payer's consent. Fresh, so the users' own token families are left alone."""
    tokens = {}
    with httpx.Client(base_url=url, timeout=30) as client:
        for person in people:
            client_id, secret = base64.b64decode(
                person["basic"].removeprefix("Basic ")).decode().split(":", 1)
            tokens[(person["partner_id"], person["customer_id"])] = customer_token(
                url, client_id, secret, customer_id=person["customer_id"],
                client=client)["access_token"]
    return tokens


async def _read_back(url: str, acks: list[dict], tokens: dict[str, str]) -> list[tuple]:
    gate = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        async def read(ack: dict) -> tuple[int, dict | None]:
            async with gate:
                for attempt in range(3):
                    try:
                        answer = await client.get(
                            f"/payments/v1/payments/{ack['payment_id']}",
                            headers={"Authorization": f"Bearer {tokens[_payer(ack)]}"})
                        return answer.status_code, (answer.json()
                                                    if answer.status_code == 200 else None)
                    except httpx.TransportError:
                        await asyncio.sleep(0.5 * (attempt + 1))
                return 0, None

        return await asyncio.gather(*(read(ack) for ack in acks))


def _ledgers(url: str, operator_key: str | None, partner_ids: set[str]) -> dict[str, dict]:
    if not operator_key:
        return {}
    with httpx.Client(base_url=url, headers={"X-Operator-Key": operator_key},
                      timeout=60) as client:
        found = {}
        for partner_id in sorted(partner_ids):
            answer = client.get(f"/sandbox/v1/partners/{partner_id}/ledger")
            answer.raise_for_status()
            found[partner_id] = answer.json()
        return found
