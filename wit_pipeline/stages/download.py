"""Selected pairs -> raw webdataset shards, with img2dataset doing the fetching.

img2dataset already downloads, resizes, writes
`NNNNN.tar` + `NNNNN.parquet` (one row per attempted sample: status, error_message) +
`NNNNN_stats.json`, and with `incremental_mode="extend"` numbers new shards after the
highest existing one. What this module adds around it:

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
- The folder: `--output` must be new, empty or a download's own (`check_output`); a run
  deletes only what downloads write there.
- Our sample key: img2dataset reserves the column name `key` (its own running number,
  also the tar member name), so our key travels as `sample_key` (KEY_COLUMN) in every
  sample's json and parquet row.
- Resumable reruns. The rule: a shard is complete iff its `_stats.json` exists and parses
  (img2dataset writes it last). At the start of a run, tar/parquet files of incomplete
  shards and img2dataset's `_tmp` are deleted. Keys with `status == "success"` in complete
  shards are done, and so are opt-outs (a site that said noai is not asked again); every
  other selected pair (never tried, failed, or lost with an incomplete shard) is fed to
  img2dataset again, into new shards after the highest complete one. A key is therefore
  saved in at most one tar.
- Accounting: stats.json (stage `download`) counts every selected row exactly once by its
  latest outcome: `out` if saved in any complete shard, else the refusal of this run, else
  the outcome in the highest-numbered complete shard that tried it (`failed_to_download.*`
  with a normalised reason, `failed_to_resize.*`, `opted_out.*`), else `not_attempted`
  (img2dataset gave up on its shard; rerun to retry). Repeated keys are `duplicate_key`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from wit_pipeline.core import config_flags, fsio, outputs, parquet_io, schema
from wit_pipeline.core.config_flags import option
from wit_pipeline.core.stats import DictTally, check_own_output, stages_from_counters
from wit_pipeline.image.decode import MAX_PIXELS
from wit_pipeline.stages import consent, consent_fetch
from wit_pipeline.web.egress_proxy import failure_reason, refused_reason
from wit_pipeline.web.urlsafety import Resolver, UrlChecker

log = logging.getLogger(__name__)

STAGE = "download"
KEY_COLUMN = schema.RAW_KEY_COLUMN  # our keys.sample_key; img2dataset owns "key"
OPT_OUT_MESSAGE = "Use of image disallowed by X-Robots-Tag directive"
STATS_FILE = outputs.STATS
TODO_DIR = "_todo"
DEAD_LETTER_FILE = outputs.DOWNLOAD_DEAD_LETTERS
DEFAULT_MAX_IMAGE_AREA = MAX_PIXELS  # the one pixel cap of every stage (image.decode): curate keeps what is fetched

_SHARD_STATS = re.compile(r"^(\d+)_stats\.json$")
_SHARD_FILE = re.compile(r"^(\d+)\.(tar|parquet)$")
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
                    "timeout": 1, "number_sample_per_shard": 1, "encode_quality": 1}
        for name, low in at_least.items():
            if getattr(self, name) < low:
                raise ValueError(f"{flag_of(name)} must be at least {low}, got {getattr(self, name)}")
        for name in ("max_aspect_ratio", "max_image_area"):
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


def complete_shards(output: str) -> list[str]:
    """Names ('00003') of shards whose `_stats.json` exists and parses, in shard order."""
    done = []
    for name in fsio.names(output):
        m = _SHARD_STATS.match(name)
        if not m:
            continue
        try:
            fsio.read_json(fsio.join(output, name))
        except (ValueError, OSError):
            continue
        done.append(m.group(1))
    return sorted(done, key=int)


def clean_incomplete(output: str) -> list[str]:
    """Delete what a killed or failed run left behind; returns the names deleted."""
    fs, _ = fsio.filesystem(output)
    done = set(complete_shards(output))
    removed = []
    for name in fsio.names(output):
        m = _SHARD_FILE.match(name) or _SHARD_STATS.match(name)
        if (m and m.group(1) not in done) or name in ("_tmp", TODO_DIR, STATS_FILE, DEAD_LETTER_FILE.split("/")[0]):
            fs.rm(fsio.filesystem(fsio.join(output, name))[1], recursive=True)
            removed.append(name)
    return removed


def shard_outcomes(output: str) -> dict[str, str | None]:
    """sample_key -> latest drop reason (None = saved), over complete shards in order."""
    outcomes: dict[str, str | None] = {}
    for shard in complete_shards(output):
        table = parquet_io.read_parquet(fsio.join(output, f"{shard}.parquet"),
                                        columns=[KEY_COLUMN, "status", "error_message"])
        for key, status, error in zip(*(table.column(c).to_pylist() for c in (KEY_COLUMN, "status", "error_message"))):
            if outcomes.get(key, "") is None:
                continue  # once saved, always saved
            outcomes[key] = outcome_reason(status, error)
    return outcomes


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


def check_output(output: str) -> None:
    """Refuse (ValueError) an output folder that is not new, empty, or a download's own.

    A rerun cleans up after itself (`clean_incomplete` deletes shards it did not finish and its
    stats.json), so pointing `--output` at a harvest folder, or any folder of someone else's,
    must stop before anything there is touched. A download's folder has a download stats.json,
    img2dataset's shard files or scratch, or (the Beam engine's) subfolders that are downloads.
    """
    check_own_output(output, "download", _is_download_stats, lambda names: _are_download_names(output, names))


def _is_download_stats(doc: Any) -> bool:
    return STAGE in [s.get("name") for s in doc.get("stages", [])]


def _are_download_names(output: str, names: list[str]) -> bool:
    ours = {"_tmp", TODO_DIR, DEAD_LETTER_FILE.split("/")[0], consent.CONSENT_DIR}
    if any(_SHARD_FILE.match(n) or _SHARD_STATS.match(n) or n in ours for n in names):
        return True
    subfolders = [n for n in names if not n.startswith("_")]
    # the Beam engine's layout, before its first stats.json: one download per subfolder
    return bool(subfolders) and all(_is_download_folder(fsio.join(output, n)) for n in subfolders)


def _is_download_folder(url: str) -> bool:
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
    shared_consent: str | None = None,
) -> dict[str, Any]:
    """Download the selected pairs into `output`, resuming a previous run there; returns
    (and writes as `output/stats.json`, with the config) the stats document. See the
    module docstring. `resolve` is for tests (a fake DNS); `shared_consent` is a consent cache
    (stages.consent) to start from, the Beam engine's per-job answers."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    paths = input_files(selected)
    tables = [read_selected(path) for path in paths]  # every file checked before anything is written
    check_output(output)
    fsio.makedirs(output)
    clean_incomplete(output)
    before = shard_outcomes(output)

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
                todo_file = fsio.join(output, TODO_DIR, "selected.parquet")
                fsio.makedirs(fsio.join(output, TODO_DIR))
                with fsio.atomic_open(todo_file, "wb") as f:
                    pq.write_table(pa.concat_tables(plan.todo), f)
                log.info("download: %d of %d pairs to fetch into %s", sum(t.num_rows for t in plan.todo),
                         len(plan.seen), output)
                fetch.run_img2dataset(todo_file, output, config)
    clean_incomplete(output)  # shards img2dataset gave up on, and the todo list

    dead = _account(plan, shard_outcomes(output), tally)
    outputs.write_dead_letters(fsio.join(output, DEAD_LETTER_FILE), dead, skip_empty=True)
    stages = stages_from_counters(tally.as_dict(), [STAGE])
    return outputs.write_stats(output, stages, inputs=paths, shards=complete_shards(output), config=asdict(config),
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
