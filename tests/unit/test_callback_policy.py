"""Where callbacks may go, without a network: the policy of `sandbox.security.callbacks` with
an injected resolver (a plain function, host → addresses), over every address the issue names,
their IPv6 and disguised spellings, names that resolve inside, and the allow-list."""

from __future__ import annotations

import asyncio

import pytest

from sandbox.refusals import CallbackAddressRefused, InvalidCallbackUrl
from sandbox.security.callbacks import CallbackPolicy, is_loopback_host, parse_networks
from sandbox.settings import Settings, SettingsError

PUBLIC = "93.184.215.14"
NAMES = {
    "partner.example.com": [PUBLIC],
    "inside.example.com": ["10.0.0.7"],  # a public name pointing at the private network
    "half.example.com": [PUBLIC, "192.168.1.2"],  # one bad address among good ones
    "v6.example.com": ["2606:2800:220:1:248:1893:25c8:1946"],
    "zoned.example.com": ["fe80::1%eth0"],
    "receiver.internal": ["172.18.0.5"],  # a container network's receiver
    "localhost": ["127.0.0.1", "::1"],
}


def resolve(host: str) -> list[str]:
    host = host.rstrip(".")  # as DNS reads a fully qualified name
    if host not in NAMES:
        raise OSError(f"[Errno -2] Name or service not known: {host!r}")
    return NAMES[host]


def check(url: str, **policy):
    return asyncio.run(CallbackPolicy(resolve=resolve, **policy).check(url))


def refused(url: str, **policy) -> str:
    with pytest.raises(CallbackAddressRefused) as caught:
        check(url, **policy)
    assert caught.value.code == "CALLBACK_ADDRESS_REFUSED" and caught.value.status == 422
    assert caught.value.field == "body.url"
    return caught.value.detail


@pytest.mark.parametrize(("url", "why"), (
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata address"),
    ("http://[fd00:ec2::254]/", "cloud metadata address"),
    ("http://100.100.100.200/", "cloud metadata address"),
    ("http://metadata.google.internal/computeMetadata/v1/", "metadata service's name"),
    ("http://metadata/", "metadata service's name"),
    ("http://10.0.0.1/", "private address"),
    ("http://172.16.5.4/", "private address"),
    ("http://192.168.0.1:8080/hook", "private address"),
    ("http://[fd12:3456::1]/", "private address"),
    ("http://169.254.1.1/", "link-local address"),
    ("http://[fe80::1]/", "link-local address"),
    ("http://100.64.0.1/", "shared (carrier-grade NAT) address"),
    ("http://224.0.0.1/", "multicast address"),
    ("http://[ff02::1]/", "multicast address"),
    ("http://0.0.0.0/", "unspecified address"),
    ("http://[::]/", "unspecified address"),
    ("http://240.0.0.1/", "reserved address"),
    ("http://192.0.2.1/", "reserved address"),  # documentation
    ("http://255.255.255.255/", "reserved address"),
))
def test_addresses_behind_the_sandbox_are_refused_with_what_they_are(url, why):
    assert why in refused(url)


@pytest.mark.parametrize(("url", "why"), (
    ("http://[::ffff:169.254.169.254]/", "cloud metadata address"),
    ("http://[::ffff:10.0.0.1]/", "private address"),
    ("http://[::ffff:a9fe:a9fe]/", "cloud metadata address"),
    ("http://[2002:a00:1::]/", "private address (10.0.0.1 inside)"),  # 6to4
    ("http://[64:ff9b::a9fe:101]/", "link-local address (169.254.1.1 inside)"),  # NAT64
))
def test_ipv4_addresses_written_in_ipv6_are_judged_as_the_ipv4_address(url, why):
    assert why in refused(url)


@pytest.mark.parametrize(("url", "means"), (
    ("http://0x7f000001/", "127.0.0.1"),
    ("http://2130706433/", "127.0.0.1"),
    ("http://0177.0.0.1/", "127.0.0.1"),
    ("http://127.1/", "127.0.0.1"),
    ("http://0xa9.0xfe.0xa9.0xfe/", "169.254.169.254"),
    ("http://010.0.0.1/", "8.0.0.1"),
))
def test_ipv4_addresses_in_disguise_are_refused_as_malformed_saying_what_they_mean(url, means):
    with pytest.raises(InvalidCallbackUrl) as caught:
        check(url)
    assert caught.value.code == "INVALID_CALLBACK_URL" and caught.value.field == "body.url"
    assert f"it would mean {means}" in caught.value.detail


@pytest.mark.parametrize("url", (
    "http://a..b/", "http://.example.com/", "http://-bad.example.com/", "http://bad-.example.com/",
    "http://" + "a" * 64 + ".example.com/", "http://[::1/hook", "http://[0]/",
    "http://example.com:99999/", "ftp://example.com/", "http:///hook", "http://1.2.3.4.5/",
))
def test_malformed_hosts_are_refused_as_invalid(url):
    with pytest.raises(InvalidCallbackUrl):
        check(url)


def test_a_name_is_judged_by_every_address_it_resolves_to():
    assert "inside.example.com, which resolves to 10.0.0.7, a private address" in refused(
        "https://inside.example.com/hook")
    assert "which resolves to 192.168.1.2" in refused("https://half.example.com/hook")
    assert "link-local" in refused("http://zoned.example.com/")
    assert "does not resolve" in refused("https://nowhere.example.com/hook")


def test_a_public_host_is_accepted_and_delivery_is_pinned_to_its_address():
    target = check("https://partner.example.com/hooks/payments?x=1")
    assert str(target.address) == PUBLIC
    assert target.pinned_url == f"https://{PUBLIC}/hooks/payments?x=1"
    assert target.headers == {"Host": "partner.example.com", "Connection": "close"}
    assert target.extensions == {"sni_hostname": "partner.example.com"}
    v6 = check("http://v6.example.com:8080/h")
    assert v6.pinned_url == "http://[2606:2800:220:1:248:1893:25c8:1946]:8080/h"
    assert v6.headers == {"Host": "v6.example.com:8080"} and v6.extensions == {}
    assert check(f"http://{PUBLIC}/").pinned_url == f"http://{PUBLIC}/"
    assert check("http://partner.example.com./").host == "partner.example.com."


@pytest.mark.parametrize("url", (
    "http://127.0.0.1:9/hook", "http://[::1]:9/hook", "http://localhost:9/hook",
    "http://[::ffff:127.0.0.1]:9/hook",
))
def test_loopback_is_the_developers_while_the_sandbox_listens_on_loopback_only(url):
    assert check(url, loopback=True).address.is_loopback
    assert "loopback" in refused(url, loopback=False)


@pytest.mark.parametrize(("host", "loopback_only"), (
    ("127.0.0.1", True), ("::1", True), ("localhost", True), ("127.0.0.2", True),
    ("0.0.0.0", False), ("::", False), ("10.0.0.5", False), ("sandbox.example.com", False),
))
def test_the_bind_host_decides_whether_loopback_is_the_developers(host, loopback_only):
    assert is_loopback_host(host) is loopback_only
    policy = CallbackPolicy.for_settings(Settings.from_env({}, host=host))
    assert policy.loopback is loopback_only


def test_callback_allow_admits_a_range_and_only_that_range():
    allow = parse_networks(["172.18.0.0/16", "fd00:abcd::/32", "127.0.0.0/8"])
    assert str(check("http://receiver.internal:8080/hook", allow=allow).address) == "172.18.0.5"
    assert check("http://[fd00:abcd::9]/", allow=allow)
    assert check("http://[::ffff:172.18.1.1]/", allow=allow)
    assert check("http://127.0.0.1:9/", loopback=False, allow=allow)  # a bind on 0.0.0.0
    assert "private address" in refused("http://172.19.0.1/", allow=allow)
    assert "private address" in refused("http://10.0.0.1/", allow=allow)


def test_callback_allow_never_admits_a_metadata_address():
    everything = parse_networks(["0.0.0.0/0", "::/0"])
    assert check("http://10.0.0.1/", allow=everything)
    assert "metadata" in refused("http://169.254.169.254/", allow=everything)
    assert "metadata" in refused("http://metadata.google.internal/", allow=everything)


def test_callback_allow_comes_from_the_environment_and_a_bad_range_fails_at_start():
    settings = Settings.from_env({"SANDBOX_CALLBACK_ALLOW": "172.18.0.0/16, 10.1.2.3"})
    assert settings.callback_allow == ("172.18.0.0/16", "10.1.2.3")
    assert Settings.from_env({"SANDBOX_CALLBACK_ALLOW": "10.0.0.0/8"},
                             callback_allow=("192.168.0.0/16",)).callback_allow == (
        "192.168.0.0/16",)  # the flag wins
    with pytest.raises(SettingsError, match="callback_allow"):
        Settings.from_env({"SANDBOX_CALLBACK_ALLOW": "172.18.0.0/33"})
