"""URL resolution and normalisation of <img src> values."""

from __future__ import annotations

import pytest

from wit_pipeline.web.urls import document_base, normalize_url, resolve_image_url

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
        ("https://example.com/a%2fb%7e%c3%a4.png", "https://example.com/a%2Fb~%C3%A4.png"),  # escapes
        ("https://example.com/100%.png?x=50%", "https://example.com/100%25.png?x=50%25"),  # stray %
        ("https://example.com/a b.png?q=a b&z=1#frag", "https://example.com/a%20b.png?q=a%20b&z=1"),
        ("https://example.com", "https://example.com/"),  # empty path
        ("  \n https://exa\tmple.com/a.png \r\n", "https://example.com/a.png"),  # whitespace
        ("https://example.com./a.png", "https://example.com/a.png"),  # trailing dot
        ("http://[2001:DB8::1]:8080/a.png", "http://[2001:db8::1]:8080/a.png"),  # IPv6 literal
        ("https://user:pw@example.com/a.png", "https://user:pw@example.com/a.png"),
    ],
)
def test_resolves_and_normalises(src: str, expected: str) -> None:
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
        ("ftp://example.com/a.png", "not_http"),
        ("mailto:someone@example.com", "not_http"),
        ("file:///etc/passwd", "not_http"),
        ("http://exa mple.com/a.png", "bad_url"),  # space in host
        ("http://example.com:99999/a.png", "bad_url"),  # port out of range
        ("http://example.com:8o/a.png", "bad_url"),  # port not a number
        ("http:///a.png", "bad_url"),  # no host
        ("http://[::1/a.png", "bad_url"),  # broken IPv6 literal
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


def test_protocol_relative_follows_page_scheme() -> None:
    assert resolve_image_url("http://example.org/", "//cdn.example.org/a.png") == ("http://cdn.example.org/a.png", None)


def test_normalisation_is_idempotent() -> None:
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
    ],
)
def test_what_browsers_fetch(src, expected):
    assert resolve_image_url("http://ex.com/a/b.html", src) == (expected, None)


@pytest.mark.parametrize("url", ["http://ex..com/a.png", "http://ex.com:0/a.png", "http://.ex.com/a.png"])
def test_hosts_and_ports_no_fetch_could_use(url):
    assert normalize_url(url) == (None, "bad_url")
