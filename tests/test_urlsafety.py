import socket

import pytest

from wit_pipeline.web.urlsafety import UrlChecker, check_url, parse_ip_literal


class FakeDNS:
    """An injected resolver: never touches the network, records what was asked."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.calls: list[str] = []

    def __call__(self, host, port, type=0, **_):  # noqa: A002 - getaddrinfo's signature
        self.calls.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        out = []
        for addr in self.table[host]:
            family = socket.AF_INET6 if ":" in addr else socket.AF_INET
            sockaddr = (addr, port, 0, 0) if family == socket.AF_INET6 else (addr, port)
            out.append((family, socket.SOCK_STREAM, 6, "", sockaddr))
        return out


DNS = FakeDNS(
    {
        "images.example.com": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
        "intranet.example.com": ["10.1.2.3"],
        "mixed.example.com": ["93.184.216.34", "192.168.1.9"],
        "rebind-meta.example.com": ["169.254.169.254"],
        "v6local.example.com": ["fe80::1"],
        "cafe.be": ["93.184.216.35"],
    }
)


@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://images.example.com/a.jpg", None),
        ("https://IMAGES.example.com./a.jpg", None),
        ("http://cafe.be/x.png", None),  # hex-looking hostname is a name, not an address
        ("http://93.184.216.34/a.jpg", None),
        ("http://intranet.example.com/a.jpg", "private"),
        ("http://mixed.example.com/a.jpg", "private"),  # every address must be safe
        ("http://rebind-meta.example.com/", "cloud_metadata"),
        ("http://v6local.example.com/", "link_local"),
        ("http://nowhere.invalid/a.jpg", "unresolvable"),
        ("http://localhost:8000/a.jpg", "localhost"),
        ("http://img.localhost/a.jpg", "localhost"),
        ("http://127.0.0.1/a.jpg", "loopback"),
        ("http://2130706433/a.jpg", "loopback"),  # decimal
        ("http://0177.0.0.1/a.jpg", "loopback"),  # octal
        ("http://0x7f.1/a.jpg", "loopback"),  # hex, short form
        ("http://[::1]/a.jpg", "loopback"),
        ("http://[::ffff:127.0.0.1]/a.jpg", "loopback"),  # IPv4-mapped
        ("http://[::ffff:10.0.0.1]/a.jpg", "private"),
        ("http://[64:ff9b::a9fe:a9fe]/a.jpg", "cloud_metadata"),  # NAT64 of 169.254.169.254
        ("http://10.0.0.5/a.jpg", "private"),
        ("http://172.16.3.4/a.jpg", "private"),
        ("http://192.168.0.1/a.jpg", "private"),
        ("http://100.64.0.1/a.jpg", "private"),  # shared address space (CGNAT)
        ("http://[fc00::1]/a.jpg", "private"),
        ("http://169.254.169.254/latest/meta-data/", "cloud_metadata"),
        ("http://[fd00:ec2::254]/", "cloud_metadata"),
        ("http://metadata.google.internal/computeMetadata/v1/", "cloud_metadata"),
        ("http://169.254.10.10/a.jpg", "link_local"),
        ("http://[fe80::1%25eth0]/a.jpg", "link_local"),
        ("http://224.0.0.1/a.jpg", "multicast"),
        ("http://0.0.0.0/a.jpg", "unspecified"),
        ("http://240.0.0.1/a.jpg", "reserved"),
        ("ftp://images.example.com/a.jpg", "bad_scheme"),
        ("file:///etc/passwd", "bad_scheme"),
        ("gopher://127.0.0.1:6379/_", "bad_scheme"),
        ("http:///a.jpg", "bad_url"),
        ("http://images.example.com:notaport/a.jpg", "bad_url"),
    ],
)
def test_check_url_default(url, reason):
    assert check_url(url, resolve=DNS) == reason


@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://127.0.0.1:8000/a.jpg", None),
        ("http://localhost/a.jpg", None),
        # still refused: allow_loopback is for loopback demos, not for other machines on the
        # user's network, nor for the metadata server
        ("http://intranet.example.com/a.jpg", "private"),
        ("http://10.0.0.5/a.jpg", "private"),
        ("http://192.168.1.20/images/cat.jpg", "private"),
        ("http://169.254.169.254/", "cloud_metadata"),
        ("http://metadata.google.internal/", "cloud_metadata"),
        ("http://169.254.10.10/", "link_local"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("file:///etc/passwd", "bad_scheme"),
    ],
)
def test_check_url_allow_loopback(url, reason):
    assert check_url(url, allow_loopback=True, resolve=DNS) == reason


def test_literals_and_names_never_resolve():
    dns = FakeDNS({})
    for url in ("http://127.0.0.1/", "http://localhost/", "http://metadata.google.internal/", "http://2130706433/"):
        assert check_url(url, resolve=dns) is not None
    assert dns.calls == []


def test_checker_caches_dns_per_host():
    dns = FakeDNS({"images.example.com": ["93.184.216.34"], "intranet.example.com": ["10.1.2.3"]})
    checker = UrlChecker(resolve=dns)
    urls = [f"http://images.example.com/{i}.jpg" for i in range(5)] + [f"http://intranet.example.com/{i}" for i in range(3)]
    reasons = [checker(u) for u in urls]
    assert reasons == [None] * 5 + ["private"] * 3
    assert dns.calls == ["images.example.com", "intranet.example.com"]


def test_parse_ip_literal():
    assert str(parse_ip_literal("2130706433")) == "127.0.0.1"
    assert str(parse_ip_literal("0x7f.0.0.1")) == "127.0.0.1"
    assert str(parse_ip_literal("10.1")) == "10.0.0.1"
    assert parse_ip_literal("cafe.be") is None
    assert parse_ip_literal("example.com") is None
