"""The allowlist builder: dump parsing, wikitext, pageviews, WordNet, PMI, assembly, the Beam job.

Fixtures are written here: a two-file Wikipedia dump (one .xml.bz2 with an article, a
redirect and a talk page; one plain .xml with another schema version's namespace), a gzipped
pageview file and a mini WordNet dict directory (data and index files). Every number below is counted by hand from
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
from dataclasses import asdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from queries import build, dumpset, multistream, pageviews, pmi, sample_dump, wikipedia, wordnet
from wit_pipeline.core import outputs
from wit_pipeline.core.outputs import STATS
from wit_pipeline.core.stats import DictTally, Drop, stages_from_counters
from wit_pipeline.text.allowlist import load_allowlist
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


def _page(title: str, ns: int, text: str, redirect: str | None = None, page_id: int = 1) -> str:
    esc = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    red = f'<redirect title="{redirect}" />' if redirect else ""
    return (f"<page><title>{title}</title><ns>{ns}</ns><id>{page_id}</id>{red}<revision><id>2</id>"
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
    "data.noun": "02118333 05 n 02 fox 0 red_fox 0 001 @ 02115913 n 0000 | a canine  \n"
                 "07611358 13 n 01 ice_cream 0 000 | a frozen dessert  \n08524735 15 n 01 city 0 000 | a town  \n"
                 "10115082 18 n 01 Fox 0 000 | a person  \n",
    "data.verb": "00751887 32 v 01 fox 0 000 | deceive  \n01926311 38 v 01 run 0 000 | move fast  \n",
    "data.adj": "00381097 42 a 01 red(a) 0 000 | a colour  \n00300000 00 s 01 new 0 000 | novel  \n",
    "data.adv": "00300000 02 r 01 a_la_carte 0 000 | by the menu  \nbroken\n",
    "index.noun": "fox n 2 4 @ ~ #m %p 2 1 02118333 10115082  \nred_fox n 1 2 @ ~ 1 0 02118333  \n"
                  "ice_cream n 1 3 @ ~ + 1 1 07611358  \ncity n 3 3 @ ~ %p 3 3 08524735 08226335 08225090  \n",
    "index.verb": "fox v 1 2 @ + 1 0 00751887  \nrun v 5 2 @ ~ 5 5 01926311 01924882 01924883 01924884 01924885  \n",
    "index.adj": "red a 3 1 & 3 1 00381097 00381098 00381099  \n"
                 "new a 11 1 & 11 11 1 2 3 4 5 6 7 8 9 10 11  \n",
    "index.adv": "a_la_carte r 1 0 1 0 00300000  \nbroken\n",
}

EXPECTED_TSV = """query\tsource\tstat
0\tnumber\t
1\tnumber\t
fox\twordnet\t3
a la carte\twordnet\t1
city\twordnet\t1
ice cream\twordnet\t1
new\twordnet\t1
red\twordnet\t1
run\twordnet\t1
a\tunigram\t3
york\tunigram\t3
new york\tbigram\t10.6667
red fox\tbigram\t10.6667
Albert Einstein\ttitle\t125
Café society\ttitle\t70
"""

# pmi_first/pmi_second: one group per word that passes the bigram floor (red, fox, a, new, york);
# those that start (red, a, new) / end (fox, red, york) no surviving bigram are no_bigram.
BEAM_ONLY = [
    {"name": "dumps", "in": 2, "out": 2, "dropped": {}},
    {"name": "pmi_first", "in": 5, "out": 3, "dropped": {"no_bigram": 2}},
    {"name": "pmi_second", "in": 5, "out": 3, "dropped": {"no_bigram": 2}},
]
EXPECTED_STAGES = [
    {"name": "inputs", "in": 3, "out": 3, "dropped": {}},
    {"name": "pages", "in": 4, "out": 4, "dropped": {}},
    {"name": "articles", "in": 4, "out": 2, "dropped": {"non_article": 1, "redirect": 1}},
    {"name": "unigrams", "in": 14, "out": 5, "dropped": {"below_count": 9}},
    {"name": "bigrams", "in": 13, "out": 3, "dropped": {"below_count": 10}},
    {"name": "pmi", "in": 3, "out": 2, "dropped": {"below_pmi": 1}},
    {"name": "pageviews", "in": 15, "out": 11, "dropped": {"malformed": 2, "other_domain": 2}},
    {"name": "titles", "in": 9, "out": 3, "dropped": {"below_views": 2, "empty": 1, "non_article": 3}},
    {"name": "wordnet", "in": 10, "out": 7, "dropped": {"duplicate": 2, "malformed": 1}},
    {"name": "allowlist", "in": 19, "out": 15, "dropped": {"duplicate": 4}},
]

# Small thresholds for the tiny corpus; otherwise the defaults (no quotas).
RECIPE = build.Recipe(min_unigram_count=3, min_bigram_count=2, min_pmi=8.0, min_title_views=70, numbers=2)
CLI_THRESHOLDS = ["--min-unigram-count", "3", "--min-bigram-count", "2", "--min-pmi", "8",
                  "--min-title-views", "70", "--numbers", "2"]


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("sources")
    dump = root / "dump"
    dump.mkdir()
    part1 = _dump(NS11, [_page("Red fox", 0, A1), _page("NYC", 0, "#REDIRECT [[New York]]", redirect="New York",
                                                         page_id=2), _page("Talk:Red fox", 1, "The red fox talk.", page_id=3)])
    (dump / "enwiki-pages-articles1.xml.bz2").write_bytes(bz2.compress(part1.encode("utf-8")))
    (dump / "enwiki-pages-articles2.xml").write_text(_dump(NS10, [_page("New York", 0, A2, page_id=4)]), encoding="utf-8")
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

def _words(wikitext: str) -> list[str]:
    return [t for toks in wikipedia.phrases(wikipedia.wikitext_to_text(wikitext)) for t in toks]


def test_wikitext_to_text_strips_the_documented_markup():
    assert wikipedia.wikitext_to_text(A1).split() == "The red fox runs. A red fox sleeps. See also".split()
    assert wikipedia.wikitext_to_text(A2).split() == \
        "New York is a city. New York has a red fox. New York map &".split()
    assert wikipedia.wikitext_to_text("[[a|b]] [[c]] [[:Category:X|y]] [//x.org z] [http://q.org]").split() == \
        ["b", "c", "y", "z"]


def test_headings_stay_on_their_own_lines():  # bug 1: `\s*` crossed newlines ('NotesReferences')
    assert wikipedia.wikitext_to_text("==A==\n\n==B==").split("\n") == ["A", "", "B"]
    text = "== Notes ==\n{{reflist}}\n\n== References ==\n=== External links ===\nx"
    assert _words(text) == ["notes", "references", "external", "links", "x"]
    assert wikipedia.count_ngrams(wikipedia.wikitext_to_text(text))[1] == {"external links": 1}


def test_templates_holding_tables_or_single_braces_go_whole():  # bug 3
    assert _words("a {{Infobox|stats={| class=x\n| cell || more\n|}|note=leak}} b") == ["a", "b"]
    assert _words("x {{math|{x}}} y {{outer|{{inner|{z}}}|q}} z") == ["x", "y", "z"]
    assert _words("p\n{|\n| {{flag|US}} || t\n|}\nq") == ["p", "q"]
    assert _words("broken {{no end | here") == ["broken", "no", "end", "here"]  # unbalanced: words stay


def test_links_with_brackets_interwiki_labels_nowiki_and_urls():  # bug 4
    assert _words("[[File:Bicyclo[1.1.0]butane.png|thumb|The [above] ring, [[carbon]]]] after") == ["after"]
    assert _words("[[Image:X.jpg|thumb|left|A [[fox]] [sic]]] z") == ["z"]
    assert _words("see [[:fr:Renard|Renard]] and [[:Category:Foxes]] [[fr:Renard]]") == [
        "see", "renard", "and", "category", "foxes"]
    assert _words("type <nowiki>{{not a template}}</nowiki> and <nowiki>[[raw]]</nowiki><nowiki/>s") == [
        "type", "not", "a", "template", "and", "raw", "s"]
    assert _words("at http://www.example.com/a_b?x=1 and [https://q.org label] or ftp://f.org/x end") == [
        "at", "and", "label", "or", "end"]
    # Blocks: refs go, math goes, nowiki inside a ref goes with it; an unclosed tag swallows nothing.
    assert _words("x <ref>cite <nowiki>{{n}}</nowiki></ref> y <math>z^2</math> w <ref name=a/>u <ref>open v") == [
        "x", "y", "w", "u", "open", "v"]


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
    tally = DictTally()
    pages = [p for url in sources["dump_files"] for p in wikipedia.iter_pages(url, tally, wikipedia.raise_error)]
    assert [(p.title, p.ns, p.redirect) for p in pages] == [
        ("Red fox", 0, False), ("NYC", 0, True), ("Talk:Red fox", 1, False), ("New York", 0, False)]
    assert pages[0].text == A1
    assert [wikipedia.article_text(p) for p in pages][1:3] == [Drop("redirect"), Drop("non_article")]
    assert tally.as_dict() == {"inputs:in": 2, "inputs:out": 2, "pages:in": 4, "pages:out": 4}


def test_a_bad_page_or_broken_xml_costs_only_itself(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text(_dump(NS11, [_page("A", 0, "one"), _page("B", 0, "two").replace("<ns>0", "<ns>x"),
                                _page("C", 0, "three")])[:-10])  # B's ns is not a number; the end is cut
    tally, errors = DictTally(), []
    titles = [p.title for p in wikipedia.iter_pages(str(bad), tally, lambda src, exc: errors.append((src, str(exc))))]
    assert titles == ["A", "C"]
    assert [src for src, _ in errors] == [f"{bad} page 'B'", str(bad)]
    assert "invalid literal" in errors[0][1]
    assert tally.as_dict() == {"inputs:dropped.error": 1, "inputs:in": 1, "pages:dropped.error": 1,
                               "pages:in": 3, "pages:out": 2}
    with pytest.raises(RuntimeError, match=r"reading Wikipedia dump .*bad.xml page 'B': ValueError"):
        list(wikipedia.iter_pages(str(bad), DictTally(), wikipedia.raise_error))


# --- the same dump twice, multistream ranges -------------------------------------------------------------

def test_the_same_dump_given_twice_is_refused(sources, tmp_path):  # bug 5
    plain = sources["dump_files"][0]
    header, pages, footer = _split_dump(bz2.decompress(Path(plain).read_bytes()))
    multi = tmp_path / "enwiki-20240501-pages-articles-multistream.xml.bz2"
    sample_dump.write_multistream(pages, str(multi), str(tmp_path / "index.txt.bz2"), 2, header, footer)
    with pytest.raises(ValueError, match="start with the same page .id 1.: the same dump given twice"):
        dumpset.dump_files([plain, str(multi)])
    from beam_jobs.build_queries import run

    with pytest.raises(SystemExit, match="the same dump given twice"):
        run(["--wikipedia", plain, "--wikipedia", str(tmp_path / "*multistream*"), "--output", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()
    with pytest.raises(ValueError, match="is matched twice"):
        dumpset.dump_files([plain, plain])
    whole = "x/enwiki-20240501-pages-articles.xml.bz2"
    part = "x/enwiki-20240501-pages-articles-multistream3.xml-p151574p311329.bz2"
    with pytest.raises(ValueError, match="overlapping page ranges"):
        dumpset.dump_files([whole, part])
    with pytest.raises(ValueError, match=r"two snapshots of enwiki \(20240501 and 20240601\)"):
        dumpset.dump_files([part, "x/enwiki-20240601-pages-articles1.xml-p1p41242.bz2"])
    index = "x/enwiki-20240501-pages-articles-multistream-index3.txt-p151574p311329.bz2"
    assert dumpset.dump_files([part, "x/enwiki-20240501-pages-articles2.xml-p41243p151573.bz2", index]) == [
        part, "x/enwiki-20240501-pages-articles2.xml-p41243p151573.bz2"]
    assert multistream.index_of(part) == index
    assert multistream.index_of(whole) is None


def _split_dump(xml: bytes) -> tuple[bytes, list[bytes], bytes]:
    first, last = xml.index(b"<page>"), xml.rindex(b"</page>") + len(b"</page>\n")
    return xml[:first], [b"<page>" + p for p in xml[first:last].split(b"<page>")[1:]], xml[last:]


def test_multistream_ranges_read_stream_by_stream(sources, tmp_path):
    header, pages, footer = _split_dump(bz2.decompress(Path(sources["dump_files"][0]).read_bytes()))
    dump, index = tmp_path / "d-multistream.xml.bz2", tmp_path / "d-multistream-index.txt.bz2"
    assert sample_dump.write_multistream(pages, str(dump), str(index), 2, header, footer) == 2
    assert multistream.index_of(str(dump)) == str(index)
    offsets = multistream.stream_offsets(str(index))
    assert offsets[0] == len(bz2.compress(header)) and len(offsets) == 2
    ranges = multistream.plan_ranges(str(dump), offsets, dump.stat().st_size, range_bytes=1)
    assert [r.streams for r in ranges] == [(offsets[0],), (offsets[1],)]
    assert ranges[-1].end == dump.stat().st_size  # the footer stream rides with the last range
    tally = DictTally()
    titles = [p.title for r in ranges for p in multistream.read_range(r, tally, wikipedia.raise_error)]
    assert titles == ["Red fox", "NYC", "Talk:Red fox"]
    assert tally.as_dict() == {"inputs:in": 2, "inputs:out": 2, "pages:in": 3, "pages:out": 3}
    # A corrupt stream costs only itself.
    data = bytearray(dump.read_bytes())
    data[offsets[0] + 20] ^= 0xFF
    dump.write_bytes(bytes(data))
    tally, errors = DictTally(), []
    titles = [p.title for r in ranges for p in multistream.read_range(r, tally, lambda s, e: errors.append(s))]
    assert titles == ["Talk:Red fox"] and errors == [f"{dump}@{offsets[0]}"]
    assert tally.as_dict()["inputs:dropped.error"] == 1


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
        "inputs:in": 1, "inputs:out": 1,
        "pageviews:dropped.malformed": 2, "pageviews:dropped.other_domain": 2, "pageviews:in": 15, "pageviews:out": 11,
        "titles:dropped.below_views": 2, "titles:dropped.empty": 1, "titles:dropped.non_article": 3,
        "titles:in": 9, "titles:out": 3}


def test_a_superscript_count_is_malformed_and_errors_name_the_file(tmp_path):  # bug 2
    assert pageviews.parse_line("en Anarchism ² 0") is None
    path = tmp_path / "pageviews-20240101-010000.gz"
    path.write_bytes(gzip.compress("en Anarchism ² 0\nen Anarchism 3 0\n".encode()))
    tally = DictTally()
    assert list(pageviews.iter_views(str(path), tally)) == [("Anarchism", 3)]
    assert tally.as_dict() == {"inputs:in": 1, "inputs:out": 1, "pageviews:dropped.malformed": 1,
                               "pageviews:in": 2, "pageviews:out": 1}
    path.write_bytes(gzip.compress(b"en A 1 0\n" * 10000)[:-40])  # a cut gzip file
    tally, errors = DictTally(), []
    assert len(list(pageviews.iter_views(str(path), tally, on_error=lambda s, e: errors.append(s)))) > 0
    assert errors == [str(path)] and tally.as_dict()["inputs:dropped.error"] == 1
    with pytest.raises(pageviews.ReadError, match=f"reading pageviews {path}: EOFError"):
        list(pageviews.iter_views(str(path), DictTally()))


def test_metaclip_title_rule():
    lines = "en Star_Wars:_A_New_Hope 60 0\nen Fox 49 0\nen Fox 49 0\nen.m Dog 90 0\nen Dog 50 0\nen Dog 20 0\n"
    tally = DictTally()
    rule = pageviews.TITLE_RULES["metaclip"]
    kept = pageviews.select_titles(pageviews.iter_views(io.StringIO(lines), tally, rule), 50, tally, rule)
    assert kept == {"Dog": 50}  # Fox: 98 views, never 50 in one hour; the colon title is out
    assert tally.as_dict()["pageviews:dropped.below_line_views"] == 3
    wit = pageviews.select_titles(pageviews.iter_views(io.StringIO(lines), DictTally()), 50, DictTally())
    assert wit == {"Star Wars: A New Hope": 60, "Fox": 98, "Dog": 160}


def test_wordnet_synset_names_and_lemmas(sources, tmp_path):
    tally = DictTally()
    names = wordnet.read_entries(sources["wordnet"], tally)
    assert names == {"a la carte": 1, "city": 1, "fox": 3, "ice cream": 1, "new": 1, "red": 1, "run": 1}
    assert tally.as_dict() == {"wordnet:dropped.duplicate": 2, "wordnet:dropped.malformed": 1,
                               "wordnet:in": 10, "wordnet:out": 7}
    tally = DictTally()
    lemmas = wordnet.read_entries(sources["wordnet"], tally, "lemmas")
    assert lemmas == {"a la carte": 1, "city": 3, "fox": 3, "ice cream": 1, "new": 11, "red": 3, "red fox": 1,
                      "run": 5}
    assert tally.as_dict() == {"wordnet:dropped.duplicate": 1, "wordnet:dropped.malformed": 1,
                               "wordnet:in": 10, "wordnet:out": 8}
    with pytest.raises(FileNotFoundError, match="lacks data.noun, data.verb, data.adj, data.adv.*wordnet-base"):
        wordnet.read_entries(str(tmp_path), DictTally())


@pytest.mark.skipif(not Path(wordnet.DEFAULT_DIR, "data.noun").is_file(),
                    reason="real WordNet 3.0 not installed (Debian: apt-get install wordnet-base)")
def test_real_wordnet_30():
    tally = DictTally()
    names = wordnet.read_entries(wordnet.DEFAULT_DIR, tally)
    # 117,659 synsets; 86,571 distinct names (NLTK's synset.name() up to '.NN.NN'). MetaCLIP's
    # script cuts names at their first dot ("st. petersburg" -> "st"), which leaves 86,554.
    assert tally.as_dict() == {"wordnet:dropped.duplicate": 31088, "wordnet:in": 117659, "wordnet:out": 86571}
    assert len({n.split(".")[0] for n in names} - {""}) == 86554
    assert (names["dog"], names["st. petersburg"], names["ice cream"]) == (2, 2, 1)  # Russia and Florida
    tally = DictTally()
    lemmas = wordnet.read_entries(wordnet.DEFAULT_DIR, tally, "lemmas")
    # 155,287 index lines over the four parts of speech, 147,306 distinct lemmas.
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
    assert tally.as_dict() == {"bigrams:dropped.below_count": 1, "bigrams:in": 3, "bigrams:out": 2,
                               "pmi:dropped.below_pmi": 1, "pmi:in": 2, "pmi:out": 1}


# --- assembly: order, dedup, quotas, cap -----------------------------------------------------------

def _candidates(sources) -> list[build.Row]:
    uni = {"a": 3, "fox": 3, "new": 3, "red": 3, "york": 3}
    bi = {"new york": (32 / 3, 3), "red fox": (32 / 3, 3)}
    titles = {"Albert Einstein": 125, "Red fox": 80, "Café society": 70}
    return build.ranked_candidates(uni, bi, titles, wordnet.read_entries(sources["wordnet"], DictTally()), 2)


def test_cap_keeps_metaclips_union_order(sources):
    tally = DictTally()
    rows = build.assemble(_candidates(sources), max_queries=10, quotas={}, tally=tally)
    assert [r[0] for r in rows] == ["0", "1", "fox", "a la carte", "city", "ice cream", "new", "red", "run", "a"]
    # Duplicates: the unigrams fox, new, red (WordNet has them); "Red fox" (title) is over the cap,
    # not a duplicate: the bigram "red fox" above it was cut too.
    assert tally.as_dict() == {"allowlist:dropped.duplicate": 3, "allowlist:dropped.over_cap": 6,
                               "allowlist:in": 19, "allowlist:out": 10}


def test_quotas_leave_room_for_later_sources(sources):
    tally = DictTally()
    rows = build.assemble(_candidates(sources), max_queries=12, quotas={"wordnet": 2, "unigram": 1, "bigram": 1},
                          tally=tally)
    assert [r[0] for r in rows] == ["0", "1", "fox", "a la carte", "a", "new york", "Albert Einstein", "Red fox",
                                    "Café society"]
    assert tally.as_dict()["allowlist:out"] == 9


def test_parse_quotas_and_recipe_validation():
    assert build.parse_quotas("metaclip2") == {"unigram": 251_465, "bigram": 100_646, "title": 61_235}
    assert build.parse_quotas("none") == {}
    assert build.parse_quotas("unigram=5, title=2") == {"unigram": 5, "title": 2}
    with pytest.raises(ValueError, match="bad quota 'words=5'"):
        build.parse_quotas("words=5")
    with pytest.raises(ValueError, match="--title-rule must be one of"):
        build.Recipe(title_rule="x")
    d = build.Recipe()
    assert (d.numbers, d.wordnet_entries, d.quotas, d.title_rule, d.max_queries) == (100, "synsets", {}, "wit", 500_000)


def test_in_memory_build_gives_the_expected_list(sources, tmp_path):
    from wit_pipeline.text.allowlist import write_allowlist

    tally = DictTally()
    rows = build.build_allowlist(sources["dump_files"], sources["pageview_files"], sources["wordnet"], RECIPE, tally)
    out = tmp_path / "allowlist.tsv"
    write_allowlist(str(out), rows)
    assert out.read_text(encoding="utf-8") == EXPECTED_TSV
    stages = stages_from_counters(tally.as_dict(), [s["name"] for s in EXPECTED_STAGES])
    assert stages == EXPECTED_STAGES


# --- the Beam job -------------------------------------------------------------------------------------

def _run_job(sources, out: Path, *extra: str) -> dict:
    from wit_pipeline.cli import main

    code = main(["build-queries", "--wikipedia", sources["dump"], "--pageviews", sources["pageviews"],
                 "--wordnet", sources["wordnet"], "--output", str(out), *CLI_THRESHOLDS, *extra])
    assert code == 0
    return json.loads((out / STATS).read_text())


def test_beam_job_writes_the_expected_allowlist_and_stats(sources, tmp_path):
    out = tmp_path / "queries"
    stats = _run_job(sources, out)
    assert (out / "allowlist.tsv").read_text(encoding="utf-8") == EXPECTED_TSV
    assert stats["job"] == "build-queries"
    order = [s["name"] for s in stats["stages"]]
    shards = {s["name"]: s for s in stats["stages"] if s["name"].endswith("_shards")}
    assert [s for s in stats["stages"] if s["name"] not in {b["name"] for b in BEAM_ONLY} | set(shards)] == \
        EXPECTED_STAGES
    assert [s for s in stats["stages"] if s["name"] in {b["name"] for b in BEAM_ONLY}] == BEAM_ONLY
    assert order[:6] == ["dumps", "inputs", "pages", "articles", "unigram_shards", "unigrams"]
    # Counts are summed per hash shard of the n-gram: one shard table per shard holding any.
    words = "the red fox runs a sleeps see also new york is city has map".split()
    assert shards["unigram_shards"] == {"name": "unigram_shards", "in": len({pmi.shard_of(w, 512) for w in words}),
                                        "out": len({pmi.shard_of(w, 512) for w in words}), "dropped": {}}
    assert stats["config"]["recipe"] == json.loads(json.dumps(asdict(RECIPE))) and stats["config"]["count_shards"] == 512
    assert stats["config"]["wikipedia"] == [sources["dump"]] and stats["reads"]["units"] == 2
    assert sorted(p.name for p in out.iterdir()) == ["allowlist.tsv", "dead_letter", "reads.jsonl",
                                                     STATS]
    assert pq.read_table(out / outputs.DEAD_LETTERS).num_rows == 0

    allow = load_allowlist(str(out / "allowlist.tsv"))
    assert allow.sources.count("wordnet") == 7 and allow.stats[11] == 10.6667
    matcher = QueryMatcher.from_file(str(out / "allowlist.tsv"))
    assert [allow.queries[i] for i in matcher.match("A red fox in New York!")] == [
        "fox", "new", "red", "a", "york", "new york", "red fox"]
    assert [allow.queries[i] for i in matcher.match("Albert Einstein eats ice-cream à la carte")] == [
        "ice cream", "Albert Einstein"]  # no accent folding: "à" is not "a"


def test_one_failing_article_is_a_dead_letter_and_the_rest_is_counted(sources, tmp_path, monkeypatch):
    real = wikipedia.count_ngrams

    def failing(text: str):
        if "New York is a city" in text:
            raise ValueError("injected fault")
        return real(text)

    monkeypatch.setattr(wikipedia, "count_ngrams", failing)
    out = tmp_path / "queries"
    stats = _run_job(sources, out)
    by_name = {s["name"]: s for s in stats["stages"]}
    assert by_name["articles"] == {"name": "articles", "in": 4, "out": 1,
                                   "dropped": {"error": 1, "non_article": 1, "redirect": 1}}
    dead = pq.read_table(out / outputs.DEAD_LETTERS).to_pylist()
    assert dead == [{"stage": "articles", "source": "New York", "error": "ValueError: injected fault"}]
    # Only 'Red fox' was counted: the, red, fox, runs, a, sleeps, see, also; red 2, fox 2, else 1.
    assert by_name["unigrams"]["in"] == 8 and by_name["allowlist"]["in"] == by_name["allowlist"]["out"] + sum(
        by_name["allowlist"]["dropped"].values())


def test_bad_options_are_clear_errors(sources, tmp_path, capsys):
    from beam_jobs.build_queries import run

    for flag, value, message in (("--source-quotas", "x=1", "--source-quotas: bad quota"),
                                 ("--min-bigram-count", "0", "--min-bigram-count must be >= 1")):
        with pytest.raises(SystemExit) as exit_:
            run(["--wikipedia", sources["dump"], "--output", str(tmp_path), flag, value])
        assert exit_.value.code == 2 and message in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--wikipedia '.*nothing-here.*' matches no file"):
        run(["--wikipedia", str(tmp_path / "nothing-here*.bz2"), "--output", str(tmp_path)])
    with pytest.raises(SystemExit, match="--wordnet .* lacks data.noun, data.verb, data.adj, data.adv"):
        run(["--wikipedia", sources["dump"], "--wordnet", str(tmp_path), "--output", str(tmp_path)])


def test_a_partial_wordnet_folder_is_refused_up_front(sources, tmp_path):  # bug 6
    from beam_jobs.build_queries import run

    (tmp_path / "index.noun").write_text("fox n 1 0 1 0 02118333\n")
    with pytest.raises(SystemExit, match="lacks index.verb, index.adj, index.adv"):
        run(["--wikipedia", sources["dump"], "--wordnet", str(tmp_path), "--wordnet-entries", "lemmas",
             "--output", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_multistream_dump_is_read_in_parallel_ranges_and_gives_the_plain_dumps_list(tmp_path):
    from beam_jobs.build_queries import run

    pages = sample_dump.sample_pages(400, seed=3)
    plain, multi = tmp_path / "plain", tmp_path / "multi"
    plain.mkdir()
    multi.mkdir()
    sample_dump.write_plain(pages, str(plain / "enwiki-20240501-pages-articles.xml.bz2"))
    dump = multi / "enwiki-20240501-pages-articles-multistream.xml.bz2"
    assert sample_dump.write_multistream(pages, str(dump), str(multi / "enwiki-20240501-pages-articles-multistream-"
                                                                        "index.txt.bz2"), per_stream=20) == 20
    common = ["--wordnet", "none", "--min-unigram-count", "20", "--min-bigram-count", "20", "--min-pmi", "2",
              "--numbers", "0"]
    assert run(["--wikipedia", str(plain / "*.bz2"), "--output", str(tmp_path / "a"), *common]) == 0
    # The index matched by the glob is used as the index, not read as a dump.
    assert run(["--wikipedia", str(multi / "*.bz2"), "--output", str(tmp_path / "b"), "--range-mb", "0.03",
                "--direct_num_workers", "2", "--direct_running_mode", "multi_processing", *common]) == 0
    want = (tmp_path / "a" / "allowlist.tsv").read_bytes()
    assert (tmp_path / "b" / "allowlist.tsv").read_bytes() == want
    assert want.count(b"\tbigram\t") >= len(sample_dump.COLLOCATIONS) and want.count(b"\tunigram\t") > 50
    a, b = (json.loads((tmp_path / x / STATS).read_text()) for x in "ab")
    assert a["reads"] == {"units": 1, "workers": 1, "max_parallel": 1}
    assert b["reads"]["units"] >= 8 and b["reads"]["workers"] == 2 and b["reads"]["max_parallel"] >= 2
    stage = {s["name"]: s for s in b["stages"]}
    assert stage["inputs"]["in"] == 20  # page streams; the footer is decompressed with the last, the header skipped
    assert [s for s in a["stages"] if s["name"] not in ("inputs", "dumps")] == [
        s for s in b["stages"] if s["name"] not in ("inputs", "dumps")]  # the shard tables too: sums per shard
    reads = [json.loads(line) for line in (tmp_path / "b" / "reads.jsonl").read_text().splitlines()]
    assert sum(r["pages"] for r in reads) == 400 and reads[0]["start"] > 0  # the header stream is not read


def test_a_plain_dump_damaged_part_way_is_said_loudly_or_fails_with_strict(tmp_path, capsys):
    """A bz2 dump corrupt part way gives the pages before the damage: the run finishes
    (the rest is counted), but stats.json, the summary and stderr say the list is partial;
    with --strict it fails in one line and leaves no allowlist."""
    from beam_jobs.build_queries import run

    pages = sample_dump.sample_pages(400, seed=5)  # 1.6 MB of XML: 16 bz2 blocks of 100 kB
    data = bytearray(bz2.compress(sample_dump.HEADER + b"".join(pages) + sample_dump.FOOTER, compresslevel=1))
    at = len(data) * 17 // 20  # past the reader's first 1 MB: what was read before it counts
    data[at:at + 64] = bytes(64)  # a block's bytes are zeros
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    (dumps / "enwiki-20240501-pages-articles.xml.bz2").write_bytes(bytes(data))
    common = ["--wikipedia", str(dumps / "*.bz2"), "--wordnet", "none", "--min-unigram-count", "5",
              "--min-bigram-count", "5", "--min-pmi", "2", "--numbers", "0"]
    assert run([*common, "--output", str(tmp_path / "a")]) == 0
    captured = capsys.readouterr()
    assert "WARNING: INCOMPLETE: 1 of 1 dump reading unit(s) stopped early" in captured.err
    assert "(INCOMPLETE: part of the dump was not read)" in captured.out
    doc = json.loads((tmp_path / "a" / STATS).read_text())
    assert doc["incomplete"] == {"dump_files": 0, "units": 1, "units_read": 1, "strict": False}
    stage = {s["name"]: s for s in doc["stages"]}
    assert stage["inputs"]["dropped"] == {"error": 1} and 0 < stage["pages"]["in"] < 400
    assert (tmp_path / "a" / "allowlist.tsv").exists()

    with pytest.raises(SystemExit, match=r"^wit build-queries: --strict: 1 of 1 dump reading unit\(s\) stopped early"):
        run([*common, "--output", str(tmp_path / "b"), "--strict"])
    assert not (tmp_path / "b" / "allowlist.tsv").exists()
    assert json.loads((tmp_path / "b" / STATS).read_text())["incomplete"]["strict"] is True
