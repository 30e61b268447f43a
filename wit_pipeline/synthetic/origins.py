"""Loopback origins with a request log: each one an HTTP server on its own port (its own
origin), answering from a table of routes, recording every request it receives. Tests and
bench/consent.py use them to show what a download asks for, and what it never asks for."""

from __future__ import annotations

import http.server
import threading
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class Origin:
    """An HTTP server on 127.0.0.1:<free port>; `routes` maps a path to its Route, any other
    path is a 404. `log` lists (path, User-Agent) of every request, in order."""

    def __init__(self, routes: dict[str, Route] | None = None) -> None:
        self.routes: dict[str, Route] = dict(routes or {})
        self.log: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        origin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:  # noqa: N802 - stdlib name
                with origin._lock:
                    origin.log.append((self.path, self.headers.get("User-Agent", "")))
                route = origin.routes.get(self.path, Route(404, b"not found"))
                self.send_response(route.status)
                for name, value in route.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.write(route.body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="wit-origin", daemon=True)

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def requests(self, path: str | None = None) -> int:
        """How many requests came (for `path`, or in all)."""
        with self._lock:
            return sum(1 for p, _ in self.log if path is None or p == path)

    def paths(self) -> Counter:
        with self._lock:
            return Counter(p for p, _ in self.log)

    def start(self) -> Origin:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> Origin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
