"""The bank's rules as plain functions, and the decisions built on them: facts in, a refusal
(`sandbox.refusals`) or a `Booking` (`sandbox.ledger`) out; no I/O, no clock reads (time is an
input), no HTTP. Each function declares what it may refuse with (`refusals.decides`).

    account_class.py  PBOC account classes and their caps (constants)
    limits.py         status, funds and class caps of one account; usage totals
    risk.py           an operator's controls and real-time risk rules
    consents.py       what a customer's consent covers; its status machine
    payments.py       decisions: transfers, the other bank's answer, refunds, holds
    accounts.py       decisions: online account opening (four-factor check)
"""
