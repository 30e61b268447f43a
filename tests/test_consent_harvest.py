"""Page-level opt-outs at harvest: WARC pages (headers and HTML read from the record) and their
WAT envelopes (response headers and Head.Metas) with each opt-out contribute no pairs, counted
as `opted_out.<reason>`; plain pages beside them keep all their pairs."""

from datetime import timedelta

import pytest

from wit_pipeline.core.stats import DictTally, stages_from_counters
from wit_pipeline.synthetic.warc_writer import CRAWL_START, CrawlFileWriter, Page
from wit_pipeline.web import extract

IMAGES = 3  # per page


def _page(n, metas=(), headers=()):
    url = f"http://site{n}.example.com/page.html"
    meta_html = "".join(f'<meta name="{m["name"]}" content="{m["content"]}">' for m in metas)
    imgs = "".join(f'<img src="/img/{n}-{i}.jpg" alt="a red bicycle number {i}">' for i in range(IMAGES))
    html = f"<html><head><title>t</title>{meta_html}</head><body>{imgs}</body></html>"
    links = [{"path": "IMG@/src", "url": f"/img/{n}-{i}.jpg", "alt": f"a red bicycle number {i}"} for i in range(IMAGES)]
    return Page(url=url, html=html, title="t", links=links, metas=list(metas), headers=list(headers))


# name -> (metas, headers, expected read-drop reason or None: kept)
PAGES = {
    "plain": ((), (), None),
    "header_noai": ((), [("X-Robots-Tag", "noai")], "opted_out.x_robots_tag"),
    "header_token": ((), [("X-Robots-Tag", "wit: noimageai")], "opted_out.x_robots_tag"),
    "header_other_bot": ((), [("X-Robots-Tag", "otherbot: noai")], None),
    "header_noindex": ((), [("X-Robots-Tag", "noindex")], None),  # a page may stay out of search, not out of wit
    "header_tdm": ((), [("tdm-reservation", "1")], "opted_out.tdm_reservation"),
    "meta_robots": ([{"name": "robots", "content": "noai"}], (), "opted_out.meta_robots"),
    "meta_noimageai": ([{"name": "robots", "content": "index, noimageai"}], (), "opted_out.meta_robots"),
    "meta_token": ([{"name": "wit", "content": "noai"}], (), "opted_out.meta_robots"),
    "meta_other_token": ([{"name": "otherbot", "content": "noai"}], (), None),
    "meta_tdm": ([{"name": "tdm-reservation", "content": "1"}], (), "opted_out.tdm_reservation"),
    "plain_again": ((), (), None),
}


@pytest.fixture(scope="module")
def crawl(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("optout-crawl")
    writer = CrawlFileWriter("CC-MAIN-optout-00000.warc.gz", seed=3)
    for n, (metas, headers, _) in enumerate(PAGES.values()):
        writer.add_page(_page(n, metas, headers), CRAWL_START + timedelta(minutes=n))
    warc, wat = writer.finish()
    (tmp / writer.warc_name).write_bytes(warc)
    (tmp / writer.wat_name).write_bytes(wat)
    return tmp / writer.warc_name, tmp / writer.wat_name


@pytest.mark.parametrize("kind", ["warc", "wat"])
def test_opted_out_pages_give_no_pairs_and_are_counted(crawl, kind):
    path = crawl[0] if kind == "warc" else crawl[1]
    tally, errors = DictTally(), []
    pairs = list(extract.iter_pairs(str(path), tally, lambda s, e: errors.append((s, e))))
    assert errors == []
    kept_pages = [n for n, (_, _, reason) in enumerate(PAGES.values()) if reason is None]
    assert sorted({p["page_url"] for p in pairs}) == sorted(f"http://site{n}.example.com/page.html" for n in kept_pages)
    assert len(pairs) == IMAGES * len(kept_pages)
    read = {s["name"]: s for s in stages_from_counters(tally.as_dict(), [extract.READ])}[extract.READ]
    expected = {}
    for _, _, reason in PAGES.values():
        if reason:
            expected[reason] = expected.get(reason, 0) + 1
    assert {k: v for k, v in read["dropped"].items() if k.startswith("opted_out.")} == expected
    assert read["out"] == len(kept_pages)
    assert read["in"] == read["out"] + sum(read["dropped"].values())


def test_wat_headers_as_a_list_count_too():
    """A WAT that keeps a repeated header as a list: any value for us or all agents opts out."""
    import orjson
    envelope = {"Envelope": {
        "WARC-Header-Metadata": {"WARC-Type": "response", "WARC-Target-URI": "http://h/p"},
        "Payload-Metadata": {"HTTP-Response-Metadata": {
            "Response-Message": {"Status": "200"},
            "Headers": {"X-Robots-Tag": ["otherbot: noindex", "wit: noai"]},
            "HTML-Metadata": {"Head": {}, "Links": [{"path": "IMG@/src", "url": "/a.jpg", "alt": "x"}]}}}}}
    assert extract.wat_page(orjson.dumps(envelope)) == "opted_out.x_robots_tag"
