"""Write a WARC file and its WAT twin the way Common Crawl lays them out, deterministically.

WARC: warcinfo, then request / response / metadata records per page, one gzip member per
record (warcio's WARCWriter). WAT: a warcinfo record, then one `metadata` record per WARC
record whose JSON payload has Common Crawl's shape (Container > Envelope > Payload-Metadata >
HTTP-Response-Metadata > HTML-Metadata > Head / Links), with the WARC offsets filled in.

Record ids derive from (seed, file, record number) and dates from the page's fetch time,
and warcio's gzip header has mtime 0, so the same inputs give byte-identical files.
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

CRAWL_ID = "CC-MAIN-2024-22"
CRAWL_START = datetime(2024, 5, 18, 1, 0, 0, tzinfo=timezone.utc)
USER_AGENT = "CCBot/2.0 (https://commoncrawl.org/faq/)"


@dataclass
class Page:
    """One crawled HTML page: its URL, body and the link elements (in document order) of the body."""

    url: str
    html: str
    title: str
    links: list[dict[str, str]]  # WAT Links entries: {"path": "IMG@/src", "url": ..., "alt": ...}
    head_links: list[dict[str, str]] = field(default_factory=list)  # WAT Head.Link entries
    metas: list[dict[str, str]] = field(default_factory=list)
    ip: str = "127.0.0.1"
    body: bytes | None = None  # the bytes sent, when not `html` in UTF-8 (other encodings)
    content_type: str = "text/html; charset=UTF-8"
    headers: list[tuple[str, str]] = field(default_factory=list)  # more response headers (X-Robots-Tag, ...)


def warc_date(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def http_date(t: datetime) -> str:
    return t.strftime("%a, %d %b %Y %H:%M:%S GMT")


class CrawlFileWriter:
    """Accumulates pages into one in-memory WARC and its WAT; `finish()` returns both files' bytes."""

    def __init__(self, warc_name: str, seed: int, start: datetime = CRAWL_START) -> None:
        self.warc_name = warc_name
        self.wat_name = warc_name.replace(".warc.gz", ".warc.wat.gz")
        self.seed = seed
        self.start = start
        self._warc = io.BytesIO()
        self._wat = io.BytesIO()
        self._warc_writer = WARCWriter(self._warc, gzip=True)
        self._wat_writer = WARCWriter(self._wat, gzip=True)
        self._n = 0
        self.warc_offsets: list[int] = []  # start of each WARC member
        self.wat_offsets: list[int] = []
        self.warc_types: list[str] = []
        self.wat_types: list[str] = []  # WARC-Type of the record each WAT record describes
        self._warcinfo_id = self._record_id("warcinfo")
        self._write_warcinfo()

    # -- ids and bookkeeping ---------------------------------------------------------------
    def _record_id(self, what: str) -> str:
        self._n += 1
        digest = hashlib.blake2b(f"{self.seed}|{self.warc_name}|{self._n}|{what}".encode(), digest_size=16).digest()
        return f"<urn:uuid:{uuid.UUID(bytes=digest, version=4)}>"

    def _write(self, writer: WARCWriter, buf: io.BytesIO, record: Any, offsets: list[int]) -> tuple[int, int]:
        start = buf.tell()
        writer.write_record(record)
        offsets.append(start)
        return start, buf.tell() - start

    # -- WARC records ----------------------------------------------------------------------
    def _write_warcinfo(self) -> None:
        fields = (
            f"isPartOf: {CRAWL_ID}\r\n"
            "publisher: wit synthetic crawl\r\n"
            "description: A seeded synthetic web for tests and the demo\r\n"
            "operator: wit (https://github.com/)\r\n"
            "software: wit_pipeline.synthetic.generate\r\n"
            "format: WARC File Format 1.1\r\n"
            "conformsTo: https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/\r\n"
        ).encode()
        headers = {
            "WARC-Record-ID": self._warcinfo_id,
            "WARC-Date": warc_date(self.start),
            "WARC-Filename": self.warc_name,
        }
        rec = self._warc_writer.create_warc_record(
            "", "warcinfo", payload=io.BytesIO(fields), length=len(fields),
            warc_content_type="application/warc-fields", warc_headers_dict=headers,
        )
        pos = self._write(self._warc_writer, self._warc, rec, self.warc_offsets)
        self.warc_types.append("warcinfo")
        info = dict(line.split(": ", 1) for line in fields.decode().strip().split("\r\n"))
        self._write_wat_warcinfo()
        self._wat_for(rec, pos, {"Actual-Content-Type": "application/warc-fields", "WARC-Info-Metadata": info})

    def add_page(self, page: Page, when: datetime) -> None:
        """A page's request, response and metadata records, each with its WAT envelope."""
        parts = urlsplit(page.url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        date = warc_date(when)
        req_id = self._record_id("request")
        resp_id = self._record_id("response")
        meta_id = self._record_id("metadata")
        common = {"WARC-Date": date, "WARC-Warcinfo-ID": self._warcinfo_id, "WARC-IP-Address": page.ip}
        self._add_request(page, parts.netloc, path, req_id, common)
        self._add_response(page, when, req_id, resp_id, common)
        self._add_metadata(page, date, resp_id, meta_id)

    def _add_request(self, page: Page, host: str, path: str, req_id: str, common: dict[str, str]) -> None:
        req_http = StatusAndHeaders(
            f"GET {path} HTTP/1.1",
            [("User-Agent", USER_AGENT), ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
             ("Accept-Language", "en-US,en;q=0.5"), ("Accept-Encoding", "br,gzip"), ("Host", host),
             ("Connection", "Keep-Alive")],
            is_http_request=True,
        )
        req = self._warc_writer.create_warc_record(
            page.url, "request", payload=io.BytesIO(b""), length=0, http_headers=req_http,
            warc_headers_dict={"WARC-Record-ID": req_id, **common},
        )
        pos = self._write(self._warc_writer, self._warc, req, self.warc_offsets)
        self.warc_types.append("request")
        self._wat_for(req, pos, {
            "Actual-Content-Type": "application/http; msgtype=request",
            "HTTP-Request-Metadata": {
                "Request-Message": {"Method": "GET", "Path": path, "Version": "HTTP/1.1"},
                "Headers-Length": str(len(req_http.to_bytes())),
                "Headers": dict(req_http.headers),
                "Entity-Length": "0",
                "Entity-Trailing-Slop-Length": "0",
            },
        })

    def _add_response(self, page: Page, when: datetime, req_id: str, resp_id: str, common: dict[str, str]) -> None:
        body = page.html.encode("utf-8") if page.body is None else page.body
        resp_http = StatusAndHeaders(
            "200 OK",
            [("Date", http_date(when)), ("Server", "wit-synthetic/1.0"), ("Content-Type", page.content_type),
             ("Content-Length", str(len(body))), ("Last-Modified", http_date(when - timedelta(days=14))),
             *page.headers],
            protocol="HTTP/1.1",
        )
        resp = self._warc_writer.create_warc_record(
            page.url, "response", payload=io.BytesIO(body), length=len(body), http_headers=resp_http,
            warc_headers_dict={"WARC-Record-ID": resp_id, "WARC-Concurrent-To": req_id,
                               "WARC-Identified-Payload-Type": "text/html", **common},
        )
        pos = self._write(self._warc_writer, self._warc, resp, self.warc_offsets)
        self.warc_types.append("response")
        self._wat_for(resp, pos, {
            "Actual-Content-Type": "application/http; msgtype=response",
            "HTTP-Response-Metadata": {
                "Response-Message": {"Version": "HTTP/1.1", "Status": "200", "Reason": "OK"},
                "Headers-Length": str(len(resp_http.to_bytes())),
                "Headers": dict(resp_http.headers),
                "Entity-Length": str(len(body)),
                "Entity-Digest": resp.rec_headers.get_header("WARC-Payload-Digest"),
                "Entity-Trailing-Slop-Length": "0",
                "HTML-Metadata": {
                    "Head": {"Title": page.title, "Metas": page.metas, "Link": page.head_links},
                    "Links": page.links,
                },
            },
        })

    def _add_metadata(self, page: Page, date: str, resp_id: str, meta_id: str) -> None:
        fetch_ms = str(50 + int(hashlib.blake2b(page.url.encode(), digest_size=2).hexdigest(), 16) % 400)
        fields = f"fetchTimeMs: {fetch_ms}\r\ncharset-detected: UTF-8\r\n\r\n".encode()
        meta = self._warc_writer.create_warc_record(
            page.url, "metadata", payload=io.BytesIO(fields), length=len(fields),
            warc_content_type="application/warc-fields",
            warc_headers_dict={"WARC-Record-ID": meta_id, "WARC-Concurrent-To": resp_id,
                               "WARC-Date": date, "WARC-Warcinfo-ID": self._warcinfo_id},
        )
        pos = self._write(self._warc_writer, self._warc, meta, self.warc_offsets)
        self.warc_types.append("metadata")
        self._wat_for(meta, pos, {
            "Actual-Content-Type": "application/warc-fields",
            "WARC-Metadata-Metadata": {"Metadata-Records": [
                {"Name": "fetchTimeMs", "Value": fetch_ms}, {"Name": "charset-detected", "Value": "UTF-8"}]},
        })

    def add_request_and_response_only(self, page: Page, when: datetime) -> None:
        """A page whose metadata record never got written: its response is the file's last member."""
        before = len(self.warc_types)
        self.add_page(page, when)
        # Drop the metadata record again: rewind both buffers to before it.
        assert self.warc_types[before:] == ["request", "response", "metadata"]
        self._warc.truncate(self.warc_offsets.pop())
        self._warc.seek(0, io.SEEK_END)
        self.warc_types.pop()
        self._wat.truncate(self.wat_offsets.pop())
        self._wat.seek(0, io.SEEK_END)
        self.wat_types.pop()

    # -- WAT records -----------------------------------------------------------------------
    def _write_wat_warcinfo(self) -> None:
        fields = (
            f"Software-Info: wit_pipeline.synthetic.warc_writer\r\n"
            f"Extracted-Date: {http_date(self.start)}\r\n"
            f"isPartOf: {CRAWL_ID}\r\n"
            "description: WAT for a seeded synthetic crawl\r\n"
        ).encode()
        rec = self._wat_writer.create_warc_record(
            "", "warcinfo", payload=io.BytesIO(fields), length=len(fields),
            warc_content_type="application/warc-fields",
            warc_headers_dict={"WARC-Record-ID": self._record_id("wat-warcinfo"), "WARC-Date": warc_date(self.start),
                               "WARC-Filename": self.wat_name},
        )
        start = self._wat.tell()
        self._wat_writer.write_record(rec)
        self._wat_header_len = self._wat.tell() - start  # warcinfo is not a described record

    def _wat_for(self, record: Any, pos: tuple[int, int], payload_metadata: dict[str, Any]) -> None:
        offset, length = pos
        member = self._warc.getbuffer()[offset : offset + length].tobytes()
        inflated = zlib.decompress(member, zlib.MAX_WBITS | 16)
        head_end = inflated.find(b"\r\n\r\n") + 4
        headers = dict(record.rec_headers.headers)
        doc = {
            "Container": {
                "Filename": self.warc_name,
                "Compressed": True,
                "Offset": str(offset),
                "Gzip-Metadata": {
                    "Deflate-Length": str(length - 18),
                    "Header-Length": "10",
                    "Footer-Length": "8",
                    "Inflated-CRC": str(zlib.crc32(inflated)),
                    "Inflated-Length": str(len(inflated)),
                },
            },
            "Envelope": {
                "Format": "WARC",
                "WARC-Header-Length": str(head_end),
                "Block-Digest": headers.get("WARC-Block-Digest", ""),
                "Actual-Content-Length": headers.get("Content-Length", "0"),
                "WARC-Header-Metadata": headers,
                "Payload-Metadata": payload_metadata,
            },
        }
        body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        wat_headers = {
            "WARC-Record-ID": self._record_id("wat"),
            "WARC-Date": headers["WARC-Date"],
            "WARC-Refers-To": headers["WARC-Record-ID"],
        }
        rec = self._wat_writer.create_warc_record(
            headers.get("WARC-Target-URI", ""), "metadata", payload=io.BytesIO(body), length=len(body),
            warc_content_type="application/json", warc_headers_dict=wat_headers,
        )
        if not rec.rec_headers.get_header("WARC-Target-URI"):
            rec.rec_headers.replace_header("WARC-Filename", self.warc_name)
        self._write(self._wat_writer, self._wat, rec, self.wat_offsets)
        self.wat_types.append(headers["WARC-Type"])

    def finish(self) -> tuple[bytes, bytes]:
        return self._warc.getvalue(), self._wat.getvalue()
