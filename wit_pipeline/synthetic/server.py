"""A loopback HTTP server for a generated crawl's files (tests and the demo).

Paths under /noai/ answer with `X-Robots-Tag: noai` (an opt-out img2dataset must honour);
missing files are 404s, as broken links in a real crawl are.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

from wit_pipeline.core.cli_help import HelpFormatter

OPT_OUT_PREFIX = "/noai/"


class _Handler(http.server.SimpleHTTPRequestHandler):
    def end_headers(self) -> None:
        if self.path.startswith(OPT_OUT_PREFIX):
            self.send_header("X-Robots-Tag", "noai")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass  # quiet: thousands of image requests would drown the demo's output


class LoopbackServer:
    """Serves `root` on 127.0.0.1 from a background thread; port 0 picks a free port."""

    def __init__(self, root: str | Path, port: int = 0, host: str = "127.0.0.1") -> None:
        handler = functools.partial(_Handler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="wit-loopback", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "LoopbackServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextlib.contextmanager
def serve(root: str | Path, port: int = 0) -> Iterator[str]:
    """Serve `root` for the duration of the block; yields the base URL."""
    server = LoopbackServer(root, port).start()
    try:
        yield server.base_url
    finally:
        server.stop()


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0..65535 (0: any free port)."""
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"a port is a number in 0..65535, got {text!r}")
    return int(text)


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wit serve", description=__doc__, formatter_class=HelpFormatter,
                                     allow_abbrev=False)
    parser.add_argument("root", help="directory to serve (a generated crawl's output directory)")
    parser.add_argument("--port", type=port_number, default=8000,
                        help="loopback port; serve a demo's web (wit-demo/web) on 8931, the port its URLs name")
    args = parser.parse_args(argv)
    if not Path(args.root).is_dir():
        parser.error(f"{args.root} is not a directory")
    try:
        server = LoopbackServer(args.root, args.port)
    except OSError as exc:  # the port is taken (or not ours to take)
        parser.error(f"cannot serve on 127.0.0.1:{args.port}: {exc.strerror or exc}")
    print(f"serving {args.root} at {server.base_url} (Ctrl-C to stop)", flush=True)
    try:
        server.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()
    return 0
