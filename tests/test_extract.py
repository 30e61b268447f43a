"""WARC/WAT extraction: exact counts on inline archives, the real Common Crawl sample, and
truncated/unreadable files."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import fsspec
import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from wit_pipeline.core.stats import DictTally, check_stages, stages_from_counters
from wit_pipeline.web.extract import iter_pairs, wat_page
from wit_pipeline.web.page import decode_html

PAGE1 = "https://example.org/gallery/index.html"
PAGE1_HTML = """<!doctype html><html><head><title>Gallery</title></head><body>
<img src="cat.jpg" alt="A red cat on a sofa">
<img src="/img/dog.png" alt="  A &amp; B
   dog  ">
<img src="//cdn.example.net/bird.gif" title="A blue bird">
<img src="x.jpg" alt="" title="">
<img src="y.jpg">
<img src="z.jpg" alt="   ">
<img src="data:image/png;base64,iVBORw0KGgo=" alt="inline">
<img src="javascript:void(0)" alt="js">
<img src="ftp://example.org/a.jpg" alt="ftp">
<img src="http://exa mple.org/a.jpg" alt="bad host">
<img alt="no src at all">
<img src="https://Bücher.example:443/ä.jpg#top" alt="Bücher">
<a href="/not-an-image.html">a link</a>
</body></html>"""
PAGE1_PAIRS = [
    ("https://example.org/gallery/cat.jpg", "A red cat on a sofa", "alt"),
    ("https://example.org/img/dog.png", "A & B dog", "alt"),
    ("https://cdn.example.net/bird.gif", "A blue bird", "title"),
    ("https://xn--bcher-kva.example/%C3%A4.jpg", "Bücher", "alt"),
]

PAGE2 = "http://www.example.com/fr/page.html"
PAGE2_HTML = """<html><head><base href="https://static.example.com/assets/"></head>
<body><img src="pic/caf.jpg" alt="Café crème"><img src="/root.png" alt="Élan"></body></html>"""

PAGE3 = "https://blog.example.com/post"
PAGE3_HTML = """<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1252">
</head><body><img src="a.png" alt="na\u00efve \u2013 test"></body></html>"""

PAGE4 = "https://example.org/xhtml"
PAGE4_HTML = """<html xmlns="http://www.w3.org/1999/xhtml"><body><img src="q.png" alt="a question mark"/></body></html>"""


def _response(writer: WARCWriter, url: str, body: bytes, content_type: str, status: str = "200 OK") -> None:
    http = StatusAndHeaders(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))],
                            protocol="HTTP/1.1")
    writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http))


def _request(writer: WARCWriter, url: str) -> None:
    http = StatusAndHeaders("GET / HTTP/1.1", [("Host", "example.org")], is_http_request=True)
    writer.write_record(writer.create_warc_record(url, "request", payload=io.BytesIO(b""), http_headers=http))


def make_warc(path: Path, gzip_members: bool = True) -> Path:
    with open(path, "wb") as f:
        w = WARCWriter(f, gzip=gzip_members)
        w.write_record(w.create_warcinfo_record("test.warc", {"software": "wit-test"}))
        _request(w, PAGE1)
        _response(w, PAGE1, PAGE1_HTML.encode("utf-8"), "text/html; charset=utf-8")
        w.write_record(w.create_warc_record(PAGE1, "metadata", payload=io.BytesIO(b"fetchTimeMs: 12\r\n"),
                                            warc_content_type="application/warc-fields"))
        _response(w, PAGE2, PAGE2_HTML.encode("latin-1"), "text/html; charset=ISO-8859-1")
        _response(w, PAGE3, PAGE3_HTML.encode("cp1252"), "text/html")
        _response(w, PAGE4, PAGE4_HTML.encode("utf-8"), "application/xhtml+xml")
        _response(w, "https://example.org/missing", b"<html><img src=a.png alt='gone page'></html>",
                  "text/html", "404 Not Found")
        _response(w, "https://example.org/logo.png", b"\x89PNG\r\n\x1a\n", "image/png")
    return path


def _envelope(warc_type: str, url: str, response: dict | None = None) -> bytes:
    env: dict = {"Format": "WARC", "WARC-Header-Metadata": {"WARC-Type": warc_type, "WARC-Target-URI": url}}
    if response is not None:
        env["Payload-Metadata"] = {"Actual-Content-Type": "application/http; msgtype=response",
                                   "HTTP-Response-Metadata": response}
    return json.dumps({"Container": {"Filename": "x.warc.gz", "Compressed": True}, "Envelope": env}).encode()


WAT_PAGE = "https://news.example.com/a/b/story.html"
WAT_LINKS = [
    {"path": "A@/href", "url": "/home", "text": "Home"},
    {"path": "IMG@/src", "url": "photos/sunset.jpg", "alt": "Sunset over the bay"},
    {"path": "IMG@/src", "url": "//cdn.example.com/x.png", "title": "A title only"},
    {"path": "IMG@/src", "url": "/spacer.gif"},
    {"path": "IMG@/src", "url": "data:image/gif;base64,R0lGODlh", "alt": "inline"},
    {"path": "IMG@/src", "url": "https://img.example.com:443/Big%2fCat.JPG#f", "alt": "  A big\ncat "},
    {"path": "LINK@/href", "url": "/style.css", "rel": "stylesheet"},
]


def make_wat(path: Path) -> Path:
    ok = {"Response-Message": {"Status": "200", "Version": "HTTP/1.1", "Reason": "OK"},
          "Headers": {"Content-Type": "text/html; charset=UTF-8"},
          "HTML-Metadata": {"Head": {"Title": "Story", "Base": "https://news.example.com/static/"},
                            "Links": WAT_LINKS}}
    not_found = {"Response-Message": {"Status": "404"}, "HTML-Metadata": {"Links": WAT_LINKS}}
    image = {"Response-Message": {"Status": "200"}, "Headers": {"Content-Type": "image/jpeg"}}
    payloads = [
        _envelope("request", WAT_PAGE),
        _envelope("response", WAT_PAGE, ok),
        _envelope("metadata", WAT_PAGE),
        _envelope("response", "https://news.example.com/gone", not_found),
        _envelope("response", "https://news.example.com/pic.jpg", image),
        b'{"Envelope": {"WARC-Header-Metadata": ',  # cut-off JSON
        b'["not", "an", "envelope"]',
    ]
    with open(path, "wb") as f:
        w = WARCWriter(f, gzip=True)
        w.write_record(w.create_warcinfo_record("test.warc.wat.gz", {"software": "wit-test"}))
        for p in payloads:
            w.write_record(w.create_warc_record(WAT_PAGE, "metadata", payload=io.BytesIO(p),
                                                warc_content_type="application/json"))
    return path


def extract(url: str) -> tuple[list[dict], dict[str, int], list[tuple[str, str]]]:
    tally, errors = DictTally(), []
    pairs = list(iter_pairs(url, tally, lambda source, msg: errors.append((source, msg))))
    check_stages(stages_from_counters(tally.counts, ("read", "extract")))  # in == out + dropped
    return pairs, tally.as_dict(), errors


WARC_COUNTS = {
    "read:in": 9,
    "read:out": 4,
    "read:dropped.not_response": 3,  # warcinfo, request, metadata
    "read:dropped.http_error": 1,
    "read:dropped.not_html": 1,
    "extract:in": 12 + 2 + 1 + 1,
    "extract:out": 4 + 2 + 1 + 1,
    "extract:dropped.no_text": 3,
    "extract:dropped.data_url": 1,
    "extract:dropped.javascript_url": 1,
    "extract:dropped.not_http": 1,
    "extract:dropped.bad_url": 1,
    "extract:dropped.empty_src": 1,
}


@pytest.mark.parametrize("gzipped", [True, False], ids=["gz", "plain"])
def test_warc_exact_pairs_and_counts(tmp_path: Path, gzipped: bool) -> None:
    pairs, counts, errors = extract(str(make_warc(tmp_path / "x.warc.gz", gzipped)))
    assert errors == []
    assert counts == WARC_COUNTS
    page1 = [(p["url"], p["text"], p["text_source"]) for p in pairs if p["page_url"] == PAGE1]
    assert page1 == PAGE1_PAIRS
    others = [(p["page_url"], p["url"], p["text"]) for p in pairs if p["page_url"] != PAGE1]
    assert others == [
        (PAGE2, "https://static.example.com/assets/pic/caf.jpg", "Café crème"),  # header charset + base href
        (PAGE2, "https://static.example.com/root.png", "Élan"),
        (PAGE3, "https://blog.example.com/a.png", "naïve – test"),  # <meta> charset
        (PAGE4, "https://example.org/q.png", "a question mark"),
    ]


def test_wat_exact_pairs_and_counts(tmp_path: Path) -> None:
    pairs, counts, errors = extract(str(make_wat(tmp_path / "x.warc.wat.gz")))
    # the two payloads that are no JSON envelope are named, each by its record
    assert [msg for _, msg in errors] == ["WAT payload is not a JSON envelope"] * 2
    assert len({source for source, _ in errors}) == 2
    assert pairs == [
        {"url": "https://news.example.com/static/photos/sunset.jpg", "text": "Sunset over the bay",
         "page_url": WAT_PAGE, "text_source": "alt"},
        {"url": "https://cdn.example.com/x.png", "text": "A title only", "page_url": WAT_PAGE, "text_source": "title"},
        {"url": "https://img.example.com/Big%2fCat.JPG", "text": "A big cat",
         "page_url": WAT_PAGE, "text_source": "alt"},
    ]
    assert counts == {
        "read:in": 8,
        "read:out": 1,
        "read:dropped.not_response": 3,  # warcinfo, request envelope, metadata envelope
        "read:dropped.http_error": 1,
        "read:dropped.not_html": 1,
        "read:dropped.bad_json": 2,
        "extract:in": 5,
        "extract:out": 3,
        "extract:dropped.no_text": 1,
        "extract:dropped.data_url": 1,
    }


def test_kind_is_detected_by_content_not_name(tmp_path: Path) -> None:
    wat = make_wat(tmp_path / "a.warc.wat.gz")
    renamed = tmp_path / "crawl-part.bin"
    renamed.write_bytes(wat.read_bytes())
    assert extract(str(renamed))[1] == extract(str(wat))[1]


def test_reads_fsspec_urls(tmp_path: Path) -> None:
    """gs:// and s3:// go through fsspec the same way as memory:// here."""
    data = make_warc(tmp_path / "x.warc.gz").read_bytes()
    with fsspec.open("memory://bucket/crawl/x.warc.gz", "wb") as f:
        f.write(data)
    pairs, counts, errors = extract("memory://bucket/crawl/x.warc.gz")
    assert errors == [] and counts == WARC_COUNTS and len(pairs) == 8


def test_wat_page_reasons() -> None:
    assert wat_page(b"{") == "bad_json"
    assert wat_page(b'{"Envelope": 3}') == "bad_json"
    assert wat_page(_envelope("response", "https://x.org/", {"Response-Message": {"Status": "301"}})) == "http_error"
    assert wat_page(_envelope("response", "https://x.org/", {"Response-Message": {"Status": "200"}})) == "not_html"
    assert wat_page(_envelope("response", "https://x.org/",
                              {"Response-Message": {"Status": "200"}, "HTML-Metadata": {}})) == ("https://x.org/", None, [])


def test_decode_html_charsets() -> None:
    assert decode_html("é".encode("latin-1"), "text/html; charset=iso-8859-1") == "é"
    assert decode_html(b'<meta charset="koi8-r">\xc1', "text/html") == '<meta charset="koi8-r">а'
    assert decode_html("é".encode("utf-8"), None) == "é"
    assert decode_html(b"caf\xc3\xa9", "text/html; charset=no-such-codec") == "café"  # unknown: next source


# --- the real Common Crawl sample: 13 <img>, 7 with alt text, all relative -------------------

REAL_PAGE = "https://an.wikipedia.org/wiki/Escopete"
REAL_PAIRS = [
    ("https://an.wikipedia.org/static/images/mobile/copyright/wikipedia-wordmark-an.svg", "Biquipedia"),
    ("https://an.wikipedia.org/static/images/mobile/copyright/wikipedia-tagline-an.svg", "A enciclopedia libre"),
    ("https://upload.wikimedia.org/wikipedia/commons/thumb/0/0a/Escudo_de_Escopete_%28Guadalajara%29.svg/"
     "70px-Escudo_de_Escopete_%28Guadalajara%29.svg.png", "Escudo d'armas"),
    ("https://upload.wikimedia.org/wikipedia/commons/thumb/9/9c/Castilla-La_Mancha-loc.svg/"
     "250px-Castilla-La_Mancha-loc.svg.png", "Escopete ubicada en Castiella-La Mancha"),
    ("https://upload.wikimedia.org/wikipedia/commons/thumb/d/d2/Map_pointer.svg/12px-Map_pointer.svg.png", "Escopete"),
    ("https://an.wikipedia.org/static/images/footer/wikimedia-button.png", "Wikimedia Foundation"),
    ("https://an.wikipedia.org/static/images/footer/poweredby_mediawiki_88x31.png", "Powered by MediaWiki"),
]
REAL_COUNTS = {
    "read:in": 4,  # warcinfo, request, response, metadata
    "read:out": 1,
    "read:dropped.not_response": 3,
    "extract:in": 13,
    "extract:out": 7,
    "extract:dropped.no_text": 6,
}


def test_real_common_crawl_warc(real_warc: Path) -> None:
    pairs, counts, errors = extract(str(real_warc))
    assert errors == []
    assert counts == REAL_COUNTS
    assert [(p["url"], p["text"]) for p in pairs] == REAL_PAIRS
    assert {p["page_url"] for p in pairs} == {REAL_PAGE}
    assert {p["text_source"] for p in pairs} == {"alt"}


def test_real_warc_uncompressed(real_warc: Path, tmp_path: Path) -> None:
    plain = tmp_path / "sample.warc"
    plain.write_bytes(gzip.decompress(real_warc.read_bytes()))
    pairs, counts, errors = extract(str(plain))
    assert errors == [] and counts == REAL_COUNTS and [(p["url"], p["text"]) for p in pairs] == REAL_PAIRS


# --- truncated and unreadable files -----------------------------------------------------------

RESPONSE_OFFSET = 1023  # gzip member offsets in the sample: 0, 516, 1023 (response), 18374 (metadata)


def test_truncated_response_member(real_warc: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(real_warc.read_bytes()[:9000])  # inside the response's gzip member
    pairs, counts, errors = extract(str(cut))
    assert pairs == []
    assert counts == {"read:in": 3, "read:dropped.not_response": 2, "read:dropped.unreadable": 1}
    assert len(errors) == 1
    assert errors[0][0] == f"{cut}@{RESPONSE_OFFSET}"
    assert "truncated" in errors[0][1]


def test_truncated_last_member_keeps_earlier_pairs(real_warc: Path, tmp_path: Path) -> None:
    data = real_warc.read_bytes()
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(data[: len(data) - 20])  # the metadata member loses its gzip trailer
    pairs, counts, errors = extract(str(cut))
    assert [(p["url"], p["text"]) for p in pairs] == REAL_PAIRS
    assert counts == {**REAL_COUNTS, "read:dropped.not_response": 2, "read:dropped.unreadable": 1}
    assert [e[0] for e in errors] == [f"{cut}@18374"]


def test_every_cut_point_is_reported_or_a_record_boundary(real_warc: Path, tmp_path: Path) -> None:
    """Cutting the file anywhere never crashes, never loses count, and is always reported
    unless the cut falls exactly between gzip members."""
    data = real_warc.read_bytes()
    boundaries = {516, 1023, 18374, len(data)}
    cut = tmp_path / "cut.warc.gz"
    for n in range(1, len(data), 211):
        cut.write_bytes(data[:n])
        pairs, counts, errors = extract(str(cut))  # checks in == out + dropped
        assert (len(errors) == 1) == (n not in boundaries), n
        assert counts.get("read:dropped.unreadable", 0) == len(errors)


def test_garbage_and_missing_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.warc.gz"
    junk.write_bytes(b"this is not a WARC file\n" * 10)
    pairs, counts, errors = extract(str(junk))
    assert pairs == [] and counts == {"read:in": 1, "read:dropped.unreadable": 1}
    assert len(errors) == 1 and errors[0][0] == f"{junk}@0"

    missing = str(tmp_path / "nope.warc.gz")
    pairs, counts, errors = extract(missing)
    assert pairs == [] and counts == {"read:in": 1, "read:dropped.unreadable": 1}
    assert errors[0][0] == missing and "FileNotFoundError" in errors[0][1]

    empty = tmp_path / "empty.warc.gz"
    empty.write_bytes(b"")
    pairs, counts, errors = extract(str(empty))  # a failed download, most likely: said, not silent
    assert pairs == [] and counts == {"read:in": 1, "read:dropped.unreadable": 1}
    assert errors == [(str(empty), "empty file: no WARC record (a failed download?)")]


# --- the generated crawl (tests/conftest.py `crawl`): counts must match its truth.json ---------


@pytest.mark.parametrize("kind", ["warc", "wat"])
def test_generated_crawl_matches_truth(crawl, kind: str) -> None:
    from collections import Counter

    from wit_pipeline.text.textfilter import clean_text

    truth, c = crawl.truth, crawl.truth["counts"]
    tally, errors, pairs = DictTally(), [], []
    for rel in truth[f"{kind}_files"]:
        pairs += iter_pairs(str(crawl.root / rel), tally, lambda source, msg: errors.append((source, msg)))
    check_stages(stages_from_counters(tally.counts, ("read", "extract")))

    # one truncated file: its last record is reported once, after the pairs before it
    assert len(errors) == 1
    assert errors[0][0].startswith(str(crawl.root / truth["truncated"][kind]) + "@")
    assert truth["truncated"]["page_url"] not in {p["page_url"] for p in pairs}

    links = truth["links"]
    no_text = sum(1 for x in links if not x["alt"] and not x["title"])
    if kind == "warc":
        records = c["warc_records"]
        read_in = sum(records.values()) + 1  # + the truncated response
        not_response = records["warcinfo"] + records["request"] + records["metadata"]
    else:
        described = c["wat_metadata_by_warc_type"]
        read_in = sum(c["wat_records"].values()) + 1  # + the truncated response's envelope
        not_response = c["wat_records"]["warcinfo"] + described["warcinfo"] + described["request"] + described["metadata"]
    dropped_urls = c["by_url_form"]["data"] + c["by_url_form"]["javascript"]
    assert tally.as_dict() == {
        "read:in": read_in,
        "read:out": c["pages"],
        "read:dropped.not_response": not_response,
        "read:dropped.unreadable": 1,
        "extract:in": c["img_links"],
        "extract:out": c["img_links"] - no_text - dropped_urls,
        "extract:dropped.no_text": no_text,
        "extract:dropped.data_url": c["by_url_form"]["data"],
        "extract:dropped.javascript_url": c["by_url_form"]["javascript"],
    }
    expected = Counter(
        (x["url"], clean_text(x["alt"] or x["title"]), "alt" if x["alt"] else "title", x["page"])
        for x in links
        if x["url"] and (x["alt"] or x["title"])
    )
    assert Counter((p["url"], p["text"], p["text_source"], p["page_url"]) for p in pairs) == expected


def test_entities_are_decoded_once_in_warc_and_wat(tmp_path: Path) -> None:
    """The same page as a WARC and as the WAT Common Crawl makes of it gives the same pair and
    sample key. The HTML scan decodes the WARC's attributes once; Common Crawl's WAT extractor
    (ia-web-commons' ExtractingParseObserver) decodes every attribute it records, so an alt of
    `&amp;amp;` in the HTML is `&amp;` in the WAT and must stay so."""
    from wit_pipeline.core.keys import sample_key
    from wit_pipeline.synthetic.warc_writer import CrawlFileWriter, Page

    alt_html = "Tom &amp;amp; Jerry &amp; friends &lt;3 &copy=2"
    alt_decoded = "Tom &amp; Jerry & friends <3 &copy=2"  # what the WAT records
    html_doc = f'<html><body><img src="a.png?x=1&amp;y=2" alt="{alt_html}"></body></html>'
    page = Page(url="https://e.org/p", html=html_doc, title="p",
                links=[{"path": "IMG@/src", "url": "a.png?x=1&y=2", "alt": alt_decoded}])
    writer = CrawlFileWriter("e.warc.gz", seed=1)
    writer.add_page(page, writer.start)
    warc_bytes, wat_bytes = writer.finish()
    (tmp_path / "e.warc.gz").write_bytes(warc_bytes)
    (tmp_path / "e.warc.wat.gz").write_bytes(wat_bytes)
    got = []
    for name in ("e.warc.gz", "e.warc.wat.gz"):
        pairs, _, errors = extract(str(tmp_path / name))
        assert errors == [], name
        got.append([(p["url"], p["text"], sample_key(p["url"], p["text"])) for p in pairs])
    assert got[0] == got[1]
    assert [(u, t) for u, t, _ in got[0]] == [("https://e.org/a.png?x=1&y=2", alt_decoded)]


def test_malformed_wat_fields_are_absent_not_fatal(tmp_path: Path) -> None:
    """A record whose fields have the wrong JSON types drops those links and the file reads on."""
    links = [
        {"path": "IMG@/src", "url": "a.png", "alt": 5},  # alt not text: no text
        {"path": "IMG@/src", "url": ["x.png"], "alt": "a list for a url"},  # url not text: no src
        {"path": "IMG@/src", "url": "b.png", "alt": "fine", "title": {"x": 1}},
    ]
    path = tmp_path / "m.wat.gz"
    with open(path, "wb") as f:
        w = WARCWriter(f, gzip=True)
        for url in ("https://m.org/1", "https://m.org/2"):
            payload = _envelope("response", url, {"Response-Message": {"Status": "200"},
                                                  "HTML-Metadata": {"Links": links}})
            w.write_record(w.create_warc_record(url, "metadata", payload=io.BytesIO(payload),
                                                warc_content_type="application/json"))
    pairs, counts, errors = extract(str(path))
    assert errors == []
    assert [(p["url"], p["text"]) for p in pairs] == [("https://m.org/b.png", "fine")] * 2
    assert counts["extract:in"] == 6 and counts["extract:dropped.no_text"] == 2
    assert counts["extract:dropped.empty_src"] == 2


def test_a_lone_surrogate_in_a_wat_envelope_is_bad_json() -> None:
    """json.loads accepts "\\ud800" and would hand a string no coder can encode to later stages;
    orjson refuses it, so the record is a counted `bad_json`."""
    ok = _envelope("response", WAT_PAGE)
    assert wat_page(ok) != "bad_json"
    assert wat_page(ok.replace(WAT_PAGE.encode(), b"https://x.org/\\ud800", 1)) == "bad_json"
