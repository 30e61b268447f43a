"""`wit gen-crawl --worldwide`: pages in several languages and scripts, and a dump per language."""

from __future__ import annotations

import bz2
import random
import xml.etree.ElementTree as ET
from collections import Counter

import pytest

from wit_pipeline.synthetic import worldwide
from wit_pipeline.synthetic.concepts import all_concepts
from wit_pipeline.synthetic.generate import generate_crawl
from wit_pipeline.text.langid import LanguageIdentifier
from wit_pipeline.text.matcher import QueryMatcher


def test_captions_are_identified_as_their_language_and_name_the_concept():
    lid = LanguageIdentifier()
    rng = random.Random(0)
    for lang in worldwide.LANGUAGES:
        words = worldwide.WORDS[lang]
        matcher = QueryMatcher.from_queries(list(words.values()))
        names = list(words)
        for concept in all_concepts()[::7]:
            text = worldwide.caption(concept, lang, rng)
            assert lid.predict(text)[0] == lang, text
            found = {names[i] for i in matcher.match(text)}
            assert {concept.colour, concept.shape} <= found, (text, found)
            if lang in ("zh", "ja"):
                assert " " not in text  # written without spaces


def test_gen_crawl_worldwide(tmp_path):
    truth = generate_crawl(tmp_path, "http://127.0.0.1:8000", seed=3, pages=10, worldwide=True)
    by_lang = Counter(x["lang"] for x in truth["links"] if x["category"] == "worldwide")
    assert set(by_lang) == set(worldwide.LANGUAGES) and min(by_lang.values()) >= 10
    clean = sum(1 for x in truth["links"] if x["category"] == "clean")
    assert abs(clean - by_lang["zh"]) <= 1  # the clean pairs take the languages in turn
    assert set(truth["dumps"]) == set(worldwide.LANGUAGES)
    for lang, name in truth["dumps"].items():
        root = ET.fromstring(bz2.decompress((tmp_path / name).read_bytes()))
        ns = {"m": "http://www.mediawiki.org/xml/export-0.11/"}
        assert root.find("m:siteinfo/m:dbname", ns).text == f"{lang}wiki"
        texts = [t.text for t in root.iterfind("m:page/m:revision/m:text", ns)]
        assert len(texts) == 60 and worldwide.WORDS[lang]["triangle"] in "".join(texts)
    again = generate_crawl(tmp_path / "again", "http://127.0.0.1:8000", seed=3, pages=10, worldwide=True)
    assert again["links"] == truth["links"]
    assert (tmp_path / truth["dumps"]["zh"]).read_bytes() == (tmp_path / "again" / truth["dumps"]["zh"]).read_bytes()


@pytest.mark.parametrize("lang", ["zh", "ar"])
def test_build_queries_on_a_generated_dump_lists_the_concept_words(tmp_path, lang):
    """The demo's lists come from these dumps: MetaCLIP 2's recipe (top 10% of words) must
    keep every colour and shape word, or a word that matches it."""
    pytest.importorskip("icu4py" if lang != "zh" else "jieba")
    from beam_jobs import build_queries
    from wit_pipeline.text.allowlist import load_allowlist

    dump = worldwide.write_dump(tmp_path / f"{lang}wiki-pages-articles.xml.bz2", lang)
    assert build_queries.run(["--wikipedia", str(dump), "--language", lang, "--output", str(tmp_path / "lists")]) == 0
    matcher = QueryMatcher.from_queries(load_allowlist(str(tmp_path / "lists" / f"{lang}.tsv")).queries)
    missing = [w for w in worldwide.WORDS[lang].values() if not matcher.match(w)]
    assert not missing
