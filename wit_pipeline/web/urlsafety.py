"""Refuse image URLs that would make a crawler fetch something other than the public web.

A selected pair's URL comes from a stranger's HTML. Fetched blindly from a Dataflow worker
it can reach the cloud metadata server, the VPC, or services on the worker itself (SSRF).
`check_url` refuses, before anything is fetched: non-http(s) schemes; hosts named
`localhost` (and `*.localhost`) or a cloud metadata name; and hosts any of whose resolved
addresses is loopback, private, shared (CGNAT), link-local, multicast, reserved,
unspecified or a metadata address. IP literals are parsed the way the C resolver parses
them (`2130706433`, `0177.0.0.1`, `0x7f.1` are all 127.0.0.1) and IPv4-mapped / NAT64 IPv6
addresses are judged by the IPv4 address inside.

`allow_loopback=True` additionally permits loopback and `localhost` (not the private and shared
ranges: those are other machines on the user's network, never the demo's server);
it exists for the demo and the tests (a loopback server) and must not be used on a crawl.
Link-local, metadata, multicast, reserved and unspecified addresses stay refused.

Residual risk, and what we do about it: img2dataset resolves the host again when it
fetches, so a hostile DNS server can answer with a public address here and a private one
there (DNS rebinding), and urllib follows HTTP redirects to any host. This check alone
cannot pin the address used for the fetch, so `wit download` runs img2dataset behind
`wit_pipeline.web.egress_proxy`: a loopback forward proxy that applies these same rules
(`checked_addresses`) to every request and every redirect hop, resolving once and
connecting to exactly the address it checked; img2dataset's workers fetch http(s) only, on
every hop (`wit_pipeline.stages.fetch`: a redirect to `ftp://` is refused, not
followed around the proxy). What it does not cover: runs with `--no-egress-guard`, whose
redirect hops to other http(s) hosts rely on the network alone. On a real crawl also run workers
without a route to private ranges (firewall egress rules on the workers' network, IMDSv2
on AWS); the damage a bypass leaves is a blind GET whose response is kept only if it
decodes as an image.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

Resolver = Callable[..., list[tuple[Any, ...]]]

ALLOWED_SCHEMES = ("http", "https")

# Names and addresses of instance metadata services (AWS, GCP, Azure, Alibaba, Oracle).
METADATA_HOSTS = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data", "instance-data.ec2.internal"}
)
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200", "168.63.129.16", "192.0.0.192")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SHARED = ipaddress.ip_network("100.64.0.0/10")

# Reasons check_url returns. LOOPBACK_REASONS are lifted by allow_loopback: the loopback servers
# of the demo and tests.
LOOPBACK_REASONS = frozenset({"localhost", "loopback"})
REASONS = (
    "bad_scheme",
    "bad_url",
    "unresolvable",
    "localhost",
    "loopback",
    "private",
    "link_local",
    "multicast",
    "reserved",
    "unspecified",
    "cloud_metadata",
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_LOCALHOST = ipaddress.IPv4Address("127.0.0.1")


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a host string denotes by itself (no DNS), or None for a hostname."""
    host = host.split("%", 1)[0]  # IPv6 zone id
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host) and any(c.isdigit() for c in host):
        try:  # inet_aton accepts what getaddrinfo and browsers accept: 2130706433, 0177.1, 0x7f.0.0.1
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def classify_address(ip: IPAddress) -> str | None:
    """Why an address must not be fetched from, or None if it is a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None)
        if inner is not None:
            return classify_address(inner)
    if ip in METADATA_ADDRESSES:
        return "cloud_metadata"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link_local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_reserved:  # before is_private: Python counts 240.0.0.0/4 as both
        return "reserved"
    if ip.is_private or (isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED):
        return "private"
    if not ip.is_global:  # documentation, benchmarking and other special-purpose ranges
        return "reserved"
    return None


def _host_verdict(host: str, port: int, resolve: Resolver) -> tuple[str | None, list[IPAddress]]:
    """A normalised host's refusal reason (before allow_loopback) and the addresses judged."""
    if host == "localhost" or host.endswith(".localhost"):
        return "localhost", [_LOCALHOST]  # RFC 6761: always loopback, never asked of DNS
    if host in METADATA_HOSTS:
        return "cloud_metadata", []
    literal = parse_ip_literal(host)
    if literal is not None:
        return classify_address(literal), [literal]
    try:
        infos = resolve(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError):
        return "unresolvable", []
    addresses: list[IPAddress] = []
    for info in infos:
        try:
            ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        except (ValueError, IndexError, TypeError):
            return "unresolvable", []
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        return "unresolvable", []
    # Every address must be safe: the fetcher may pick any of them.
    reasons = sorted({r for r in map(classify_address, addresses) if r is not None})
    if not reasons:
        return None, addresses
    # Report the most severe; LOOPBACK_REASONS rank last so allow_loopback cannot hide the others.
    severe = [r for r in reasons if r not in LOOPBACK_REASONS]
    return (severe or reasons)[0], addresses


def _split_url(url: str) -> tuple[str | None, str, int]:
    """(refusal reason or None, normalised host, port) of a URL, before any DNS."""
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").rstrip(".").lower()
        port = parts.port or (443 if scheme == "https" else 80)
    except (ValueError, AttributeError):
        return "bad_url", "", 0
    if scheme not in ALLOWED_SCHEMES:
        return "bad_scheme", "", 0
    if not host:
        return "bad_url", "", 0
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return "bad_url", "", 0
    return None, host, port


def check_url(
    url: str,
    allow_loopback: bool = False,
    resolve: Resolver = socket.getaddrinfo,
    cache: MutableMapping[tuple[str, int], str | None] | None = None,
) -> str | None:
    """A refusal reason (one of REASONS) for `url`, or None when it is safe to fetch.

    `cache` maps (host, port) to the host's verdict; pass one dict per run so each host is
    resolved once (verdicts do not depend on allow_loopback, which is applied after).
    """
    reason, host, port = _split_url(url)
    if reason is not None:
        return reason
    key = (host, port)
    if cache is not None and key in cache:
        reason = cache[key]
    else:
        reason = _host_verdict(host, port, resolve)[0]
        if cache is not None:
            cache[key] = reason
    if reason in LOOPBACK_REASONS and allow_loopback:
        return None
    return reason


def checked_addresses(
    url: str, allow_loopback: bool = False, resolve: Resolver = socket.getaddrinfo
) -> tuple[str | None, list[IPAddress]]:
    """check_url's verdict together with the addresses it judged, resolving afresh (no cache).

    For a caller that connects by itself (wit_pipeline.web.egress_proxy): when the reason is
    None the list is non-empty and every address in it is safe, so connecting to exactly
    these, never resolving the name again, fetches from what was checked.
    """
    reason, host, port = _split_url(url)
    if reason is not None:
        return reason, []
    reason, addresses = _host_verdict(host, port, resolve)
    if reason in LOOPBACK_REASONS and allow_loopback:
        return None, addresses
    return reason, addresses


class UrlChecker:
    """check_url with one DNS cache for a run: `UrlChecker(allow_loopback)(url) -> reason | None`."""

    def __init__(self, allow_loopback: bool = False, resolve: Resolver = socket.getaddrinfo) -> None:
        self.allow_loopback = allow_loopback
        self.resolve = resolve
        self.cache: dict[tuple[str, int], str | None] = {}

    def __call__(self, url: str) -> str | None:
        return check_url(url, self.allow_loopback, self.resolve, self.cache)
