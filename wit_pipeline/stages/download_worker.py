"""What runs inside img2dataset's processes: two guards its own code lacks.

img2dataset spawns its workers and a logger process (`multiprocessing` "spawn" context) and
fetches with `urllib.request.urlopen`. `Guarded` wraps its downloader and `GuardedLogger`
replaces its logger process, so that:

- every process it spawns dies with the process that started it (Linux `PR_SET_PDEATHSIG`;
  multiprocessing's resource tracker then ends too): a killed `wit download` must not leave
  workers fetching for minutes, writing into a folder that a rerun is cleaning up;
- urllib in the workers, before their first shard, fetches http and https only, on every hop. Its default opener follows a redirect to
  `ftp://` and has handlers for ftp, file and data URLs; the egress guard sees only what goes
  through `http(s)_proxy`, so an FTP hop would connect directly to any address. Here the
  opener has no handler for other schemes, and a redirect elsewhere is refused with the
  egress guard's own refusal (`bad_scheme`), counted as `bad_url.scheme`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import urllib.request
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlsplit

from img2dataset.logger import LoggerProcess

from wit_pipeline.web.egress_proxy import REFUSED_PHRASE
from wit_pipeline.web.urlsafety import ALLOWED_SCHEMES

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_ready = False  # per worker process


class HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects to http(s) URLs only; any other target is a 403 refusal."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        if urlsplit(newurl).scheme.lower() not in ALLOWED_SCHEMES:
            raise HTTPError(req.full_url, 403, REFUSED_PHRASE.format(reason="bad_scheme"), headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def http_only_opener() -> urllib.request.OpenerDirector:
    """urllib's default opener (proxies from the environment, https, error handling) without
    its ftp, file and data handlers, following http(s) redirects only."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.UnknownHandler(),  # "unknown url type" for every other scheme
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        HttpOnlyRedirects(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


def die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies (no-op elsewhere)."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name or not hasattr(os, "getppid"):
        return
    libc = ctypes.CDLL(libc_name, use_errno=True)
    if not hasattr(libc, "prctl") or libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
        return
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)


class Guarded:
    """img2dataset's downloader, called in a worker after that worker's guards are set up."""

    def __init__(self, downloader: Any, parent_pid: int) -> None:
        self.downloader = downloader
        self.parent_pid = parent_pid

    def __call__(self, row: Any) -> Any:
        global _ready
        if not _ready:
            die_with_parent(self.parent_pid)
            urllib.request.install_opener(http_only_opener())
            _ready = True
        return self.downloader(row)


class GuardedLogger(LoggerProcess):
    """img2dataset's logger process, dying with the process that started it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.parent_pid = os.getpid()

    def run(self) -> None:
        die_with_parent(self.parent_pid)
        super().run()
