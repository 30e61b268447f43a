"""The allowlist builder: dump parsing, wikitext, pageviews, WordNet, PMI, assembly, the Beam job.

Fixtures are written here: a two-file Wikipedia dump (one .xml.bz2 with an article, a
redirect and a talk page; one plain .xml with another schema version's namespace), a gzipped
pageview file and a mini WordNet dict directory. Every number below is counted by hand from
them (see CORPUS), so the tests check the code, not the code's own output.

Hand count of the two articles' plain text (phrases are cut at '.'):
  A1 "Red fox":  [the red fox runs] [a red fox sleeps] [see also]
  A2 "New York": [new york is a city] [new york has a red fox] [new york map]
  U = 24 tokens, 14 distinct; B = 18 bigram tokens, 13 distinct.
  red 3, fox 3, a 3, new 3, york 3; red fox 3, new york 3, a red 2, all others 1.
  PMI(new york) = PMI(red fox) = 3*24*24 / (18*3*3) = 32/3; PMI(a red) = 2*24*24 / (18*3*3) = 64/9.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
from pathlib import Path

import pytest

from queries import build, pageviews, pmi, wikipedia, wordnet
from queries.allowlist import load_allowlist
from wit_pipeline.core.stats import DictTally
from wit_pipeline.text.matcher import QueryMatcher

NS11 = "http://www.mediawiki.org/xml/export-0.11/"
NS10 = "http://www.mediawiki.org/xml/export-0.10/"

A1 = """{{Infobox animal|name=Red fox|image=[[File:Fox.jpg]]|note={{nested|deep}}}}
The '''[[red fox]]''' runs.<ref>Smith, {{cite book|year=2001}}</ref> A [[Vulpes vulpes|red fox]] sleeps.<ref name="b"/>
== See also ==
[[File:Fox.jpg|thumb|A [[fox]] in snow]]
[[Category:Foxes]]
[[de:Rotfuchs]]"""

A2 = """'''New York''' is a city.
{| class="wikitable"
|-
| red || table {{flag|US}}
|}
New York has a <span class="x">red</span> fox. <!-- new york hidden -->
* [http://example.com New York] map &amp;"""


def _page(title: str, ns: int, text: str, redirect: str | None = None) -> str:
    esc = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    red = f'<redirect title="{redirect}" />' if redirect else ""
    return (f"<page><title>{title}</title><ns>{ns}</ns><id>1</id>{red}<revision><id>2</id>"
            f'<text bytes="{len(text)}" xml:space="preserve">{esc}</text></revision></page>\n')


def _dump(ns_uri: str, pages: list[str]) -> str:
    return (f'<mediawiki xmlns="{ns_uri}" version="0.11" xml:lang="en">\n<siteinfo><sitename>Wikipedia</sitename>'
            f'<namespaces><namespace key="0" case="first-letter" /></namespaces></siteinfo>\n'
            + "".join(pages) + "</mediawiki>\n")


PAGEVIEWS = """en Red_fox 50 0
en.m Red_fox 30 0
en New_York 10 0
en Albert_Einstein 120 0
en.m Albert_Einstein 5 0
de Albert_Einstein 999 0
en.d fox 500 0
en Special:Search 900 0
en Main_Page 1000 0
en Talk:Red_fox 80 0
en Caf%C3%A9_society 70 0
en - 100 0
en Fox 69 0
malformed line
en Broken notanumber 0
"""

LICENCE = ("  1 This software and database is being provided to you, the LICENSEE, by  \n"
           "  2 Princeton University under the following license.  By obtaining, using  \n")
WORDNET = {
    "index.noun": "fox n 2 4 @ ~ #m %p 2 1 02118333 10115082  \nred_fox n 1 2 @ ~ 1 0 02118333  \n"
                  "ice_cream n 1 3 @ ~ + 1 1 07611358  \ncity n 3 3 @ ~ %p 3 3 08524735 08226335 08225090  \n",
    "index.verb": "fox v 1 2 @ + 1 0 00751887  \nrun v 5 2 @ ~ 5 5 01926311 01924882 01924883 01924884 01924885  \n",
    "index.adj": "red a 3 1 & 3 1 00381097 00381098 00381099  \n"
                 "new a 11 1 & 11 11 1 2 3 4 5 6 7 8 9 10 11  \n",
    "index.adv": "a_la_carte r 1 0 1 0 00300000  \nbroken\n",
}

EXPECTED_TSV = """query\tsource\tstat
a\tunigram\t3
fox\tunigram\t3
new\tunigram\t3
red\tunigram\t3
york\tunigram\t3
new york\tbigram\t10.6667
red fox\tbigram\t10.6667
Albert Einstein\ttitle\t125
Café society\ttitle\t70
run\twordnet\t5
city\twordnet\t3
a la carte\twordnet\t1
ice cream\twordnet\t1
"""

EXPECTED_STAGES = [
    {"name": "articles", "in": 4, "out": 2, "dropped": {"non_article": 1, "redirect": 1}},
    {"name": "unigrams", "in": 14, "out": 5, "dropped": {"below_count": 9}},
    {"name": "bigrams", "in": 13, "out": 2, "dropped": {"below_count": 10, "below_pmi": 1}},
    {"name": "pageviews", "in": 15, "out": 11, "dropped": {"malformed": 2, "other_domain": 2}},
    {"name": "titles", "in": 9, "out": 3, "dropped": {"below_views": 2, "empty": 1, "non_article": 3}},
    {"name": "wordnet", "in": 10, "out": 8, "dropped": {"duplicate": 1, "malformed": 1}},
    {"name": "allowlist", "in": 18, "out": 13, "dropped": {"duplicate": 5}},
]

# Small thresholds for the tiny corpus; no quotas (they only matter at 500k).
THRESHOLDS = build.Thresholds(min_unigram_count=3, min_bigram_count=2, min_pmi=8.0, min_title_views=70,
                              max_queries=500_000, quotas={})
CLI_THRESHOLDS = ["--min-unigram-count", "3", "--min-bigram-count", "2", "--min-pmi", "8",
                  "--min-title-views", "70", "--source-quotas", "none"]


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("sources")
    dump = root / "dump"
    dump.mkdir()
    part1 = _dump(NS11, [_page("Red fox", 0, A1), _page("NYC", 0, "#REDIRECT [[New York]]", redirect="New York"),
                         _page("Talk:Red fox", 1, "The red fox talk talk talk.")])
    (dump / "enwiki-pages-articles1.xml.bz2").write_bytes(bz2.compress(part1.encode("utf-8")))
    (dump / "enwiki-pages-articles2.xml").write_text(_dump(NS10, [_page("New York", 0, A2)]), encoding="utf-8")
    views = root / "pageviews"
    views.mkdir()
    (views / "pageviews-20240101-000000.gz").write_bytes(gzip.compress(PAGEVIEWS.encode("utf-8")))
    wn = root / "wordnet"
    wn.mkdir()
    for name, body in WORDNET.items():
        (wn / name).write_text(LICENCE + body, encoding="utf-8")
    return {"dump": str(dump / "enwiki-pages-articles*.xml*"), "dump_files": sorted(map(str, dump.iterdir())),
            "pageviews": str(views / "*.gz"), "pageview_files": sorted(map(str, views.iterdir())),
            "wordnet": str(wn)}


# --- wikitext and dump parsing ---------------------------------------------------------------------

def test_wikitext_to_text_strips_the_documented_markup():
    assert wikipedia.wikitext_to_text(A1).split() == "The red fox runs. A red fox sleeps. See also".split()
    assert wikipedia.wikitext_to_text(A2).split() == \
        "New York is a city. New York has a red fox. New York map &".split()
    assert wikipedia.wikitext_to_text("[[a|b]] [[c]] [[:Category:X|y]] [//x.org z] [http://q.org]").split() == \
        ["b", "c", "z"]


def test_count_ngrams_never_crosses_a_phrase_break():
    uni, bi = wikipedia.count_ngrams("New York, city. Paris (France) — York\nNew")
    assert uni == {"new": 2, "york": 2, "city": 1, "paris": 1, "france": 1}
    assert bi == {"new york": 1}


def test_phrases_tokenise_exactly_like_textnorm():
    from wit_pipeline.text import textnorm

    text = "Ŝtar-Wars' Ｆｕｌｌ width, l'Été\x00nul; 'quoted' O'Brien's 3.5 ﬁne_print\n\n— ÀB"
    want = [t for span in wikipedia.PHRASE_BREAK.split(text) if (t := textnorm.tokens(span))]
    assert list(wikipedia.phrases(text)) == want
    assert want[0] == ["ŝtar", "wars", "full", "width"]


def test_iter_pages_reads_bz2_and_plain_dumps_of_any_schema_version(sources):
    pages = [p for url in sources["dump_files"] for p in wikipedia.iter_pages(url)]
    assert [(p.title, p.ns, p.redirect) for p in pages] == [
        ("Red fox", 0, False), ("NYC", 0, True), ("Talk:Red fox", 1, False), ("New York", 0, False)]
    assert pages[0].text == A1
    tally = DictTally()
    titles = [t for url in sources["dump_files"] for t, _ in wikipedia.iter_articles(url, tally)]
    assert titles == ["Red fox", "New York"]
    assert tally.as_dict() == {"articles:dropped.non_article": 1, "articles:dropped.redirect": 1,
                               "articles:in": 4, "articles:out": 2}


def test_malformed_xml_is_an_error(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text("<mediawiki><page><title>X</title></mediawiki>")
    with pytest.raises(Exception, match="mismatched tag"):
        list(wikipedia.iter_pages(str(bad)))


# --- pageviews, WordNet, PMI ------------------------------------------------------------------------

def test_pageview_lines_and_titles():
    assert pageviews.parse_line("en Albert_Einstein 123 0\n") == ("en", "Albert_Einstein", 123)
    assert pageviews.parse_line("en Albert_Einstein 123") is None
    assert pageviews.decode_title("Caf%C3%A9_society") == "Café society"
    assert pageviews.decode_title("AC%2FDC") == "AC/DC"
    assert not pageviews.is_article_title("User talk:Jimbo")
    assert not pageviews.is_article_title("Wikipedia:About")
    assert pageviews.is_article_title("Star Wars: A New Hope")
    tally = DictTally()
    kept = pageviews.select_titles(pageviews.iter_views(io.StringIO(PAGEVIEWS), tally), 70, tally)
    assert kept == {"Albert Einstein": 125, "Café society": 70, "Red fox": 80}
    assert tally.as_dict() == {
        "pageviews:dropped.malformed": 2, "pageviews:dropped.other_domain": 2, "pageviews:in": 15, "pageviews:out": 11,
        "titles:dropped.below_views": 2, "titles:dropped.empty": 1, "titles:dropped.non_article": 3,
        "titles:in": 9, "titles:out": 3}


def test_wordnet_index_files(sources, tmp_path):
    tally = DictTally()
    lemmas = wordnet.read_lemmas(sources["wordnet"], tally)
    assert lemmas == {"a la carte": 1, "city": 3, "fox": 3, "ice cream": 1, "new": 11, "red": 3, "red fox": 1,
                      "run": 5}
    assert tally.as_dict() == {"wordnet:dropped.duplicate": 1, "wordnet:dropped.malformed": 1,
                               "wordnet:in": 10, "wordnet:out": 8}
    with pytest.raises(FileNotFoundError, match="index.noun not found.*wordnet-base"):
        wordnet.read_lemmas(str(tmp_path), DictTally())


@pytest.mark.skipif(not Path(wordnet.DEFAULT_DIR, "index.noun").is_file(),
                    reason="real WordNet 3.0 not installed (Debian: apt-get install wordnet-base)")
def test_real_wordnet_30():
    tally = DictTally()
    lemmas = wordnet.read_lemmas(wordnet.DEFAULT_DIR, tally)
    # WordNet 3.0: 155,287 index lines over the four parts of speech, 147,306 distinct lemmas.
    assert tally.as_dict() == {"wordnet:dropped.duplicate": 7981, "wordnet:in": 155287, "wordnet:out": 147306}
    assert (lemmas["dog"], lemmas["run"], lemmas["ice cream"], lemmas["'hood"]) == (8, 57, 1, 1)


def test_pmi_hand_checked():
    # 'new york': c(ab)=3 of B=18 bigrams; c(new)=c(york)=3 of U=24 tokens.
    # P(ab) = 3/18 = 1/6; P(a) = P(b) = 3/24 = 1/8; PMI = (1/6) / (1/64) = 32/3.
    assert pmi.pmi(3, 3, 3, 24, 18) == 32 / 3
    assert pmi.pmi(2, 3, 3, 24, 18) == 64 / 9
    assert pmi.pmi_bits(32.0) == 5.0
    with pytest.raises(ValueError, match="positive counts"):
        pmi.pmi(1, 0, 3, 24, 18)
    tally = DictTally()
    uni = {"new": 3, "york": 3, "a": 3, "red": 3, "rare": 1, "pair": 1}
    bi = {"new york": 3, "a red": 2, "rare pair": 1}
    # 'rare pair' has the highest PMI of all (1*24*24/18 = 32) but is seen once: below_count.
    kept = pmi.select_bigrams(bi, uni, min_count=2, min_pmi=8, tally=tally, totals=(24, 18))
    assert kept == {"new york": (32 / 3, 3)}
    assert tally.as_dict() == {"bigrams:dropped.below_count": 1, "bigrams:dropped.below_pmi": 1,
                               "bigrams:in": 3, "bigrams:out": 1}


# --- assembly: priority, dedup, quotas, cap -----------------------------------------------------------

def _candidates(sources) -> list[build.Row]:
    tally = DictTally()
    uni = {"a": 3, "fox": 3, "new": 3, "red": 3, "york": 3}
    bi = {"new york": (32 / 3, 3), "red fox": (32 / 3, 3)}
    titles = {"Albert Einstein": 125, "Red fox": 80, "Café society": 70}
    return build.ranked_candidates(uni, bi, titles, wordnet.read_lemmas(sources["wordnet"], tally))


def test_cap_keeps_the_documented_priority(sources):
    tally = DictTally()
    rows = build.assemble(_candidates(sources), max_queries=6, quotas={}, tally=tally)
    assert rows == [("a", "unigram", 3), ("fox", "unigram", 3), ("new", "unigram", 3), ("red", "unigram", 3),
                    ("york", "unigram", 3), ("new york", "bigram", 10.6667)]
    assert tally.as_dict() == {"allowlist:dropped.duplicate": 3, "allowlist:dropped.over_cap": 9,
                               "allowlist:in": 18, "allowlist:out": 6}


def test_quotas_leave_room_for_later_sources(sources):
    tally = DictTally()
    rows = build.assemble(_candidates(sources), max_queries=6, quotas={"unigram": 2, "title": 1}, tally=tally)
    assert rows == [("a", "unigram", 3), ("fox", "unigram", 3), ("new york", "bigram", 10.6667),
                    ("red fox", "bigram", 10.6667), ("Albert Einstein", "title", 125), ("new", "wordnet", 11)]
    assert tally.as_dict() == {"allowlist:dropped.duplicate": 3, "allowlist:dropped.over_cap": 9,
                               "allowlist:in": 18, "allowlist:out": 6}


def test_parse_quotas():
    assert build.parse_quotas("metaclip") == {"unigram": 251_465, "bigram": 100_646, "title": 61_235}
    assert build.parse_quotas("none") == {}
    assert build.parse_quotas("unigram=5, title=2") == {"unigram": 5, "title": 2}
    with pytest.raises(ValueError, match="bad quota 'words=5'"):
        build.parse_quotas("words=5")


def test_in_memory_build_gives_the_expected_list(sources, tmp_path):
    from queries.allowlist import write_allowlist

    tally = DictTally()
    rows = build.build_allowlist(sources["dump_files"], sources["pageview_files"], sources["wordnet"],
                                 THRESHOLDS, tally)
    out = tmp_path / "allowlist.tsv"
    write_allowlist(str(out), rows)
    assert out.read_text(encoding="utf-8") == EXPECTED_TSV
    for stage in EXPECTED_STAGES:
        got = {k.split(":", 1)[1]: v for k, v in tally.as_dict().items() if k.split(":", 1)[0] == stage["name"]}
        want = {"in": stage["in"], "out": stage["out"], **{f"dropped.{r}": n for r, n in stage["dropped"].items()}}
        assert got == want, stage["name"]


# --- the Beam job (one run) -------------------------------------------------------------------------

def test_beam_job_writes_the_expected_allowlist_and_stats(sources, tmp_path):
    from wit_pipeline.cli import main

    out = tmp_path / "queries"
    code = main(["build-queries", "--wikipedia", sources["dump"], "--pageviews", sources["pageviews"],
                 "--wordnet", sources["wordnet"], "--output", str(out), *CLI_THRESHOLDS])
    assert code == 0
    assert (out / "allowlist.tsv").read_text(encoding="utf-8") == EXPECTED_TSV
    stats = json.loads((out / "stats.json").read_text())
    assert stats["job"] == "build-queries"
    assert stats["stages"] == EXPECTED_STAGES
    assert sorted(p.name for p in out.iterdir()) == ["allowlist.tsv", "stats.json"]

    allow = load_allowlist(str(out / "allowlist.tsv"))
    assert allow.sources.count("wordnet") == 4 and allow.stats[5] == 10.6667
    matcher = QueryMatcher.from_file(str(out / "allowlist.tsv"))
    assert matcher.match("A red fox in New York!") == [0, 1, 2, 3, 4, 5, 6]
    assert [allow.queries[i] for i in matcher.match("Albert Einstein eats ice-cream à la carte")] == [
        "Albert Einstein", "ice cream"]


def test_bad_options_are_clear_errors(sources, tmp_path):
    from beam_jobs.build_queries import run

    with pytest.raises(SystemExit, match="--source-quotas: bad quota"):
        run(["--wikipedia", sources["dump"], "--output", str(tmp_path), "--source-quotas", "x=1"])
    with pytest.raises(SystemExit, match="--min-bigram-count must be >= 1"):
        run(["--wikipedia", sources["dump"], "--output", str(tmp_path), "--min-bigram-count", "0"])
    with pytest.raises(SystemExit, match="--wikipedia '.*nothing-here.*' matches no file"):
        run(["--wikipedia", str(tmp_path / "nothing-here*.bz2"), "--output", str(tmp_path)])
    with pytest.raises(SystemExit, match="--wordnet .*no index.noun there"):
        run(["--wikipedia", sources["dump"], "--wordnet", str(tmp_path), "--output", str(tmp_path)])
