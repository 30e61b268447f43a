"""(image URL, alt text) pairs from Common Crawl WARC and WAT files, every record counted.

The kind of each record decides how it is read, not the file name: a WARC `response` record
with an HTML payload is parsed with lexbor (selectolax); a `metadata` record with a JSON
payload is a WAT envelope whose `HTML-Metadata.Links` lists `IMG@/src` links with their
`alt`/`title`. Both kinds may sit in one file; gzip (per-record members) or plain.
A pair's text is the `alt` attribute, or `title` when alt is missing or blank, passed through
`textfilter.clean_text`; its URL is `urls.resolve_image_url` against the page (or `<base>`).

Counts go to a `Tally` (C4-style injectable counter), under two stages:
- `read`: `in` = records read; `out` = records that carried an HTML page; dropped
  `not_response` (warcinfo, request, WARC metadata, WAT envelopes of non-responses, ...),
  `http_error` (status not 200), `not_html`, `bad_json` (WAT payload not a JSON envelope),
  `decode_error` (HTML the parser rejects), `unreadable` (I/O or gzip failure).
- `extract`: `in` = `<img>` tags / IMG links seen; `out` = pairs yielded; dropped `no_text`
  and the URL reasons of `urls.resolve_image_url` (`empty_src`, `data_url`,
  `javascript_url`, `not_http`, `bad_url`).
A file that cannot be read further (truncated gzip, not an archive, missing) is reported
through `on_error(source, message)` with source `<file_url>@<record offset>`, its failing
record counted `read: dropped.unreadable`, and reading that file stops; pairs already
yielded stay valid.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import fsspec
from warcio.archiveiterator import ArchiveIterator

from wit_pipeline.core.stats import Tally
from wit_pipeline.web.page import Image, decode_html, html_images, pairs_from_images

READ = "read"

NOT_RESPONSE = "not_response"
HTTP_ERROR = "http_error"
NOT_HTML = "not_html"
BAD_JSON = "bad_json"
DECODE_ERROR = "decode_error"
UNREADABLE = "unreadable"

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})

# A page with images: (page URL, <base href> or None, images).
Page = tuple[str, str | None, list[Image]]


class _Unreadable(Exception):
    """The archive stream failed while reading a record's payload."""


def _read_payload(record: Any) -> bytes:
    try:
        return record.content_stream().read()
    except Exception as e:  # zlib.error, EOFError, OSError, ...: the stream is broken
        raise _Unreadable(f"{type(e).__name__}: {e}") from e


def _warc_page(record: Any) -> Page | str:
    http = record.http_headers
    if http is None:
        return NOT_RESPONSE
    if http.get_statuscode() != "200":
        return HTTP_ERROR
    content_type = http.get_header("Content-Type") or ""
    if content_type.split(";", 1)[0].strip().lower() not in HTML_TYPES:
        return NOT_HTML
    body = _read_payload(record)
    try:
        base_href, images = html_images(decode_html(body, content_type))
    except Exception:  # the parser rejected the document: count it, keep reading the file
        return DECODE_ERROR
    page_url = (record.rec_headers.get_header("WARC-Target-URI") or "").strip()
    return page_url, base_href, images


def _check_complete(records: ArchiveIterator, record: Any) -> None:
    """Raise _Unreadable if the record or its gzip member ended early.

    warcio treats a short read as the end of the data, so a truncated download would pass
    for a shorter page; checking Content-Length and the gzip end marker catches it.
    """
    if not record.rec_headers.get_header("Content-Length"):
        # Content-Length is mandatory in WARC: without it the header was cut short.
        raise _Unreadable("record header truncated (no Content-Length)")
    try:
        records.read_to_end()
    except Exception as e:
        raise _Unreadable(f"{type(e).__name__}: {e}") from e
    missing = getattr(record.raw_stream, "limit", 0)
    if missing:
        raise _Unreadable(f"record truncated: {missing} bytes of its Content-Length missing")
    decompressor = records.reader.decompressor if records.reader is not None else None
    if decompressor is not None and not decompressor.eof and not records.next_line:
        raise _Unreadable("gzip member truncated (no end-of-stream marker)")


def _get(doc: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def wat_page(envelope_json: bytes) -> Page | str:
    """(page URL, base href, IMG links) from one WAT JSON payload, or the `read` drop reason."""
    try:
        doc = json.loads(envelope_json)
    except (ValueError, UnicodeDecodeError):
        return BAD_JSON
    envelope = _get(doc, "Envelope")
    if not isinstance(envelope, dict):
        return BAD_JSON
    if _get(envelope, "WARC-Header-Metadata", "WARC-Type") != "response":
        return NOT_RESPONSE
    response = _get(envelope, "Payload-Metadata", "HTTP-Response-Metadata")
    if not isinstance(response, dict):
        return NOT_RESPONSE
    if str(_get(response, "Response-Message", "Status")) != "200":
        return HTTP_ERROR
    html_meta = response.get("HTML-Metadata")
    if not isinstance(html_meta, dict):
        return NOT_HTML
    links = html_meta.get("Links") or []
    if not isinstance(links, list):
        return BAD_JSON
    base_href = _get(html_meta, "Head", "Base")
    images = [
        (_str_or_none(link.get("url")), _str_or_none(link.get("alt")), _str_or_none(link.get("title")))
        for link in links
        if isinstance(link, dict) and link.get("path") == "IMG@/src"
    ]
    page_url = str(_get(envelope, "WARC-Header-Metadata", "WARC-Target-URI") or "").strip()
    return page_url, base_href if isinstance(base_href, str) else None, images


def _str_or_none(value: Any) -> str | None:
    """A WAT field as text; anything else (a number, a list: a malformed record) is absent."""
    return value if isinstance(value, str) else None


def _is_json(record: Any) -> bool:
    ctype = (record.rec_headers.get_header("Content-Type") or "").lower()
    return ctype.startswith("application/json")


def _page(record: Any) -> Page | str:
    rec_type = record.rec_type
    if rec_type == "response":
        return _warc_page(record)
    if rec_type == "metadata" and _is_json(record):
        return wat_page(_read_payload(record))
    return NOT_RESPONSE


def iter_pairs(file_url: str, tally: Tally, on_error: Callable[[str, str], None]) -> Iterator[dict]:
    """Pairs {"url", "text", "page_url", "text_source"} from one WARC or WAT file (any fsspec URL)."""
    try:
        fh = fsspec.open(file_url, "rb").open()
    except Exception as e:
        tally.inc(READ, "in")
        tally.inc(READ, f"dropped.{UNREADABLE}")
        on_error(file_url, f"{type(e).__name__}: {e}")
        return
    with fh:
        records = ArchiveIterator(fh, check_digests=False)
        while True:
            offset = records.offset
            try:
                record = next(records)
            except StopIteration:
                if records.offset < fh.tell():  # bytes left that formed no complete record
                    tally.inc(READ, "in")
                    tally.inc(READ, f"dropped.{UNREADABLE}")
                    on_error(f"{file_url}@{records.offset}", "truncated or unparseable data after the last complete record")
                return
            except Exception as e:  # the header of the next record could not be read
                tally.inc(READ, "in")
                tally.inc(READ, f"dropped.{UNREADABLE}")
                on_error(f"{file_url}@{offset}", f"{type(e).__name__}: {e}")
                return
            tally.inc(READ, "in")
            offset = records.offset
            if not record.format.startswith("warc"):  # warcio falls back to ARC on garbage
                tally.inc(READ, f"dropped.{UNREADABLE}")
                on_error(f"{file_url}@{offset}", f"not a WARC record (parsed as {record.format})")
                return
            try:
                page = _page(record)
                _check_complete(records, record)
            except _Unreadable as e:
                tally.inc(READ, f"dropped.{UNREADABLE}")
                on_error(f"{file_url}@{offset}", str(e))
                return
            if isinstance(page, str):
                tally.inc(READ, f"dropped.{page}")
                continue
            tally.inc(READ, "out")
            page_url, base_href, images = page
            yield from pairs_from_images(page_url, base_href, images, tally, decode_entities=record.rec_type != "response")
