"""Opt-outs a response or page states about itself: X-Robots-Tag, robots and product-token
metas, TDMRep's tdm-reservation header and meta."""

import pytest

from wit_pipeline.web import optout


@pytest.mark.parametrize("values,opted_out", [
    (["noai"], True),
    (["NoImageAI"], True),
    (["noindex, noai"], True),
    (["wit: noai"], True),
    (["WIT: noimageai, nofollow"], True),
    (["otherbot: noai"], False),
    (["otherbot: noai", "wit: noimageai"], True),
    (["otherbot: noindex, wit: noai"], True),  # a token applies until the next one
    (["wit: noindex, otherbot: noai"], False),
    (["max-snippet: 20, noai"], True),  # a valued directive is not a product token
    (["unavailable_after: 2020-01-01"], False),
    (["noindex"], False),  # pages: only the AI opt-outs
    ([], False),
])
def test_x_robots_tag_for_pages(values, opted_out):
    assert optout.x_robots_opt_out(values, "wit", optout.PAGE_DIRECTIVES) is opted_out


def test_images_also_honour_the_index_opt_outs():
    assert optout.x_robots_opt_out(["noimageindex"], "wit", optout.IMAGE_DIRECTIVES)
    assert optout.x_robots_opt_out(["wit: None"], "wit", optout.IMAGE_DIRECTIVES)  # = noindex, nofollow
    assert not optout.x_robots_opt_out(["nofollow"], "wit", optout.IMAGE_DIRECTIVES)


@pytest.mark.parametrize("html,reason", [
    (b'<meta name="robots" content="noai">', optout.META_ROBOTS),
    (b"<META NAME=ROBOTS CONTENT='noindex,NOIMAGEAI'>", optout.META_ROBOTS),
    (b'<meta name="wit" content="noai">', optout.META_ROBOTS),
    (b'<meta content="noai" name="robots"/>', optout.META_ROBOTS),
    (b'<meta name="otherbot" content="noai">', None),
    (b'<meta name="robots" content="noindex">', None),
    (b'<meta name="tdm-reservation" content="1">', optout.TDM_RESERVATION),
    (b'<meta name="tdm-reservation" content="0">', None),
    (b'<meta property="robots" content="noai">', None),
    (b'<p>noai robots</p><meta charset="utf-8">', None),
])
def test_page_metas(html, reason):
    page = b"<html><head>" + html + b"</head><body><img src=a.jpg alt=x></body></html>"
    assert optout.page_opt_out({}, optout.html_metas(page), "wit") == reason


def test_product_token_meta_follows_the_agent():
    metas = optout.html_metas(b'<meta name="acme" content="noai">')
    assert optout.meta_opt_out(metas, "acme") == optout.META_ROBOTS
    assert optout.meta_opt_out(metas, "wit") is None


def test_page_headers_in_any_case_and_as_lists():
    assert optout.page_opt_out({"X-Robots-Tag": "noai"}, []) == optout.X_ROBOTS_TAG
    assert optout.page_opt_out({"x-robots-tag": ["otherbot: noai", "wit: noimageai"]}, []) == optout.X_ROBOTS_TAG
    assert optout.page_opt_out({"TDM-Reservation": "1"}, []) == optout.TDM_RESERVATION
    assert optout.page_opt_out({"X-Robots-Tag": "noindex", "Content-Type": "text/html"}, []) is None


def test_wat_metas():
    head = {"Metas": [{"name": "robots", "content": "noai"}, {"property": "og:x", "content": "y"}, "junk",
                      {"name": 3, "content": "noai"}]}
    assert optout.wat_metas(head) == [("robots", "noai")]
    assert optout.wat_metas(None) == [] and optout.wat_metas({"Metas": "x"}) == []


@pytest.mark.parametrize("html", [
    b'<meta name="robots" data-note="a>b" content="noai">',  # a ">" quoted in another attribute
    b"<meta name=robots content=noai/>",  # unquoted, self-closed
    b'<meta name="robots" content="noai"' + b" " * 10000 + b">",  # a long tag
])
def test_page_metas_in_awkward_tags_still_opt_out(html):
    assert optout.warc_page_opt_out(b"HTTP/1.1 200 OK\r\n", html) == optout.META_ROBOTS


def test_a_folded_x_robots_tag_header_still_opts_out():
    head = b"HTTP/1.1 200 OK\r\nX-Robots-Tag: noindex,\r\n  noai\r\nServer: x\r\n \tnoimageai\r\n"
    assert optout.http_head_values(head, b"x-robots-tag") == ["noindex, noai"]
    assert optout.warc_page_opt_out(head, b"") == optout.X_ROBOTS_TAG


@pytest.mark.parametrize("codec,content_type", [("utf-16", "text/html"), ("utf-16-le", "text/html; charset=UTF-16LE")])
def test_a_utf16_page_is_read_for_its_metas(codec, content_type):
    """The image scan decodes a UTF-16 page (its BOM or declared charset); its metas are read too."""
    from wit_pipeline.web.page import html_images

    body = '<head><meta name="robots" content="noai"></head><img src="/a.jpg" alt="a red fox">'.encode(codec)
    head = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n".encode()
    assert html_images(body, content_type)[1]  # the page has images to lose
    assert optout.warc_page_opt_out(head, body) == optout.META_ROBOTS

