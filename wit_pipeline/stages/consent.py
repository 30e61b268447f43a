"""Consent before content: which selected images download may request, decided per origin.

Before img2dataset sees a URL, its origin's robots.txt (RFC 9309, `web.robots`) and
`/.well-known/tdmrep.json` (W3C TDMRep, `web.tdmrep`) decide it. Each origin (scheme, host,
port) is asked once: URLs are grouped by origin, the two files fetched concurrently across
origins (robots.txt first; tdmrep.json only for an origin with at least one URL robots.txt
allows), and the answers kept in `<output>/_consent/origins.parquet`. A resumed run reads that
cache and asks no origin again while its answer is fresh (RFC 9309 2.4: at most 24 hours).
The fetches go through the same egress guard as the images (`proxy_url`), with their own
time-out, a 500 KiB read limit and at most 5 redirects, and name the crawler in their
User-Agent (`user_agent`).

A URL's fate, in order: robots.txt disallows it (`opted_out.robots_txt`) or could not be read
(5xx, time-out, unreachable: `consent_unavailable.robots_txt`); tdmrep.json reserves it
(`opted_out.tdm_reservation`) or could not be read (`consent_unavailable.tdmrep`); else it is
fetched, and every fetched row carries a `consent` column (saved in the sample's json) saying
which checks it passed. The image response's own opt-outs are checked at fetch time
(`stages.consent_fetch`).
"""

from __future__ import annotations

import logging
import time
import urllib.request
import zlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from wit_pipeline import __version__
from wit_pipeline.core import fsio, outputs, parquet_io
from wit_pipeline.web import fetch_limits, robots, tdmrep
from wit_pipeline.web.egress_proxy import refused_reason
from wit_pipeline.web.urlsafety import ALLOWED_SCHEMES

log = logging.getLogger(__name__)

CACHE_FILE = outputs.DOWNLOAD_CONSENT
CONSENT_DIR = CACHE_FILE.split("/")[0]
CONSENT_COLUMN = "consent"
MAX_AGE_SECONDS = 24 * 3600  # RFC 9309 2.4
POLICY_TIMEOUT = 10.0  # seconds to connect and between bytes, per policy file
POLICY_THREADS = 16
DEADLINE_TIMEOUTS = 3  # a whole policy fetch (redirects, head, body) may take this many --timeout

OPTED_OUT_ROBOTS = "opted_out.robots_txt"
OPTED_OUT_TDM = "opted_out.tdm_reservation"
UNAVAILABLE_ROBOTS = "consent_unavailable.robots_txt"
UNAVAILABLE_TDM = "consent_unavailable.tdmrep"

CACHE_SCHEMA = pa.schema([
    ("origin", pa.string()),
    ("fetched_at", pa.float64()),
    ("robots_state", pa.string()),  # ok / unavailable / unreachable
    ("robots_status", pa.int32()),  # final HTTP status, null when none came
    ("robots_text", pa.string()),  # the first 500 KiB, decoded
    ("robots_note", pa.string()),  # why unreachable (timeout, http_503, egress_refused.private, ...)
    ("tdmrep_state", pa.string()),  # ok / unavailable / unreachable / unparsable / null (not asked)
    ("tdmrep_status", pa.int32()),
    ("tdmrep_body", pa.string()),
    ("tdmrep_note", pa.string()),
])


def user_agent(agent: str, contact: str = "") -> str:
    """The User-Agent of every request download makes: the product token sites address in
    robots.txt and X-Robots-Tag, the version, and the operator's contact URL."""
    tail = f"; +{contact}" if contact else ""
    return f"Mozilla/5.0 (compatible; {agent}/{__version__}{tail})"


def origin_of(url: str) -> str | None:
    """`scheme://host:port` of an http(s) URL (default port explicit), else None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in ALLOWED_SCHEMES or not host:
        return None
    port = port or (443 if scheme == "https" else 80)
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{port}"


# --- fetching one policy file ---------------------------------------------------------------

def policy_opener(proxy_url: str | None) -> urllib.request.OpenerDirector:
    """An opener for policy files: through the egress guard at `proxy_url` (else the
    environment's proxies), http(s) only, at most 5 redirects."""
    proxies = urllib.request.ProxyHandler({"http": proxy_url, "https": proxy_url} if proxy_url else None)
    opener = urllib.request.OpenerDirector()
    for handler in (proxies, urllib.request.UnknownHandler(), *fetch_limits.watched_handlers(),
                    urllib.request.HTTPDefaultErrorHandler(),
                    fetch_limits.SchemeCheckedRedirects(robots.MAX_REDIRECTS), urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    return opener


@dataclass(frozen=True)
class Fetched:
    state: str  # robots.OK / UNAVAILABLE / UNREACHABLE
    status: int | None
    body: bytes
    note: str | None


def fetch_policy(url: str, opener: urllib.request.OpenerDirector, agent_string: str,
                 timeout: float = POLICY_TIMEOUT) -> Fetched:
    """GET one policy file; its RFC 9309 outcome, final status and first MAX_BYTES (+1).
    `timeout` bounds each connect and read, DEADLINE_TIMEOUTS times it the whole fetch: a server
    that drips a byte at a time (its head or its body) is unreachable, not a thread held for as
    long as it likes; a body cut by the deadline is never read as a short, complete file."""
    request = urllib.request.Request(url, headers={"User-Agent": agent_string})
    watch = fetch_limits.Deadline(timeout * DEADLINE_TIMEOUTS)
    try:
        with watch:
            with opener.open(request, timeout=timeout) as response:
                body = response.read(robots.MAX_BYTES + 1)
                status = response.status
                encoding = (response.headers.get("Content-Encoding") or "").strip().lower()
            if watch.expired:
                return Fetched(robots.UNREACHABLE, None, b"", "deadline")
    except HTTPError as err:
        if (reason := refused_reason(str(err.reason))) == "bad_scheme":  # only a redirect names another scheme
            return Fetched(robots.UNREACHABLE, None, b"", "redirect_scheme")
        if reason:  # the egress guard refused a hop
            return Fetched(robots.UNREACHABLE, None, b"", f"egress_refused.{reason}")
        if 300 <= err.code < 400:
            return Fetched(robots.UNREACHABLE, err.code, b"", "too_many_redirects")
        state = robots.outcome_of_status(err.code)
        return Fetched(state, err.code, b"", None if state == robots.UNAVAILABLE else f"http_{err.code}")
    except (URLError, OSError, ValueError) as err:  # time-out, refused, reset, bad URL
        reason = getattr(err, "reason", err)
        name = "timeout" if isinstance(reason, TimeoutError) or "timed out" in str(reason) else type(reason).__name__
        return Fetched(robots.UNREACHABLE, None, b"", "deadline" if watch.expired else name)
    except Exception as err:  # an http.client oddity (bad status line, ...): no answer to read
        return Fetched(robots.UNREACHABLE, None, b"", "deadline" if watch.expired else type(err).__name__)
    state = robots.outcome_of_status(status)
    if state == robots.OK and encoding not in ("", "identity"):
        body = _inflated(body, encoding)
        if body is None:  # rules we cannot read are not an empty file
            return Fetched(robots.UNREACHABLE, status, b"", f"content_encoding.{encoding[:20]}")
    return Fetched(state, status, body if state == robots.OK else b"", None if state != robots.UNREACHABLE else f"http_{status}")


def _inflated(body: bytes, encoding: str) -> bytes | None:
    """A policy file a server compressed although we did not ask (its first MAX_BYTES + 1
    bytes inflated), None for an encoding we cannot read or bytes that do not inflate."""
    if encoding not in ("gzip", "x-gzip", "deflate"):
        return None
    for wbits in ((47,) if encoding != "deflate" else (zlib.MAX_WBITS, -zlib.MAX_WBITS)):
        try:
            return zlib.decompressobj(wbits).decompress(body, robots.MAX_BYTES + 1)
        except zlib.error:
            continue
    return None


# --- the per-origin cache ---------------------------------------------------------------------

@dataclass(frozen=True)
class Settings:
    """What screening needs from a download's config."""

    agent: str = "wit"
    contact: str = ""
    timeout: float = POLICY_TIMEOUT
    threads: int = POLICY_THREADS
    max_age: float = MAX_AGE_SECONDS


def settings_of(config: Any) -> Settings:
    """What consent takes from a download's config (`stages.download.DownloadConfig`)."""
    return Settings(agent=config.robots_agent, contact=config.contact, timeout=float(config.timeout),
                    threads=min(config.threads, POLICY_THREADS))


class OriginPolicies:
    """Origin -> its cached answers (one dict row of CACHE_SCHEMA), parsed lazily."""

    def __init__(self, rows: Iterable[dict[str, Any]] = (), agent: str = "wit") -> None:
        self.rows: dict[str, dict[str, Any]] = {r["origin"]: r for r in rows}
        self.agent = agent
        self._parsed: dict[str, tuple[robots.Robots, tdmrep.TdmRep | None]] = {}
        self.fetched: dict[str, int] = {"robots.txt": 0, "tdmrep.json": 0}

    @classmethod
    def load(cls, url: str, agent: str, origins: Iterable[str] | None = None) -> OriginPolicies:
        """The cache at `url` (only the rows of `origins`, when given); empty when there is none."""
        if not fsio.exists(url):
            return cls(agent=agent)
        try:
            table = parquet_io.read_parquet(url)
        except (OSError, ValueError) as exc:  # a damaged cache is asked again, not trusted
            log.warning("consent: ignoring unreadable cache %s (%s)", url, exc)
            return cls(agent=agent)
        names = set(table.column_names)
        if not set(CACHE_SCHEMA.names) <= names:
            return cls(agent=agent)
        if origins is not None:
            table = table.filter(pc.is_in(table["origin"], value_set=pa.array(sorted(set(origins)), pa.string())))
        return cls(table.select(CACHE_SCHEMA.names).to_pylist(), agent)

    def save(self, url: str) -> None:
        rows = [self.rows[o] for o in sorted(self.rows)]
        with fsio.atomic_open(url, "wb") as f:
            pq.write_table(pa.Table.from_pylist(rows, schema=CACHE_SCHEMA), f)

    def fresh(self, origin: str, now: float, max_age: float) -> bool:
        row = self.rows.get(origin)
        return row is not None and now - row["fetched_at"] <= max_age

    def robots(self, origin: str) -> robots.Robots:
        return self._parse(origin)[0]

    def tdm(self, origin: str) -> tdmrep.TdmRep | None:
        return self._parse(origin)[1]

    def _parse(self, origin: str) -> tuple[robots.Robots, tdmrep.TdmRep | None]:
        if origin not in self._parsed:
            row = self.rows[origin]
            rb = robots.Robots(row["robots_state"], row["robots_text"] or "", self.agent)
            tdm = None
            if row["tdmrep_state"] is not None:
                state = row["tdmrep_state"]
                tdm = tdmrep.from_fetch(robots.OK if state in (robots.OK, "unparsable") else state,
                                        (row["tdmrep_body"] or "").encode())[0]
            self._parsed[origin] = (rb, tdm)
        return self._parsed[origin]

    def put(self, row: dict[str, Any]) -> None:
        self.rows[row["origin"]] = row
        self._parsed.pop(row["origin"], None)


def ask_robots(origin: str, opener: urllib.request.OpenerDirector, settings: Settings, now: float) -> dict[str, Any]:
    """Fetch an origin's robots.txt: its cache row, tdmrep.json not yet asked."""
    got = fetch_policy(f"{origin}/robots.txt", opener, user_agent(settings.agent, settings.contact), settings.timeout)
    return {
        "origin": origin, "fetched_at": now, "robots_state": got.state, "robots_status": got.status,
        "robots_text": robots.decode(got.body) if got.state == robots.OK else None, "robots_note": got.note,
        "tdmrep_state": None, "tdmrep_status": None, "tdmrep_body": None, "tdmrep_note": None,
    }


def ask_tdmrep(row: dict[str, Any], opener: urllib.request.OpenerDirector, settings: Settings) -> dict[str, Any]:
    """The cache row with the origin's tdmrep.json answer."""
    got = fetch_policy(row["origin"] + tdmrep.WELL_KNOWN, opener, user_agent(settings.agent, settings.contact),
                       settings.timeout)
    body = got.body[: robots.MAX_BYTES]
    state = tdmrep.from_fetch(got.state, body)[1]
    return {**row, "tdmrep_state": state, "tdmrep_status": got.status,
            "tdmrep_body": body.decode("utf-8", "replace") if got.state == robots.OK else None,
            "tdmrep_note": got.note}


def decide(policies: OriginPolicies, origin: str, url: str) -> tuple[str | None, str]:
    """(drop reason or None, the checks passed as the `consent` column's text) for one URL."""
    rb = policies.robots(origin)
    if rb.outcome == robots.UNREACHABLE:
        return UNAVAILABLE_ROBOTS, ""
    if not rb.allowed(url):
        return OPTED_OUT_ROBOTS, ""
    tdm = policies.tdm(origin)
    if tdm is None:
        raise ValueError(f"no tdmrep.json answer for {origin}")
    if tdm.outcome == robots.UNREACHABLE:
        return UNAVAILABLE_TDM, ""
    if tdm.reserved(url):
        return OPTED_OUT_TDM, ""
    group = rb.group or "none"
    row = policies.rows[origin]
    note = (f"agent={policies.agent};robots_txt=allowed({row['robots_state']},group={group});"
            f"tdmrep=not_reserved({row['tdmrep_state']});headers=x-robots-tag,tdm-reservation")
    return None, note


def ask_origin(origin: str, urls: Iterable[str], opener: urllib.request.OpenerDirector, settings: Settings,
               now: float) -> dict[str, Any]:
    """One origin's cache row: its robots.txt, and its tdmrep.json when robots.txt allows one
    of `urls` (no point asking about files we may not fetch anyway)."""
    row = ask_robots(origin, opener, settings, now)
    rb = robots.Robots(row["robots_state"], row["robots_text"] or "", settings.agent)
    if rb.outcome != robots.UNREACHABLE and any(rb.allowed(u) for u in urls):
        row = ask_tdmrep(row, opener, settings)
    return row


def refresh(policies: OriginPolicies, urls_by_origin: dict[str, list[str]], settings: Settings,
            proxy_url: str | None, now: float | None = None) -> None:
    """Ask every origin whose cached answer is missing or stale (and, for tdmrep.json, which
    has a URL robots.txt allows), concurrently across origins, once each."""
    now = time.time() if now is None else now
    opener = policy_opener(proxy_url)
    stale = sorted(o for o in urls_by_origin if not policies.fresh(o, now, settings.max_age))
    if stale:
        with ThreadPoolExecutor(max(1, min(settings.threads, len(stale))), thread_name_prefix="wit-consent") as pool:
            for row in pool.map(lambda o: ask_origin(o, urls_by_origin[o], opener, settings, now), stale):
                policies.put(row)
                policies.fetched["robots.txt"] += 1
                policies.fetched["tdmrep.json"] += row["tdmrep_state"] is not None
    # a cached origin whose tdmrep.json was not needed before (no URL allowed then), now is
    for origin, urls in sorted(urls_by_origin.items()):
        row = policies.rows[origin]
        if row["tdmrep_state"] is None:
            rb = policies.robots(origin)
            if rb.outcome != robots.UNREACHABLE and any(rb.allowed(u) for u in urls):
                policies.put(ask_tdmrep(row, opener, settings))
                policies.fetched["tdmrep.json"] += 1


@dataclass
class Screened:
    todo: list[pa.Table]  # the rows to fetch, with a CONSENT_COLUMN
    refused: dict[str, str]  # key -> drop reason
    summary: dict[str, Any]


def screen(tables: list[pa.Table], key_column: str, output: str, settings: Settings, proxy_url: str | None,
           shared_cache: str | None = None) -> Screened:
    """Decide every row of `tables` (columns `key_column`, `url`): the rows to fetch, each with
    its consent note, and the refused keys with their reasons. Reads and updates the output's
    cache (seeded from `shared_cache`, the Beam engine's per-job answers, where given)."""
    urls_by_origin: dict[str, list[str]] = {}
    origins_of_rows = []
    for table in tables:
        origins = [origin_of(u) for u in table.column("url").to_pylist()]
        origins_of_rows.append(origins)
        for origin, url in zip(origins, table.column("url").to_pylist()):
            if origin is not None:
                urls_by_origin.setdefault(origin, []).append(url)
    cache_url = fsio.join(output, CACHE_FILE)
    policies = OriginPolicies.load(cache_url, settings.agent)
    if shared_cache:
        shared = OriginPolicies.load(shared_cache, settings.agent, urls_by_origin)
        for origin, row in shared.rows.items():
            mine = policies.rows.get(origin)
            if mine is None or mine["fetched_at"] < row["fetched_at"]:
                policies.put(row)
    refresh(policies, urls_by_origin, settings, proxy_url)
    if urls_by_origin:
        fsio.makedirs(fsio.join(output, CONSENT_DIR))
        policies.save(cache_url)

    todo, refused = [], {}
    for table, origins in zip(tables, origins_of_rows):
        keep, notes = [], []
        for key, url, origin in zip(table.column(key_column).to_pylist(), table.column("url").to_pylist(), origins):
            reason, note = (UNAVAILABLE_ROBOTS, "") if origin is None else decide(policies, origin, url)
            if reason is not None:
                refused[key] = reason
            keep.append(reason is None)
            if reason is None:
                notes.append(note)
        part = table.filter(pa.array(keep, pa.bool_()))
        if part.num_rows:
            todo.append(part.append_column(CONSENT_COLUMN, pa.array(notes, pa.string())))
    states: dict[str, dict[str, int]] = {"robots.txt": {}, "tdmrep.json": {}}
    for origin in urls_by_origin:
        row = policies.rows[origin]
        states["robots.txt"][row["robots_state"]] = states["robots.txt"].get(row["robots_state"], 0) + 1
        t = row["tdmrep_state"] or "not_needed"
        states["tdmrep.json"][t] = states["tdmrep.json"].get(t, 0) + 1
    summary = {"agent": settings.agent, "user_agent": user_agent(settings.agent, settings.contact),
               "origins": len(urls_by_origin), "requests_this_run": dict(policies.fetched),
               "answers": {k: dict(sorted(v.items())) for k, v in states.items()}}
    return Screened(todo, refused, summary)
