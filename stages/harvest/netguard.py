"""Which network addresses a URL source may reach, how names are resolved and connected, and how URLs are shown.

By default only globally routable unicast addresses are fetched: loopback, private (RFC 1918, fc00::/7),
link-local (169.254/16, fe80::/10), carrier-grade NAT, multicast, unspecified, broadcast and reserved addresses
are refused, also when embedded in IPv6 (::ffff:127.0.0.1, 6to4, Teredo, NAT64) or written as decimal, octal
or hex IPv4 (2130706433, 0177.0.0.1, 0x7f.1). The check runs on the resolved address, and the connection goes
to exactly that address (no second lookup: DNS rebinding gets nothing). `allow_private_networks` admits
loopback, private and link-local addresses for on-premises mirrors; cloud metadata endpoints stay refused.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from stages.harvest.item import FetchError, TransientError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
METADATA_ENDPOINTS = {ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254",
                                                        "100.100.100.200")}
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
LEGACY_IPV4 = re.compile(r"(?:0[xX][0-9a-fA-F]*|[0-9]+)(?:\.(?:0[xX][0-9a-fA-F]*|[0-9]+)){0,3}")
SECRET_QUERY_NAME = re.compile(r"token|sig|secret|passw|pwd|key|auth|credential|session|x-amz-|x-goog-", re.I)


class SystemNetwork:
    """Name resolution and TCP connections through the operating system (tests pass their own)."""

    def resolve(self, host: str, port: int) -> list[str]:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(info[4][0] for info in infos))

    def connect(self, address: str, port: int, timeout: float) -> socket.socket:
        return socket.create_connection((address, port), timeout=timeout)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo client, NAT64), if any."""
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    if any(ip in network for network in NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def refusal(ip: IPAddress, allow_private: bool = False) -> str | None:
    """Why `ip` may not be fetched, or None when it may."""
    if ip in METADATA_ENDPOINTS:
        return "a cloud metadata endpoint"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%")[0])
        inner = embedded_ipv4(ip)
        if inner is not None:
            reason = refusal(inner, allow_private)
            return f"an IPv6 form of {inner}, {reason}" if reason else None
    for test, reason in (("is_multicast", "multicast"), ("is_unspecified", "unspecified")):
        if getattr(ip, test):
            return reason
    if isinstance(ip, ipaddress.IPv4Address) and ip == ipaddress.IPv4Address("255.255.255.255"):
        return "broadcast"
    for test, reason in (("is_loopback", "loopback"), ("is_link_local", "link-local"), ("is_site_local", "private"),
                         ("is_private", "private"), ("is_reserved", "reserved")):
        if getattr(ip, test, False):
            return None if allow_private and reason in ("loopback", "link-local", "private") else reason
    if not ip.is_global:
        return None if allow_private else "not globally routable"
    return None


def literal_address(host: str) -> IPAddress | None:
    """The address a URL host names literally (IPv6, dotted IPv4, or the legacy decimal/octal/hex IPv4 forms)."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    bare = bare[:-1] if bare.endswith(".") else bare
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if LEGACY_IPV4.fullmatch(bare):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            raise FetchError("bad-url", f"host {host!r} looks like an IPv4 address but is not one") from None
    return None


def checked_addresses(host: str, port: int, allow_private: bool, network, shown_url: str) -> list[str]:
    """The addresses to connect to for `host`: all of them allowed, else FetchError("blocked-address")."""
    literal = literal_address(host)
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = network.resolve(host, port)
        except socket.gaierror as exc:
            permanent = exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME))
            error = FetchError if permanent else TransientError
            raise error("dns", f"{shown_url}: cannot resolve {host!r}: {exc.strerror or exc}") from None
        except (OSError, UnicodeError) as exc:
            raise TransientError("dns", f"{shown_url}: cannot resolve {host!r}: {exc}") from None
    if not addresses:
        raise FetchError("dns", f"{shown_url}: {host!r} resolves to no address")
    for text in addresses:
        try:
            ip = ipaddress.ip_address(text.split("%")[0])
        except ValueError:
            raise FetchError("blocked-address", f"{shown_url}: {host!r} resolves to {text!r}, not an IP") from None
        reason = refusal(ip, allow_private)
        if reason:
            hint = "" if allow_private or reason not in ("loopback", "link-local", "private", "not globally "
                                                                                            "routable") else (
                "; set allow_private_networks: true on the source for on-premises mirrors")
            raise FetchError("blocked-address", f"{shown_url}: {host!r} is {ip}, {reason}; not fetched{hint}")
    return addresses


def redact(url: str) -> str:
    """`url` without credentials: user:password@ becomes ***@, secret-looking query values become REDACTED."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"//[^/@]*@", "//***@", url.split("?")[0])
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    pairs = []
    for pair in parts.query.split("&") if parts.query else []:
        name, sep, _ = pair.partition("=")
        pairs.append(f"{name}=REDACTED" if sep and SECRET_QUERY_NAME.search(unquote_plus(name)) else pair)
    return urlunsplit((parts.scheme, netloc, parts.path, "&".join(pairs), parts.fragment))
