"""(image URL, alt text) pairs from Common Crawl WARC and WAT files, every record counted.

The kind of each record decides how it is read, not the file name: a WARC `response` record
with an HTML payload is an HTML page (`page.html_images`); a `metadata` record with a JSON
payload is a WAT envelope whose `HTML-Metadata.Links` lists `IMG@/src` links with their
`alt`/`title`. Both kinds may sit in one file; gzip (per-record members) or plain
(`archive.iter_records`). A page's images become pairs in `page.pairs_from_images`.

Counts go to a `Tally` (C4-style injectable counter), each total once a file is read (or
its reading stops), under two stages:
- `read`: `in` = records read; `out` = records that carried an HTML page; dropped
  `not_response` (warcinfo, request, WARC metadata, WAT envelopes of non-responses, ...),
  `http_error` (status not 200), `not_html`, `bad_json` (WAT payload not a JSON envelope),
  `decode_error` (a payload that cannot be decoded), `unreadable` (damaged archive bytes:
  a corrupt or truncated gzip member, a record cut short), `error` (handling the record
  raised) and `opted_out.<reason>` (the page opted out of AI use: `X-Robots-Tag: noai` or
  `noimageai`, `<meta name="robots">` or `<meta name="wit">` saying so, or TDMRep's
  `tdm-reservation: 1` header or meta; `web.optout`): it contributes no pairs.
- `extract`: `in` = `<img>` tags / IMG links seen; `out` = pairs; dropped `no_text` and the
  URL reasons of `urls` (`empty_src`, `data_url`, `javascript_url`, `not_http`, `bad_url`,
  `url_too_long`, `bad_host`), as `page.pairs_from_images` counts them, and
  `too_many_images` past a page's first MAX_IMAGES_PER_PAGE.
Every `unreadable`, `bad_json` and `error` record is reported through `on_error(source, message)` with
source `<file_url>@<record offset>`; reading goes on with the next record (a corrupt gzip
member is skipped to the next member; a truncated one is the end of the file).
"""

from __future__ import annotations

import re
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import fsspec
import orjson

from wit_pipeline.core import fsio
from wit_pipeline.core.stats import Tally, TallyBase, error_text
from wit_pipeline.web import optout
from wit_pipeline.web.archive import Broken, Record, iter_records, target_uri
from wit_pipeline.web.page import EXTRACT, Image, html_images, pairs_from_images

READ = "read"

NOT_RESPONSE = "not_response"
HTTP_ERROR = "http_error"
NOT_HTML = "not_html"
BAD_JSON = "bad_json"
DECODE_ERROR = "decode_error"
UNREADABLE = "unreadable"
ERROR = "error"
OPTED_OUT = "opted_out."  # + optout's reason: the page said no (X-Robots-Tag, meta robots, tdm-reservation)

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
MAX_PAGE_BYTES = 16 << 20  # of a decoded HTML payload; Common Crawl itself keeps the first 1 MiB
MAX_IMAGES_PER_PAGE = 2000  # more is a generated page, not a web page; the rest are `too_many_images`

# A page with images: (page URL, <base href> or None, images).
Page = tuple[str, str | None, list[Image]]
OnError = Callable[[str, str], None]


def iter_pairs(file_url: str, tally: Tally, on_error: OnError) -> Iterator[dict]:
    """Pairs {"url", "text", "page_url", "text_source"} from one WARC or WAT file (any fsspec
    URL). Never raises for what is in the file: each record's fate is counted. A failure of
    the file itself (it cannot be opened, its stream fails, it is empty) is reported with the
    bare file URL as its source, so a caller can tell it from a damaged record."""
    counts = _Counts()
    try:
        yield from _file_pairs(file_url, counts, on_error)
    finally:  # also when the caller stops early: what was read is counted
        counts.add_to(tally)


class _Counts(TallyBase):
    """A Tally that adds up a file's counts in a dict and hands each total to the caller's
    Tally at the end: several counts per record cost less than a Tally call each."""

    def __init__(self) -> None:
        self.totals: dict[tuple[str, str], int] = {}

    def inc(self, stage: str, field: str, n: int = 1) -> None:
        key = (stage, field)
        self.totals[key] = self.totals.get(key, 0) + n

    def add_to(self, tally: Tally) -> None:
        for (stage, field), n in self.totals.items():
            tally.inc(stage, field, n)


def _file_pairs(file_url: str, tally: Tally, on_error: OnError) -> Iterator[dict]:
    try:
        fh = open_with_retries(file_url)
    except Exception as exc:
        _file_failed(file_url, error_text(exc), tally, on_error)
        return
    with fh:
        records = iter_records(fh)
        seen = False
        while True:
            try:
                record = next(records)
            except StopIteration:
                if not seen:
                    _file_failed(file_url, "empty file: no WARC record (a failed download?)", tally, on_error)
                return
            except Exception as exc:  # the stream itself failed (I/O): nothing more to read
                _file_failed(file_url, error_text(exc), tally, on_error)
                return
            seen = True
            yield from record_pairs(file_url, record, tally, on_error)


OPEN_RETRY_SECONDS = (0.5, 1.0)  # a throttled or flaky store (HTTP 503) often answers the next time


def open_with_retries(url: str) -> BinaryIO:
    fsio.check_regular_file(url)  # a FIFO among the inputs would block this worker for ever
    for pause in (*OPEN_RETRY_SECONDS, None):
        try:
            return fsspec.open(url, "rb").open()
        except Exception:
            if pause is None:
                raise
            time.sleep(pause)
    raise AssertionError("unreachable")


def _file_failed(file_url: str, error: str, tally: Tally, on_error: OnError) -> None:
    tally.inc(READ, "in")
    tally.dropped(READ, UNREADABLE)
    on_error(file_url, error)


def record_pairs(file_url: str, record: Record | Broken, tally: Tally, on_error: OnError) -> list[dict]:
    """One record's pairs, its fate counted; whatever raises while handling it costs only it."""
    tally.inc(READ, "in")
    if isinstance(record, Broken):
        tally.dropped(READ, UNREADABLE)
        on_error(f"{file_url}@{record.offset}", record.error)
        return []
    try:
        page = record_page(record)
        if isinstance(page, str):
            tally.dropped(READ, page)
            if page == BAD_JSON:  # a damaged or crafted WAT record: say where it is
                on_error(f"{file_url}@{record.offset}", "WAT payload is not a JSON envelope")
            return []
        page_url, base_href, images = page
        if len(images) > MAX_IMAGES_PER_PAGE:
            extra = len(images) - MAX_IMAGES_PER_PAGE
            tally.inc(EXTRACT, "in", extra)
            tally.dropped(EXTRACT, "too_many_images", extra)
            images = images[:MAX_IMAGES_PER_PAGE]
        # Attribute values come decoded once: by the HTML scan (WARC) or by Common Crawl's WAT
        # extractor, which decodes every attribute it records. The page's `extract` counts are
        # made after its last image, so a raise leaves none.
        pairs = pairs_from_images(page_url, base_href, images, tally, decode_entities=False)
    except Exception as exc:
        tally.dropped(READ, ERROR)
        on_error(f"{file_url}@{record.offset}", error_text(exc))
        return []
    tally.kept(READ)
    return pairs


def record_page(record: Record) -> Page | str:
    """A record's page, or the `read` drop reason."""
    kind = record.type
    if kind == "response":
        return warc_page(record)
    if kind == "metadata" and record.headers.get("content-type", "").lower().startswith("application/json"):
        return wat_page(record.block)
    return NOT_RESPONSE


def warc_page(record: Record) -> Page | str:
    """An HTML page from a WARC response record (HTTP status line, headers, body)."""
    head = http_head(record.block)
    if head is None:
        return NOT_RESPONSE
    status, headers, body_start = head
    if status != "200":
        return HTTP_ERROR
    content_type = headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() not in HTML_TYPES:
        return NOT_HTML
    body = _decoded_body(record.block[body_start:], headers)
    if body is None:
        return DECODE_ERROR
    if reason := optout.warc_page_opt_out(record.block[:body_start], body):
        return OPTED_OUT + reason
    base_href, images = html_images(body, content_type)
    page_url = target_uri(record.headers.get("warc-target-uri", ""))
    return page_url, base_href, images


# The blank line that ends an HTTP head: a line ends at LF, and what it ends with (a CR, or
# spaces) is stripped, as warcio's readline().rstrip() reads it.
_HEAD_END = re.compile(rb"\n[\t\x0b\x0c\r ]*\n")


def http_head(block: bytes) -> tuple[str, dict[str, str], int] | None:
    """(status code, headers with lower-cased names, where the body starts) of an HTTP
    response block, read as warcio reads it: lines end in CRLF or a bare LF; a line that
    starts with a space or tab continues the header before it; a line without ":" is
    skipped. None when the block is no HTTP response head (no `HTTP/` status line, or no
    blank line before the record ends)."""
    if not block.startswith(b"HTTP/"):
        return None
    m = _HEAD_END.search(block)
    if m is None:
        return None
    lines = block[:m.start()].decode("latin-1").split("\n")
    status = lines[0].rstrip().split(" ", 1)[-1].strip().split(" ", 1)[0] if " " in lines[0] else ""
    headers: dict[str, str] = {}
    name = None
    for line in lines[1:]:
        line = line.rstrip()
        if line[:1] in (" ", "\t"):
            if name is not None:
                headers[name] += line
            continue
        name, sep, value = line.partition(":")
        if sep:
            name = name.rstrip(" \t").lower()
            headers[name] = value.lstrip()
        else:
            name = None
    return status, headers, m.end()


def _decoded_body(body: bytes, headers: dict[str, str]) -> bytes | None:
    """The payload as the server meant it: de-chunked and inflated (Common Crawl mostly
    stores it decoded already, other crawlers may not), cut at MAX_PAGE_BYTES as Common
    Crawl cuts what it fetches, so a small compressed page cannot become gigabytes of text;
    None when decoding fails.

    As warcio reads it: from a chunk header that is no chunk header on, the payload is not
    chunked (crawlers stored it de-chunked but kept the header); a payload whose first
    INFLATE_PROBE bytes do not inflate is not compressed (stored already decoded, its
    `Content-Encoding` kept), and a `deflate` one may be raw deflate. Damage after a start
    that inflated is a `decode_error`."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _dechunk(body)
    encoding = headers.get("content-encoding", "").strip().lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        inflated = _inflate(body, 47 if encoding != "deflate" else zlib.MAX_WBITS)
        if inflated is None:
            return None
        body = inflated
    return body[:MAX_PAGE_BYTES]


INFLATE_PROBE = 16384  # warcio's first read: when these bytes do not inflate, nothing was compressed


def _inflate(body: bytes, wbits: int) -> bytes | None:
    """`body` inflated (at most MAX_PAGE_BYTES); the stored bytes when its start does not
    inflate (raw deflate tried first for `deflate`); None when it fails further on, or when
    a body that starts as a gzip or zlib stream (its header) fails anywhere: that is damage,
    where warcio would pass the compressed bytes on as the page."""
    inflater = zlib.decompressobj(wbits)
    try:
        head = inflater.decompress(body[:INFLATE_PROBE], MAX_PAGE_BYTES)
    except zlib.error:
        if wbits > 0 and _compressed_header(body):
            return None
        return _inflate(body, -zlib.MAX_WBITS) if wbits == zlib.MAX_WBITS else body
    if inflater.unconsumed_tail or inflater.eof:
        return head
    try:
        return head + inflater.decompress(body[INFLATE_PROBE:], MAX_PAGE_BYTES - len(head))
    except zlib.error:
        return None


def _compressed_header(body: bytes) -> bool:
    """Whether body starts with a gzip header, or a zlib one (RFC 1950: deflate with a
    window of at most 32 KiB, and a check that makes its first two bytes a multiple of 31)."""
    if body[:2] == b"\x1f\x8b":
        return True
    return len(body) > 1 and body[0] & 0x8F == 0x08 and (body[0] << 8 | body[1]) % 31 == 0


_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")


def _dechunk(body: bytes) -> bytes:
    """A chunked body's data. From a chunk header that is no chunk header on (not hex
    digits, or no CRLF: a crafted "-6" would send the reader backwards), the rest is taken
    as it is, as warcio takes it; every step moves forward."""
    out, i, total = [], 0, 0
    while True:
        eol = body.find(b"\r\n", i, i + 64)
        size_text = body[i:eol].split(b";", 1)[0].strip() if eol >= 0 else b""
        if not _CHUNK_SIZE.fullmatch(size_text):
            out.append(body[i:])
            return b"".join(out)
        size = int(size_text, 16)
        if size == 0 or total >= MAX_PAGE_BYTES:
            return b"".join(out)
        out.append(body[eol + 2 : eol + 2 + size])
        total += size
        i = eol + 2 + size + 2


def wat_page(envelope_json: bytes) -> Page | str:
    """(page URL, base href, IMG links) from one WAT JSON payload, or the `read` drop reason.
    orjson refuses nesting deeper than 1024, so a crafted payload costs its size, no more.
    Every step checks the type it walks into: a field of another type is read as absent."""
    try:
        doc = orjson.loads(envelope_json)
    except orjson.JSONDecodeError:
        return BAD_JSON
    envelope = doc.get("Envelope") if isinstance(doc, dict) else None
    if not isinstance(envelope, dict):
        return BAD_JSON
    warc = envelope.get("WARC-Header-Metadata")
    if not isinstance(warc, dict) or warc.get("WARC-Type") != "response":
        return NOT_RESPONSE
    response = _field(envelope.get("Payload-Metadata"), "HTTP-Response-Metadata")
    if not isinstance(response, dict):
        return NOT_RESPONSE
    if str(_field(response.get("Response-Message"), "Status")) != "200":
        return HTTP_ERROR
    html_meta = response.get("HTML-Metadata")
    if not isinstance(html_meta, dict):
        return NOT_HTML
    if reason := optout.wat_page_opt_out(response, html_meta):
        return OPTED_OUT + reason
    links = html_meta.get("Links") or []
    if not isinstance(links, list):
        return BAD_JSON
    base_href = _field(html_meta.get("Head"), "Base")
    images = []
    for link in links:
        if isinstance(link, dict) and link.get("path") == "IMG@/src":
            url, alt, title = link.get("url"), link.get("alt"), link.get("title")
            # A field that is no string (a number, a list: a malformed record) is absent.
            images.append((url if isinstance(url, str) else None, alt if isinstance(alt, str) else None,
                           title if isinstance(title, str) else None))
    page_url = warc.get("WARC-Target-URI")
    page_url = target_uri(page_url) if isinstance(page_url, str) else ""
    return page_url, base_href if isinstance(base_href, str) else None, images


def _field(doc: Any, key: str) -> Any:
    """doc[key] when doc is an object that has it, else None."""
    return doc.get(key) if isinstance(doc, dict) else None
