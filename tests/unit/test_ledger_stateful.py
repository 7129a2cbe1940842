"""The ledger under any sequence of orders: a model-based (stateful) test of the payments domain.

Hypothesis drives `sandbox.payments` directly, over a real SQLite store holding one partner's
small bank: transfers between the partner's accounts (by id and by account number) and to
another bank, with amounts that often exceed the funds or the class caps; the other bank's
answer to a pending payment (settled, or failed with the money back); retries of earlier
orders; a request id reused for another order; refunds, refunds retried and refunds repeated.
A model beside it knows every balance, every account's usage and every payment, and predicts
the outcome of each order (booked, or refused with which code).

After every step the store must agree with the model, and:

* the journal sums to zero, every balance equals its legs, every movement balances;
* no balance is below zero and no Type III account holds more than 2000.00 CNY;
* every payment the domain acknowledged is in the payments table once, in the model's status,
  and each booking it made is one movement of two legs in the journal; nothing else was booked;
* each change of a payment's status (settled, failed, refunded) put exactly one event in the
  notification outbox;
* a refusal changed no balance.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from sandbox import ledger, payments
from sandbox.bank import load_profile
from sandbox.bank.directory import SANDBOX_BANK_CODE
from sandbox.clock import Clock
from sandbox.money import Fen, to_yuan
from sandbox.partners import create_partner
from sandbox.refusals import Conflict, NotFound, Refusal
from sandbox.rules.account_class import (
    TYPE_II_NON_BOUND_DAILY,
    TYPE_II_NON_BOUND_YEARLY,
    TYPE_III_BALANCE_CAP,
    TYPE_III_OUT_DAILY,
    TYPE_III_OUT_YEARLY,
)
from sandbox.rules.payments import UNKNOWN_AT_OTHER_BANK
from sandbox.store import open_store

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SMALL = load_profile(FIXTURES, "small")
OTHER_BANK = "102100099996"
# Seeds whose small bank has every account class (I, II, III and BASIC) and bound pairs.
SEEDS = (7, 13, 22)

# Amounts in fen: pocket money, around the Type III caps, around the Type II daily cap, and
# more than most accounts hold.
AMOUNTS = st.one_of(
    st.integers(1, 10_000),
    st.integers(10_000, 300_000),
    st.integers(300_000, 1_500_000),
    st.integers(1_500_000, 400_000_000),
)
PICK = st.integers(0, 63)  # an index into something the machine holds, taken modulo its size


@dataclasses.dataclass
class ModelAccount:
    """What the model knows of one account: its rules' inputs, kept up to date by itself."""

    account_id: str
    number: str
    account_class: str
    bound: str  # the bound account number, or "" (as the store's usage query compares)
    balance: int
    out_day: int
    out_year: int
    non_bound_out_day: int
    non_bound_out_year: int
    non_bound_in_day: int
    non_bound_in_year: int

    def debit(self, amount: int, counterparty: str) -> None:
        self.balance -= amount
        self.out_day += amount
        self.out_year += amount
        if counterparty != self.bound:
            self.non_bound_out_day += amount
            self.non_bound_out_year += amount

    def credit(self, amount: int, counterparty: str) -> None:
        self.balance += amount
        if counterparty != self.bound:
            self.non_bound_in_day += amount
            self.non_bound_in_year += amount


@dataclasses.dataclass
class ModelPayment:
    payment_id: str
    request_id: str
    body: dict
    amount: int
    debtor_id: str
    creditor_id: str | None
    creditor_number: str
    movement_id: str
    status: str
    refund_request_id: str | None = None
    refund_movement_id: str | None = None
    return_movement_id: str | None = None

    def events(self) -> list[str]:
        """The notifications its changes of status must have queued."""
        if self.status == "pending":
            return []
        if self.status == "failed":
            return ["payment.failed"]
        return ["payment.settled"] + (["payment.refunded"] if self.refund_request_id else [])


def refusal_of_debit(account: ModelAccount, amount: int, counterparty: str) -> str | None:
    if account.balance < amount:
        return "INSUFFICIENT_FUNDS"
    if account.account_class == "II" and counterparty != account.bound:
        if (account.non_bound_out_day + amount > TYPE_II_NON_BOUND_DAILY
                or account.non_bound_out_year + amount > TYPE_II_NON_BOUND_YEARLY):
            return "LIMIT_EXCEEDED"
    if account.account_class == "III":
        if (account.out_day + amount > TYPE_III_OUT_DAILY
                or account.out_year + amount > TYPE_III_OUT_YEARLY):
            return "LIMIT_EXCEEDED"
    return None


def refusal_of_credit(account: ModelAccount, amount: int, counterparty: str) -> str | None:
    if account.account_class == "II" and counterparty != account.bound:
        if (account.non_bound_in_day + amount > TYPE_II_NON_BOUND_DAILY
                or account.non_bound_in_year + amount > TYPE_II_NON_BOUND_YEARLY):
            return "LIMIT_EXCEEDED"
    if account.account_class == "III" and account.balance + amount > TYPE_III_BALANCE_CAP:
        return "BALANCE_LIMIT_EXCEEDED"
    return None


def noon_today_clock() -> Clock:
    """A clock at noon (Beijing) today, so no run crosses midnight and resets the daily caps."""
    now = Clock().now()
    return Clock(now.replace(hour=12, minute=0, second=0, microsecond=0) - now)


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = Path(tempfile.mkdtemp(prefix="ledger-"))
        self.store = None
        self.partner_id: str | None = None
        self.clock = noon_today_clock()
        self.accounts: dict[str, ModelAccount] = {}
        self.ids: list[str] = []  # account ids in ordinal order
        self.payments: dict[str, ModelPayment] = {}  # every acknowledged payment
        self.by_request: dict[str, ModelPayment] = {}
        self.tried: list[tuple[str, dict]] = []  # every transfer order sent, refused or not
        self.bookings = 0  # movements the domain made (transfers and refunds)
        self.counter = 0

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def teardown(self):
        try:
            if self.store is not None:
                self.run(self.store.close())
        finally:
            self.loop.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- setup -----------------------------------------------------------------------------

    def everyones_say(self) -> frozenset[str]:
        """The machine is a partner app every customer of which consented to everything: any
        account's say (whose consent a step needs is `test_payment_ownership`'s business)."""
        return frozenset(self.accounts)

    @initialize(seed=st.sampled_from(SEEDS))
    def open_bank(self, seed):
        self.store = open_store(f"sqlite:///{self.tmp / 'ledger.db'}")
        self.run(self.store.open())
        partner = self.run(create_partner(self.store, "acme", SMALL, seed=seed))
        self.partner_id = partner["partner_id"]
        self.run(self.store.outbox.set_callback(self.partner_id, "http://127.0.0.1:9/hook",
                                         "whsec_test", "2026-01-01T00:00:00+08:00"))
        today = self.clock.now().date().isoformat()
        rows = self.run(self.store.bank.accounts(self.partner_id, customer_id=None, after=0,
                                                 limit=1000))
        for row in rows:
            usage = self.run(self._usage(row, today))
            self.accounts[row.account_id] = ModelAccount(
                account_id=row.account_id, number=row.account_number,
                account_class=row.account_class, bound=row.bound_account_number or "",
                balance=row.balance_fen, **usage)
            self.ids.append(row.account_id)
        assert {a.account_class for a in self.accounts.values()} == {"I", "II", "III", "BASIC"}
        check = self.run(self.store.ledger.check(self.partner_id))
        self.history_legs = check["legs"]
        self.history_movements = self.run(self._movement_count())

    async def _usage(self, row, today):
        async with self.store.transaction() as tx:
            usage = await self.store.ledger.usage(tx, self.partner_id, row.account_id, today)
        return {name: int(value) for name, value in dataclasses.asdict(usage).items()}

    async def _movement_count(self) -> int:
        row = await self.store.fetchone(
            "SELECT COUNT(DISTINCT movement_id) AS n FROM postings WHERE partner_id = ?",
            (self.partner_id,))
        return int(row["n"])

    # -- helpers ---------------------------------------------------------------------------

    def next_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter}"

    def account(self, pick: int) -> ModelAccount:
        return self.accounts[self.ids[pick % len(self.ids)]]

    def store_balances(self) -> dict[str, int]:
        rows = self.run(self.store.bank.accounts(self.partner_id, customer_id=None, after=0,
                                                 limit=1000))
        return {row.account_id: row.balance_fen for row in rows}

    def predict_transfer(self, request_id: str, body: dict) -> str | None:
        """The refusal code the order must get, or None if it must be booked (or replayed)."""
        earlier = self.by_request.get(request_id)
        if earlier is not None:
            return None if earlier.body == body else "IDEMPOTENCY_CONFLICT"
        debtor = self.accounts[body["debtor_account_id"]]
        amount = int(Fen.from_yuan(body["amount"]["amount"]))
        creditor = self.creditor_of(body)
        if creditor is not None and creditor.account_id == debtor.account_id:
            return "SAME_ACCOUNT"
        number = creditor.number if creditor else body["creditor"]["account_number"]
        refusal = refusal_of_debit(debtor, amount, number)
        if refusal is None and creditor is not None:
            refusal = refusal_of_credit(creditor, amount, debtor.number)
        return refusal

    def creditor_of(self, body: dict) -> ModelAccount | None:
        creditor = body["creditor"]
        if "account_id" in creditor:
            return self.accounts[creditor["account_id"]]
        if creditor["bank_code"] == SANDBOX_BANK_CODE:
            return next(a for a in self.accounts.values()
                        if a.number == creditor["account_number"])
        return None

    def send_transfer(self, request_id: str, body: dict) -> None:
        """Send one transfer order and hold the domain to the model's prediction."""
        expected = self.predict_transfer(request_id, body)
        earlier = self.by_request.get(request_id)
        event(f"transfer: {expected or ('replayed' if earlier else 'booked')}")
        before = self.store_balances()
        self.tried.append((request_id, body))
        try:
            payment, replayed = self.run(payments.post_transfer(
                self.store, self.clock, self.partner_id, request_id, body,
                consent_accounts=self.everyones_say()))
        except Refusal as refusal:
            assert refusal.code == expected, (refusal.code, refusal.detail, expected)
            if expected == "IDEMPOTENCY_CONFLICT":
                assert isinstance(refusal, Conflict)
                assert earlier.payment_id in refusal.detail
            assert self.store_balances() == before, "a refused order moved money"
            return
        assert expected is None, f"expected {expected}, but {payment.payment_id} was booked"
        if earlier is not None:
            # A retry: the payment made the first time, and not a fen more.
            assert replayed is True
            assert payment.payment_id == earlier.payment_id
            assert payment.movement_id == earlier.movement_id
            assert payment.amount_fen == earlier.amount
            assert self.store_balances() == before, "a replayed order moved money"
            return
        assert replayed is False
        amount = int(Fen.from_yuan(body["amount"]["amount"]))
        debtor = self.accounts[body["debtor_account_id"]]
        creditor = self.creditor_of(body)
        status = "settled" if creditor is not None else "pending"  # another bank answers later
        assert payment.amount_fen == amount and payment.status == status
        assert payment.request_id == request_id
        number = creditor.number if creditor else body["creditor"]["account_number"]
        assert payment.creditor_account_id == (creditor.account_id if creditor else None)
        assert payment.creditor_account_number == number
        debtor.debit(amount, number)
        if creditor is not None:
            creditor.credit(amount, debtor.number)
        model = ModelPayment(
            payment_id=payment.payment_id, request_id=request_id, body=body, amount=amount,
            debtor_id=debtor.account_id, creditor_id=creditor.account_id if creditor else None,
            creditor_number=number, movement_id=payment.movement_id, status=status)
        assert model.payment_id not in self.payments, "a payment id was given out twice"
        self.payments[model.payment_id] = model
        self.by_request[request_id] = model
        self.bookings += 1

    def send_refund(self, payment: ModelPayment, request_id: str) -> None:
        debtor = self.accounts[payment.debtor_id]
        payee = self.accounts[payment.creditor_id] if payment.creditor_id else None
        if payment.refund_request_id is not None:
            expected = None if payment.refund_request_id == request_id else "ALREADY_REFUNDED"
        elif payment.status != "settled":
            expected = "PAYMENT_NOT_SETTLED"
        elif payee is not None and payee.balance < payment.amount:
            expected = "INSUFFICIENT_FUNDS"
        else:
            expected = refusal_of_credit(debtor, payment.amount, payment.creditor_number)
        event(f"refund: {expected or ('replayed' if payment.refund_request_id else 'booked')}")
        before = self.store_balances()
        try:
            row, replayed = self.run(payments.refund_payment(
                self.store, self.clock, self.partner_id, payment.payment_id, request_id,
                consent_accounts=self.everyones_say()))
        except Refusal as refusal:
            assert refusal.code == expected, (refusal.code, refusal.detail, expected)
            assert self.store_balances() == before, "a refused refund moved money"
            return
        assert expected is None, f"expected {expected}, but the refund was booked"
        assert row.payment_id == payment.payment_id and row.status == "refunded"
        assert row.refund_request_id == request_id
        if payment.refund_request_id is not None:
            assert replayed is True
            assert row.refund_movement_id == payment.refund_movement_id
            assert self.store_balances() == before, "a replayed refund moved money"
            return
        assert replayed is False
        debtor.credit(payment.amount, payment.creditor_number)
        if payee is not None:
            payee.debit(payment.amount, debtor.number)
        payment.refund_request_id = request_id
        payment.refund_movement_id = row.refund_movement_id
        payment.status = "refunded"
        self.bookings += 1

    # -- rules -----------------------------------------------------------------------------

    @rule(debtor=PICK, creditor=PICK, amount=AMOUNTS, by_number=st.booleans())
    def transfer_between_own_accounts(self, debtor, creditor, amount, by_number):
        target = self.account(creditor)
        if by_number:
            party = {"account_number": target.number, "bank_code": SANDBOX_BANK_CODE,
                     "name": "收款人"}
        else:
            party = {"account_id": target.account_id}
        body = {"debtor_account_id": self.account(debtor).account_id, "creditor": party,
                "amount": {"amount": to_yuan(amount), "currency": "CNY"}}
        self.send_transfer(self.next_id("order"), body)

    @rule(debtor=PICK, amount=AMOUNTS,
          # Numbers ending 0000 do not exist at the other bank: those payments fail.
          number=st.from_regex(r"62[0-9]{14,17}", fullmatch=True)
          | st.from_regex(r"62[0-9]{10,13}0000", fullmatch=True),
          note=st.none() | st.sampled_from(["房租 rent", "货款"]))
    def transfer_to_another_bank(self, debtor, amount, number, note):
        body = {"debtor_account_id": self.account(debtor).account_id,
                "creditor": {"account_number": number, "bank_code": OTHER_BANK, "name": "王芳"},
                "amount": {"amount": to_yuan(amount), "currency": "CNY"}}
        if note is not None:
            body["remittance_information"] = note
        self.send_transfer(self.next_id("order"), body)

    @rule(pick=PICK, amount=AMOUNTS, online=st.booleans())
    def top_up_an_online_account_from_its_bound_account(self, pick, amount, online):
        # Deposits from the bound account are not capped, so Type II accounts can come to hold
        # more than their daily cap to other parties, and Type III ones their balance cap.
        online = [a for a in self.accounts.values() if a.account_class in ("II", "III")]
        account = online[pick % len(online)]
        bound = next(a for a in self.accounts.values() if a.number == account.bound)
        body = {"debtor_account_id": bound.account_id,
                "creditor": {"account_id": account.account_id},
                "amount": {"amount": to_yuan(amount), "currency": "CNY"}}
        self.send_transfer(self.next_id("order"), body)

    @precondition(lambda self: any(p.status == "pending" for p in self.payments.values()))
    @rule(pick=PICK)
    def the_other_bank_answers(self, pick):
        pending = [p for p in self.payments.values() if p.status == "pending"]
        payment = pending[pick % len(pending)]
        fails = payment.creditor_number.endswith(UNKNOWN_AT_OTHER_BANK)
        event(f"other bank: {'failed' if fails else 'settled'}")
        before = self.store_balances()
        row = self.run(payments.settle_payment(self.store, self.clock, self.partner_id,
                                               payment.payment_id))
        assert row.status == ("failed" if fails else "settled")
        # A second answer to the same payment changes nothing.
        assert self.run(payments.settle_payment(self.store, self.clock, self.partner_id,
                                                payment.payment_id)) is None
        payment.status = row.status
        if not fails:
            assert self.store_balances() == before, "settling moved money again"
            return
        assert row.failure_code == "CREDITOR_ACCOUNT_NOT_FOUND"
        self.accounts[payment.debtor_id].credit(payment.amount, payment.creditor_number)
        payment.return_movement_id = row.return_movement_id
        self.bookings += 1

    @precondition(lambda self: self.tried)
    @rule(pick=PICK)
    def retry_an_earlier_order(self, pick):
        request_id, body = self.tried[pick % len(self.tried)]
        self.send_transfer(request_id, {**body})

    @precondition(lambda self: self.by_request)
    @rule(pick=PICK, change=st.sampled_from(["amount", "debtor", "creditor", "note"]))
    def reuse_a_request_id_for_another_order(self, pick, change):
        earlier = list(self.by_request.values())[pick % len(self.by_request)]
        body = {**earlier.body}
        if change == "amount":
            body["amount"] = {"amount": to_yuan(earlier.amount + 1), "currency": "CNY"}
        elif change == "debtor":
            others = [i for i in self.ids if i != earlier.debtor_id]
            body["debtor_account_id"] = others[pick % len(others)]
        elif change == "creditor":
            body["creditor"] = {"account_number": "6212260000000000001",
                                "bank_code": OTHER_BANK, "name": "李雷"}
        else:
            body["remittance_information"] = "another order"
        assert body != earlier.body
        self.send_transfer(earlier.request_id, body)

    @precondition(lambda self: self.payments)
    @rule(pick=PICK)
    def refund_a_payment(self, pick):
        payment = list(self.payments.values())[pick % len(self.payments)]
        self.send_refund(payment, self.next_id("refund"))

    @precondition(lambda self: any(p.refund_request_id for p in self.payments.values()))
    @rule(pick=PICK, same_id=st.booleans())
    def refund_a_refunded_payment_again(self, pick, same_id):
        refunded = [p for p in self.payments.values() if p.refund_request_id]
        payment = refunded[pick % len(refunded)]
        request_id = payment.refund_request_id if same_id else self.next_id("refund")
        self.send_refund(payment, request_id)

    @precondition(lambda self: self.partner_id is not None)
    @rule(hex_id=st.from_regex(r"[0-9a-f]{16}", fullmatch=True))
    def refund_an_unknown_payment(self, hex_id):
        payment_id = "pay_" + hex_id
        if payment_id in self.payments:
            return
        before = self.store_balances()
        with pytest.raises(NotFound) as refused:
            self.run(payments.refund_payment(self.store, self.clock, self.partner_id,
                                             payment_id, self.next_id("refund"),
                                             consent_accounts=self.everyones_say()))
        assert refused.value.code == "PAYMENT_NOT_FOUND"
        assert self.store_balances() == before

    # -- invariants, after every step ------------------------------------------------------

    @precondition(lambda self: self.partner_id is not None)
    @invariant()
    def the_ledger_balances(self):
        check = self.run(self.store.ledger.check(self.partner_id))
        check.pop("payments")
        assert check == {"total_fen": 0, "legs": self.history_legs + 2 * self.bookings,
                         "accounts_off": 0, "unbalanced_movements": 0}

    @precondition(lambda self: self.partner_id is not None)
    @invariant()
    def balances_are_the_models_and_within_the_rules(self):
        balances = self.store_balances()
        assert balances == {i: a.balance for i, a in self.accounts.items()}
        for account_id, balance in balances.items():
            assert balance >= 0, account_id
            if self.accounts[account_id].account_class == "III":
                assert balance <= TYPE_III_BALANCE_CAP, account_id

    @precondition(lambda self: self.partner_id is not None)
    @invariant()
    def every_acknowledged_payment_is_stored_and_booked_once(self):
        rows = self.run(self.store.fetchall(
            "SELECT * FROM payments WHERE partner_id = ?", (self.partner_id,)))
        stored = {row["payment_id"]: row for row in rows}
        assert len(stored) == len(rows) == len(self.payments)
        assert self.run(self._movement_count()) == self.history_movements + self.bookings
        for payment in self.payments.values():
            row = stored[payment.payment_id]
            assert row["request_id"] == payment.request_id
            assert row["amount_fen"] == payment.amount
            assert row["movement_id"] == payment.movement_id
            assert row["status"] == payment.status
            assert row["refund_movement_id"] == payment.refund_movement_id
            assert row["return_movement_id"] == payment.return_movement_id
            creditor = payment.creditor_id or ledger.CLEARING
            self.assert_booked_once(payment.movement_id, payment.debtor_id, creditor,
                                    payment.amount)
            for back in (payment.refund_movement_id, payment.return_movement_id):
                if back:
                    self.assert_booked_once(back, creditor, payment.debtor_id, payment.amount)

    @precondition(lambda self: self.partner_id is not None)
    @invariant()
    def every_change_of_status_queued_one_notification(self):
        rows = self.run(self.store.fetchall(
            "SELECT payment_id, type FROM notifications WHERE partner_id = ?",
            (self.partner_id,)))
        queued = sorted((row["payment_id"], row["type"]) for row in rows)
        assert queued == sorted((p.payment_id, kind) for p in self.payments.values()
                                for kind in p.events())

    def assert_booked_once(self, movement_id, debtor, creditor, amount):
        legs = self.run(self.store.fetchall(
            "SELECT ledger_account, amount_fen FROM postings WHERE partner_id = ?"
            " AND movement_id = ? ORDER BY leg", (self.partner_id, movement_id)))
        assert [(leg["ledger_account"], leg["amount_fen"]) for leg in legs] == [
            (debtor, -amount), (creditor, amount)], movement_id
        lines = self.run(self.store.fetchall(
            "SELECT account_id, direction, amount_fen FROM transactions WHERE partner_id = ?"
            " AND movement_id = ? ORDER BY direction", (self.partner_id, movement_id)))
        expected = [("credit", creditor), ("debit", debtor)]
        assert [(line["direction"], line["account_id"]) for line in lines] == [
            (direction, account) for direction, account in expected
            if not account.startswith("internal:")], movement_id
        assert all(line["amount_fen"] == amount for line in lines)


LedgerMachine.TestCase.settings = settings(
    max_examples=25, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLedger = LedgerMachine.TestCase

