"""Crawl containers as real crawlers wrote them, read as warcio reads them (no more leniently).

Each fixture is written byte for byte in the shape of the crawl that has the quirk: ClueWeb09
(WARC/0.18, HTTP head lines ending in a bare LF), Common Crawl before mid-2018 (a payload stored
decoded with its `Content-Encoding: gzip` kept), wget 1.19 / WARC 1.0 grammar writers such as
dolma's samples (`WARC-Target-URI: <http://...>`). warcio itself reads each fixture, so the test
also shows that it is warcio's reading that is matched.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from wit_pipeline.core.stats import DictTally, check_stages, stages_from_counters
from wit_pipeline.web.archive import target_uri
from wit_pipeline.web.extract import http_head, iter_pairs

HTML = (b"<!DOCTYPE html>\n<html><head><title>Letters</title></head><body>\n"
        b'<p>Home</p><img src="/img/harbour.jpg" alt="Fishing boats in the harbour at dawn">\n'
        b'<img src="thumbs/ferry.png" alt="The morning ferry leaving the pier"></body></html>\n')
PAIRS = [("http://www.example.com/img/harbour.jpg", "Fishing boats in the harbour at dawn"),
         ("http://www.example.com/news/thumbs/ferry.png", "The morning ferry leaving the pier")]


def _record(warc_headers: list[tuple[str, str]], block: bytes, version: str = "WARC/1.0") -> bytes:
    head = "".join(f"{k}: {v}\r\n" for k, v in warc_headers)
    return f"{version}\r\n{head}Content-Length: {len(block)}\r\n\r\n".encode() + block + b"\r\n\r\n"


def _response(uri: str, http_head_text: bytes, body: bytes, version: str = "WARC/1.0") -> bytes:
    return _record([("WARC-Type", "response"), ("WARC-Target-URI", uri), ("WARC-Date", "2009-01-13T18:05:10Z"),
                    ("WARC-Record-ID", "<urn:uuid:67f7cabd-146c-41cf-bd01-04f5fa7d5229>"),
                    ("Content-Type", "application/http;msgtype=response")], http_head_text + body, version)


def _write(path: Path, *records: bytes) -> Path:
    path.write_bytes(b"".join(gzip.compress(r, mtime=0) for r in records))
    return path


def _pairs(path: Path) -> tuple[list[tuple[str, str]], dict[str, int], list]:
    tally, errors = DictTally(), []
    pairs = list(iter_pairs(str(path), tally, lambda source, error: errors.append((source, error))))
    check_stages(stages_from_counters(tally.counts, ("read", "extract")))
    return [(p["url"], p["text"]) for p in pairs], tally.as_dict(), errors


def _warcio(path: Path) -> list[tuple[str, bytes]]:
    """(target URI, decoded payload) of each response, as warcio gives them."""
    with open(path, "rb") as fh:
        return [(r.rec_headers.get_header("WARC-Target-URI"), r.content_stream().read())
                for r in ArchiveIterator(fh) if r.rec_type == "response"]


PAGE = "http://www.example.com/news/letters.html"

# ClueWeb09: a WARC/0.18 record whose HTTP head lines end in a bare LF.
CLUEWEB_HEAD = (b"HTTP/1.1 200 OK\nContent-Type: text/html\nDate: Tue, 13 Jan 2009 18:05:10 GMT\n"
                b"Pragma: no-cache\nCache-Control: no-cache, must-revalidate\n"
                b"X-Powered-By: PHP/4.4.8\nServer: WebServerX\nConnection: close\n"
                b"Last-Modified: Tue, 13 Jan 2009 18:05:10 GMT\nExpires: Mon, 20 Dec 1998 01:00:00 GMT\n"
                b"Content-Length: " + str(len(HTML)).encode() + b"\n\n")


def test_bare_lf_http_head_is_read_as_warcio_reads_it(tmp_path: Path) -> None:
    path = _write(tmp_path / "clueweb.warc.gz", _response(PAGE, CLUEWEB_HEAD, HTML, "WARC/0.18"))
    assert _warcio(path) == [(PAGE, HTML)]
    pairs, counts, errors = _pairs(path)
    assert pairs == PAIRS and errors == []
    assert counts["read:out"] == 1


def _lf_record(block: bytes) -> bytes:
    """A ClueWeb09-shaped record whose WARC header lines, too, end in a bare LF."""
    head = (f"WARC/0.18\nWARC-Type: response\nWARC-Target-URI: {PAGE}\nWARC-Date: 2009-01-13T18:05:10-0800\n"
            "WARC-TREC-ID: clueweb09-en0000-00-00000\nContent-Type: application/http;msgtype=response\n"
            "WARC-Identified-Payload-Type: \n"
            f"Content-Length: {len(block)}\n\n")
    return head.encode() + block + b"\n\n"


@pytest.mark.parametrize("layout", ["members", "plain", "whole-gzip"])
def test_bare_lf_warc_header_is_read_as_warcio_reads_it(tmp_path: Path, layout: str) -> None:
    records = [_lf_record(CLUEWEB_HEAD + HTML), _lf_record(CLUEWEB_HEAD + HTML.replace(b"harbour", b"harbor"))]
    path = tmp_path / "clueweb-lf.warc.gz"
    if layout == "members":
        _write(path, *records)
    elif layout == "plain":
        path.write_bytes(b"".join(records))
    else:
        path.write_bytes(gzip.compress(b"".join(records), mtime=0))
    if layout != "whole-gzip":  # warcio refuses a WARC gzipped whole; wit reads it record by record
        assert [uri for uri, _ in _warcio(path)] == [PAGE, PAGE]
    pairs, counts, errors = _pairs(path)
    assert errors == [] and counts["read:out"] == 2
    assert pairs == PAIRS + [(PAIRS[0][0].replace("harbour", "harbor"), PAIRS[0][1].replace("harbour", "harbor")),
                             PAIRS[1]]


def test_http_head_line_endings_and_folding() -> None:
    """Mixed CRLF and LF, a folded header, a line without a colon, trailing spaces."""
    block = b"HTTP/1.0 200 OK\r\nContent-Type: text/html;\n charset=utf-8\nBogus line\r\nX-A:  b  \r\n\nbody"
    status, headers, start = http_head(block)
    assert (status, block[start:]) == ("200", b"body")
    assert headers == {"content-type": "text/html; charset=utf-8", "x-a": "b"}
    assert http_head(b"HTTP/1.1 200 OK\n \t\r\nbody")[2] == len(b"HTTP/1.1 200 OK\n \t\r\n")  # a blank line
    assert [http_head(b"HTTP/1.1  200  OK\n\n")[0], http_head(b"HTTP/1.0 200\r\n\r\n")[0],
            http_head(b"HTTP/1.1\n\n")[0], http_head(b"HTTP/1.1 404 Not Found\n\n")[0]] == ["200", "200", "", "404"]


def test_http_head_beyond_warcio_is_a_counted_drop(tmp_path: Path) -> None:
    """No blank line ends the head (the record ends inside it), or no HTTP status line: no page."""
    no_end = _response(PAGE, b"HTTP/1.1 200 OK\nContent-Type: text/html\n" + HTML.replace(b"\n", b" "), b"")
    no_status = _response(PAGE, b"<html><body>\n\n", HTML)
    path = _write(tmp_path / "bad.warc.gz", no_end, no_status)
    pairs, counts, _ = _pairs(path)
    assert pairs == [] and counts == {"read:in": 2, "read:dropped.not_response": 2}


# Common Crawl 2014: the payload was stored decoded, its Content-Encoding header kept.
CC2014_HEAD = (b"HTTP/1.1 200 OK\r\nServer: Apache/2.2.22 (Ubuntu)\r\nVary: Accept-Encoding\r\n"
               b"Content-Encoding: gzip\r\nContent-Type: text/html; charset=UTF-8\r\n"
               b"Date: Sat, 12 Jul 2014 03:44:01 GMT\r\nConnection: close\r\n\r\n")


@pytest.mark.parametrize("encoding", [b"gzip", b"x-gzip", b"deflate"])
def test_content_encoding_on_a_stored_decoded_payload_falls_back(tmp_path: Path, encoding: bytes) -> None:
    head = CC2014_HEAD.replace(b"gzip", encoding)
    path = _write(tmp_path / "cc2014.warc.gz", _response(PAGE, head, HTML))
    if encoding != b"x-gzip":  # warcio knows gzip and deflate only
        assert _warcio(path) == [(PAGE, HTML)]
    pairs, counts, errors = _pairs(path)
    assert pairs == PAIRS and errors == [] and counts["read:out"] == 1


def test_compressed_payloads_still_inflate(tmp_path: Path) -> None:
    raw = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    records = [_response(PAGE, CC2014_HEAD, gzip.compress(HTML, mtime=0)),
               _response(PAGE, CC2014_HEAD.replace(b"gzip", b"deflate"), zlib.compress(HTML)),
               _response(PAGE, CC2014_HEAD.replace(b"gzip", b"deflate"), raw.compress(HTML) + raw.flush())]
    path = _write(tmp_path / "inflate.warc.gz", *records)
    assert _warcio(path) == [(PAGE, HTML)] * 3
    assert _pairs(path)[0] == PAIRS * 3


def test_a_payload_damaged_after_it_began_to_inflate_is_a_decode_error(tmp_path: Path) -> None:
    """The fallback is for a payload that never was compressed, not for a corrupt one."""
    big = HTML.replace(b"<p>Home</p>", b"<p>" + bytes(range(33, 127)) * 2000 + b"</p>")
    packed = bytearray(gzip.compress(big, 1, mtime=0))
    packed[len(packed) * 2 // 3] ^= 0xFF
    path = _write(tmp_path / "corrupt.warc.gz", _response(PAGE, CC2014_HEAD, bytes(packed)))
    assert _pairs(path)[1] == {"read:in": 1, "read:dropped.decode_error": 1}


def test_chunked_header_on_a_stored_dechunked_payload(tmp_path: Path) -> None:
    head = CC2014_HEAD.replace(b"Content-Encoding: gzip", b"Transfer-Encoding: chunked")
    path = _write(tmp_path / "chunked.warc.gz", _response(PAGE, head, HTML))
    assert _warcio(path) == [(PAGE, HTML)]
    assert _pairs(path)[0] == PAIRS


# dolma's WARC samples (wget 1.19): the target URI in angle brackets, as WARC 1.0's grammar writes it.
@pytest.mark.parametrize("uri", [f"<{PAGE}>", f" <{PAGE}> "])
def test_target_uri_in_angle_brackets(tmp_path: Path, uri: str) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=UTF-8\r\n\r\n"
    path = _write(tmp_path / "wget.warc.gz", _response(uri, head, HTML))
    assert _warcio(path) == [(PAGE, HTML)]
    tally = DictTally()
    pairs = list(iter_pairs(str(path), tally, lambda s, e: None))
    assert [(p["url"], p["text"]) for p in pairs] == PAIRS
    assert {p["page_url"] for p in pairs} == {PAGE}


def test_target_uri_as_warcio_reads_it() -> None:
    assert target_uri("<http://a.example/x>") == "http://a.example/x"
    assert target_uri("http://a.example/a b") == "http://a.example/a%20b"
    assert target_uri("<http://a.example/x") == "<http://a.example/x"  # one bracket: as written


def test_target_uri_in_angle_brackets_through_wat(tmp_path: Path) -> None:
    """A WAT made from such a WARC keeps the brackets in its envelope's WARC-Target-URI."""
    links = [{"path": "IMG@/src", "url": "/img/harbour.jpg", "alt": "Fishing boats in the harbour at dawn"},
             {"path": "IMG@/src", "url": "thumbs/ferry.png", "alt": "The morning ferry leaving the pier"}]
    envelope = {"Container": {"Filename": "wget.warc.gz", "Compressed": True},
                "Envelope": {"Format": "WARC",
                             "WARC-Header-Metadata": {"WARC-Type": "response", "WARC-Target-URI": f"<{PAGE}>"},
                             "Payload-Metadata": {"HTTP-Response-Metadata": {
                                 "Response-Message": {"Status": "200"}, "HTML-Metadata": {"Links": links}}}}}
    record = _record([("WARC-Type", "metadata"), ("WARC-Target-URI", f"<{PAGE}>"),
                      ("Content-Type", "application/json")], json.dumps(envelope).encode())
    path = _write(tmp_path / "wget.warc.wat.gz", record)
    tally = DictTally()
    pairs = list(iter_pairs(str(path), tally, lambda s, e: None))
    assert [(p["url"], p["text"]) for p in pairs] == PAIRS
    assert {p["page_url"] for p in pairs} == {PAGE}


def test_warcio_reads_the_fixtures_as_records() -> None:
    """The hand-written records are well-formed WARC: warcio reads each one whole."""
    data = _response(PAGE, CLUEWEB_HEAD, HTML, "WARC/0.18")
    records = list(ArchiveIterator(io.BytesIO(data)))
    assert [r.rec_type for r in records] == ["response"]
