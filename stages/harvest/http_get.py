"""One bounded HTTP(S) GET: every hop's address checked (netguard), connected by that address, redirects
limited, the body capped and read against a deadline, credentials sent only to their own origin and never shown.
"""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urljoin, urlsplit

from stages.harvest import netguard
from stages.harvest.item import FetchError, TransientError, read_bounded

USER_AGENT = "dymesh-harvest/0.1"
REDIRECTS = (301, 302, 303, 307, 308)
CHUNK = 1024 * 1024
MAX_ADDRESSES = 4  # addresses of one name tried in turn (each with its own connect timeout)
SYSTEM_NETWORK = netguard.SystemNetwork()


@dataclass(frozen=True)
class Target:
    """A parsed http(s) URL: where to connect, what to ask for, and how to show it."""

    scheme: str
    host: str  # IDNA-encoded name or address literal, without brackets
    port: int
    path: str  # path and query, percent-encoded ASCII
    shown: str  # redacted URL for messages and tables
    url: str = field(repr=False)  # as given (may hold credentials: never shown)
    authorization: str | None = field(repr=False, default=None)

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.scheme, self.host.lower(), self.port


def parse_target(url: str) -> Target:
    """A Target, or FetchError("bad-url") for anything that is not a plain http(s) URL."""
    shown = netguard.redact(url)
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname or ""
    except ValueError as exc:
        raise FetchError("bad-url", f"{shown}: not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise FetchError("unsupported", f"{shown}: scheme {parts.scheme!r} is not fetched (http or https only)")
    if not host or any(c.isspace() or ord(c) < 32 or c in "\\%" for c in host):
        raise FetchError("bad-url", f"{shown}: no valid host name")
    try:
        host = host if netguard.literal_address(host) else host.encode("idna").decode("ascii")
    except UnicodeError:
        raise FetchError("bad-url", f"{shown}: host name is not valid IDNA") from None
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    if parts.query:
        path += "?" + quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
    authorization = None
    if parts.username is not None:
        user_pass = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        authorization = "Basic " + base64.b64encode(user_pass).decode("ascii")
    return Target(parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path, shown, url, authorization)


class _PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to one already-checked address; the Host header keeps the name."""

    def __init__(self, host: str, port: int, address: str, network, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self.address, self.network = address, network

    def connect(self) -> None:
        self.sock = self.network.connect(self.address, self.port, self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """An HTTPS connection to one already-checked address; TLS verifies the certificate against the name."""

    def __init__(self, host: str, port: int, address: str, network, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address, self.network = address, network

    def connect(self) -> None:
        sock = self.network.connect(self.address, self.port, self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class Watchdog:
    """Shuts the current connection's socket at the deadline: a server dripping its headers or body one byte at a
    time (each within the socket timeout) cannot hold a download past harvest.transfer_timeout_s."""

    def __init__(self, deadline: float):
        self.deadline, self.connection, self.fired = deadline, None, False
        self.timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self.timer.daemon = True
        self.timer.start()

    def _fire(self) -> None:
        self.fired = True
        sock = getattr(self.connection, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked recv; the fetch then fails as a timeout
            except OSError:
                pass

    def expired(self) -> bool:
        return self.fired or time.monotonic() > self.deadline

    def cancel(self) -> None:
        self.timer.cancel()


def _open(target: Target, addresses: list[str], network, timeout_s: float, authorization: str | None,
          watchdog: Watchdog):
    """(connection, response) from the first of at most MAX_ADDRESSES addresses that answers."""
    last: Exception | None = None
    for address in addresses[:MAX_ADDRESSES]:
        if watchdog.expired():
            break
        kind = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
        connection = watchdog.connection = kind(target.host, target.port, address, network, timeout_s)
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        if authorization:
            headers["Authorization"] = authorization
        try:
            connection.request("GET", target.path, headers=headers)
            return connection, connection.getresponse()
        except ssl.SSLCertVerificationError as exc:
            connection.close()
            raise FetchError("tls", f"{target.shown}: certificate not valid for {target.host}: "
                                    f"{exc.verify_message or exc}") from None
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            last = exc
    if watchdog.expired():
        raise TransientError("timeout", f"{target.shown}: download took longer than harvest.transfer_timeout_s")
    kind = "timeout" if isinstance(last, (socket.timeout, TimeoutError)) else "network"
    raise TransientError(kind, f"{target.shown}: {describe(last)}")


def describe(exc: BaseException | None) -> str:
    """An exception in one line without what the server sent (HTTPException texts quote its bytes)."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    if isinstance(exc, (OSError, ssl.SSLError)):
        return f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
    return type(exc).__name__


def _reason(response) -> str:
    return "".join(c for c in str(response.reason or "")[:60] if c.isprintable())


def _body(response, cap: int, watchdog: Watchdog, shown: str) -> bytes:
    length = response.getheader("Content-Length")
    if length and length.strip().isdigit() and int(length) > cap:
        raise FetchError("limit", f"{shown}: Content-Length {length.strip()} over the {cap} byte cap "
                                  "(harvest.max_asset_bytes)")
    data = read_bounded(response.read1, cap, watchdog.deadline, shown, CHUNK)  # read1: a drip meets the deadline
    if watchdog.fired:  # the socket was shut at the deadline: what arrived is not the whole body
        raise TransientError("timeout", f"{shown}: download took longer than harvest.transfer_timeout_s")
    if response.length:  # the server closed before sending what Content-Length promised
        raise TransientError("network", f"{shown}: connection closed {response.length} bytes short of "
                                        "Content-Length")
    return data


def http_get(url: str, *, cap: int, timeout_s: float, transfer_timeout_s: float, max_redirects: int,
             allow_private: bool = False, network=None) -> bytes:
    """The body of `url` after at most `max_redirects` redirects; FetchError (TransientError when worth a retry)."""
    network = network or SYSTEM_NETWORK
    deadline = time.monotonic() + transfer_timeout_s
    first = target = parse_target(url)
    watchdog = Watchdog(deadline)
    try:
        for hop in range(max_redirects + 1):
            addresses = netguard.checked_addresses(target.host, target.port, allow_private, network, target.shown)
            authorization = first.authorization if target.origin == first.origin else None  # never elsewhere
            connection, response = _open(target, addresses, network, timeout_s, authorization, watchdog)
            try:
                status = response.status
                if status in REDIRECTS:
                    location = response.getheader("Location")
                    if not location:
                        raise FetchError("http", f"{target.shown}: HTTP {status} without a Location header")
                    if hop == max_redirects:
                        raise FetchError("redirect", f"{first.shown}: more than {max_redirects} redirects "
                                                     "(harvest.max_redirects)")
                    target = parse_target(urljoin(target.url, location.strip()))
                    continue
                if status == 429 or status >= 500:
                    raise TransientError("http", f"{target.shown}: HTTP {status} {_reason(response)}")
                if not 200 <= status < 300:
                    raise FetchError("http", f"{target.shown}: HTTP {status} {_reason(response)}")
                return _body(response, cap, watchdog, target.shown)
            except (OSError, http.client.HTTPException) as exc:
                if watchdog.expired() or isinstance(exc, (socket.timeout, TimeoutError)):
                    raise TransientError("timeout", f"{target.shown}: no complete answer within the time "
                                                    "limits (harvest.timeout_s, transfer_timeout_s)") from None
                raise TransientError("network", f"{target.shown}: {describe(exc)}") from None
            finally:
                connection.close()
    finally:
        watchdog.cancel()
    raise FetchError("redirect", f"{first.shown}: more than {max_redirects} redirects")
