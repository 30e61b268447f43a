"""Running img2dataset safely: the egress guard around it, and guards inside its processes.

In the download process, `egress_guard` points urllib (in this process and the processes it
spawns) at an `egress_proxy.EgressProxy` while img2dataset runs, and `run_img2dataset` calls
img2dataset with a download's config. img2dataset spawns its workers and a logger process
(`multiprocessing` "spawn" context) and fetches with `urllib.request.urlopen`; `Guarded`
wraps its downloader and `GuardedLogger` replaces its logger process, so that:

- every process it spawns dies with the process that started it (Linux `PR_SET_PDEATHSIG`;
  multiprocessing's resource tracker then ends too): a killed `wit download` must not leave
  workers fetching for minutes, writing into a folder that a rerun is cleaning up;
- urllib in the workers, before their first shard, fetches http and https only, on every hop.
  Its default opener follows a redirect to `ftp://` and has handlers for ftp, file and data
  URLs; the egress guard sees only what goes through the `*_proxy` variables, so an FTP hop
  would connect directly to any address. Here the opener has no handler for other schemes,
  and a redirect elsewhere is refused with the egress guard's own refusal (`bad_scheme`),
  counted as `bad_url.scheme`. (The guard also receives `ftp_proxy`, and refuses there too.)

Imported only when a download has something to fetch (it imports img2dataset).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import importlib
import logging
import os
import signal
import threading
import urllib.request
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.error import HTTPError
from urllib.parse import urlsplit

from img2dataset.distributor import multiprocessing_distributor
from img2dataset.logger import LoggerProcess

from wit_pipeline.core import fsio
from wit_pipeline.core.schema import RAW_EXTRA_COLUMNS
from wit_pipeline.stages import consent, consent_fetch
from wit_pipeline.web.egress_proxy import REFUSED_PHRASE, EgressProxy
from wit_pipeline.web.urlsafety import ALLOWED_SCHEMES, Resolver

if TYPE_CHECKING:  # download imports this module (lazily): no import back at run time
    from wit_pipeline.stages.download import DownloadConfig

# X-Robots-Tag directives that opt an image out of AI training sets (img2dataset's defaults).
OPT_OUT_DIRECTIVES = ("noai", "noimageai", "noindex", "noimageindex")

log = logging.getLogger(__name__)


def run_img2dataset(url_list: str, output: str, config: DownloadConfig) -> None:
    """img2dataset over `url_list` (selected pairs, our key as KEY_COLUMN) into `output`."""
    # the module, not the `main` function img2dataset/__init__.py re-exports under that name
    img2dataset_main = importlib.import_module("img2dataset.main")
    # img2dataset installs a SIGINT handler, which Python allows only on the main thread;
    # Beam SDK harnesses (Dataflow, multi_threading) run bundles on worker threads.
    img2dataset_main.signal = _SignalOnMainThread
    fetcher = consent_fetch.ImageFetch(consent.user_agent(config.robots_agent, config.contact), config.robots_agent,
                                       cache_url=fsio.join(output, consent.CACHE_FILE), settings=consent.settings_of(config))
    img2dataset_main.multiprocessing_distributor = functools.partial(_guarded_distributor, fetcher=fetcher)
    img2dataset_main.LoggerProcess = GuardedLogger
    img2dataset_main.download(
        url_list=url_list,
        output_folder=output,
        image_size=config.image_size,
        resize_mode=config.resize_mode,
        resize_only_if_bigger=True,
        min_image_size=config.min_image_size,
        max_aspect_ratio=config.max_aspect_ratio,
        max_image_area=config.max_image_area,
        processes_count=config.processes,
        thread_count=config.threads,
        timeout=config.timeout,
        retries=config.retries,
        number_sample_per_shard=config.number_sample_per_shard,
        encode_format="jpg",
        encode_quality=config.encode_quality,
        output_format="webdataset",
        input_format="parquet",
        url_col="url",
        caption_col="caption",
        save_additional_columns=[*RAW_EXTRA_COLUMNS, consent.CONSENT_COLUMN],
        user_agent_token=config.robots_agent,
        disallowed_header_directives=list(OPT_OUT_DIRECTIVES),
        incremental_mode="extend",
        enable_wandb=False,
        max_shard_retry=1,  # a shard still failing after that is deleted; the next run retries it
        distributor="multiprocessing",
    )


def _guarded_distributor(processes: int, downloader: Any, *rest: Any, fetcher: Any = None) -> Any:
    """img2dataset's multiprocessing distributor, its downloader wrapped in `Guarded`
    (workers that die with this process and fetch http(s) only, on every hop, through `fetcher`)."""
    return multiprocessing_distributor(processes, Guarded(downloader, os.getpid(), fetcher), *rest)


# ftp too: urllib follows a redirect to ftp://, which this way reaches the guard (and is refused)
PROXY_VARIABLES = ("http_proxy", "https_proxy", "ftp_proxy", "HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY")
NO_PROXY_VARIABLES = ("no_proxy", "NO_PROXY")
_guard_lock = threading.Condition()
_guard: dict[str, Any] = {}  # the process's running guard: key, proxy, users, saved environment


@contextlib.contextmanager
def egress_guard(allow_loopback: bool, resolve: Resolver, timeout: float) -> Iterator[EgressProxy]:
    """Point urllib in this process and the workers it spawns at an EgressProxy meanwhile.

    urllib's default ProxyHandler reads `http(s)_proxy` from os.environ, which spawned
    workers inherit; an empty `no_proxy` leaves no host (127.0.0.1 included) bypassing it.
    os.environ is process-wide and the Beam engine runs several downloads on threads of one
    process, so concurrent downloads share one proxy and the last to finish restores the
    environment; a download with other settings waits for them.
    """
    key = (allow_loopback, resolve, timeout)
    with _guard_lock:
        while _guard and _guard["key"] != key:
            _guard_lock.wait()
        if not _guard:
            names = PROXY_VARIABLES + NO_PROXY_VARIABLES
            saved = {name: os.environ.get(name) for name in names}
            if any(saved[name] for name in PROXY_VARIABLES):
                log.warning("download: the egress guard replaces the configured http(s)_proxy for img2dataset")
            proxy = EgressProxy(allow_loopback, resolve, timeout=timeout).start()
            os.environ.update({name: proxy.url for name in PROXY_VARIABLES})
            os.environ.update({name: "" for name in NO_PROXY_VARIABLES})
            _guard.update(key=key, proxy=proxy, users=0, saved=saved)
        _guard["users"] += 1
        proxy = _guard["proxy"]
    try:
        yield proxy
    finally:
        with _guard_lock:
            _guard["users"] -= 1
            if not _guard["users"]:
                for name, value in _guard["saved"].items():
                    if value is None:
                        os.environ.pop(name, None)
                    else:
                        os.environ[name] = value
                proxy.stop()
                if proxy.refusals:
                    log.info("download: the egress guard refused %s", proxy.refusals)
                _guard.clear()
                _guard_lock.notify_all()


class _SignalOnMainThread:
    """Stands in for the `signal` module inside img2dataset.main: a no-op off the main thread."""

    SIGINT = signal.SIGINT

    @staticmethod
    def signal(signum: int, handler: Any) -> Any:
        if threading.current_thread() is threading.main_thread():
            return signal.signal(signum, handler)
        return None


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

    def __init__(self, downloader: Any, parent_pid: int, fetcher: Any = None) -> None:
        self.downloader = downloader
        self.parent_pid = parent_pid
        self.fetcher = fetcher  # consent_fetch.ImageFetch: wit's User-Agent and opt-out checks

    def __call__(self, row: Any) -> Any:
        global _ready
        if not _ready:
            die_with_parent(self.parent_pid)
            urllib.request.install_opener(http_only_opener())
            if self.fetcher is not None:
                consent_fetch.install(self.fetcher)
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
