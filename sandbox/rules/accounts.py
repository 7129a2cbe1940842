"""Account decisions: opening a Type II or III account online (银发〔2016〕302号).

The four-factor check: name, resident ID, mobile number and a card of another bank must all
belong to one person the bank knows. The new account is bound to that card, holds nothing, and
takes the partner's next ordinal.
"""

from __future__ import annotations

import dataclasses

from sandbox import ids as identifiers
from sandbox.bank.generate import SANDBOX_BIN
from sandbox.ledger import Booking, Save
from sandbox.mint import IdSource
from sandbox.records import Account, Customer
from sandbox.refusals import (
    BoundCardSameBank,
    FourFactorMismatch,
    InvalidCardNumber,
    InvalidResidentId,
    decides,
)
from sandbox.rules.account_class import AccountClass

PRODUCTS = {AccountClass.TYPE_II: "二类电子账户", AccountClass.TYPE_III: "三类电子账户"}


@dataclasses.dataclass(slots=True)
class OpeningFacts:
    person: Customer | None  # the customer with the resident id given, if any
    ordinal: int  # the partner's next account ordinal


@decides(InvalidResidentId, InvalidCardNumber, BoundCardSameBank, FourFactorMismatch)
def decide_opening(request: dict, facts: OpeningFacts, *, partner_id: str, today: str,
                   ids: IdSource) -> Booking:
    if not identifiers.is_valid_resident_id(request["resident_id"]):
        raise InvalidResidentId("The resident ID fails the GB 11643 check (area code, birth "
                                "date or check digit).", field="body.resident_id")
    card = request["bound_card_number"]
    if not identifiers.is_valid_unionpay_card(card):
        raise InvalidCardNumber("The card number fails the Luhn check.",
                                field="body.bound_card_number")
    if card.startswith(SANDBOX_BIN):
        raise BoundCardSameBank("Online accounts are bound to a card of another bank; this card "
                                "is ours.", field="body.bound_card_number")
    person = facts.person
    if person is None or (person.name, person.mobile, person.external_card) != (
            request["name"], request["mobile"], card):
        raise FourFactorMismatch("Name, resident ID, card and mobile number do not belong to "
                                 "one person (four-factor check).")
    cls = AccountClass(request["account_class"])
    account = Account(
        partner_id=partner_id, account_id=ids.next("acc"), ordinal=facts.ordinal,
        customer_id=person.customer_id,
        account_number=identifiers.generate_unionpay_card(ids.rng(), length=19,
                                                          bin_prefix=SANDBOX_BIN),
        account_class=cls.value, product_name=PRODUCTS[cls], currency="CNY", status="active",
        opened_on=today, bound_account_number=card, balance_fen=0, last_seq=0)
    return Booking(saves=(Save(account),), result=account)
