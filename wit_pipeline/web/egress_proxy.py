"""A loopback forward proxy that checks the address each fetch actually connects to.

`urlsafety.check_url` judges a URL before img2dataset sees it, but img2dataset's urllib
resolves the name again when it fetches (DNS rebinding) and follows redirects to any host.
With `http_proxy`/`https_proxy` pointing here, urllib sends every request and every redirect
hop through this proxy: plain http as `GET http://host/path`, https as `CONNECT host:443`.
The proxy resolves the host once with urlsafety's rules (`checked_addresses`), refuses an
unsafe host before connecting, and otherwise connects to exactly the address it checked.
Redirects are relayed unchanged, so urllib's next hop comes back here and is checked again.
Only http and https are fetched: with `ftp_proxy` pointing here too, urllib sends a hop to
`ftp://` as `GET ftp://...`, which is refused (`bad_scheme`) without connecting anywhere.

A refusal is `403 Forbidden by wit egress guard (<reason>)` with an `X-Wit-Refused: <reason>`
header. urllib puts the reason phrase into its error message, which img2dataset records,
so `refused_reason` recovers the urlsafety reason from a sample's error_message. Upstream
failures before any response byte become 502/504 `... from wit egress guard (timeout)`
and the like (`failure_reason`). Only GET and HEAD are forwarded (all img2dataset sends);
responses are relayed as bytes, never parsed or held in memory whole.
"""

from __future__ import annotations

import re
import selectors
import socket
import socketserver
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from wit_pipeline.web.urlsafety import Resolver, checked_addresses

Connector = Callable[[tuple[str, int], float], socket.socket]

BUFFER = 64 * 1024
REFUSED_PHRASE = "Forbidden by wit egress guard ({reason})"
_REFUSED = re.compile(r"forbidden by wit egress guard \((\w+)\)", re.IGNORECASE)
_FAILED = re.compile(r"(?:bad gateway|gateway timeout) from wit egress guard \((\w+)\)", re.IGNORECASE)
# Hop-by-hop and proxy-only request headers: never forwarded to the origin.
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "proxy-authenticate",
     "te", "trailer", "transfer-encoding", "upgrade", "host"}
)


def refused_reason(error_message: str | None) -> str | None:
    """The urlsafety reason in an error message caused by this proxy's refusal, else None."""
    m = _REFUSED.search(error_message or "")
    return m.group(1) if m else None


def failure_reason(error_message: str | None) -> str | None:
    """The upstream failure (timeout, connection_refused, ...) in an error from this proxy's 502/504."""
    m = _FAILED.search(error_message or "")
    return m.group(1) if m else None


def _failure(err: OSError) -> tuple[int, str]:
    if isinstance(err, TimeoutError):
        return 504, "Gateway Timeout from wit egress guard (timeout)"
    reason = {ConnectionRefusedError: "connection_refused", ConnectionResetError: "connection_reset"}.get(
        type(err), "unreachable"
    )
    return 502, f"Bad Gateway from wit egress guard ({reason})"


class _Handler(BaseHTTPRequestHandler):
    """One client connection, one request (HTTP/1.0 replies: the connection closes after it)."""

    server: _Server
    server_version = "wit-egress-guard"

    def setup(self) -> None:
        self.timeout = self.server.io_timeout  # applied to the client socket by StreamRequestHandler
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # thousands of image requests; refusals are counted instead

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.scheme.lower() in ("", "https") or not parts.netloc:  # https comes as CONNECT
            return self._reply(400, "Bad Request (wit egress guard needs an absolute http:// URI)")
        if parts.scheme.lower() != "http":  # ftp:// (urllib's ftp_proxy) and the like: never fetched
            return self._refuse("bad_scheme")
        upstream = self._connect(self.path)
        if upstream is None:
            return
        with upstream:
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            try:
                upstream.sendall(self._request_head(target, parts.netloc.rpartition("@")[2]))
                _pump(upstream, self.connection)
            except _ClientGone:
                pass
            except OSError as err:  # the origin failed before a byte reached the client
                self._reply(*_failure(err))

    do_HEAD = do_GET

    def do_CONNECT(self) -> None:
        upstream = self._connect(f"https://{self.path}/")
        if upstream is None:
            return
        with upstream:
            self.send_response(200, "Connection established")
            self.end_headers()
            self.wfile.flush()
            # urllib waits for this reply before its TLS hello, so nothing is left in rfile's buffer.
            _tunnel(self.connection, upstream, self.server.io_timeout)

    def _connect(self, url: str) -> socket.socket | None:
        """A socket to the checked address of url's host, or None after replying with a refusal."""
        reason, addresses = checked_addresses(url, self.server.allow_loopback, self.server.resolve)
        if reason is not None:
            self._refuse(reason)
            return None
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        error: OSError = OSError("no address")
        for ip in addresses:  # pinned: exactly the addresses judged, never a second lookup
            try:
                return self.server.connect((str(ip), port), self.server.io_timeout)
            except OSError as err:
                error = err
        self._reply(*_failure(error))
        return None

    def _refuse(self, reason: str) -> None:
        self.server.count_refusal(reason)
        body = f"wit egress guard refused this request: {reason}\n".encode()
        self._reply(403, REFUSED_PHRASE.format(reason=reason), body, {"X-Wit-Refused": reason})

    def _request_head(self, target: str, host: str) -> bytes:
        """The client's request in origin-form, without hop-by-hop or proxy headers."""
        listed = {t.strip().lower() for t in self.headers.get("Connection", "").split(",")}
        lines = [f"{self.command} {target} HTTP/1.1", f"Host: {host}"]
        for name, value in self.headers.items():
            dropped = name.lower() in _HOP_BY_HOP or name.lower() in listed
            if not dropped and "\r" not in value and "\n" not in value:  # no folded or smuggled lines
                lines.append(f"{name}: {value}")
        lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")

    def _reply(self, code: int, phrase: str, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(code, phrase)
            for name, value in {**(headers or {}), "Content-Length": str(len(body)), "Connection": "close"}.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except OSError:
            pass  # the client left; nothing to tell it


class _ClientGone(Exception):
    pass


def _pump(src: socket.socket, dst: socket.socket) -> int:
    """Copy src to dst until src closes; returns bytes copied. OSError from src propagates
    only if nothing was copied yet (the caller can still answer with an error status)."""
    sent = 0
    while True:
        try:
            data = src.recv(BUFFER)
        except OSError:
            if sent:
                return sent
            raise
        if not data:
            return sent
        try:
            dst.sendall(data)
        except OSError as err:
            raise _ClientGone from err
        sent += len(data)


def _tunnel(a: socket.socket, b: socket.socket, idle_timeout: float) -> None:
    """Relay bytes both ways until either side closes, errs, or both stay idle for idle_timeout."""
    with selectors.DefaultSelector() as sel:
        sel.register(a, selectors.EVENT_READ, b)
        sel.register(b, selectors.EVENT_READ, a)
        while events := sel.select(idle_timeout):
            for key, _ in events:
                try:
                    data = key.fileobj.recv(BUFFER)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)
                except OSError:
                    return


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    request_queue_size = 512  # img2dataset opens processes x threads connections at once

    def __init__(self, proxy: EgressProxy, max_connections: int) -> None:
        self.allow_loopback = proxy.allow_loopback
        self.resolve = proxy.resolve
        self.connect = proxy.connect
        self.io_timeout = proxy.timeout
        self.count_refusal = proxy._count_refusal
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        # At the cap, the accept loop waits for a free slot (backpressure), then gives up.
        if not self._slots.acquire(timeout=self.io_timeout):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class EgressProxy:
    """`with EgressProxy(allow_loopback) as proxy:` serves on `proxy.url` from a daemon thread.

    `allow_loopback` lifts the loopback refusals as in urlsafety (demo and tests only).
    `resolve` and `connect` are socket.getaddrinfo and socket.create_connection unless a
    test injects others; `timeout` bounds connecting and every idle read or write.
    """

    def __init__(
        self,
        allow_loopback: bool = False,
        resolve: Resolver = socket.getaddrinfo,
        *,
        timeout: float = 10.0,
        max_connections: int = 1024,
        connect: Connector = socket.create_connection,
    ) -> None:
        self.allow_loopback = allow_loopback
        self.resolve = resolve
        self.connect = connect
        self.timeout = timeout
        self._refusals: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server = _Server(self, max_connections)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.1,), name="wit-egress-proxy", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def refusals(self) -> dict[str, int]:
        """Refused requests so far, by urlsafety reason."""
        with self._lock:
            return dict(self._refusals)

    def _count_refusal(self, reason: str) -> None:
        with self._lock:
            self._refusals[reason] += 1

    def start(self) -> EgressProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> EgressProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
