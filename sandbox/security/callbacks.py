"""Where callbacks may go. A partner's callback URL is checked when it is registered and again
before every delivery, so a partner cannot aim the sandbox at what stands behind it (a cloud's
metadata service, the private network, other services on the machine) nor read the delivery log
to scan their ports: a refused address is never contacted.

    url ─▶ well formed? ─────────▶ resolved, every address ─▶ each one allowed? ─▶ Target
           INVALID_CALLBACK_URL    CALLBACK_ADDRESS_REFUSED   CALLBACK_ADDRESS_REFUSED

An address is allowed when it is public (globally routable); a loopback address while the
sandbox itself listens on loopback only (the local-development default: the partner is the
developer at this machine); and any address inside a `--callback-allow` range (receivers inside
a container network). Metadata addresses and names are refused even then. A delivery connects
to the address that was checked (`Target.pinned_url`, with the partner's Host header and TLS
server name) and follows no redirect, so a name that resolves elsewhere a moment later (DNS
rebinding) or a 3xx pointing inwards gains nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import ipaddress
import re
import socket
import typing as t
import urllib.parse

from sandbox.refusals import CallbackAddressRefused, InvalidCallbackUrl, decides

if t.TYPE_CHECKING:
    from sandbox.settings import Settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: host name → its addresses, as text; raises OSError when it has none. Tests inject their own.
Resolver = t.Callable[[str], list[str]]

METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",  # AWS, GCP, Azure, OpenStack, most others
    "169.254.170.2",  # AWS ECS task metadata
    "100.100.100.200",  # Alibaba Cloud
    "fd00:ec2::254",  # AWS over IPv6
))
METADATA_NAMES = frozenset((
    "metadata", "metadata.google.internal", "metadata.goog", "instance-data",
    "instance-data.ec2.internal",
))
LOOPBACK_HOSTS = frozenset(("localhost", "127.0.0.1", "::1"))
LOOPBACK = "a loopback address, and the sandbox does not listen on loopback only"

# Ranges refused by name, so the detail says what the address is; anything else that is not
# globally routable (documentation, benchmarking, 240/4, ...) is refused as "reserved".
_PRIVATE = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"))
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
# As browsers parse URLs (WHATWG), a host whose last label is a number is an IPv4 address in
# some spelling: 2130706433, 0x7f000001, 0177.0.0.1 and 127.1 all mean 127.0.0.1.
_NUMBER = re.compile(r"0x[0-9a-f]*|[0-9]+")


def system_resolver(host: str) -> list[str]:
    """The host's addresses by the system's resolver (blocking: run it in a thread)."""
    return [info[4][0] for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)]


def is_loopback_host(host: str) -> bool:
    """Whether a bind host (`--host`) listens on loopback only."""
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_networks(ranges: t.Iterable[str]) -> tuple[Network, ...]:
    """`--callback-allow` ranges (CIDR; a bare address is its own range); ValueError if not."""
    return tuple(ipaddress.ip_network(r.strip(), strict=False) for r in ranges if r.strip())


@dataclasses.dataclass(frozen=True)
class Target:
    """A callback URL that passed the policy, with the address a delivery connects to."""

    url: str
    host: str  # as written, without brackets
    address: Address  # the checked address the delivery connects to

    @property
    def pinned_url(self) -> str:
        """The URL with the checked address for its host: nothing resolves it again."""
        parts = urllib.parse.urlsplit(self.url)
        literal = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        port = f":{parts.port}" if parts.port is not None else ""
        return urllib.parse.urlunsplit(parts._replace(netloc=literal + port))

    @property
    def headers(self) -> dict[str, str]:
        """The Host header the partner's URL would have sent; over TLS to a name, no keep-alive:
        connections are pooled by address, and another name's TLS session on the same address
        must not carry this one's request."""
        headers = {"Host": urllib.parse.urlsplit(self.url).netloc.rpartition("@")[2]}
        if self.extensions:
            headers["Connection"] = "close"
        return headers

    @property
    def extensions(self) -> dict:
        """httpx request extensions: over TLS, the name the certificate is checked against."""
        if urllib.parse.urlsplit(self.url).scheme == "https" and not _is_literal(self.host):
            return {"sni_hostname": self.host}
        return {}


@dataclasses.dataclass(frozen=True)
class CallbackPolicy:
    """Which callback URLs the sandbox sends to; pure but for `resolve`."""

    loopback: bool = True  # the sandbox listens on loopback only, so loopback is the developer's
    allow: tuple[Network, ...] = ()  # --callback-allow
    resolve: Resolver = system_resolver

    @classmethod
    def for_settings(cls, settings: Settings, resolve: Resolver = system_resolver
                     ) -> CallbackPolicy:
        return cls(loopback=is_loopback_host(settings.host),
                   allow=parse_networks(settings.callback_allow), resolve=resolve)

    @decides(InvalidCallbackUrl, CallbackAddressRefused)
    async def check(self, url: str) -> Target:
        """The target of `url`, refused unless well formed and every address it has is allowed."""
        host, literal = _host_of(url)
        if literal is not None:
            addresses = [literal]
        else:
            if host.rstrip(".") in METADATA_NAMES:
                raise _refused(f"{host}, a cloud metadata service's name", hint=False)
            addresses = await asyncio.to_thread(self._addresses, host)
        # An IPv4 address written in IPv6 (::ffff:a.b.c.d) is judged and reached as itself.
        addresses = [_unmapped(a) for a in addresses]
        for address in addresses:
            why = self.refuses(address)
            if why:
                named = f"{host}, which resolves to {address}" if literal is None else address
                raise _refused(f"{named}, {why}", hint="metadata" not in why)
        return Target(url=url, host=host, address=addresses[0])

    def refuses(self, address: Address) -> str | None:
        """Why the sandbox does not send to `address` (words for a detail), or None."""
        address = _unmapped(address)
        inner = _embedded(address)
        checked = (address,) if inner is None else (address, inner)
        if any(a in METADATA_ADDRESSES for a in checked):
            return "a cloud metadata address"
        if any(a in network for a in checked for network in self.allow
               if a.version == network.version):
            return None
        for each in checked:
            kind = _kind(each)
            if kind == LOOPBACK and self.loopback:
                continue
            if kind is not None:
                return kind + (f" ({each} inside)" if each is inner else "")
        return None

    def _addresses(self, host: str) -> list[Address]:
        try:
            found = self.resolve(host)
        except (OSError, UnicodeError) as exc:
            raise _refused(f"a host that does not resolve ({host}: {exc}): the sandbox sends only "
                           "to addresses it can check", hint=False) from None
        if not found:
            raise _refused(f"{host}, which resolves to no address", hint=False)
        # A link-local IPv6 address may come back with its zone ("fe80::1%eth0").
        return list(dict.fromkeys(ipaddress.ip_address(a.partition("%")[0]) for a in found))


@functools.lru_cache(maxsize=8)
def policy_for(settings: Settings) -> CallbackPolicy:
    """The policy of a server run with `settings` (its bind host, its --callback-allow)."""
    return CallbackPolicy.for_settings(settings)


def _kind(address: Address) -> str | None:
    """What a non-public address is, in words; None for a public one."""
    if address.is_unspecified or address in _THIS_NETWORK:
        return "an unspecified address"
    if address.is_loopback:
        return LOOPBACK
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if any(address in n for n in _PRIVATE if n.version == address.version):
        return "a private address"
    if address in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if not address.is_global:
        return "a reserved address (not publicly routable)"
    return None


def _unmapped(address: Address) -> Address:
    """An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as the IPv4 address it is."""
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _embedded(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one reaches through (6to4, NAT64), if any."""
    if address.version == 4:
        return None
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _host_of(url: str) -> tuple[str, Address | None]:
    """The URL's host (lower case, no brackets) and, for an address literal, the address."""
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port  # raises on a port that is not a number in range
    except ValueError as exc:
        raise _invalid(f"The URL cannot be delivered to: {exc}.") from None
    if parts.scheme not in ("http", "https"):
        raise _invalid("A callback URL is http:// or https://.")
    host = parts.hostname or ""
    if not host:
        raise _invalid("The URL has no host.")
    if ":" in host:  # a bracketed IPv6 literal
        try:
            address = ipaddress.IPv6Address(host)
        except ValueError:
            raise _invalid(f"[{host}] is not an IPv6 address.") from None
        if address.scope_id:
            raise _invalid("An IPv6 address with a zone cannot receive callbacks.")
        return host, address
    name = host[:-1] if host.endswith(".") else host  # a fully qualified name may end in a dot
    labels = name.split(".")
    if _NUMBER.fullmatch(labels[-1]):
        try:
            return host, ipaddress.IPv4Address(name)  # four decimal numbers, no leading zeros
        except ValueError:
            pass
        try:
            meant = f" (it would mean {socket.inet_ntoa(socket.inet_aton(name))})"
        except OSError:
            meant = ""
        raise _invalid(f"{host} is not an IPv4 address in dotted decimal{meant}: write an "
                       "address as four decimal numbers, or use a host name.")
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise _invalid(f"{host} is not a well-formed host name: labels of 1 to 63 letters, "
                       "digits and inner hyphens, separated by single dots.")
    return host, None


def _invalid(detail: str) -> InvalidCallbackUrl:
    return InvalidCallbackUrl(detail, field="body.url")


def _refused(detail: str, *, hint: bool = True) -> CallbackAddressRefused:
    # The hint is for the operator, whose --callback-allow can admit any range but metadata's.
    more = " (the server's --callback-allow can admit its range)" if hint else ""
    return CallbackAddressRefused(f"Callbacks are not sent to {detail}{more}.", field="body.url")
