"""<img src> values to the URL a browser fetches (WHATWG URL Standard, through ada-url)."""

from __future__ import annotations

import random

import pytest

from wit_pipeline.web import urls
from wit_pipeline.web.urls import PageUrls, document_base


def resolve_image_url(page_url: str, src: str | None, base_href: str | None = None) -> tuple[str | None, str | None]:
    return PageUrls(page_url, base_href).resolve(src)


def normalize_url(url: str) -> tuple[str | None, str | None]:
    return PageUrls("", None).resolve(url)

PAGE = "https://an.wikipedia.org/wiki/Escopete"


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("/static/images/a.png", "https://an.wikipedia.org/static/images/a.png"),  # root-relative
        ("a.png", "https://an.wikipedia.org/wiki/a.png"),  # relative
        ("../img/./b.jpg", "https://an.wikipedia.org/img/b.jpg"),  # dot segments
        ("//upload.wikimedia.org/x.png", "https://upload.wikimedia.org/x.png"),  # protocol-relative
        ("HTTP://EXAMPLE.COM/Path/A.PNG", "http://example.com/Path/A.PNG"),  # case: scheme+host only
        ("http://example.com:80/a.png", "http://example.com/a.png"),  # default port
        ("https://example.com:443/a.png", "https://example.com/a.png"),
        ("https://example.com:8443/a.png", "https://example.com:8443/a.png"),  # other port kept
        ("http://example.com:443/a.png", "http://example.com:443/a.png"),  # 443 is not http's default
        ("https://bücher.example/ä.png", "https://xn--bcher-kva.example/%C3%A4.png"),  # IDNA + UTF-8 path
        ("https://example.com/a%2fb%7e%c3%a4.png", "https://example.com/a%2fb%7e%c3%a4.png"),  # escapes kept
        ("https://example.com/100%.png?x=50%", "https://example.com/100%.png?x=50%"),  # a lone % stays
        ("https://example.com/a b.png?q=a b&z=1#frag", "https://example.com/a%20b.png?q=a%20b&z=1"),
        ("https://example.com", "https://example.com/"),  # empty path
        ("  \n https://exa\tmple.com/a.png \r\n", "https://example.com/a.png"),  # whitespace
        ("http://[2001:DB8::1]:8080/a.png", "http://[2001:db8::1]:8080/a.png"),  # IPv6 literal
        ("https://user:pw@example.com/a.png", "https://user:pw@example.com/a.png"),
        # Reserved characters stay as the page wrote them (ord=[timestamp]).
        ("/a.php?ord=[timestamp]&x=a|b^c", "https://an.wikipedia.org/a.php?ord=[timestamp]&x=a|b^c"),
        ("/p[1]|x.jpg", "https://an.wikipedia.org/p[1]|x.jpg"),
        ("/caret^.jpg", "https://an.wikipedia.org/caret%5E.jpg"),  # ^ is in the path set
        ("/q?it's", "https://an.wikipedia.org/q?it%27s"),  # ' in a special URL's query
        ("/a\"<>`{}.jpg", "https://an.wikipedia.org/a%22%3C%3E%60%7B%7D.jpg"),
        ("http://0x7f.1/x.jpg", "http://127.0.0.1/x.jpg"),  # IPv4 as browsers read it
        ("https://example.com./a.png", "https://example.com./a.png"),  # a trailing dot is kept
    ],
)
def test_resolves_as_browsers_do(src: str, expected: str) -> None:
    assert resolve_image_url(PAGE, src) == (expected, None)


@pytest.mark.parametrize(
    ("src", "reason"),
    [
        ("", "empty_src"),
        ("   ", "empty_src"),
        (None, "empty_src"),
        ("data:image/png;base64,iVBORw0KGgo=", "data_url"),
        (" DATA:image/gif;base64,R0lGOD==", "data_url"),
        ("javascript:void(0)", "javascript_url"),
        ("JavaScript:alert(1)", "javascript_url"),
        ("java\tscript:alert(1)", "javascript_url"),  # tabs are removed before the scheme is read
        ("ftp://example.com/a.png", "not_http"),
        ("mailto:someone@example.com", "not_http"),
        ("file:///etc/passwd", "not_http"),
        ("http://exa mple.com/a.png", "bad_url"),  # space in host
        ("http://example.com:99999/a.png", "bad_url"),  # port out of range
        ("http://example.com:8o/a.png", "bad_url"),  # port not a number
        ("http://e.com:\u00b2/x.jpg", "bad_url"),  # a superscript digit is no port
        ("http://[::1/a.png", "bad_url"),  # broken IPv6 literal
        ("http://exa%20mple.com/a.png", "bad_url"),  # an escaped space is still a space
        ("http://" + "a" * 300 + ".com/x.jpg", "bad_host"),  # a 300-character label
        ("http://" + "abcdefgh." * 30 + "com/x.jpg", "bad_host"),  # a host over 253
        ("http://ex..com/a.png", "bad_host"),  # an empty label
        ("/x.jpg?" + "q" * 3000, "url_too_long"),
        ("https://example.com/" + "p/" * 2000, "url_too_long"),
    ],
)
def test_rejects_with_reason(src: str | None, reason: str) -> None:
    assert resolve_image_url(PAGE, src) == (None, reason)


def test_base_href_wins_over_page_url() -> None:
    page = "https://www.example.org/articles/2024/cats.html"
    assert resolve_image_url(page, "img/cat.jpg", "https://cdn.example.net/assets/") == (
        "https://cdn.example.net/assets/img/cat.jpg",
        None,
    )
    # a relative <base href> resolves against the page first
    assert document_base(page, "/static/") == "https://www.example.org/static/"
    assert resolve_image_url(page, "cat.jpg", "/static/") == ("https://www.example.org/static/cat.jpg", None)
    # an absolute src ignores the base; an empty base is no base
    assert resolve_image_url(page, "http://a.example/x.png", "/static/") == ("http://a.example/x.png", None)
    assert resolve_image_url(page, "cat.jpg", "  ") == ("https://www.example.org/articles/2024/cat.jpg", None)
    # a page URL that does not parse leaves relative sources nothing to resolve against
    assert resolve_image_url("not a url", "cat.jpg") == (None, "bad_url")
    assert resolve_image_url("not a url", "http://a.example/x.png") == ("http://a.example/x.png", None)


def test_protocol_relative_follows_page_scheme() -> None:
    assert resolve_image_url("http://example.org/", "//cdn.example.org/a.png") == ("http://cdn.example.org/a.png", None)


def test_serialisation_is_idempotent() -> None:
    for src in ("https://bücher.example/ä b.png?q=%7e#x", "//EXAMPLE.com:443/%c3%a4", "../a/../b.png"):
        url, _ = resolve_image_url(PAGE, src)
        assert url is not None
        assert normalize_url(url) == (url, None)


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("%2e%2e/%2E%2E/a.png", "http://ex.com/a.png"),  # escaped dot segments resolve like plain ones
        ("x/%2e%2e/y/./z.png", "http://ex.com/a/y/z.png"),
        ("/p/%2e", "http://ex.com/p/"),
        ("http:\\\\img.ex.com\\back.png", "http://img.ex.com/back.png"),  # a backslash is a slash
        ("img\\a.png", "http://ex.com/a/img/a.png"),
        ("?v=2", "http://ex.com/a/b.html?v=2"),
    ],
)
def test_what_browsers_fetch(src, expected):
    assert resolve_image_url("http://ex.com/a/b.html", src) == (expected, None)


def test_fast_path_gives_exactly_what_the_parser_gives() -> None:
    """PageUrls' string fast paths against ada-url on every source, random and tricky."""
    rng = random.Random(9)
    pieces = [*"aZ09-._~!$&'()*+,;=:@%[]|^/?#{}`\"<> \\\t", "%2e", "%2E", "..", ".", "../", "./", "xn--",
              "://", "//", "http", "é", ":443", ":80", ":8080", ":99999", ":0", ":00", "A", "1.2.3.4", "0x7f", "256"]
    prefixes = ["", "", "/", "../", "./../", "//h.com/", "//1.2.3.4", "http://a.com/", "https://b.c.org/x/",
                "HTTP://A.com/", "http://10.0.0.", "https://h.com:"]
    bases = ["http://e.com/a/b.html?q=1", "https://u:p@E.com:8080/x/", "http://e.com", "http://1.2.3.4/a//b/c/d",
             "http://e.com/a/b#/c/d?e"]  # a fragment holding "/" and "?" is not part of the path
    fast = 0
    for _ in range(30000):
        src = rng.choice(prefixes) + "".join(rng.choice(pieces) for _ in range(rng.randrange(1, 10)))
        for base in bases:
            page = PageUrls(base)
            want = (None, "empty_src") if src.isspace() else urls._parse(src, page.base)
            assert page.resolve(src) == want, (base, src)
            fast += want[0] is not None and want[0].endswith(src)
    assert fast > 10000  # the fast paths were exercised, not only the parser


def test_over_long_page_host_is_not_fast_pathed() -> None:
    page = "http://" + "a" * 70 + ".com/p.html"
    assert resolve_image_url(page, "x.jpg") == (None, "bad_host")
    assert resolve_image_url(page, "/x.jpg") == (None, "bad_host")
