"""URL sources: loopback, private, link-local (the cloud metadata address), multicast, unspecified and reserved
addresses are refused by default, in every spelling (decimal, octal, hex IPv4; IPv6-mapped, 6to4, NAT64), after
DNS resolution and on every redirect hop; the connection goes to the address that was checked (no DNS
rebinding); redirects and downloads are bounded; credentials never reach a table or an error message.

A local HTTP server on 127.0.0.1 plays every host. For hops that must look public, a test network resolves
names such as public.test to a global address and connects that address to the local server."""

from __future__ import annotations

import http.server
import threading
import time
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from glb import pack_glb
from pipeline.config import HarvestConfig
from pipeline.sources import UrlListSource
from stages.harvest import BlobStore, harvest_source, http_get
from stages.harvest.item import FetchError, TransientError

pytestmark = pytest.mark.timeout(60)

ASSET = pack_glb({"asset": {"version": "2.0"}})
PUBLIC = "93.184.216.34"  # a global unicast address: the test network connects it to the local server
FAST = HarvestConfig(retries=0, backoff_s=0.0, timeout_s=5.0, transfer_timeout_s=5.0)


@pytest.fixture(scope="module")
def server():
    """(port, requests seen as (path, headers)) of a local server: /a.glb, /redirect?to=URL, /loop, /drip,
    /liar (sends more than its Content-Length), /huge (claims a terabyte), /chunked (endless chunked body)."""
    seen: list[tuple[str, dict]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802
            seen.append((self.path, dict(self.headers)))
            path, query = urlsplit(self.path).path, parse_qs(urlsplit(self.path).query)
            if path == "/a.glb":
                self._send(200, ASSET)
            elif path == "/redirect":
                self._redirect(query["to"][0])
            elif path == "/loop":
                self._redirect("/loop")
            elif path == "/drip":
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                for _ in range(1000):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.05)
            elif path == "/liar":
                self.send_response(200)
                self.send_header("Content-Length", "10")
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(b"y" * 5000)
            elif path == "/slow-headers":
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                for _ in range(200):
                    self.wfile.write(b"X-Drip: 1\r\n")
                    self.wfile.flush()
                    time.sleep(0.05)
                self.close_connection = True
            elif path == "/short":
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(b"s" * 10)
                self.close_connection = True
            elif path == "/huge":
                self.send_response(200)
                self.send_header("Content-Length", str(10**12))
                self.end_headers()
                self.wfile.write(b"w" * 5000)
            elif path == "/chunked":
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for _ in range(10_000):
                        self.wfile.write(b"1000\r\n" + b"z" * 4096 + b"\r\n")
                except OSError:
                    pass
            else:
                self._send(404, b"no")

        def _send(self, status, body):
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _redirect(self, location):
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            pass  # clients hanging up on the drip handlers is the point of those tests

    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1], seen
    httpd.shutdown()


class FakeNetwork:
    """Resolves test names as told and connects global test addresses to the local server; records both."""

    def __init__(self, port: int, names: dict[str, list[list[str]]] | None = None):
        self.port, self.names = port, names or {}
        self.resolved: list[str] = []
        self.connected: list[str] = []

    def resolve(self, host, port):
        self.resolved.append(host)
        answers = self.names.get(host, [[PUBLIC]])
        return answers.pop(0) if len(answers) > 1 else answers[0]

    def connect(self, address, port, timeout):
        import socket

        self.connected.append(address)
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)


def get(url, network, **options):
    settings = dict(cap=1_000_000, timeout_s=5.0, transfer_timeout_s=5.0, max_redirects=5) | options
    return http_get.http_get(url, network=network, **settings)


BLOCKED = ["http://127.0.0.1/", "http://localhost/", "http://[::1]/", "http://169.254.169.254/latest/meta-data/",
           "http://2130706433/", "http://0177.0.0.1/", "http://0x7f.1/", "http://127.1/", "http://0/",
           "http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/", "http://[0:0:0:0:0:ffff:a9fe:a9fe]/",
           "http://0.0.0.0/", "http://10.0.0.1/", "http://192.168.1.1/", "http://172.16.0.1/", "http://100.64.0.1/",
           "http://224.0.0.1/", "http://255.255.255.255/", "http://[fe80::1]/", "http://[fc00::1]/", "http://[::]/",
           "http://[2002:7f00:1::]/", "http://[64:ff9b::7f00:1]/", "http://[ff02::1]/", "http://198.18.0.1/",
           "http://[fec0::1]/", "http://[::127.0.0.1]/", "http://0x7f000001/", "http://017700000001/",
           "http://internal.test/", "http://rebound.test/", "http://127.0.0.1.nip.test/"]


@pytest.mark.parametrize("url", BLOCKED)
def test_private_addresses_in_every_spelling_are_refused_before_connecting(server, url):
    port, _ = server
    network = FakeNetwork(port, {"localhost": [["127.0.0.1", "::1"]], "internal.test": [["10.1.2.3"]],
                                 "rebound.test": [[PUBLIC, "127.0.0.1"]], "127.0.0.1.nip.test": [["127.0.0.1"]]})
    with pytest.raises(FetchError) as refused:
        get(url, network)
    assert refused.value.kind == "blocked-address" and network.connected == []


def test_metadata_endpoint_stays_refused_even_with_the_opt_in(server):
    port, _ = server
    for url in ("http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/"):
        with pytest.raises(FetchError, match="metadata"):
            get(url, FakeNetwork(port), allow_private=True)


def test_opt_in_fetches_an_on_premises_mirror_and_default_refuses_it(server, tmp_path):
    port, _ = server
    (tmp_path / "urls.txt").write_text(f"http://127.0.0.1:{port}/a.glb\nhttp://localhost:{port}/a.glb\n")
    rows, errors = harvest_source(UrlListSource(path="urls.txt"), FAST, str(tmp_path), BlobStore(tmp_path))
    assert rows == [] and [e["error_type"] for e in errors] == ["blocked-address"] * 2
    assert "allow_private_networks" in errors[0]["message"]
    mirror = UrlListSource(path="urls.txt", allow_private_networks=True)
    rows, errors = harvest_source(mirror, FAST, str(tmp_path), BlobStore(tmp_path))
    assert errors == [] and len(rows) == 2 and (tmp_path / rows[0]["blob_path"]).read_bytes() == ASSET


@pytest.mark.parametrize("target", ["http://127.0.0.1:{port}/a.glb", "http://169.254.169.254/latest/meta-data/",
                                    "http://internal.test:{port}/a.glb", "http://[::ffff:127.0.0.1]:{port}/a.glb",
                                    "http://2130706433:{port}/a.glb", "file:///etc/passwd", "gopher://x/"])
def test_every_redirect_hop_is_checked(server, target):
    port, seen = server
    network = FakeNetwork(port, {"internal.test": [["10.0.0.7"]]})
    before = len(seen)
    with pytest.raises(FetchError) as refused:
        get(f"http://public.test:{port}/redirect?to={target.format(port=port)}", network)
    assert refused.value.kind in ("blocked-address", "unsupported")
    assert network.connected == [PUBLIC] and [unquote(p) for p, _ in seen[before:]] == [
        f"/redirect?to={target.format(port=port)}"]  # the refused hop was never requested


def test_an_allowed_redirect_is_followed_and_the_checked_address_is_the_one_connected(server):
    port, _ = server
    network = FakeNetwork(port, {"cdn.test": [[PUBLIC], ["127.0.0.1"]]})  # answers public, then rebinds
    assert get(f"http://public.test:{port}/redirect?to=http://cdn.test:{port}/a.glb", network) == ASSET
    assert network.connected == [PUBLIC, PUBLIC] and network.resolved == ["public.test", "cdn.test"]
    with pytest.raises(FetchError) as refused:  # the second lookup now says 127.0.0.1: refused, not connected
        get(f"http://cdn.test:{port}/a.glb", network)
    assert refused.value.kind == "blocked-address" and network.connected == [PUBLIC, PUBLIC]


def test_redirects_are_limited(server):
    port, _ = server
    with pytest.raises(FetchError) as refused:
        get(f"http://public.test:{port}/loop", FakeNetwork(port), max_redirects=3)
    assert refused.value.kind == "redirect"


def test_downloads_are_bounded_in_bytes_and_time(server):
    port, _ = server
    network = FakeNetwork(port)
    assert get(f"http://public.test:{port}/liar", network, cap=4096) == b"y" * 10  # never past Content-Length
    for path in ("/huge", "/chunked"):
        with pytest.raises(FetchError) as refused:
            get(f"http://public.test:{port}{path}", network, cap=4096)
        assert refused.value.kind == "limit", path
    with pytest.raises(TransientError) as short:
        get(f"http://public.test:{port}/short", network)
    assert short.value.kind == "network"  # a truncated body is never taken for the asset
    for path in ("/drip", "/slow-headers"):  # one byte or one header line at a time, each within timeout_s
        start = time.monotonic()
        with pytest.raises(TransientError) as slow:
            get(f"http://public.test:{port}{path}", network, transfer_timeout_s=1.0)
        assert slow.value.kind == "timeout" and time.monotonic() - start < 3, path


def test_credentials_never_reach_tables_or_messages_nor_another_origin(server, tmp_path, monkeypatch):
    port, seen = server
    network = FakeNetwork(port)
    monkeypatch.setattr(http_get, "SYSTEM_NETWORK", network)
    secret_urls = [f"http://alice:s3cr3t@public.test:{port}/a.glb?token=t0k3n&X-Amz-Signature=s1gn&v=1",
                   f"http://bob:hunter2@public.test:{port}/missing.glb",
                   f"http://carol:pw0rd@public.test:{port}/redirect?to=http://other.test:{port}/a.glb"]
    (tmp_path / "urls.txt").write_text("\n".join(secret_urls) + "\n")
    before = len(seen)
    rows, errors = harvest_source(UrlListSource(path="urls.txt"), FAST, str(tmp_path), BlobStore(tmp_path))
    text = repr(rows) + repr(errors)
    for secret in ("s3cr3t", "t0k3n", "s1gn", "hunter2", "pw0rd", "alice", "bob", "carol"):
        assert secret not in text
    assert len(rows) == 2 and [e["error_type"] for e in errors] == ["http"] and "v=1" in text
    authorized = {path: "Authorization" in headers for path, headers in seen[before:]}
    assert authorized["/a.glb?token=t0k3n&X-Amz-Signature=s1gn&v=1"] and authorized[
        f"/redirect?to=http://other.test:{port}/a.glb"]
    assert authorized["/a.glb"] is False  # after the redirect to another origin: no credentials


def test_malformed_lines_and_schemes_are_error_rows(tmp_path):
    (tmp_path / "urls.txt").write_bytes(b"file:///etc/passwd\nftp://x/y.glb\nhttp://[::1/x.glb\nhttp:///x.glb\n"
                                        b"http://h\xffst/x.glb\nhttp://[fe80::1%25eth0]/x.glb\n")
    rows, errors = harvest_source(UrlListSource(path="urls.txt"), FAST, str(tmp_path), BlobStore(tmp_path))
    assert rows == [] and sorted(e["error_type"] for e in errors) == ["bad-url"] * 4 + ["unsupported"] * 2


def test_object_store_lines_cannot_choose_their_endpoint(tmp_path):
    import socket

    with socket.socket() as trap:
        trap.bind(("127.0.0.1", 0))
        trap.listen(1)
        trap.settimeout(0.5)
        port = trap.getsockname()[1]
        (tmp_path / "urls.txt").write_text(
            f"s3://bucket/a.glb?endpoint_override=127.0.0.1:{port}&scheme=http\n"
            f"gs://bucket/b.glb?endpoint_override=http://169.254.169.254&scheme=http\n")
        rows, errors = harvest_source(UrlListSource(path="urls.txt"), FAST, str(tmp_path), BlobStore(tmp_path))
        assert rows == [] and [e["error_type"] for e in errors] == ["bad-url", "bad-url"]
        with pytest.raises(socket.timeout):
            trap.accept()  # nothing ever connected
