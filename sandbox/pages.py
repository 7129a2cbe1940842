"""The one web page the sandbox serves itself: where a customer signs in and authorises a
partner's consent. Plain HTML forms (no script), so any browser or test driver can use it."""

from __future__ import annotations

import base64
import hashlib
from html import escape

from sandbox.records import Account, Consent, Customer

PERMISSION_LABELS = {
    "ReadAccounts": "查看您的账户信息 · See your accounts",
    "ReadBalances": "查看账户余额 · See your balances",
    "ReadTransactions": "查看交易明细 · See your transactions",
    "InitiatePayments": "从您的账户发起转账 · Make payments from your accounts",
}

_STYLE = """
body{font-family:system-ui,"PingFang SC","Microsoft YaHei",sans-serif;max-width:34rem;
margin:2rem auto;padding:0 1rem;color:#1f2933}
h1{font-size:1.3rem}.box{border:1px solid #cbd2d9;border-radius:.5rem;padding:1rem;margin:1rem 0}
label{display:block;margin:.5rem 0}input[type=text],input[type=password]{width:100%;
padding:.4rem}button{padding:.5rem 1.2rem;margin-right:.5rem}.error{color:#b91c1c}
.hint{color:#52606d;font-size:.9rem}table{border-collapse:collapse}td{padding:.1rem .6rem}
"""



def _policy() -> str:
    """Only what the page ships: its own inline style, by hash (no 'unsafe-inline'), forms to
    itself, and no frame around it. No form-action: the answer to the page's own form is a
    redirect to the partner, which form-action would block."""
    style = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
    return (f"default-src 'self'; style-src 'sha256-{style}'; frame-ancestors 'none'; "
            "base-uri 'none'; object-src 'none'")


#: Sent with every answer of the page, a redirect or an error too: a partner's site must not
#: frame it to trick a customer into approving (clickjacking), and the page's address (a
#: consent, a state, a challenge) must not leak to the partner as a Referer.
HEADERS = {"X-Frame-Options": "DENY", "Content-Security-Policy": _policy(),
           "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
           "Cache-Control": "no-store"}


def _hidden(params: dict) -> str:
    return "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
                   for k, v in params.items() if v is not None)


def _page(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
            f"<body><h1>{escape(title)}</h1>{body}</body></html>")


def _asks(partner_name: str, consent: Consent) -> str:
    items = "".join(f"<li>{escape(PERMISSION_LABELS[p])}</li>"
                    for p in consent.permission_list)
    period = ""
    if consent.transaction_from_date or consent.transaction_to_date:
        period = (f'<p class="hint">交易明细范围 Transactions from '
                  f'{escape(consent.transaction_from_date or "the start")} to '
                  f'{escape(consent.transaction_to_date or "today")}</p>')
    return (f'<div class="box"><p><strong id="partner">{escape(partner_name)}</strong> '
            f"请求以下权限 asks to:</p><ul id=\"permissions\">{items}</ul>{period}"
            f'<p class="hint">有效期至 Until {escape(consent.expires_at)}</p></div>')


def sign_in(partner_name: str, consent: Consent, params: dict, test_customers: list[Customer],
            error: str | None = None) -> str:
    hints = "".join(f"<tr><td>{escape(c.name)}</td><td><code>{escape(c.mobile)}</code>"
                    f"</td></tr>" for c in test_customers)
    body = _asks(partner_name, consent)
    if error:
        body += f'<p class="error" id="error">{escape(error)}</p>'
    body += (f'<form method="post" action="/oauth2/authorize">{_hidden(params)}'
             '<label>手机号或客户号 Mobile or customer id'
             '<input type="text" name="username" id="username" autocomplete="username"></label>'
             '<label>密码 Password<input type="password" name="password" id="password"'
             ' autocomplete="current-password"></label>'
             '<button type="submit" id="sign-in">登录 Sign in</button></form>'
             '<div class="box hint"><p>Sandbox test customers: sign in with a mobile below and '
             'the password <code>sandbox</code>.</p>'
             f"<table>{hints}</table></div>")
    return _page("授权登录 · Sign in to authorise", body)


def pick_accounts(partner_name: str, consent: Consent, params: dict, customer: Customer,
                  accounts: list[Account], ticket: str) -> str:
    boxes = "".join(
        f'<label><input type="checkbox" name="account_id" value="{escape(a.account_id)}"'
        f' checked> {escape(a.product_name)} · {escape(a.account_class)}类 · '
        f'尾号 {escape(a.account_number[-4:])}</label>' for a in accounts)
    body = (f'<p>您好 Hello, <span id="customer">{escape(customer.name)}</span></p>'
            + _asks(partner_name, consent)
            + f'<form method="post" action="/oauth2/authorize">{_hidden(params)}'
            f'{_hidden({"ticket": ticket})}<div class="box" id="accounts"><p>选择账户 '
            f"Choose accounts:</p>{boxes}</div>"
            '<button type="submit" name="decision" value="approve" id="approve">同意 Approve'
            '</button><button type="submit" name="decision" value="refuse" id="refuse">'
            "拒绝 Refuse</button></form>")
    return _page("确认授权 · Authorise", body)


def refused(status: int, code: str, detail: str) -> str:
    """A bad link, for the customer's browser: an unknown client or redirect URI is never
    redirected (RFC 6749 §4.1.2.1), so the customer reads why here."""
    body = (f'<div class="box"><p>这个授权链接无效 This authorisation link cannot be used.</p>'
            f'<p class="error" id="error">{escape(detail)}</p>'
            f'<p class="hint">{status} · <code id="code">{escape(code)}</code></p></div>'
            '<p class="hint">请返回发起授权的应用 Go back to the app that sent you here.</p>')
    return _page("无法授权 · Cannot authorise", body)
