"""Bytes of a page in, the text and image URLs a browser shows out."""

from __future__ import annotations

import random
import signal

import pytest
from selectolax.lexbor import LexborHTMLParser

from wit_pipeline.core.stats import DictTally
from wit_pipeline.web.charset import decode_html, lookup
from wit_pipeline.web.htmlscan import largest_candidate, scan_images, unescape_attribute
from wit_pipeline.web.page import html_images, pairs_from_images

PAGE = "http://shop.example/cat/page.html"


@pytest.mark.parametrize(
    ("body", "content_type", "text"),
    [
        # GBK labelled gb2312 (common): browsers decode every GBK label with GB18030's decoder.
        ("請使用".encode("gbk"), "text/html; charset=gb2312", "請使用"),
        (b"\xa1\xa4", "text/html; charset=gb2312", "\u00b7"),  # a middle dot, not U+30FB
        ("中文".encode("gbk"), "text/html; charset=x-gbk", "中文"),  # a label Python does not know
        ("中文".encode("gbk"), "text/html; charset=chinese", "中文"),
        # Latin-1 labels are windows-1252.
        (b"Don\x92t", "text/html; charset=iso-8859-1", "Don\u2019t"),
        (b"Don\x92t", "text/html; charset=latin1", "Don\u2019t"),
        (b"\x93ok\x94", "text/html; charset=us-ascii", "\u201cok\u201d"),
        # A byte-order mark wins over the header and <meta>.
        (b"\xef\xbb\xbfCaf\xc3\xa9", "text/html; charset=iso-8859-1", "Café"),
        ("\ufeffhé".encode("utf-16-le"), "text/html; charset=utf-8", "hé"),
        ("\ufeffhé".encode("utf-16-be"), None, "hé"),
        # The header wins over <meta>; <meta> in either form when the header has no charset.
        (b'<meta charset="koi8-r">\xc1', "text/html; charset=windows-1251", '<meta charset="koi8-r">\u0411'),
        (b'<meta charset="koi8-r">\xc1', "text/html", '<meta charset="koi8-r">\u0430'),
        (b'<meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS">\x93\xfa',
         None, '<meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS">\u65e5'),
        (b"<meta charset=euc-kr>\xb0\xa1", None, "<meta charset=euc-kr>\uac00"),
        (b"<meta charset='big5'>\xa4\xa4", None, "<meta charset='big5'>\u4e2d"),
        # <meta> naming UTF-16 means UTF-8 (the bytes are ASCII-compatible, or it could not be read).
        (b'<meta charset="utf-16">\xc3\xa9', None, '<meta charset="utf-16">\u00e9'),
        # Labels that name no text encoding fall through instead of losing the page.
        (b'<meta charset="base64">caf\xc3\xa9', None, '<meta charset="base64">café'),
        (b'<meta charset="utf-7">+AGE-', None, '<meta charset="utf-7">+AGE-'),
        (b"caf\xc3\xa9", "text/html; charset=base64", "café"),
        (b"caf\xc3\xa9", "text/html; charset=iso-2022-kr", "café"),  # WHATWG "replacement"
        # Undeclared: valid UTF-8 is UTF-8; anything else is detected, not U+FFFD-ed.
        ("Café crème".encode("utf-8"), None, "Café crème"),
        ("Café crème, à la carte, déjà vu: voilà.".encode("cp1252"), None, "Café crème, à la carte, déjà vu: voilà."),
        ("Привет мир, это тест кодировки страницы".encode("cp1251"), "text/html",
         "Привет мир, это тест кодировки страницы"),
    ],
)
def test_decodes_as_browsers_do(body: bytes, content_type: str | None, text: str) -> None:
    assert decode_html(body, content_type) == text


def test_label_families() -> None:
    assert {lookup(x) for x in ("gb2312", "x-gbk", "GBK", "chinese", "csgb2312", "iso-ir-58")} == {"gbk"}
    assert {lookup(x) for x in ("iso-8859-1", "latin1", "us-ascii", "ascii", " ISO_8859-1 ", "cp1252")} == {"windows-1252"}
    assert {lookup(x) for x in ("utf8", "UTF-8", "unicode-1-1-utf-8")} == {"utf-8"}
    assert {lookup(x) for x in ("sjis", "ms_kanji", "windows-31j", "x-sjis")} == {"shift_jis"}
    assert {lookup(x) for x in ("base64", "utf-7", "hz-gb-2312", "", None, "no-such")} == {None}
    assert lookup("utf-16", from_meta=True) == "utf-8" and lookup("utf-16") == "utf-16le"
    assert lookup("x-user-defined", from_meta=True) == "windows-1252"


def _img_urls(html: str) -> list[tuple]:
    return scan_images(html)[1]


def test_scan_finds_what_a_browser_parses() -> None:
    html = """<!DOCTYPE html><html><head><base href="/static/"><base href="/ignored/">
    <title><img src=t.jpg alt=in-title></title>
    <script>var s = "<img src=s.jpg alt=in-script>"; </script>
    <style>a{} /* <img src=c.jpg> */</style>
    </head><body>
    <!-- <img src=comment.jpg alt=hidden> -->
    <IMG SRC="A.JPG" ALT='Upper case tag'>
    <img alt="a > b" src=b.jpg title="x">
    <img src=c.jpg alt=unquoted/>
    <img src="d.jpg" alt="Tom &amp; Jerry &copy; 2024" data-x="&copy=1">
    <image src=e.jpg alt="image is img">
    <noscript><img src=f.jpg alt="no script"></noscript>
    <textarea><img src=g.jpg></textarea>
    <img src="h.jpg" alt="first" alt="second">
    <!--> <img src=i.jpg alt="after empty comment">
    """
    base, images = scan_images(html)
    assert base == "/static/"
    assert images == [
        ("A.JPG", "Upper case tag", None, "src"),
        ("b.jpg", "a > b", "x", "src"),
        ("c.jpg", "unquoted/", None, "src"),
        ("d.jpg", "Tom & Jerry \u00a9 2024", None, "src"),
        ("e.jpg", "image is img", None, "src"),
        ("f.jpg", "no script", None, "src"),
        ("h.jpg", "first", None, "src"),
        ("i.jpg", "after empty comment", None, "src"),
    ]


@pytest.mark.parametrize(
    ("html", "images"),
    [
        ("<img src=a.jpg alt=x", []),  # the document ends inside the tag: no element
        ('<img src=a.jpg alt="x>', []),  # an unclosed quote runs to the end
        ("<!-- <img src=a.jpg alt=x>", []),  # an unclosed comment runs to the end
        ("<script><img src=a.jpg alt=x>", []),
        ("<plaintext><img src=a.jpg alt=x>", []),
        ('<svg><image href="i.png"/></svg><image src=a.jpg alt=x>', [("a.jpg", "x", None, "src")]),
        ('<svg/><image src=a.jpg alt=x>', [("a.jpg", "x", None, "src")]),
        ("<img/src=a.jpg/alt=x>", [("a.jpg/alt=x", None, None, "src")]),  # "/" is part of a bare value
        ('<img/src="a.jpg"/alt=x>', [("a.jpg", "x", None, "src")]),
    ],
)
def test_scan_edges(html: str, images: list) -> None:
    assert _img_urls(html) == images


def test_attribute_entities_follow_the_attribute_rule() -> None:
    assert unescape_attribute("/a?x=1&copy=2&amp;y=3") == "/a?x=1&copy=2&y=3"  # &copy= stays in a URL
    assert unescape_attribute("&copy 2024 &lt;b&gt; &#x41;&#66;") == "\u00a9 2024 <b> AB"
    # A legacy name (no ";") before "=" or a letter or digit stays, whatever follows (lexbor agrees).
    assert unescape_attribute("&notit; &notin;") == "&notit; \u2209"
    assert unescape_attribute("/wiki?title=X&section=4;") == "/wiki?title=X&section=4;"
    assert unescape_attribute("&notes; &ampx &not;x &AMP;x &not\u00e4") == "&notes; &ampx \u00acx &x \u00ac\u00e4"


@pytest.mark.parametrize("value", ["&notit; &notin;", "&section=4;", "&notes;", "&amp=1", "&copy 2024", "&ampx",
                                   "&not;x", "&AMP;x", "&not\u00e4", "a&lt;b&gt", "&#x41&#66;", "&Aacute;s"])
def test_attribute_entities_as_lexbor_decodes_them(value: str) -> None:
    dom = LexborHTMLParser(f'<img alt="{value}">').css_first("img").attributes["alt"]
    assert unescape_attribute(value) == dom


@pytest.mark.parametrize(
    ("html", "url", "origin"),
    [
        ('<img src="data:image/gif;base64,R0lGOD" data-src="/real.jpg" alt=x>', "/real.jpg", "data-src"),
        ('<img src="/spacer.gif" data-lazy-src="/real.jpg" alt=x>', "/real.jpg", "data-lazy-src"),
        ('<img data-original="/real.jpg" alt=x>', "/real.jpg", "data-original"),
        ('<img src="/small.jpg" srcset="/m.jpg 600w, /l.jpg 1200w" alt=x>', "/small.jpg", "src"),
        ('<img src="data:," srcset="/a.jpg 1x, /b.jpg 2x" alt=x>', "/b.jpg", "srcset"),
        ('<img data-srcset="/a.jpg 320w, /c.jpg 1024w, /b.jpg 640w" alt=x>', "/c.jpg", "data-srcset"),
        ('<picture><source srcset="/p.webp 1x, /p2.webp 2x" type="image/webp"><source srcset="/q.jpg">'
         '<img alt=x></picture>', "/p2.webp", "picture"),
        ('<picture><source srcset="/p.webp"><img src="/fallback.jpg" alt=x></picture>', "/fallback.jpg", "src"),
        ('<picture><source srcset="/p.webp"></picture><img alt=x>', None, "src"),  # picture closed
        # Lazy loading: the script puts the lazy value in place of the 1x1 placeholder a browser shows first.
        ('<picture><source data-srcset="/p.webp 1x, /p2.webp 2x" type="image/webp">'
         '<img src="/img/1x1.gif" class="lazyload" alt=x></picture>', "/p2.webp", "picture"),
        ('<picture><source type="image/webp"><source data-srcset="/q.jpg 800w">'
         '<img src="data:image/gif;base64,R0lGOD" alt=x></picture>', "/q.jpg", "picture"),
        ('<picture><source data-srcset="/p.webp"><img src="/1x1.gif" data-src="/real.jpg" alt=x></picture>',
         "/real.jpg", "data-src"),
        ('<img src="/spacer.gif" data-srcset="/a.jpg 1x, /b.jpg 2x" alt=x>', "/b.jpg", "data-srcset"),
        ('<img src="javascript:void(0)" alt=x>', "javascript:void(0)", "src"),  # its drop is counted
    ],
)
def test_lazy_images_take_the_real_url(html: str, url: str | None, origin: str) -> None:
    assert _img_urls(html) == [(url, "x", None, origin)]


@pytest.mark.parametrize(
    ("srcset", "url"),
    [
        ("a.jpg 1x, b.jpg 3x, c.jpg 2x", "b.jpg"),
        ("a.jpg, b.jpg 2x", "b.jpg"),  # no descriptor is 1x
        ("https://cdn.example/w_100,h_100/a.jpg 100w, https://cdn.example/w_900,h_900/a.jpg 900w",
         "https://cdn.example/w_900,h_900/a.jpg"),  # commas inside a URL
        ("a.jpg,b.jpg", "a.jpg,b.jpg"),  # a comma inside a URL does not split it
        ("a.jpg, b.jpg", "a.jpg"),  # two 1x candidates: the first is kept
        ("  ", None),
    ],
)
def test_largest_srcset_candidate(srcset: str, url: str | None) -> None:
    assert largest_candidate(srcset) == url


def test_deep_nesting_costs_time_linear_in_size() -> None:
    """500k nested <div>: no tree is built, the image below them is found.
    The alarm is a watchdog (a quadratic parser ran 23 minutes on this), not a timing assertion."""
    html = ("<div>" * 500_000 + '<img src="/deep.jpg" alt="deep">' + "</div>" * 500_000).encode()
    old = signal.signal(signal.SIGALRM, lambda *_: pytest.fail("scan did not finish in 60 s"))
    signal.alarm(60)
    try:
        _, images = html_images(html, "text/html")
        hostile = [b"<img alt='" * 200_000, b"<img " + b'a="' * 200_000, b'<a title="x' + b"<b " * 200_000,
                   b"<" * 500_000, b"<a " * 200_000, b"<a b=" * 200_000, b"<!--" * 200_000, b"<script>" * 200_000]
        found = [html_images(doc, "text/html")[1] for doc in hostile]
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert images == [("/deep.jpg", "deep", None, "src")]
    assert found == [[]] * len(hostile)


def test_pairs_count_every_image_and_where_urls_came_from() -> None:
    html = (
        '<base href="http://cdn.example/img/">'
        '<img src="a.jpg" alt=" A&nbsp;red\ncar ">'
        '<img src="data:image/gif;base64,R0l" data-src="b.jpg" alt="A blue car">'
        '<img srcset="c1.jpg 1x, c2.jpg 2x" title="A green car">'
        '<img src="d.jpg">'
        '<img src="data:image/gif;base64,R0l" alt="inline only">'
        '<img src="http://' + "x" * 70 + '.example/e.jpg" alt="long label">'
        '<img src="/f.jpg?' + "q" * 3000 + '" alt="long url">'
    ).encode()
    base, images = html_images(html, "text/html; charset=utf-8")
    tally = DictTally()
    pairs = pairs_from_images(PAGE, base, images, tally, decode_entities=False)
    assert [(p["url"], p["text"], p["text_source"]) for p in pairs] == [
        ("http://cdn.example/img/a.jpg", "A red car", "alt"),
        ("http://cdn.example/img/b.jpg", "A blue car", "alt"),
        ("http://cdn.example/img/c2.jpg", "A green car", "title"),
    ]
    assert tally.as_dict() == {
        "extract:in": 7, "extract:out": 3, "extract:dropped.no_text": 1, "extract:dropped.data_url": 1,
        "extract:dropped.bad_host": 1, "extract:dropped.url_too_long": 1,
        "extract:url_from.data-src": 1, "extract:url_from.srcset": 1,
    }


def test_pairs_accept_three_field_images() -> None:
    tally = DictTally()
    pairs = pairs_from_images(PAGE, None, [("x.jpg", "Tom &amp; Jerry", None)], tally)
    assert [(p["url"], p["text"]) for p in pairs] == [("http://shop.example/cat/x.jpg", "Tom & Jerry")]


def test_scan_agrees_with_an_html5_parser_on_a_real_page(real_warc) -> None:
    """The Common Crawl sample page: the same <img> elements, src and alt, as lexbor's DOM."""
    from warcio.archiveiterator import ArchiveIterator

    with open(real_warc, "rb") as fh:
        record = next(r for r in ArchiveIterator(fh) if r.rec_type == "response")
        body, ctype = record.content_stream().read(), record.http_headers.get_header("Content-Type")
    dom = [(n.attributes.get("src"), n.attributes.get("alt")) for n in LexborHTMLParser(body.decode()).css("img")]
    _, images = html_images(body, ctype)
    assert [(src, alt) for src, alt, _, _ in images] == dom and len(dom) == 13


_PIECES = (
    "<div>", "</div>", "<p class='a > b'>", "</p>", "text &amp; more", "<br/>", '<a href="x?a=1&copy=2">', "</a>",
    "<!-- <img src=c.jpg alt=c> -->", "<script>var a='<img src=s.jpg>';</script>", "<style>p{}</style>",
    "<textarea><img src=t.jpg></textarea>", "<title>t <img src=t2.jpg></title>", "<table><tr><td>", "</td></tr></table>",
    '<span title="<img src=q.jpg>" data-x=\'<script>\'>', "</span>", "<!DOCTYPE html>", "<noscript><img src=n.jpg alt=n></noscript>",
    "<picture><source srcset=p.webp>", "</picture>", "<select><option>", "</select>", "<svg><circle/></svg>",
    "<iframe src=f><img src=if.jpg></iframe>", "<?php x ?>", "a < b", "<b>", "</b>",
    "<?php echo '<img src=p.jpg alt=p>'; ?>", "<!x <img src=b.jpg alt=b>>", "</ <img src=e.jpg>>", "</>",
    "<![CDATA[ <img src=cd.jpg> ]]>", "<svg><![CDATA[ a > <img src=sc.jpg> ]]></svg>", "<svg><image href=s.png/></svg>",
    '</div class="<img src=et.jpg>">', "<!DOCTYPE html PUBLIC '<img src=dt.jpg>'>",
)
_IMGS = ('<img src="{u}" alt="{a}">', "<img src='{u}' alt='{a}'>", "<img src={u} alt={a}>", '<IMG SRC="{u}" ALT="{a}" />',
         '<img\nsrc="{u}"\talt="{a}" width=10>', '<img alt="{a}" src="{u}" src="dup.jpg">', '<img src="{u}">')


def test_scan_agrees_with_an_html5_parser_on_random_documents() -> None:
    rng = random.Random(3)
    for _ in range(1500):
        parts = [rng.choice(_IMGS).format(u=f"/i{k}.jpg?x=1&amp;y=2", a=f"alt {k} &lt;b&gt;") if rng.random() < 0.3
                 else rng.choice(_PIECES) for k in range(rng.randrange(1, 25))]
        doc = "".join(parts)
        dom = [(n.attributes.get("src"), n.attributes.get("alt")) for n in LexborHTMLParser(doc).css("img")]
        assert [(src, alt) for src, alt, _, _ in scan_images(doc)[1]] == dom, doc


def test_base_is_the_first_html_base_not_an_svg_image() -> None:
    """An inline SVG `<image href>` (or an SVG `<base>`) is no document base."""
    doc = ('<svg width="24"><image href="/icons/sprite.svg#logo" width="24"/></svg>'
           '<svg><base href="https://svg.example/"></base></svg>'
           '<base target="_top"><base href="https://static.example/a/"><base href="/ignored/">'
           '<img src="x.jpg" alt="x">')
    assert scan_images(doc)[0] == "https://static.example/a/"
    assert scan_images('<svg><image href="/s.png"/></svg><img src="x.jpg" alt="x">')[0] is None


@pytest.mark.parametrize("doc", [
    "<!x <img src=a.jpg alt=a>>", "<?php echo '<img src=\"a.jpg\" alt=\"a\">'; ?>", "</ <img src=a.jpg alt=a>>",
    "<![CDATA[<img src=a.jpg alt=a>]]>", "<!-x <img src=a.jpg alt=a>>",
])
def test_img_inside_a_bogus_comment_is_none(doc: str) -> None:
    assert LexborHTMLParser(doc).css("img") == []
    assert scan_images(doc + "<img src=b.jpg alt=b>")[1] == [("b.jpg", "b", None, "src")]


def test_img_ends_svg_as_in_a_browser() -> None:
    doc = '<svg><image href="i.png"/><img src="a.jpg" alt="a"><image src="b.jpg" alt="b"></svg>'
    dom = [(n.attributes.get("src"), n.attributes.get("alt")) for n in LexborHTMLParser(doc).css("img")]
    assert [(src, alt) for src, alt, _, _ in scan_images(doc)[1]] == dom == [("a.jpg", "a"), ("b.jpg", "b")]
