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
