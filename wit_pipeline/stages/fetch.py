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
  urllib refuses a redirect to `file:`, `data:`, `gopher:` itself, as an HTTP error of the
  redirect's status; that is the same `bad_scheme` refusal here;
- a fetch reads at most `--max-image-bytes` (a bigger `Content-Length` is not read at all) and
  lasts at most `--fetch-deadline` seconds in all, redirects and body included (`--timeout`
  bounds each connect and read; `web.fetch_limits`, applied by `consent_fetch.ImageFetch`);
- an image's pixel count is read from its header (PIL reads the size without decoding) before
  img2dataset's resizer decodes it: a 25000x25000 PNG of 1.8 MB is refused as too many pixels
  without allocating its 1.9 GB of pixels. An image whose header PIL cannot read is undecodable;
- a full disk or a read-only filesystem under a shard ends the download with that error (naming
  the file) instead of a traceback per sample: the worker stops fetching and writing, and
  raises the error once its shard returns; the parent re-raises it from the pool.

img2dataset writes into a scratch folder (`STAGING`, under the output) with the shard numbers
the caller chose (`start_shard_id`); the caller moves complete shards into place.

Imported only when a download has something to fetch (it imports img2dataset).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import importlib
import inspect
import io
import logging
import os
import signal
import sys
import threading
import time
import traceback
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import fsspec
import img2dataset.downloader as i2d_downloader
import img2dataset.reader as i2d_reader
from img2dataset.distributor import multiprocessing_distributor
from img2dataset.logger import LoggerProcess
from img2dataset.reader import Reader
from PIL import Image

from wit_pipeline.core import fsio
from wit_pipeline.core.faults import STORAGE_ERRNOS as FAULTS
from wit_pipeline.core.schema import RAW_EXTRA_COLUMNS
from wit_pipeline.stages import consent, consent_fetch
from wit_pipeline.web.egress_proxy import EgressProxy
from wit_pipeline.web.fetch_limits import SchemeCheckedRedirects, watched_handlers
from wit_pipeline.web.urlsafety import Resolver

if TYPE_CHECKING:  # download imports this module (lazily): no import back at run time
    from wit_pipeline.stages.download import DownloadConfig

# X-Robots-Tag directives that opt an image out of AI training sets (img2dataset's defaults).
OPT_OUT_DIRECTIVES = ("noai", "noimageai", "noindex", "noimageindex")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """What one image may cost a worker, carried to img2dataset's worker processes."""

    max_image_area: float


_call = threading.local()  # this thread's img2dataset run: its start shard and what it left


def run_img2dataset(url_list: str, output: str, config: DownloadConfig, start_shard_id: int = 0,
                    folder: str | None = None) -> None:
    """img2dataset over `url_list` (selected pairs, our key as KEY_COLUMN) into `output`, a
    folder that must not exist yet, numbering shards from `start_shard_id`; `folder` is the
    download's (its consent cache), `output` by default."""
    # the module, not the `main` function img2dataset/__init__.py re-exports under that name
    img2dataset_main = importlib.import_module("img2dataset.main")
    # img2dataset installs a SIGINT handler, which Python allows only on the main thread;
    # Beam SDK harnesses (Dataflow, multi_threading) run bundles on worker threads.
    img2dataset_main.signal = _SignalOnMainThread
    fetcher = consent_fetch.ImageFetch(consent.user_agent(config.robots_agent, config.contact), config.robots_agent,
                                       cache_url=fsio.join(folder or output, consent.CACHE_FILE),
                                       settings=consent.settings_of(config), max_bytes=config.max_image_bytes,
                                       deadline=config.fetch_deadline)
    img2dataset_main.multiprocessing_distributor = functools.partial(
        _guarded_distributor, limits=Limits(config.max_image_area), fetcher=fetcher)
    img2dataset_main.LoggerProcess = GuardedLogger
    img2dataset_main.Reader = _numbered_reader
    i2d_reader.time = _FailFastTime()
    _call.start_shard_id = start_shard_id
    _call.reader_error = None
    _call.loggers = []
    try:
        _download(img2dataset_main, url_list, output, config)
        if _call.reader_error is not None:
            raise _call.reader_error
    except BaseException:
        for logger in _call.loggers:  # img2dataset joins it only when the run ends well
            if logger.is_alive():
                logger.terminate()
        raise


def _numbered_reader(*args: Any, **kwargs: Any) -> _SafeReader:
    """img2dataset's Reader, numbering shards from this thread's `start_shard_id` (img2dataset
    would take one more than the highest number of any `*.json` in its output folder)."""
    bound = inspect.signature(Reader).bind(*args, **kwargs)
    bound.arguments["start_shard_id"] = _call.start_shard_id
    return _SafeReader(Reader(*bound.args, **bound.kwargs), _call)


class _SafeReader:
    """A Reader whose error ends the iteration and is kept for the caller: multiprocessing's
    Pool.imap waits forever when its input raises before the first task."""

    def __init__(self, reader: Reader, call: threading.local) -> None:
        self.reader = reader
        self.call = call

    def __getattr__(self, name: str) -> Any:
        return getattr(self.reader, name)

    def __iter__(self) -> Iterator[Any]:
        try:
            yield from self.reader
        except Exception as exc:  # noqa: BLE001 - re-raised by run_img2dataset
            self.call.reader_error = exc


class _FailFastTime:
    """img2dataset.reader's `time`: its retry loops (100 tries, minutes of sleeps) give up at
    once when the error they retry is a full disk or a read-only filesystem."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError) and exc.errno in FAULTS:
            raise exc
        time.sleep(seconds)


def _download(img2dataset_main: Any, url_list: str, output: str, config: DownloadConfig) -> None:
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


def _guarded_distributor(processes: int, downloader: Any, *rest: Any, limits: Limits, fetcher: Any = None) -> Any:
    """img2dataset's multiprocessing distributor, its downloader wrapped in `Guarded`
    (workers that die with this process and fetch http(s) only, on every hop, through `fetcher`)."""
    return multiprocessing_distributor(processes, Guarded(downloader, os.getpid(), limits, fetcher), *rest)


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


class HttpOnlyRedirects(SchemeCheckedRedirects):
    """Follows redirects to http(s) URLs only; any other target is a 403 `bad_scheme` refusal
    (`web.fetch_limits`)."""


def http_only_opener() -> urllib.request.OpenerDirector:
    """urllib's default opener (proxies from the environment, https, error handling) without
    its ftp, file and data handlers, following http(s) redirects only."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.UnknownHandler(),  # "unknown url type" for every other scheme
        *watched_handlers(),
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


# img2dataset's resizer blends an alpha channel over white in float64 (~56 bytes a pixel in
# temporaries, ~4 GB at the 8192 x 8192 cap): an image with transparency gets an eighth of the
# area, so no one image costs more than an opaque one at the cap.
ALPHA_AREA_SHARE = 8
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


def header_refusal(stream: io.BytesIO, max_area: float) -> str | None:
    """img2dataset's resizer message for an image refused by its header alone, else None."""
    stream.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(stream) as im:
                width, height = im.size
                if im.mode in _ALPHA_MODES or "transparency" in im.info:
                    max_area = max_area / ALPHA_AREA_SHARE
    except Image.DecompressionBombError:
        return "image area too large"
    except Exception:  # noqa: BLE001 - any header PIL cannot read
        return "Image decoding error"
    finally:
        stream.seek(0)
    return "image area too large" if width * height > max_area else None


class HeaderChecked:
    """img2dataset's resizer, called only for an image whose header passes `header_refusal`."""

    def __init__(self, resizer: Any, max_area: float) -> None:
        self.resizer = resizer
        self.max_area = max_area

    def __call__(self, img_stream: io.BytesIO, blurring_bbox_list: Any = None) -> Any:
        if reason := header_refusal(img_stream, self.max_area):
            return None, None, None, None, None, reason
        return self.resizer(img_stream, blurring_bbox_list)


_fault: OSError | None = None  # per worker process: the full disk that ends the run


def _record_fault(err: OSError, where: str) -> None:
    global _fault
    if _fault is None:
        _fault = OSError(err.errno, err.strerror, err.filename or where)
        i2d_downloader.download_image_with_retry = _fail_fast  # the rest of the shard is not fetched


def _fail_fast(row: tuple[Any, str], *_: Any, **__: Any) -> tuple[Any, None, str]:
    return row[0], None, str(_fault)


def _quiet_faults(unraisable: Any) -> None:
    """Finalisers of files the full disk cut short (a tar stream flushing on garbage collection)
    fail again: the run already reports that error once."""
    exc = unraisable.exc_value
    if not (isinstance(exc, OSError) and exc.errno in FAULTS):
        sys.__unraisablehook__(unraisable)


class _Writer:
    """A sample writer that, once the disk is full, records the error and writes nothing more
    (raising would leave img2dataset's thread pool waiting on its semaphore forever)."""

    def __init__(self, writer: Any, where: str) -> None:
        self.writer = writer
        self.where = where

    def write(self, *args: Any) -> None:
        if _fault is not None:
            return
        try:
            self.writer.write(*args)
        except OSError as err:
            if err.errno not in FAULTS:
                raise
            _record_fault(err, self.where)

    def close(self) -> None:
        try:
            self.writer.close()
        except OSError as err:
            if err.errno not in FAULTS:
                raise
            _record_fault(err, self.where)


class FaultingWriter:
    """img2dataset's sample writer class, whose full-disk errors end the run (`_Writer`)."""

    def __init__(self, writer_class: Any) -> None:
        self.writer_class = writer_class

    def __call__(self, shard_id: int, output_folder: str, *rest: Any) -> _Writer:
        return _Writer(self.writer_class(shard_id, output_folder, *rest), f"{output_folder}/{shard_id:05d}.tar")


class Guarded:
    """img2dataset's downloader, called in a worker after that worker's guards are set up."""

    def __init__(self, downloader: Any, parent_pid: int, limits: Limits, fetcher: Any = None) -> None:
        self.downloader = downloader
        self.parent_pid = parent_pid
        self.limits = limits
        self.fetcher = fetcher  # consent_fetch.ImageFetch: wit's User-Agent, opt-out checks, byte cap, deadline

    def __call__(self, row: Any) -> Any:
        global _ready
        if not _ready:
            die_with_parent(self.parent_pid)
            urllib.request.install_opener(http_only_opener())
            if self.fetcher is not None:
                consent_fetch.install(self.fetcher)
            sys.unraisablehook = _quiet_faults
            _ready = True
        d = self.downloader
        if not isinstance(d.resizer, HeaderChecked):
            d.resizer = HeaderChecked(d.resizer, self.limits.max_image_area)
        if not isinstance(d.sample_writer_class, FaultingWriter):
            d.sample_writer_class = FaultingWriter(d.sample_writer_class)
        # img2dataset's Downloader.__call__, but a full disk ends the run: the error goes to the
        # parent, which re-raises it from the pool
        try:
            d.download_shard(row)
        except OSError as err:
            if err.errno not in FAULTS:
                traceback.print_exc()
                print(f"shard {row[0]} failed with error {err}")
                return False, row
            _record_fault(err, d.output_folder)
        except Exception as err:  # noqa: BLE001 - img2dataset's contract: the shard is retried
            traceback.print_exc()
            print(f"shard {row[0]} failed with error {err}")
            return False, row
        if _fault is not None:
            # img2dataset may still have written the stats that mark the shard complete
            stats = f"{d.output_folder}/{int(row[0]):05d}_stats.json"
            with contextlib.suppress(OSError):
                fs, path = fsspec.core.url_to_fs(stats)
                fs.rm(path)
            raise _fault
        return True, row


class GuardedLogger(LoggerProcess):
    """img2dataset's logger process, dying with the process that started it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.parent_pid = os.getpid()
        getattr(_call, "loggers", []).append(self)

    def run(self) -> None:
        die_with_parent(self.parent_pid)
        super().run()
