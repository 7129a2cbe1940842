"""The bank directory: CNAPS participants a partner can pay into, by 12-digit bank code."""

from __future__ import annotations

SANDBOX_BANK_CODE = "999100000001"

# (bank code 行号, name, short name): head offices of the banks in the seed, and others.
BANKS = (
    (SANDBOX_BANK_CODE, "开放银行沙箱", "SANDBOX"),
    ("102100099996", "中国工商银行", "ICBC"),
    ("103100000026", "中国农业银行", "ABC"),
    ("104100000004", "中国银行", "BOC"),
    ("105100000017", "中国建设银行", "CCB"),
    ("301290000007", "交通银行", "BOCOM"),
    ("302100011000", "中信银行", "CITIC"),
    ("303100000006", "中国光大银行", "CEB"),
    ("308584000013", "招商银行", "CMB"),
    ("310290000013", "上海浦东发展银行", "SPDB"),
)
BY_CODE = {code: (name, short) for code, name, short in BANKS}
