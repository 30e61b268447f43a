"""The egress guard: a loopback proxy that checks the address of every fetch and redirect hop.

No traffic ever leaves loopback: "public" names resolve to 127.0.0.1 through an injected
resolver (with allow_loopback=True), unsafe names to link-local/metadata/private addresses,
and the injected connector refuses anything but a loopback IP, recording every attempt, so
a proxy that connected where it should not fails the test instead of sending a packet."""

import functools
import http.server
import ipaddress
import json
import os
import socket
import threading
import urllib.error
import urllib.request
from urllib.parse import parse_qs, urlsplit

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from wit_pipeline.core import keys, schema
from wit_pipeline.stages import download as dl
from wit_pipeline.stages import fetch
from wit_pipeline.synthetic.concepts import all_concepts
from wit_pipeline.synthetic.images import encode, render
from wit_pipeline.web.egress_proxy import EgressProxy, failure_reason, refused_reason
from wit_pipeline.web.urlsafety import classify_address

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

TIMEOUT = 5
BLOB = os.urandom(300_000) + b"end"  # several 64 KiB relay buffers


class FakeDNS:
    """Resolves from a table, never the network; a list of answers is used one per call
    (the last repeats): a rebinding DNS server. Records every name asked."""

    def __init__(self, table):
        self.table = table
        self.calls = []

    def __call__(self, host, port, type=0, **_):  # noqa: A002 - getaddrinfo's signature
        n = sum(1 for h in self.calls if h == host)
        self.calls.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answers = self.table[host]
        if isinstance(answers, list):
            answers = answers[min(n, len(answers) - 1)]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers, port))]


def fake_dns():
    return FakeDNS(
        {
            "public.example": "127.0.0.1",
            "metadata-alias.example": "169.254.169.254",
            "linklocal.example": "169.254.10.10",
            "intranet.example": "10.0.0.1",
            "rebind.example": ["127.0.0.1", "169.254.169.254"],
        }
    )


class Connects:
    """socket.create_connection for loopback IPs only; records every attempt."""

    def __init__(self):
        self.calls = []

    def __call__(self, address, timeout):
        self.calls.append(address)
        if not ipaddress.ip_address(address[0]).is_loopback:  # a name here is a failure too
            raise ConnectionRefusedError("test connector: never leave loopback")
        return socket.create_connection(address, timeout)


class _Origin(http.server.SimpleHTTPRequestHandler):
    """Files, plus /redirect?to=URL (a 302) and /echo (the request head it received)."""

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", parse_qs(url.query)["to"][0])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif url.path == "/echo":
            body = json.dumps({"line": self.requestline, "headers": dict(self.headers.items())}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            super().do_GET()

    def log_message(self, format, *args):  # noqa: A002
        pass


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    root = tmp_path_factory.mktemp("origin")
    (root / "blob.bin").write_bytes(BLOB)
    (root / "img").mkdir()
    concepts = all_concepts()
    for i in range(3):
        (root / "img" / f"{i}.jpg").write_bytes(encode(render(concepts[i * 5], (96, 96), seed=i)))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Origin, directory=str(root)))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.1,), daemon=True)
    thread.start()
    try:
        yield {"root": root, "port": httpd.server_address[1]}
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(autouse=True)
def no_bypass(monkeypatch):
    # urllib consults no_proxy even for an explicit ProxyHandler; a CI's no_proxy=127.0.0.1
    # must not route these tests around the proxy.
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(name, "")


def selected_pairs(path, urls):
    rows = []
    for i, url in enumerate(urls):
        caption = f"picture {i}"
        rows.append({"url": url, "caption": caption, "key": keys.sample_key(url, caption),
                     "page_url": "http://pages.example/", "language": "en", "lang_score": 0.9, "query_ids": [i],
                     "queries": [f"q{i}"]})
    pq.write_table(pa.Table.from_pylist(rows, schema=schema.SELECTED), path)
    return str(path), rows


def opener(proxy):
    return urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy.url, "https": proxy.url}))


def guard(allow_loopback=True, dns=None, connect=None):
    return EgressProxy(allow_loopback, dns or fake_dns(), timeout=TIMEOUT, connect=connect or Connects())


def raw(proxy, request: bytes, then: bytes = b"") -> bytes:
    """Send bytes to the proxy (and `then` once a reply has begun) and read until it closes."""
    host, port = urlsplit(proxy.url).hostname, urlsplit(proxy.url).port
    with socket.create_connection((host, port), timeout=TIMEOUT) as s:
        s.sendall(request)
        if then:
            chunks = [s.recv(65536)]  # like urllib, wait for CONNECT's reply before talking through it
            s.sendall(then)
        else:
            chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_plain_fetch_is_byte_for_byte(origin):
    dns, connects = fake_dns(), Connects()
    with guard(dns=dns, connect=connects) as proxy:
        with opener(proxy).open(f"http://public.example:{origin['port']}/blob.bin", timeout=TIMEOUT) as r:
            assert r.status == 200
            assert r.read() == BLOB
        assert proxy.refusals == {}
    assert dns.calls == ["public.example"]
    assert connects.calls == [("127.0.0.1", origin["port"])]


def test_request_is_rewritten_to_origin_form(origin):
    dns = fake_dns()
    with guard(dns=dns) as proxy:
        reply = raw(
            proxy,
            f"GET http://public.example:{origin['port']}/echo?q=1 HTTP/1.1\r\nHost: ignored.example\r\n"
            "User-Agent: test\r\nProxy-Authorization: Basic eDp5\r\nProxy-Connection: keep-alive\r\n"
            "Connection: keep-alive, X-Secret\r\nX-Secret: 1\r\n\r\n".encode(),
        )
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200")
    seen = json.loads(body)
    assert seen["line"] == "GET /echo?q=1 HTTP/1.1"
    assert seen["headers"] == {"Host": f"public.example:{origin['port']}", "User-Agent": "test", "Connection": "close"}


@pytest.mark.parametrize("allow_loopback", [False, True])
@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://metadata-alias.example/latest/meta-data/", "cloud_metadata"),
        ("http://linklocal.example:8080/x.jpg", "link_local"),
        ("http://169.254.169.254/latest/meta-data/", "cloud_metadata"),
        ("http://metadata.google.internal/computeMetadata/v1/", "cloud_metadata"),
        ("http://0.0.0.0/x.jpg", "unspecified"),
        ("http://nowhere.example/x.jpg", "unresolvable"),
    ],
)
def test_unsafe_hosts_are_refused_before_connecting(url, reason, allow_loopback):
    connects = Connects()
    with guard(allow_loopback, connect=connects) as proxy:
        with pytest.raises(urllib.error.HTTPError) as err:
            opener(proxy).open(url, timeout=TIMEOUT)
        assert proxy.refusals == {reason: 1}
    assert err.value.code == 403
    assert err.value.headers["X-Wit-Refused"] == reason
    assert refused_reason(str(err.value)) == reason
    assert dl.outcome_reason("failed_to_download", str(err.value)) == f"unsafe_host.{reason}"
    assert connects.calls == []


@pytest.mark.parametrize(
    "host, reason", [("127.0.0.1", "loopback"), ("public.example", "loopback"), ("localhost", "localhost")]
)
def test_loopback_only_with_allow_loopback(origin, host, reason):
    url = f"http://{host}:{origin['port']}/blob.bin"
    connects = Connects()
    with guard(allow_loopback=False, connect=connects) as proxy:
        with pytest.raises(urllib.error.HTTPError) as err:
            opener(proxy).open(url, timeout=TIMEOUT)
        assert err.value.code == 403
        assert proxy.refusals == {reason: 1}
    assert connects.calls == []
    with guard(allow_loopback=True, connect=connects) as proxy:
        assert opener(proxy).open(url, timeout=TIMEOUT).read() == BLOB
    assert connects.calls == [("127.0.0.1", origin["port"])]


def test_private_network_refused_by_default():
    connects = Connects()
    with guard(allow_loopback=False, connect=connects) as proxy:
        with pytest.raises(urllib.error.HTTPError, match=r"403: Forbidden by wit egress guard \(private\)"):
            opener(proxy).open("http://intranet.example/x.jpg", timeout=TIMEOUT)
    assert connects.calls == []


def test_redirect_to_refused_host_is_refused_on_the_second_hop(origin):
    dns, connects = fake_dns(), Connects()
    port = origin["port"]
    with guard(dns=dns, connect=connects) as proxy:
        url = f"http://public.example:{port}/redirect?to=http://metadata-alias.example/latest/meta-data/"
        with pytest.raises(urllib.error.HTTPError) as err:
            opener(proxy).open(url, timeout=TIMEOUT)
        assert err.value.code == 403 and refused_reason(str(err.value)) == "cloud_metadata"
        assert proxy.refusals == {"cloud_metadata": 1}
        # a redirect to an allowed host is relayed unchanged and followed through the proxy
        url = f"http://public.example:{port}/redirect?to=http://public.example:{port}/blob.bin"
        assert opener(proxy).open(url, timeout=TIMEOUT).read() == BLOB
    assert dns.calls == ["public.example", "metadata-alias.example", "public.example", "public.example"]
    assert connects.calls == [("127.0.0.1", port)] * 3


def test_dns_rebinding_is_resolved_once_per_request_and_pinned(origin):
    """rebind.example answers 127.0.0.1 first and 169.254.169.254 after: the proxy must
    connect to the address it checked, not ask again and get the metadata server."""
    dns, connects = fake_dns(), Connects()
    url = f"http://rebind.example:{origin['port']}/blob.bin"
    with guard(dns=dns, connect=connects) as proxy:
        assert opener(proxy).open(url, timeout=TIMEOUT).read() == BLOB
        assert dns.calls == ["rebind.example"]
        assert connects.calls == [("127.0.0.1", origin["port"])]
        with pytest.raises(urllib.error.HTTPError, match="cloud_metadata"):  # the next request sees the rebind
            opener(proxy).open(url, timeout=TIMEOUT)
    assert dns.calls == ["rebind.example"] * 2
    assert connects.calls == [("127.0.0.1", origin["port"])]


def test_connect_tunnel(origin):
    connects = Connects()
    with guard(connect=connects) as proxy:
        # urllib tunnels https with CONNECT; a refused tunnel reaches img2dataset as this URLError
        with pytest.raises(urllib.error.URLError) as err:
            opener(proxy).open("https://metadata-alias.example/latest/meta-data/", timeout=TIMEOUT)
        assert "Tunnel connection failed: 403 Forbidden by wit egress guard (cloud_metadata)" in str(err.value)
        assert dl.outcome_reason("failed_to_download", str(err.value)) == "unsafe_host.cloud_metadata"
        assert connects.calls == []
        # an allowed tunnel relays both ways (plain HTTP inside, where TLS would be)
        port = origin["port"]
        reply = raw(
            proxy,
            f"CONNECT public.example:{port} HTTP/1.1\r\nHost: public.example:{port}\r\n\r\n".encode(),
            then=b"GET /blob.bin HTTP/1.0\r\nHost: public.example\r\n\r\n",
        )
        assert proxy.refusals == {"cloud_metadata": 1}
    assert reply.startswith(b"HTTP/1.0 200 Connection established\r\n")
    assert reply.endswith(b"\r\n\r\n" + BLOB)
    assert connects.calls == [("127.0.0.1", port)]


def test_malformed_and_unsupported_requests():
    connects = Connects()
    with guard(connect=connects) as proxy:
        assert raw(proxy, b"GET /x.jpg HTTP/1.1\r\nHost: public.example\r\n\r\n").startswith(b"HTTP/1.0 400")
        assert raw(proxy, b"GET https://public.example/ HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.0 400")
        post = b"POST http://public.example/ HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
        assert raw(proxy, post).startswith(b"HTTP/1.0 501")  # only GET and HEAD are forwarded
    assert connects.calls == []


def test_upstream_failure_is_named():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]  # nobody listens here once s is closed
    with guard() as proxy:
        with pytest.raises(urllib.error.HTTPError) as err:
            opener(proxy).open(f"http://public.example:{closed_port}/x.jpg", timeout=TIMEOUT)
        assert proxy.refusals == {}
    assert err.value.code == 502
    assert failure_reason(str(err.value)) == "connection_refused"
    assert dl.outcome_reason("failed_to_download", str(err.value)) == "failed_to_download.connection_refused"


@pytest.mark.parametrize(
    "error, reason",
    [
        ("HTTP Error 403: Forbidden by wit egress guard (link_local)", "unsafe_host.link_local"),
        ("HTTP Error 403: Forbidden by wit egress guard (unresolvable)", "unsafe_host.unresolvable"),
        ("HTTP Error 504: Gateway Timeout from wit egress guard (timeout)", "failed_to_download.timeout"),
        ("HTTP Error 403: Forbidden", "failed_to_download.http_403"),  # an origin's own 403
    ],
)
def test_guard_messages_map_to_reasons(error, reason):
    assert dl.outcome_reason("failed_to_download", error) == reason


def test_urllib_default_handler_uses_proxy_for_loopback(origin, monkeypatch):
    """What img2dataset's workers do: the default opener, configured only by the environment."""
    assert not urllib.request.proxy_bypass_environment("127.0.0.1", {"http": "x", "no": ""})
    assert not urllib.request.proxy_bypass_environment("localhost:80")  # no_proxy is "" here
    assert urllib.request.proxy_bypass_environment("localhost", {"http": "x", "no": "localhost"})  # what we clear
    with guard(allow_loopback=False) as proxy:
        for name in fetch.PROXY_VARIABLES:
            monkeypatch.setenv(name, proxy.url)
        with pytest.raises(urllib.error.HTTPError, match=r"\(loopback\)"):
            urllib.request.build_opener().open(f"http://127.0.0.1:{origin['port']}/blob.bin", timeout=TIMEOUT)
        assert proxy.refusals == {"loopback": 1}


def test_guard_environment_is_shared_and_restored(monkeypatch):
    monkeypatch.setenv("no_proxy", "localhost,127.0.0.1")
    monkeypatch.delenv("NO_PROXY")
    for name in fetch.PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("https_proxy", "http://corporate.example:3128")
    with fetch.egress_guard(True, fake_dns(), TIMEOUT) as a:
        with fetch.egress_guard(True, a.resolve, TIMEOUT) as b:  # a second download on another thread
            assert b is a
        assert all(os.environ[name] == a.url for name in fetch.PROXY_VARIABLES)
        assert os.environ["no_proxy"] == os.environ["NO_PROXY"] == ""
    assert os.environ["no_proxy"] == "localhost,127.0.0.1" and "NO_PROXY" not in os.environ
    assert os.environ["https_proxy"] == "http://corporate.example:3128"
    assert not any(name in os.environ for name in ("http_proxy", "HTTP_PROXY", "HTTPS_PROXY"))


def test_download_counts_a_redirect_to_metadata_or_ftp_as_unsafe(origin, tmp_path):
    port = origin["port"]
    good = [f"http://public.example:{port}/img/{i}.jpg" for i in range(3)]
    evil = f"http://public.example:{port}/redirect?to=http://metadata-alias.example/latest/meta-data/x.jpg"
    out = str(tmp_path / "raw")
    before = {name: os.environ.get(name) for name in fetch.PROXY_VARIABLES}
    dns = fake_dns()

    with Listener() as ftp:
        to_ftp = f"http://public.example:{port}/redirect?to=ftp://127.0.0.1:{ftp.port}/x.jpg"
        selected, rows = selected_pairs(tmp_path / "selected.parquet", [*good, evil, to_ftp])
        # Safe even if the guard failed: the workers' own DNS does not know metadata-alias.example.
        doc = dl.download(selected, out, dl.DownloadConfig(allow_loopback=True, threads=4, timeout=TIMEOUT), resolve=dns)
    assert ftp.received == []

    (stage,) = [{k: s[k] for k in ("in", "out", "dropped")} for s in doc["stages"]]
    assert stage == {"in": 5, "out": 3, "dropped": {"bad_url.scheme": 1, "unsafe_host.cloud_metadata": 1}}
    assert stage["in"] == stage["out"] + sum(stage["dropped"].values())
    assert dl.saved_keys(out) == sorted(r["key"] for r in rows[:3])
    (shard,) = doc["shards"]
    table = pq.read_table(os.path.join(out, f"{shard}.parquet")).to_pylist()
    failed = {r[dl.KEY_COLUMN]: refused_reason(r["error_message"]) for r in table if r["status"] != "success"}
    assert failed == {rows[3]["key"]: "cloud_metadata", rows[4]["key"]: "bad_scheme"}
    dead = pq.read_table(os.path.join(out, dl.DEAD_LETTER_FILE)).to_pylist()
    assert sorted(dead, key=lambda d: d["error"]) == [
        {"stage": "download", "source": f"{rows[4]['key']} {to_ftp}", "error": "bad_url.scheme (at fetch)"},
        {"stage": "download", "source": f"{rows[3]['key']} {evil}", "error": "unsafe_host.cloud_metadata (at fetch)"},
    ]
    # the pre-check resolved each host once; the proxy resolved at every fetch and hop
    assert dns.calls.count("metadata-alias.example") >= 1
    assert {name: os.environ.get(name) for name in fetch.PROXY_VARIABLES} == before


class Listener:
    """A loopback TCP listener that records every connection (and its first bytes): an FTP
    server, or anything else a fetch must never reach."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.received = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(b"220 hello\r\n")  # an FTP greeting: a client that got here would talk
                conn.settimeout(1)
                try:
                    self.received.append(conn.recv(1024) or b"<connected>")
                except OSError:
                    self.received.append(b"<connected>")

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.mark.parametrize("allow_loopback", [False, True])
def test_ftp_through_the_guard_is_refused_without_connecting(allow_loopback):
    connects = Connects()
    with Listener() as ftp, guard(allow_loopback, connect=connects) as proxy:
        reply = raw(proxy, f"GET ftp://127.0.0.1:{ftp.port}/x.jpg HTTP/1.1\r\n\r\n".encode())
        assert reply.startswith(b"HTTP/1.0 403 Forbidden by wit egress guard (bad_scheme)")
        assert proxy.refusals == {"bad_scheme": 1}
    assert connects.calls == [] and ftp.received == []


@pytest.mark.parametrize("allow_loopback", [False, True])
def test_redirect_to_ftp_never_leaves_the_guard(origin, allow_loopback, monkeypatch):
    """urllib's default opener follows a 302 to ftp://; with the environment the download sets
    (ftp_proxy too), that hop reaches the guard, which refuses it. The origin is "public"
    (a documentation address the connector maps to the loopback origin), so the first hop
    passes without allow_loopback too."""
    public = "192.0.2.80"
    dns = FakeDNS({"public.example": public})

    def connect(address, timeout):
        return socket.create_connection(("127.0.0.1", address[1]) if address[0] == public else address, timeout)

    monkeypatch.setattr("wit_pipeline.web.urlsafety.classify_address",
                        lambda ip, real=classify_address: None if str(ip) == public else real(ip))
    monkeypatch.setattr(fetch, "EgressProxy", functools.partial(EgressProxy, connect=connect))
    with Listener() as ftp:
        with fetch.egress_guard(allow_loopback, dns, TIMEOUT) as proxy:
            url = f"http://public.example:{origin['port']}/redirect?to=ftp://127.0.0.1:{ftp.port}/x.jpg"
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.build_opener().open(url, timeout=TIMEOUT)
        assert refused_reason(str(err.value)) == "bad_scheme"
        assert proxy.refusals == {"bad_scheme": 1}
    assert ftp.received == []


def test_worker_opener_follows_http_redirects_only(origin):
    """What img2dataset's workers fetch with, with or without the guard: http(s) on every hop."""
    with Listener() as ftp:
        base = f"http://127.0.0.1:{origin['port']}"
        for target in (f"ftp://127.0.0.1:{ftp.port}/x.jpg", "file:///etc/passwd", "data:,hello"):
            with pytest.raises(urllib.error.URLError) as err:
                fetch.http_only_opener().open(f"{base}/redirect?to={target}", timeout=TIMEOUT)
            assert "bad_scheme" in str(err.value) or "not allowed" in str(err.value)
        with pytest.raises(urllib.error.URLError, match="unknown url type"):
            fetch.http_only_opener().open(f"ftp://127.0.0.1:{ftp.port}/x.jpg", timeout=TIMEOUT)
        assert fetch.http_only_opener().open(f"{base}/redirect?to={base}/blob.bin", timeout=TIMEOUT).read() == BLOB
    assert ftp.received == []


def test_download_without_the_guard_still_refuses_a_redirect_to_ftp(origin, tmp_path):
    """--no-egress-guard: img2dataset's workers themselves fetch http(s) only, so a 302 to
    ftp:// reaches nothing, is counted as bad_url.scheme and dead-lettered; the other images
    are saved. (With the guard: test_download_counts_a_redirect_to_metadata_or_ftp_as_unsafe.)"""
    with Listener() as ftp:
        base = f"http://127.0.0.1:{origin['port']}"
        evil = f"{base}/redirect?to=ftp://127.0.0.1:{ftp.port}/x.jpg"
        selected, rows = selected_pairs(tmp_path / "selected.parquet", [f"{base}/img/0.jpg", evil, f"{base}/img/1.jpg"])
        config = dl.DownloadConfig(allow_loopback=True, egress_guard=False, threads=2, timeout=TIMEOUT, retries=0)
        doc = dl.download(selected, str(tmp_path / "raw"), config)
    (stage,) = doc["stages"]
    assert {k: stage[k] for k in ("in", "out", "dropped")} == {"in": 3, "out": 2, "dropped": {"bad_url.scheme": 1}}
    dead = pq.read_table(os.path.join(tmp_path, "raw", dl.DEAD_LETTER_FILE)).to_pylist()
    assert dead == [{"stage": "download", "source": f"{rows[1]['key']} {evil}", "error": "bad_url.scheme (at fetch)"}]
    assert ftp.received == []
