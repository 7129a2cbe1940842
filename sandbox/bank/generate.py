"""Generate one partner's synthetic bank as a pure function of (seed, partner name, profile).

Only a seeded `random.Random` (and Faker seeded from it) is used: no clock, no global random,
so the same inputs give the same bytes on any day. Histories are simulated day by day in the
order they are booked, so every posting's `balance_after` is the running sum of the postings
before it and the last one equals the account's balance. The account-class caps hold
throughout.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import random

from faker import Faker

from sandbox import ids
from sandbox.bank.profile import BankProfile
from sandbox.clock import BEIJING
from sandbox.money import Fen
from sandbox.rules.account_class import (
    TYPE_II_NON_BOUND_DAILY,
    TYPE_III_BALANCE_CAP,
    TYPE_III_OUT_DAILY,
    AccountClass,
)

# The sandbox bank's own card BIN (a UnionPay 62 prefix no real issuer in the seed uses).
SANDBOX_BIN = "623501"
SANDBOX_BANK_NAME = "开放银行沙箱"
# Other banks' BINs, for the cards customers bind when they open accounts online.
OTHER_BANKS = (
    ("621226", "中国工商银行"),
    ("622848", "中国农业银行"),
    ("621700", "中国建设银行"),
    ("621661", "中国银行"),
    ("622588", "招商银行"),
)

MERCHANTS = (  # (payee, channel, min yuan, max yuan)
    ("美团外卖", "mobile", 15, 120),
    ("京东商城", "online", 30, 1500),
    ("淘宝(支付宝)", "online", 10, 800),
    ("滴滴出行", "mobile", 12, 90),
    ("星巴克(微信支付)", "pos", 25, 80),
    ("盒马鲜生", "pos", 40, 400),
    ("中国石化加油站", "pos", 200, 500),
    ("12306铁路客服", "online", 50, 900),
)
UTILITIES = (
    ("国家电网", 80, 400),
    ("中国移动", 50, 200),
)


@dataclasses.dataclass(frozen=True)
class Customer:
    customer_id: str
    ordinal: int
    kind: str  # "individual" | "company"
    name: str
    resident_id: str | None
    uscc: str | None
    birth_date: str | None
    gender: str | None
    mobile: str
    address: str
    external_card: str | None  # a card at another bank: the fourth factor of online opening
    external_bank: str | None


@dataclasses.dataclass(frozen=True)
class Account:
    account_id: str
    ordinal: int
    customer_id: str
    account_number: str
    account_class: str
    product_name: str
    currency: str
    status: str
    opened_on: str
    bound_account_number: str | None
    balance_fen: int


@dataclasses.dataclass(frozen=True)
class Posting:
    account_id: str
    seq: int
    transaction_id: str
    movement_id: str  # the legs of one money movement share it (a bound transfer has two)
    booked_at: str
    booking_date: str
    direction: str  # "credit" | "debit"
    amount_fen: int
    balance_after_fen: int
    description: str
    counterparty_name: str
    counterparty_account: str | None
    channel: str


@dataclasses.dataclass(frozen=True)
class SyntheticBank:
    customers: list[Customer]
    accounts: list[Account]
    postings: list[Posting]


def bank_rng(seed: int, partner_name: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}\x00{partner_name}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _id(rng: random.Random, prefix: str) -> str:
    return f"{prefix}_{rng.getrandbits(64):016x}"


def _yuan_between(rng: random.Random, low: int, high: int) -> Fen:
    return Fen(rng.randint(low * 100, high * 100))


class _Ledger:
    """Running balances and day caps while a history is simulated."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.balance: dict[str, Fen] = {}
        self.entries: dict[str, list[dict]] = {}
        self.day_out: dict[str, Fen] = {}  # Type III outflow, Type II non-bound, today
        self.day_in: dict[str, Fen] = {}
        self.today_events: list[list[dict]] = []

    def open(self, account: dict) -> None:
        self.balance[account["account_id"]] = Fen(0)
        self.entries[account["account_id"]] = []

    def post(self, legs: list[tuple[dict, str, Fen, str, str, str | None]], channel: str) -> None:
        """One event today: legs of (account, direction, amount, description, party, party_acct)."""
        event = []
        for account, direction, amount, description, party, party_account in legs:
            aid = account["account_id"]
            self.balance[aid] += amount if direction == "credit" else -amount
            event.append({
                "account_id": aid, "direction": direction, "amount_fen": int(amount),
                "balance_after_fen": int(self.balance[aid]), "description": description,
                "counterparty_name": party, "counterparty_account": party_account,
                "channel": channel,
            })
        self.today_events.append(event)

    def close_day(self, day: dt.date) -> None:
        """Stamp today's events with increasing times of day, then start a new day."""
        n = len(self.today_events)
        if n:
            seconds = sorted(self.rng.sample(range(7 * 3600, 23 * 3600), n))
            for second, event in zip(seconds, self.today_events, strict=True):
                at = dt.datetime.combine(day, dt.time(), BEIJING) + dt.timedelta(seconds=second)
                for leg in event:
                    leg["booked_at"] = at.isoformat()
                    leg["booking_date"] = day.isoformat()
                    leg["transaction_id"] = _id(self.rng, "txn")
                    # Derived, not drawn: the rng sequence (so every other value) is unchanged.
                    leg["movement_id"] = "mov_" + event[0]["transaction_id"][4:]
                    self.entries[leg["account_id"]].append(leg)
        self.today_events = []
        self.day_out.clear()
        self.day_in.clear()


def generate_bank(seed: int, partner_name: str, profile: BankProfile) -> SyntheticBank:
    """The whole bank of one partner. Deterministic: see the module docstring."""
    rng = bank_rng(seed, partner_name)
    fake = Faker("zh_CN")
    fake.seed_instance(rng.getrandbits(64))
    first_day = profile.as_of - dt.timedelta(days=profile.history_days - 1)

    customers: list[Customer] = []
    accounts: list[dict] = []
    plans: list[tuple[Customer, dict]] = []  # per customer, its accounts by role

    def new_account(customer: Customer, cls: AccountClass, product: str, opened: dt.date,
                    bound: dict | None = None) -> dict:
        account = {
            "account_id": _id(rng, "acc"),
            "ordinal": len(accounts) + 1,
            "customer_id": customer.customer_id,
            "account_number": ids.generate_unionpay_card(rng, length=19, bin_prefix=SANDBOX_BIN),
            "account_class": cls.value,
            "product_name": product,
            "currency": "CNY",
            "status": "active",
            "opened_on": opened.isoformat(),
            "bound_account_number": bound["account_number"] if bound else None,
        }
        accounts.append(account)
        return account

    def before_history(min_days: int, max_days: int) -> dt.date:
        return first_day - dt.timedelta(days=rng.randint(min_days, max_days))

    for _ in range(profile.individual_customers):
        female = rng.random() < 0.5
        birth = dt.date(1960, 1, 1) + dt.timedelta(days=rng.randint(0, 16435))  # to 2004
        bin_prefix, bank_name = rng.choice(OTHER_BANKS)
        customer = Customer(
            customer_id=_id(rng, "cus"),
            ordinal=len(customers) + 1,
            kind="individual",
            # zh_CN Faker's name_female() ignores sex: compose the name from gendered parts.
            name=fake.last_name()
            + (fake.first_name_female() if female else fake.first_name_male()),
            resident_id=ids.generate_resident_id(rng, birth_date=birth, female=female),
            uscc=None,
            birth_date=birth.isoformat(),
            gender="female" if female else "male",
            mobile=ids.generate_mobile(rng),
            address=fake.address(),
            external_card=ids.generate_unionpay_card(rng, length=19, bin_prefix=bin_prefix),
            external_bank=bank_name,
        )
        customers.append(customer)
        roles = {"I": new_account(customer, AccountClass.TYPE_I, "一类户借记卡",
                                  before_history(30, 3000))}
        if rng.random() < profile.type_ii_share:
            roles["II"] = new_account(customer, AccountClass.TYPE_II, "二类电子账户",
                                      before_history(1, 700), bound=roles["I"])
        if rng.random() < profile.type_iii_share:
            roles["III"] = new_account(customer, AccountClass.TYPE_III, "三类电子账户",
                                       before_history(1, 700), bound=roles["I"])
        roles["salary"] = _yuan_between(rng, 6000, 35000)
        roles["employer"] = fake.company()
        roles["pays_rent"] = rng.random() < 0.4
        plans.append((customer, roles))

    for _ in range(profile.company_customers):
        customer = Customer(
            customer_id=_id(rng, "cus"),
            ordinal=len(customers) + 1,
            kind="company",
            name=fake.company(),
            resident_id=None,
            uscc=ids.generate_uscc(rng),
            birth_date=None,
            gender=None,
            mobile=ids.generate_mobile(rng),
            address=fake.address(),
            external_card=None,
            external_bank=None,
        )
        customers.append(customer)
        basics = [
            new_account(customer, AccountClass.BASIC, "单位基本存款账户", before_history(60, 5000))
            for _ in range(rng.randint(*profile.company_accounts))
        ]
        plans.append((customer, {"basic": basics}))

    ledger = _Ledger(rng)
    for account in accounts:
        ledger.open(account)
    _opening_balances(rng, ledger, plans)
    ledger.close_day(first_day)
    day = first_day
    while day <= profile.as_of:
        if day != first_day:
            for owner, roles in plans:
                if owner.kind == "individual":
                    _individual_day(rng, fake, ledger, roles, day, profile)
                else:
                    _company_day(rng, fake, ledger, roles, day)
            ledger.close_day(day)
        day += dt.timedelta(days=1)

    postings = []
    finished = []
    for account in accounts:
        for seq, leg in enumerate(ledger.entries[account["account_id"]], start=1):
            postings.append(Posting(seq=seq, **leg))
        finished.append(Account(**account, balance_fen=int(ledger.balance[account["account_id"]])))
    return SyntheticBank(customers=customers, accounts=finished, postings=postings)


def _opening_balances(rng, ledger: _Ledger, plans) -> None:
    ranges = {"I": (2000, 120000), "II": (0, 5000), "III": (0, 1500)}
    for _, roles in plans:
        targets = [(roles[k], ranges[k]) for k in ("I", "II", "III") if k in roles]
        targets += [(a, (50000, 3000000)) for a in roles.get("basic", ())]
        for account, (low, high) in targets:
            amount = _yuan_between(rng, low, high)
            if amount > 0:
                ledger.post([(account, "credit", amount, "期初余额 Balance brought forward",
                              SANDBOX_BANK_NAME, None)], "system")


def _individual_day(rng, fake, ledger: _Ledger, roles, day: dt.date, profile) -> None:
    first = roles["I"]
    balance = ledger.balance
    if day.day == 10:
        ledger.post([(first, "credit", roles["salary"], "代发工资 Salary", roles["employer"],
                      None)], "payroll")
    if day.day == 1 and roles["pays_rent"]:
        rent = _yuan_between(rng, 2000, 6000)
        if balance[first["account_id"]] >= rent:
            ledger.post([(first, "debit", rent, "房租 Rent", fake.name(),
                          ids.generate_unionpay_card(rng, length=19, bin_prefix="622848"))],
                        "mobile")
    if day.day == 20:
        for payee, low, high in UTILITIES:
            bill = _yuan_between(rng, low, high)
            if balance[first["account_id"]] >= bill:
                ledger.post([(first, "debit", bill, f"{payee} 缴费 Bill payment", payee, None)],
                            "online")
    if day.month in (3, 6, 9, 12) and day.day == 21:
        for key in ("I", "II", "III"):
            account = roles.get(key)
            if account is None:
                continue
            # Demand deposits earn 0.20% a year, settled quarterly: balance × 0.002 / 4.
            interest = Fen(balance[account["account_id"]] * 2 // 4000)
            if key == "III":
                interest = min(interest, TYPE_III_BALANCE_CAP - balance[account["account_id"]])
            if interest > 0:
                ledger.post([(account, "credit", interest, "结息 Interest", SANDBOX_BANK_NAME,
                              None)], "system")
    if rng.random() < 0.05:
        gift = _yuan_between(rng, 50, 2000)
        ledger.post([(first, "credit", gift, "转账收入 Transfer in", fake.name(),
                      ids.generate_unionpay_card(rng, length=19, bin_prefix="621700"))],
                    "mobile")
    low, high = profile.spending_per_week
    if rng.random() < (low + high) / 2 / 7:
        payee, channel, lo, hi = rng.choice(MERCHANTS)
        amount = _yuan_between(rng, lo, hi)
        second = roles.get("II")
        if second is not None and rng.random() < 0.4:
            _non_bound_out(ledger, second, amount, payee, channel)
        elif balance[first["account_id"]] >= amount:
            ledger.post([(first, "debit", amount, f"消费 {payee}", payee, None)], channel)
    second = roles.get("II")
    if second is not None and day.day == 11:
        top_up = _yuan_between(rng, 500, 8000)
        if balance[first["account_id"]] >= top_up:  # with the bound account: not capped
            _bound_transfer(ledger, first, second, top_up)
    third = roles.get("III")
    if third is not None:
        room = TYPE_III_BALANCE_CAP - balance[third["account_id"]]
        if balance[third["account_id"]] < Fen(30000) and rng.random() < 0.3:
            top_up = min(_yuan_between(rng, 200, 1000), room)
            if top_up > 0 and balance[first["account_id"]] >= top_up:
                _bound_transfer(ledger, first, third, top_up)
        if rng.random() < 0.3:
            payee, channel, lo, hi = rng.choice(MERCHANTS[:4])
            amount = _yuan_between(rng, min(lo, 10), min(hi, 300))
            spent = ledger.day_out.get(third["account_id"], Fen(0))
            if balance[third["account_id"]] >= amount and spent + amount <= TYPE_III_OUT_DAILY:
                ledger.day_out[third["account_id"]] = spent + amount
                ledger.post([(third, "debit", amount, f"消费 {payee}", payee, None)], channel)


def _non_bound_out(ledger: _Ledger, account: dict, amount: Fen, payee: str, channel: str):
    aid = account["account_id"]
    spent = ledger.day_out.get(aid, Fen(0))
    if ledger.balance[aid] >= amount and spent + amount <= TYPE_II_NON_BOUND_DAILY:
        ledger.day_out[aid] = spent + amount
        ledger.post([(account, "debit", amount, f"消费 {payee}", payee, None)], channel)


def _bound_transfer(ledger: _Ledger, source: dict, target: dict, amount: Fen) -> None:
    ledger.post([
        (source, "debit", amount, "转入绑定电子账户 To bound account", SANDBOX_BANK_NAME,
         target["account_number"]),
        (target, "credit", amount, "绑定账户转入 From bound account", SANDBOX_BANK_NAME,
         source["account_number"]),
    ], "mobile")


def _company_day(rng, fake, ledger: _Ledger, roles, day: dt.date) -> None:
    for account in roles["basic"]:
        aid = account["account_id"]
        if day.weekday() < 5 and rng.random() < 0.5:
            ledger.post([(account, "credit", _yuan_between(rng, 5000, 300000), "货款 Receipt",
                          fake.company(), None)], "online")
        if day.day == 10:
            payroll = _yuan_between(rng, 50000, 500000)
            if ledger.balance[aid] >= payroll:
                ledger.post([(account, "debit", payroll, "代发工资 Payroll", SANDBOX_BANK_NAME,
                              None)], "payroll")
        if day.day == 15:
            tax = _yuan_between(rng, 5000, 80000)
            if ledger.balance[aid] >= tax:
                ledger.post([(account, "debit", tax, "税款 Tax", "国家税务总局", None)], "online")
        if day.weekday() < 5 and rng.random() < 0.3:
            pay = _yuan_between(rng, 2000, 150000)
            if ledger.balance[aid] >= pay:
                ledger.post([(account, "debit", pay, "供应商付款 Supplier payment",
                              fake.company(), None)], "online")
