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
import typing as t

from faker import Faker

from sandbox import ids
from sandbox.bank.profile import BankProfile
from sandbox.clock import BEIJING
from sandbox.ledger import (
    BANK_EQUITY,
    CLEARING,
    Booking,
    Books,
    Leg,
    Narrative,
    Save,
    StatementLine,
)
from sandbox.money import Fen
from sandbox.records import Account, Customer
from sandbox.refusals import Refusal
from sandbox.rules.account_class import AccountClass
from sandbox.rules.limits import balance_room, check_debit

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
class SyntheticBank:
    """A partner's bank: its customers, and the booking that opens its accounts with their
    whole history (statement lines, journal entries, usage totals)."""

    partner_id: str
    customers: list[Customer]
    accounts: list[Account]  # as they stand at the end of the history
    booking: Booking

    @property
    def lines(self) -> list[StatementLine]:
        """Every statement line, account by account, oldest first."""
        return list(self.booking.lines)


def partner_id_for(name: str) -> str:
    # Derived from the name, so the same partner has the same id in every sandbox.
    return "ptn_" + hashlib.sha256(name.encode()).hexdigest()[:16]


def bank_rng(seed: int, partner_name: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}\x00{partner_name}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _id(rng: random.Random, prefix: str) -> str:
    return f"{prefix}_{rng.getrandbits(64):016x}"


def _yuan_between(rng: random.Random, low: int, high: int) -> Fen:
    return Fen(rng.randint(low * 100, high * 100))


class _History:
    """A history as it is simulated, booked through the ledger's `Books`: each event is moved at
    once (the next one sees its balances and usage), then stamped with its time of day and ids
    when its day ends. Whether a customer can pay is the bank's own rule (`check_debit`)."""

    def __init__(self, rng: random.Random, accounts: list[Account]):
        self.rng = rng
        self.books = Books(accounts, None)  # every id is drawn from the bank's rng
        self.today: list[tuple[list[str], t.Any]] = []  # (account ids as posted, move)

    def balance(self, account: Account) -> Fen:
        return Fen(self.books.account(account.account_id).balance_fen)

    def room(self, account: Account) -> Fen | None:
        return balance_room(self.books.account(account.account_id))

    def can_pay(self, account: Account, amount: Fen, party_account: str | None,
                day: dt.date) -> bool:
        now = self.books.account(account.account_id)
        try:
            check_debit(now, amount, party_account,
                        self.books.usage(account.account_id, day.isoformat()))
        except Refusal:
            return False
        return True

    def post(self, day: dt.date,
             legs: list[tuple[Account, str, Fen, str, str, str | None]], channel: str) -> None:
        """One event: legs of (account, direction, amount, description, party, party account);
        the bank's side lands on an internal account."""
        customer_legs = [Leg(account.account_id, amount if direction == "credit" else -amount)
                         for account, direction, amount, *_ in legs]
        rest = -sum(leg.amount for leg in customer_legs)
        # Numbered by each line's seq, then account, as the history's journal always was.
        ordered = sorted(customer_legs, key=lambda leg: (
            self.books.account(leg.ledger_account).last_seq + 1, leg.ledger_account))
        if rest:
            ordered.append(Leg(BANK_EQUITY if channel == "system" else CLEARING, Fen(rest)))
        narratives = {account.account_id: Narrative(description, party, party_account, channel)
                      for account, _, _, description, party, party_account in legs}
        move = self.books.move(ordered, narratives, day=day.isoformat())
        self.today.append(([account.account_id for account, *_ in legs], move))

    def close_day(self, day: dt.date) -> None:
        """Stamp today's events with increasing times of day, then start a new day."""
        n = len(self.today)
        if n:
            seconds = sorted(self.rng.sample(range(7 * 3600, 23 * 3600), n))
            for second, (posted, move) in zip(seconds, self.today, strict=True):
                at = dt.datetime.combine(day, dt.time(), BEIJING) + dt.timedelta(seconds=second)
                drawn = {account_id: _id(self.rng, "txn") for account_id in posted}
                self.books.stamp(
                    move, at.isoformat(),
                    # Derived, not drawn: the rng sequence (so every other value) is unchanged.
                    movement_id="mov_" + drawn[posted[0]][4:],
                    transaction_ids=[drawn[account_id] for account_id, *_ in move.lines])
        self.today = []


def generate_bank(seed: int, partner_name: str, profile: BankProfile) -> SyntheticBank:
    """The whole bank of one partner. Deterministic: see the module docstring."""
    partner_id = partner_id_for(partner_name)
    rng = bank_rng(seed, partner_name)
    fake = Faker("zh_CN")
    fake.seed_instance(rng.getrandbits(64))
    first_day = profile.as_of - dt.timedelta(days=profile.history_days - 1)

    customers: list[Customer] = []
    accounts: list[Account] = []
    plans: list[tuple[Customer, dict]] = []  # per customer, its accounts by role

    def new_account(customer: Customer, cls: AccountClass, product: str, opened: dt.date,
                    bound: Account | None = None) -> Account:
        account = Account(
            partner_id=partner_id,
            account_id=_id(rng, "acc"),
            ordinal=len(accounts) + 1,
            customer_id=customer.customer_id,
            account_number=ids.generate_unionpay_card(rng, length=19, bin_prefix=SANDBOX_BIN),
            account_class=cls.value,
            product_name=product,
            currency="CNY",
            status="active",
            opened_on=opened.isoformat(),
            bound_account_number=bound.account_number if bound else None,
            balance_fen=0,
            last_seq=0,
        )
        accounts.append(account)
        return account

    def before_history(min_days: int, max_days: int) -> dt.date:
        return first_day - dt.timedelta(days=rng.randint(min_days, max_days))

    for _ in range(profile.individual_customers):
        female = rng.random() < 0.5
        birth = dt.date(1960, 1, 1) + dt.timedelta(days=rng.randint(0, 16435))  # to 2004
        bin_prefix, bank_name = rng.choice(OTHER_BANKS)
        customer = Customer(
            partner_id=partner_id,
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
            partner_id=partner_id,
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

    history = _History(rng, accounts)
    _opening_balances(rng, history, plans, first_day)
    history.close_day(first_day)
    day = first_day
    while day <= profile.as_of:
        if day != first_day:
            for owner, roles in plans:
                if owner.kind == "individual":
                    _individual_day(rng, fake, history, roles, day, profile)
                else:
                    _company_day(rng, fake, history, roles, day)
            history.close_day(day)
        day += dt.timedelta(days=1)
    booking = history.books.booking(saves=[Save(c) for c in customers], new_accounts=True)
    opened = [save.record for save in booking.saves if isinstance(save.record, Account)]
    return SyntheticBank(partner_id=partner_id, customers=customers, accounts=opened,
                         booking=booking)


def _opening_balances(rng, history: _History, plans, day: dt.date) -> None:
    ranges = {"I": (2000, 120000), "II": (0, 5000), "III": (0, 1500)}
    for _, roles in plans:
        targets = [(roles[k], ranges[k]) for k in ("I", "II", "III") if k in roles]
        targets += [(a, (50000, 3000000)) for a in roles.get("basic", ())]
        for account, (low, high) in targets:
            amount = _yuan_between(rng, low, high)
            if amount > 0:
                history.post(day, [(account, "credit", amount, "期初余额 Balance brought forward",
                                    SANDBOX_BANK_NAME, None)], "system")


def _individual_day(rng, fake, history: _History, roles, day: dt.date, profile) -> None:
    first = roles["I"]
    if day.day == 10:
        history.post(day, [(first, "credit", roles["salary"], "代发工资 Salary",
                            roles["employer"], None)], "payroll")
    if day.day == 1 and roles["pays_rent"]:
        rent = _yuan_between(rng, 2000, 6000)
        # The landlord's card is drawn once the rent is paid (the rng's order); a Type I
        # account has no caps that depend on who is paid.
        if history.can_pay(first, rent, None, day):
            history.post(day, [(first, "debit", rent, "房租 Rent", fake.name(),
                                ids.generate_unionpay_card(rng, length=19, bin_prefix="622848"))],
                         "mobile")
    if day.day == 20:
        for payee, low, high in UTILITIES:
            bill = _yuan_between(rng, low, high)
            if history.can_pay(first, bill, None, day):
                history.post(day, [(first, "debit", bill, f"{payee} 缴费 Bill payment", payee,
                                    None)], "online")
    if day.month in (3, 6, 9, 12) and day.day == 21:
        for key in ("I", "II", "III"):
            account = roles.get(key)
            if account is None:
                continue
            # Demand deposits earn 0.20% a year, settled quarterly: balance × 0.002 / 4.
            interest = Fen(history.balance(account) * 2 // 4000)
            room = history.room(account)
            if room is not None:
                interest = min(interest, room)
            if interest > 0:
                history.post(day, [(account, "credit", interest, "结息 Interest",
                                    SANDBOX_BANK_NAME, None)], "system")
    if rng.random() < 0.05:
        gift = _yuan_between(rng, 50, 2000)
        history.post(day, [(first, "credit", gift, "转账收入 Transfer in", fake.name(),
                            ids.generate_unionpay_card(rng, length=19, bin_prefix="621700"))],
                     "mobile")
    low, high = profile.spending_per_week
    if rng.random() < (low + high) / 2 / 7:
        payee, channel, lo, hi = rng.choice(MERCHANTS)
        amount = _yuan_between(rng, lo, hi)
        second = roles.get("II")
        if second is not None and rng.random() < 0.4:
            if history.can_pay(second, amount, None, day):  # a merchant: not the bound account
                history.post(day, [(second, "debit", amount, f"消费 {payee}", payee, None)],
                             channel)
        elif history.can_pay(first, amount, None, day):
            history.post(day, [(first, "debit", amount, f"消费 {payee}", payee, None)], channel)
    second = roles.get("II")
    if second is not None and day.day == 11:
        top_up = _yuan_between(rng, 500, 8000)
        if history.can_pay(first, top_up, second.account_number, day):
            _bound_transfer(history, day, first, second, top_up)
    third = roles.get("III")
    if third is not None:
        room = history.room(third)
        if history.balance(third) < Fen(30000) and rng.random() < 0.3:
            top_up = min(_yuan_between(rng, 200, 1000), room)
            if top_up > 0 and history.can_pay(first, top_up, third.account_number, day):
                _bound_transfer(history, day, first, third, top_up)
        if rng.random() < 0.3:
            payee, channel, lo, hi = rng.choice(MERCHANTS[:4])
            amount = _yuan_between(rng, min(lo, 10), min(hi, 300))
            if history.can_pay(third, amount, None, day):
                history.post(day, [(third, "debit", amount, f"消费 {payee}", payee, None)],
                             channel)


def _bound_transfer(history: _History, day: dt.date, source: Account, target: Account,
                    amount: Fen) -> None:
    history.post(day, [
        (source, "debit", amount, "转入绑定电子账户 To bound account", SANDBOX_BANK_NAME,
         target.account_number),
        (target, "credit", amount, "绑定账户转入 From bound account", SANDBOX_BANK_NAME,
         source.account_number),
    ], "mobile")


def _company_day(rng, fake, history: _History, roles, day: dt.date) -> None:
    for account in roles["basic"]:
        if day.weekday() < 5 and rng.random() < 0.5:
            history.post(day, [(account, "credit", _yuan_between(rng, 5000, 300000),
                                "货款 Receipt", fake.company(), None)], "online")
        if day.day == 10:
            payroll = _yuan_between(rng, 50000, 500000)
            if history.can_pay(account, payroll, None, day):
                history.post(day, [(account, "debit", payroll, "代发工资 Payroll",
                                    SANDBOX_BANK_NAME, None)], "payroll")
        if day.day == 15:
            tax = _yuan_between(rng, 5000, 80000)
            if history.can_pay(account, tax, None, day):
                history.post(day, [(account, "debit", tax, "税款 Tax", "国家税务总局", None)],
                             "online")
        if day.weekday() < 5 and rng.random() < 0.3:
            pay = _yuan_between(rng, 2000, 150000)
            if history.can_pay(account, pay, None, day):
                history.post(day, [(account, "debit", pay, "供应商付款 Supplier payment",
                                    fake.company(), None)], "online")
