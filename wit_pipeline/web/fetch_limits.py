"""Bounds on one HTTP fetch made with urllib: a total deadline, a byte cap, http(s) redirects only.

`--timeout` bounds each connect and each read, so a server sending 1 byte every few seconds
holds a fetch for as long as it likes. A `Deadline` (a context, per thread) shuts down every
socket opened meanwhile through the watched handlers once its time is up, whatever the
request is waiting for (the connection, a TLS handshake, headers, the body, a redirect hop).
`read_capped` reads a body one receive at a time up to a byte cap. `SchemeCheckedRedirects`
refuses a redirect to anything but http(s) with the egress guard's `bad_scheme` refusal:
urllib's own check raises an HTTP error of the redirect's status for `file:`, `data:` or
`gopher:` before any handler sees the target, which would count as a failed download.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import threading
import urllib.request
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urljoin, urlsplit

from wit_pipeline.web.egress_proxy import REFUSED_PHRASE
from wit_pipeline.web.urlsafety import ALLOWED_SCHEMES

# the error messages of these drops (img2dataset records them; download counts them)
TOO_LARGE_MESSAGE = "response larger than --max-image-bytes"
DEADLINE_MESSAGE = "fetch took longer than --fetch-deadline"

_call = threading.local()  # this thread's running Deadline


class SchemeCheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects to http(s) URLs only; any other target is a 403 `bad_scheme` refusal.
    `max_redirections` caps one fetch's hops (and its visits to one URL), else urllib's 10 (4)."""

    def __init__(self, max_redirections: int | None = None) -> None:
        if max_redirections is not None:
            self.max_redirections = self.max_repeats = max_redirections

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        if urlsplit(newurl).scheme.lower() not in ALLOWED_SCHEMES:
            raise HTTPError(req.full_url, 403, REFUSED_PHRASE.format(reason="bad_scheme"), headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)

    def http_error_302(self, req: Any, fp: Any, code: int, msg: str, headers: Any) -> Any:
        target = headers.get("location") or headers.get("uri")
        if target is not None and urlsplit(urljoin(req.full_url, target)).scheme.lower() not in ALLOWED_SCHEMES:
            raise HTTPError(req.full_url, 403, REFUSED_PHRASE.format(reason="bad_scheme"), headers, fp)
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


class Deadline:
    """One fetch's deadline: every socket opened meanwhile (this thread) is shut down when it passes."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []  # duplicates: shutting one down ends the connection

    def __enter__(self) -> Deadline:
        self._timer = threading.Timer(self.seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()
        self._outer = getattr(_call, "deadline", None)  # a policy fetch made inside an image's fetch
        _call.deadline = self
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        _call.deadline = self._outer
        with self._lock:
            for sock in self._socks:
                sock.close()
            self._socks.clear()

    def watch(self, sock: socket.socket) -> None:
        dup = socket.socket(fileno=os.dup(sock.fileno()))
        with self._lock:
            self._socks.append(dup)
            if self.expired:
                _shutdown(dup)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._socks:
                _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _watched_connection(*args: Any, **kwargs: Any) -> socket.socket:
    sock = socket.create_connection(*args, **kwargs)
    if (deadline := getattr(_call, "deadline", None)) is not None:
        deadline.watch(sock)
    return sock


class _WatchedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _watched_connection


class _WatchedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _watched_connection


class WatchedHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: Any) -> Any:
        return self.do_open(_WatchedHTTPConnection, req)


class WatchedHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: Any) -> Any:
        return self.do_open(_WatchedHTTPSConnection, req, context=self._context)


def watched_handlers() -> list[urllib.request.BaseHandler]:
    """http and https handlers whose sockets the running Deadline watches (build_opener puts
    them in place of its defaults)."""
    return [WatchedHTTPHandler(), WatchedHTTPSHandler()]


class TooLarge(Exception):
    """A body past the cap."""


def read_capped(response: Any, limit: int) -> bytes:
    """A response's body, or TooLarge past `limit` bytes: a bigger Content-Length is refused
    unread; otherwise at most one read past the limit is made (read1: one recv at a time, so a
    deadline shutting the socket down ends it)."""
    length = (response.headers.get("Content-Length") or "").strip()
    if length.isdigit() and int(length) > limit:
        raise TooLarge
    read = getattr(response, "read1", response.read)
    body = bytearray()
    while chunk := read(64 * 1024):
        body += chunk
        if len(body) > limit:
            raise TooLarge
    return bytes(body)
