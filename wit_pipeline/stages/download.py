"""Selected pairs -> raw webdataset shards, with img2dataset doing the fetching.

img2dataset already downloads, resizes, writes
`NNNNN.tar` + `NNNNN.parquet` (one row per attempted sample: status, error_message) +
`NNNNN_stats.json`. What this module adds around it:

- URL safety: every URL goes through `urlsafety.check_url` first; refusals never reach
  img2dataset and are counted (`unsafe_host.<reason>`, `bad_url.<reason>`).
- Egress guard (unless `egress_guard=False`): img2dataset runs with its workers' urllib
  pointed at an `egress_proxy.EgressProxy` in this process, which checks the address of
  every fetch and redirect hop as it connects (DNS rebinding, redirects to private hosts).
  Its refusals come back as HTTP 403s with a marked reason phrase and are counted as
  `unsafe_host.<reason>` (or `bad_url.scheme`) too. `fetch` runs img2dataset with workers
  that fetch http(s) only and die with this process.
- Consent before content (`stages.consent`, docs/consent.md): each origin's robots.txt and
  tdmrep.json decide its URLs before img2dataset sees them (`opted_out.robots_txt`,
  `opted_out.tdm_reservation`, `consent_unavailable.*`, never requested); inside the fetch
  (`stages.consent_fetch`) every request names wit in its User-Agent, the response's
  X-Robots-Tag and tdm-reservation are honoured without a retry (`opted_out.x_robots_tag`,
  `opted_out.tdm_reservation`), and redirect hops pass the same checks.
- Limits per fetch (`fetch`, inside img2dataset's workers): `--max-image-bytes` read at most
  (`failed_to_download.too_large`), `--fetch-deadline` seconds in all
  (`failed_to_download.deadline`), the pixel count checked from the image's header before it
  is decoded (`failed_to_resize.too_many_pixels`). A full disk or a read-only filesystem ends
  the run with one line naming the path.
- The folder: `--output` must be new, empty or a download's own, proven by the marker
  `.wit-download` the first run wrote there (`core.ownership`; a folder of an earlier wit
  without one is adopted once if its stats.json is a download's and it holds only names a
  download writes). The marker lists the shard numbers this command handed to img2dataset and
  its scratch folders; only those are ever deleted. One run at a time (`core.lock`).
- Our sample key: img2dataset reserves the column name `key` (its own running number,
  also the tar member name), so our key travels as `sample_key` (KEY_COLUMN) in every
  sample's json and parquet row.
- Resumable reruns. img2dataset writes into the scratch folder `_fetch/`, numbering shards
  from the next number the marker has not used (recorded before it starts); complete shards
  are moved into `--output`, the `_stats.json` last. The rule: a shard is complete iff the
  marker numbered it, its `_stats.json` parses (img2dataset writes it last) and its parquet
  parses. A shard file that cannot be read at all (a remote store's 503, EIO, a denied
  permission: not damage) ends the run, deleting nothing. Keys with `status == "success"` in
  complete shards are done, and so are opt-outs (a site that said noai is not asked again);
  every other selected pair (never tried, failed, or lost with an incomplete or damaged
  shard) is fed to img2dataset again. Only after that are incomplete and damaged shards and
  the scratch deleted, and stats.json and the dead letters rewritten: a run that fails leaves
  the earlier ones in place. A key is therefore saved in at most one tar once a run has
  finished.
- Accounting: stats.json (stage `download`) counts every selected row exactly once by its
  latest outcome: `out` if saved in any complete shard, else the refusal of this run, else
  the outcome in the highest-numbered complete shard that tried it (`failed_to_download.*`
  with a normalised reason, `failed_to_resize.*`, `opted_out.*`), else `not_attempted`
  (img2dataset gave up on its shard; rerun to retry). Repeated keys are `duplicate_key`.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import re
import socket
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from wit_pipeline.core import config_flags, fsio, outputs, ownership, parquet_io, schema
from wit_pipeline.core.config_flags import option
from wit_pipeline.core.lock import output_lock
from wit_pipeline.core.stats import DictTally, error_text, stages_from_counters
from wit_pipeline.image.decode import MAX_PIXELS
from wit_pipeline.stages import consent, consent_fetch
from wit_pipeline.web.egress_proxy import failure_reason, refused_reason
from wit_pipeline.web.fetch_limits import DEADLINE_MESSAGE, TOO_LARGE_MESSAGE
from wit_pipeline.web.urlsafety import Resolver, UrlChecker

log = logging.getLogger(__name__)

STAGE = "download"
KEY_COLUMN = schema.RAW_KEY_COLUMN  # our keys.sample_key; img2dataset owns "key"
OPT_OUT_MESSAGE = "Use of image disallowed by X-Robots-Tag directive"
STATS_FILE = outputs.STATS
TODO_DIR = "_todo"
STAGING_DIR = "_fetch"  # img2dataset's output folder; complete shards are moved out of it
DEAD_LETTER_FILE = outputs.DOWNLOAD_DEAD_LETTERS
DEFAULT_MAX_IMAGE_AREA = MAX_PIXELS  # the one pixel cap of every stage (image.decode): curate keeps what is fetched
DEFAULT_MAX_IMAGE_BYTES = 32 * 1024 * 1024

_SHARD_STATS = re.compile(r"^(\d{5,})_stats\.json$")
_SHARD_FILE = re.compile(r"^(\d{5,})\.(tar|parquet)$")
_PRODUCT_TOKEN = re.compile(r"[A-Za-z_-]+")  # RFC 9309 2.2.1
_CONTACT = re.compile(r"(?:https?://|mailto:)[^\s();]+")
RESIZE_MODES = ("no", "keep_ratio", "center_crop", "border", "keep_ratio_largest")


@dataclass(frozen=True)
class DownloadConfig:
    """Every download option, declared once: `wit download`'s flags are made from these
    fields (`--image-size` is `image_size`; a bool is a switch), validated here once, and
    recorded with `dataclasses.asdict` in stats.json."""

    image_size: int = option(256, "resize target in pixels")
    resize_mode: str = option("keep_ratio", "img2dataset's resize mode (keep_ratio: the smaller side becomes "
                            "--image-size)", choices=RESIZE_MODES)
    min_image_size: int = option(64, "drop images whose smaller side is below this")
    max_aspect_ratio: float = option(3.0, "drop images more elongated than this")
    max_image_area: float = option(DEFAULT_MAX_IMAGE_AREA, "pixel cap (decompression bombs)")
    retries: int = option(1, "retries of a failed fetch")
    processes: int = option(1, "img2dataset processes (per worker with --engine beam)")
    threads: int = option(32, "fetching threads per process")
    timeout: int = option(10, "seconds to connect and between bytes")
    fetch_deadline: float = option(60.0, "seconds one fetch may take in all, redirects and body included "
                                 "(failed_to_download.deadline)")
    max_image_bytes: int = option(DEFAULT_MAX_IMAGE_BYTES, "bytes one response may have; a bigger one is not read "
                                "(failed_to_download.too_large)")
    number_sample_per_shard: int = option(10_000, "samples per raw shard")
    encode_quality: int = option(95, "JPEG quality of the saved images (1..100)")
    allow_loopback: bool = option(False, "also fetch from loopback addresses (127.0.0.0/8, ::1, localhost): the "
                                "demo's and tests' servers; never on a crawl. Private, link-local and metadata "
                                "addresses stay refused")
    robots_agent: str = option("wit", "the product token wit answers to: the robots.txt group, X-Robots-Tag "
                             "`<token>: noai` and `<meta name=\"<token>\">` that apply besides those for all "
                             "crawlers, and the name in the User-Agent (docs/consent.md)")
    contact: str = option("", "a URL (https://... or mailto:...) in every request's User-Agent where site "
                        "owners can reach whoever runs this download")
    egress_guard: bool = option(True, "let img2dataset connect directly instead of through wit's loopback egress "
                              "proxy, which checks the address of every fetch and redirect hop; only for workers "
                              "that already sit behind an egress firewall blocking private, loopback and "
                              "link-local destinations (the proxy also replaces any http(s)_proxy you configured)",
                              flag="--no-egress-guard")

    def __post_init__(self) -> None:
        at_least = {"image_size": 1, "min_image_size": 0, "retries": 0, "processes": 1, "threads": 1,
                    "timeout": 1, "number_sample_per_shard": 1, "encode_quality": 1, "max_image_bytes": 1}
        for name, low in at_least.items():
            if getattr(self, name) < low:
                raise ValueError(f"{flag_of(name)} must be at least {low}, got {getattr(self, name)}")
        for name in ("max_aspect_ratio", "max_image_area", "fetch_deadline"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{flag_of(name)} must be positive, got {getattr(self, name)}")
        if self.encode_quality > 100:
            raise ValueError(f"--encode-quality is at most 100, got {self.encode_quality}")
        if not _PRODUCT_TOKEN.fullmatch(self.robots_agent):
            raise ValueError(f"--robots-agent must be a product token (letters, '_' and '-'), got {self.robots_agent!r}")
        if self.contact and not _CONTACT.fullmatch(self.contact):
            raise ValueError(f"--contact must be an http(s) or mailto URL without spaces, got {self.contact!r}")
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"--resize-mode must be one of {', '.join(RESIZE_MODES)}, got {self.resize_mode!r}")


def flag_of(name: str) -> str:
    """The command-line flag of a DownloadConfig field."""
    return config_flags.flag_of(DownloadConfig, name)


def download_reason(error_message: str | None) -> str:
    """A short, countable reason for one of img2dataset's download error messages."""
    if reason := failure_reason(error_message):  # the egress guard's 502/504 name the cause
        return reason
    if error_message == TOO_LARGE_MESSAGE:
        return "too_large"
    if error_message == DEADLINE_MESSAGE:
        return "deadline"
    msg = (error_message or "").lower()
    if m := re.search(r"http error (\d{3})", msg):
        return f"http_{m.group(1)}"
    for needle, reason in (
        ("timed out", "timeout"),
        ("timeout", "timeout"),
        ("connection refused", "connection_refused"),
        ("connection reset", "connection_reset"),
        ("remote end closed", "connection_closed"),
        ("name or service not known", "dns"),
        ("name resolution", "dns"),
        ("nodename nor servname", "dns"),
        ("getaddrinfo", "dns"),
        ("certificate", "ssl"),
        ("ssl", "ssl"),
        ("unknown url type", "bad_url"),
        ("no host given", "bad_url"),
        ("redirect", "redirect"),
        ("incompleteread", "incomplete_read"),
        ("hash mismatch", "hash_mismatch"),
    ):
        if needle in msg:
            return reason
    return "other"


def resize_reason(error_message: str | None) -> str:
    """A short reason for one of img2dataset's resizer refusals."""
    msg = (error_message or "").lower()
    for needle, reason in (
        ("decoding error", "undecodable"),
        ("too small", "too_small"),
        ("area too large", "too_many_pixels"),
        ("aspect ratio", "aspect_ratio"),
    ):
        if needle in msg:
            return reason
    return "other"


def refusal_reason(check_url_reason: str) -> str:
    """The stats drop reason of a URL that urlsafety.check_url refused."""
    if check_url_reason == "bad_scheme":
        return "bad_url.scheme"
    if check_url_reason == "bad_url":
        return "bad_url.unparsable"
    return f"unsafe_host.{check_url_reason}"


def outcome_reason(status: str | None, error_message: str | None) -> str | None:
    """None for a saved sample, else the stats drop reason of one parquet row."""
    if status == "success":
        return None
    if status == "failed_to_download":
        if error_message == OPT_OUT_MESSAGE:  # img2dataset's own, in shards of earlier versions
            return consent_fetch.X_ROBOTS_MESSAGE.split(":", 1)[0]
        if reason := consent_fetch.opt_out_reason(error_message):
            return reason
        if reason := refused_reason(error_message):  # refused by the egress guard at fetch time
            return refusal_reason(reason)
        return f"failed_to_download.{download_reason(error_message)}"
    if status == "failed_to_resize":
        return f"failed_to_resize.{resize_reason(error_message)}"
    return f"unknown_status.{status}"


# --- which shards are the folder's own --------------------------------------------------------
# A download's folder carries its marker (`ownership`), which lists the shard numbers this
# command handed to img2dataset ("shards": [[lo, hi), ...]) and its scratch folders. Only those
# are ever deleted; a file that merely looks like a shard (`2024.tar`, `00042.tar` that no run
# of this folder numbered) is never read as one, nor deleted.


def _recorded(marker: dict[str, Any] | None, shard: str) -> bool:
    """Whether the marker lists this shard (in a folder without a marker, every shard name: it
    is only read then, never tidied)."""
    if marker is None:
        return True
    n = int(shard)
    return shard == f"{n:05d}" and any(lo <= n < hi for lo, hi in marker.get("shards", []))


def _merge(ranges: list[tuple[int, int]]) -> list[list[int]]:
    merged: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return merged


class ShardUnreadable(OSError):
    """A finished shard's file that could not be read (a remote store's 503 or timeout, EIO, a
    denied permission): not damage, so the run ends, deleting nothing."""


def _shard_bytes(url: str) -> bytes | None:
    """A shard file's bytes; None when it is missing. Any other failure to read them is
    ShardUnreadable: the bytes are read whole before they are parsed, so that only bytes in
    hand are ever judged damaged."""
    try:
        with fsio.open(url, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None
    except Exception as exc:  # only I/O runs here, and a remote store's errors are not all OSErrors (gcsfs's HttpError)
        raise ShardUnreadable(f"cannot read {url} ({error_text(exc, 300)}): nothing was deleted; "
                              "rerun once it reads") from exc


def complete_shards(output: str) -> list[str]:
    """Names ('00003') of the complete shards in `output`, in shard order: the folder's own (its
    marker numbered them) whose `_stats.json` parses (img2dataset writes it last). A
    `_stats.json` that cannot be read raises ShardUnreadable."""
    marker = ownership.read_marker(output, STAGE)
    done = []
    for name in fsio.names(output):
        m = _SHARD_STATS.match(name)
        if not m or not _recorded(marker, m.group(1)):
            continue
        data = _shard_bytes(fsio.join(output, name))
        if data is None:
            continue
        try:
            json.loads(data)
        except ValueError:  # cut off mid-write
            continue
        done.append(m.group(1))
    return sorted(done, key=int)


def read_outcomes(output: str) -> tuple[list[str], dict[str, str | None]]:
    """The complete shards whose parquet reads, and sample_key -> latest drop reason (None =
    saved) over them in order. A shard whose parquet is missing or damaged (its bytes are not a
    parquet file with our columns: cut short, overwritten) is left out: its pairs are fetched
    again, and it is removed once that run has finished. One whose bytes cannot be read at all
    raises ShardUnreadable: a good shard is never deleted for a passing fault of its store."""
    outcomes: dict[str, str | None] = {}
    good = []
    columns = [KEY_COLUMN, "status", "error_message"]
    for shard in complete_shards(output):
        url = fsio.join(output, f"{shard}.parquet")
        data = _shard_bytes(url)
        if data is None:
            log.warning("download: %s is missing: its pairs are fetched again", url)
            continue
        try:
            table = parquet_io.read_parquet(io.BytesIO(data), columns=columns)
        except (OSError, ValueError, pa.ArrowException) as exc:
            # bytes in memory, so no I/O failed: pyarrow raises a bad thrift footer as a bare
            # OSError, a bad magic, a short file or a missing column as ArrowInvalid
            log.warning("download: %s is damaged (%s): its pairs are fetched again", url, error_text(exc, 300))
            continue
        good.append(shard)
        for key, status, error in zip(*(table.column(c).to_pylist() for c in columns)):
            if outcomes.get(key, "") is None:
                continue  # once saved, always saved
            outcomes[key] = outcome_reason(status, error)
    return good, outcomes


def shard_outcomes(output: str) -> dict[str, str | None]:
    """sample_key -> latest drop reason (None = saved), over complete shards in order."""
    return read_outcomes(output)[1]


def tidy(output: str, marker: dict[str, Any], keep: list[str]) -> list[str]:
    """Delete what this command wrote in `output` and no longer needs: its scratch folders,
    and the files of shards it numbered that are not in `keep` (cut short by a kill, or
    damaged). Returns the names deleted; nothing else is touched."""
    fs, _ = fsio.filesystem(output)
    scratch = set(marker.get("scratch", []))
    removed = []
    for name in fsio.names(output):
        m = _SHARD_FILE.match(name) or _SHARD_STATS.match(name)
        if name in scratch or (m and _recorded(marker, m.group(1)) and m.group(1) not in keep):
            fs.rm(fsio.filesystem(fsio.join(output, name))[1], recursive=True)
            removed.append(name)
    return removed


def _move_in(output: str, marker: dict[str, Any]) -> list[str]:
    """Move the complete shards img2dataset wrote in the staging folder (numbered by this
    command) into `output`, the `_stats.json` last; returns their names."""
    staging = fsio.join(output, STAGING_DIR)
    moved = [s for s in complete_shards(staging) if _recorded(marker, s)] if fsio.isdir(staging) else []
    fs, _ = fsio.filesystem(output)
    for shard in moved:
        for name in (f"{shard}.tar", f"{shard}.parquet", f"{shard}_stats.json"):
            if fsio.exists(fsio.join(staging, name)):
                fs.mv(fsio.filesystem(fsio.join(staging, name))[1],
                      fsio.filesystem(fsio.join(output, name))[1])
    return moved


def read_selected(path: str) -> pa.Table:
    table = parquet_io.read_parquet(path)
    schema.validate(table, schema.SELECTED, f"selected pairs {path}")
    return table.select(list(schema.SELECTED.names))


def input_files(selected: str | list[str]) -> list[str]:
    """Parquet files from globs, files, or folders: a harvest output (its selected/) or a
    folder of selected-pairs files."""
    patterns = [selected] if isinstance(selected, str) else list(selected)
    paths = []
    for p in (p for pattern in patterns for p in fsio.expand(pattern)):
        fs, path = fsio.filesystem(p)
        if fs.isdir(path):
            paths += fsio.expand(fsio.join(p, "selected", "*.parquet")) or fsio.expand(fsio.join(p, "*.parquet"))
        else:
            paths.append(p)
    if not paths:
        raise FileNotFoundError(f"no selected-pairs parquet files match {selected!r}")
    return paths


def check_output(output: str) -> str:
    """Refuse (ValueError) an output folder that is not new, empty, or a download's own (its
    marker says so), before anything there is touched: a rerun tidies up after itself. Returns
    `ownership.check_own_output`'s answer ("new", "ours", "legacy")."""
    return ownership.check_own_output(output, STAGE, _is_download_stats, lambda names: _are_download_names(output, names))


def claim_output(output: str) -> dict[str, Any]:
    """`check_output`, then make `output` a download's: its marker, written before anything
    else. A folder of an earlier wit without markers (a download stats.json, and only names a
    download writes) is adopted once: its shards and `_tmp` are recorded as the command's."""
    state = check_output(output)
    if state == "ours":
        return ownership.read_marker(output, STAGE) or {}
    fsio.makedirs(output)
    shards: list[list[int]] = []
    scratch = [STAGING_DIR, TODO_DIR]
    if state == "legacy":
        names = fsio.names(output)
        ids = {int(m.group(1)) for n in names if (m := _SHARD_FILE.match(n) or _SHARD_STATS.match(n))}
        shards = _merge([(i, i + 1) for i in ids])
        scratch += ["_tmp"] if "_tmp" in names else []
        log.warning("download: %s was written by an earlier wit without a marker; adopting it (%d shards)",
                    output, len(ids))
    return ownership.write_marker(output, STAGE, shards=shards, scratch=scratch)


def _record_shards(output: str, marker: dict[str, Any], count: int) -> tuple[int, dict[str, Any]]:
    """Number the next `count` shards and record them in the marker before img2dataset writes them."""
    start = max((hi for _, hi in marker.get("shards", [])), default=0)
    fields = {k: v for k, v in marker.items() if k not in ("command", "written_by")}
    fields["shards"] = _merge([*map(tuple, marker.get("shards", [])), (start, start + count)])
    return start, ownership.write_marker(output, STAGE, **fields)


def _is_download_stats(doc: Any) -> bool:
    return STAGE in [s.get("name") for s in doc.get("stages", [])]


def _are_download_names(output: str, names: list[str]) -> bool:
    """Whether every name is one an earlier wit download wrote (the rule for adopting a folder)."""
    ours = {"_tmp", TODO_DIR, DEAD_LETTER_FILE.split("/")[0], consent.CONSENT_DIR, STATS_FILE}
    return all(_SHARD_FILE.match(n) or _SHARD_STATS.match(n) or n in ours or _is_download_folder(fsio.join(output, n))
               for n in names)


def _is_download_folder(url: str) -> bool:
    """A subfolder of the Beam engine's layout: a download of its own."""
    if not fsio.isdir(url) or not fsio.names(url):
        return False
    try:
        check_output(url)
    except ValueError:
        return False
    return True


def download(
    selected: str | list[str],
    output: str,
    config: DownloadConfig = DownloadConfig(),  # noqa: B008 - frozen, so one shared default is safe
    *,
    resolve: Resolver = socket.getaddrinfo,
    lock: bool = True,
    shared_consent: str | None = None,
) -> dict[str, Any]:
    """Download the selected pairs into `output`, resuming a previous run there; returns
    (and writes as `output/stats.json`, with the config) the stats document. See the
    module docstring. `resolve` is for tests (a fake DNS); `lock=False` when the caller holds
    the folder's lock (the Beam engine holds its whole output's); `shared_consent` is a consent
    cache (stages.consent) to start from, the Beam engine's per-job answers."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    paths = input_files(selected)
    tables = [read_selected(path) for path in paths]  # every file checked before anything is written
    check_output(output)
    with output_lock(output, STAGE) if lock else contextlib.nullcontext():
        return _download(paths, tables, output, config, resolve, shared_consent)


def _download(paths: list[str], tables: list[pa.Table], output: str, config: DownloadConfig,
              resolve: Resolver, shared_consent: str | None) -> dict[str, Any]:
    marker = claim_output(output)
    _move_in(output, marker)  # shards a killed run finished but did not move
    fs, _ = fsio.filesystem(output)
    for name in (STAGING_DIR, TODO_DIR):  # a killed run's scratch: img2dataset needs a new folder
        if fsio.exists(fsio.join(output, name)):
            fs.rm(fsio.filesystem(fsio.join(output, name))[1], recursive=True)
    _, before = read_outcomes(output)

    tally = DictTally()
    plan = _plan(tables, before, UrlChecker(config.allow_loopback, resolve), tally)
    consent_summary = None
    if plan.todo:
        from wit_pipeline.stages import fetch  # imports img2dataset: only when there is something to fetch

        guard = fetch.egress_guard(config.allow_loopback, resolve, config.timeout) if config.egress_guard else contextlib.nullcontext()
        with guard as proxy:
            # consent before content: robots.txt and tdmrep.json decide each URL before img2dataset sees it
            screened = consent.screen(plan.todo, KEY_COLUMN, output, consent.settings_of(config),
                                      proxy.url if proxy is not None else None, shared_consent)
            plan.todo, consent_summary = screened.todo, screened.summary
            plan.refused.update(screened.refused)
            if plan.todo:
                rows = sum(t.num_rows for t in plan.todo)
                start, marker = _record_shards(output, marker, math.ceil(rows / config.number_sample_per_shard))
                todo_file = fsio.join(output, TODO_DIR, "selected.parquet")
                fsio.makedirs(fsio.join(output, TODO_DIR))
                with fsio.atomic_open(todo_file, "wb") as f:
                    pq.write_table(pa.concat_tables(plan.todo), f)
                log.info("download: %d of %d pairs to fetch into %s", rows, len(plan.seen), output)
                fetch.run_img2dataset(todo_file, fsio.join(output, STAGING_DIR), config, start, folder=output)
                _move_in(output, marker)
    shards, after = read_outcomes(output)
    tidy(output, marker, shards)  # scratch, shards img2dataset gave up on, damaged shards

    dead = _account(plan, after, tally)
    dead_url = fsio.join(output, DEAD_LETTER_FILE)
    if not dead and fsio.exists(dead_url):  # an earlier run's, which this run's outcomes replace
        fsio.rm(dead_url)
    outputs.write_dead_letters(dead_url, dead, skip_empty=True)
    stages = stages_from_counters(tally.as_dict(), [STAGE])
    return outputs.write_stats(output, stages, inputs=paths, shards=shards, config=asdict(config),
                               **({"consent": consent_summary} if consent_summary else {}))


@dataclass
class _Plan:
    """What a run does with each selected key, decided before anything is fetched."""

    seen: set[str] = field(default_factory=set)
    refused: dict[str, str] = field(default_factory=dict)  # key -> drop reason (URL refused up front)
    dead: list[dict[str, str]] = field(default_factory=list)
    todo: list[pa.Table] = field(default_factory=list)  # rows for img2dataset, key as KEY_COLUMN


def _plan(tables: list[pa.Table], before: dict[str, str | None], checker: UrlChecker, tally: DictTally) -> _Plan:
    """Count every selected row in; pick the rows to fetch: not a repeat, not saved or opted out
    by an earlier run, and a URL that urlsafety accepts (refusals are dead-lettered)."""
    plan = _Plan()
    for table in tables:
        wanted = []
        for key, url in zip(table.column("key").to_pylist(), table.column("url").to_pylist()):
            tally.inc(STAGE, "in")
            if key in plan.seen:
                tally.dropped(STAGE, "duplicate_key")
                wanted.append(False)
                continue
            plan.seen.add(key)
            if before.get(key, "") is None or (before.get(key) or "").startswith("opted_out"):
                wanted.append(False)  # saved by an earlier run, or its site opted out: ask once only
                continue
            reason = checker(url)
            if reason is not None:
                plan.refused[key] = refusal_reason(reason)
                plan.dead.append({"stage": STAGE, "source": f"{key} {url}", "error": plan.refused[key]})
            wanted.append(reason is None)
        part = table.filter(pa.array(wanted, pa.bool_())) if table.num_rows else table
        if part.num_rows:
            plan.todo.append(part.rename_columns([KEY_COLUMN if c == "key" else c for c in part.column_names]))
    return plan


def _account(plan: _Plan, after: dict[str, str | None], tally: DictTally) -> list[dict[str, str]]:
    """Count every distinct key once by its latest outcome; returns the dead letters (the
    up-front refusals and this run's refusals at fetch time)."""
    dead = list(plan.dead)
    url_of = {k: u for t in plan.todo for k, u in zip(t.column(KEY_COLUMN).to_pylist(), t.column("url").to_pylist())}
    for key in plan.seen:
        reason = after.get(key, "")
        if reason is None:
            tally.kept(STAGE)
        elif key in plan.refused:
            tally.dropped(STAGE, plan.refused[key])
        elif key in after:
            tally.dropped(STAGE, reason)
            if reason.startswith(("unsafe_host.", "bad_url.")) and key in url_of:  # refused at fetch, this run
                dead.append({"stage": STAGE, "source": f"{key} {url_of[key]}", "error": f"{reason} (at fetch)"})
        else:
            tally.dropped(STAGE, "not_attempted")
    return dead


def saved_keys(output: str) -> list[str]:
    """Sorted sample keys saved in `output`'s complete shards (and its subfolders' for the
    Beam engine's layout)."""
    keys = [k for k, reason in shard_outcomes(output).items() if reason is None]
    for name in fsio.names(output):
        sub = fsio.join(output, name)
        if not name.startswith("_") and fsio.filesystem(sub)[0].isdir(fsio.filesystem(sub)[1]):
            keys += saved_keys(sub)
    return sorted(keys)
