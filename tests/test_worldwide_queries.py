"""Per-language allowlists: segmentation and counting of unspaced languages, bigram joins, Open
Multilingual WordNet, MetaCLIP 2's caps, the one-line error for a missing segmenter, the
`--language` folder layout, and English unchanged."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path

import pytest

from queries import build, omw, pageviews, sample_dump, sample_worldwide, segment, wikipedia, worldwide
from queries.wikitext import HIDDEN_NAMESPACES, wikitext_to_text
from wit_pipeline.core.outputs import STATS
from wit_pipeline.core.stats import DictTally, stages_from_counters
from wit_pipeline.text import textnorm
from wit_pipeline.text.allowlist import load_allowlist

needs_icu = pytest.mark.skipif(importlib.util.find_spec("icu4py") is None, reason="icu4py (the worldwide extra) absent")
UNSPACED_SAMPLES = ("zh", "ja", "th")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("worldwide")
    for code in sample_worldwide.LANGUAGES:
        sample_worldwide.write_dump(root / "dumps", code, pages=120)
        sample_worldwide.write_pageviews(root / "pageviews" / code, code, pages=120)
    sample_worldwide.write_omw(root, ["zh", "ja", "th", "ar"])
    return root


def _dump(site: Path, code: str) -> str:
    return str(site / "dumps" / sample_worldwide.dump_name(code))


def _balanced(tally: DictTally) -> None:
    for stage in stages_from_counters(tally.as_dict(), ()):
        assert stage["in"] == stage["out"] + sum(stage["dropped"].values()), stage


def test_sample_dumps_are_seeded_and_declare_their_namespaces(site, tmp_path):
    again = sample_worldwide.write_dump(tmp_path, "ja", pages=120)
    assert again.read_bytes() == Path(_dump(site, "ja")).read_bytes()
    assert sample_worldwide.sample_pages("ja", 5, seed=1) != sample_worldwide.sample_pages("ja", 5, seed=2)
    from queries import dumpset

    assert dumpset.site_namespaces(_dump(site, "ja")) == {-2: "メディア", 1: "ノート", 6: "ファイル", 14: "Category"}
    assert dumpset.first_page(_dump(site, "th")) == ("thwiki", "1")
    assert sample_worldwide.sample_pages("en", 3) == sample_dump.sample_pages(3)


@needs_icu
@pytest.mark.parametrize("code", UNSPACED_SAMPLES)
def test_unspaced_languages_are_segmented_before_counting(site, code):
    lang = sample_worldwide.LANGUAGES[code]
    recipe = worldwide.with_site(worldwide.worldwide_recipe(code), [_dump(site, code)])
    tally = DictTally()
    unigrams, bigrams = build.count_dump([_dump(site, code)], tally, recipe.counting)
    _balanced(tally)
    # Words, not whole phrases: the most frequent word of the generator leads, every content
    # word is counted as itself, and no token holds a space.
    assert unigrams.most_common(1)[0][0] == lang.words[0]
    found = {textnorm.normalize(w) for w in lang.words} & set(unigrams)  # some compounds are cut further
    assert len(found) >= 0.8 * len(lang.words)
    assert not [t for t in unigrams if " " in t]
    for a, b in lang.collocations:  # kept apart by the segmenter, so counted as a bigram
        assert bigrams[f"{a} {b}"] >= 10 and unigrams[a] >= bigrams[f"{a} {b}"]
    # Markup is gone, localised file and category links too ("thumb" would come from a file link).
    assert not {"thumb", "サムネイル", "category", "infobox", "wikitable"} & set(unigrams)


@needs_icu
def test_unspaced_bigrams_are_joined_without_a_space_in_the_list(site, tmp_path):
    for code in UNSPACED_SAMPLES:
        recipe = worldwide.worldwide_recipe(code, min_bigram_count=5)
        url = worldwide.build_language(code, [_dump(site, code)], str(tmp_path), [], None, recipe)
        allow = load_allowlist(url)
        bigrams = [q for q, s in zip(allow.queries, allow.sources) if s == "bigram"]
        assert {a + b for a, b in sample_worldwide.LANGUAGES[code].collocations} <= set(bigrams)
        assert not [q for q in bigrams if " " in q]
    assert segment.join_bigram("zh", "美丽 花园") == "美丽花园"
    assert segment.join_bigram("zh", "iphone 手机") == "iphone手机"  # one side unspaced: no space
    assert segment.join_bigram("zh", "new york") == "new york"  # Latin inside Chinese text keeps its space
    assert segment.join_bigram("bo", "བོད ཡིག") == "བོད ཡིག"  # syllables: a tsheg's normal form is a space
    assert segment.join_bigram("de", "rotes kreuz") == "rotes kreuz"


@pytest.mark.parametrize("name,code,words", [("jieba", "zh", ("红色", "汽车")), ("mecab", "ja", ("東京", "大学")),
                                             ("pythainlp", "th", ("บ้าน", "ใหม่"))])
def test_single_language_segmenters(name, code, words):
    engine = segment.SEGMENTERS[name]
    if any(importlib.util.find_spec(m.split(".")[0]) is None for m in engine.modules):
        pytest.skip(f"{engine.pip} not installed")
    seg = segment.for_language(code, name)
    phrases = list(seg.phrases("".join(words) + "。" + words[0]))
    assert phrases[0] == list(words) and phrases[-1] == [words[0]]
    unigrams, bigrams = wikipedia.count_ngrams("".join(words) + "！" + "".join(words), seg)
    assert unigrams == Counter({words[0]: 2, words[1]: 2}) and bigrams == Counter({" ".join(words): 2})


@needs_icu
def test_phrases_break_at_every_scripts_punctuation_and_at_thai_spaces():
    zh = segment.for_language("zh")
    assert [len(p) > 0 for p in zh.phrases("北京大学，上海「城市」")] == [True, True, True]
    th = segment.for_language("th")
    assert list(th.phrases("ภาษาไทย ประเทศไทย")) == [["ภาษา", "ไทย"], ["ประเทศไทย"]]
    # Thai is segmented as written: NFKC would split SARA AM and lose the word แม่น้ำ.
    assert list(th.phrases("แม่น้ำ")) == [["แม่น้ํา"]]  # one word, then normalised as captions are
    assert list(th.phrases("ภาษา2567")) == [["ภาษา", "2567"]]  # ICU keeps digits with Thai letters: cut
    assert list(segment.for_language("lo").phrases("ພາສາລາວເປັນພາສາທາງການ")) == [["ພາສາ", "ລາວ", "ເປັນ", "ພາສາ", "ທາງການ"]]
    assert list(segment.for_language("km").phrases("ភាសាខ្មែរជាភាសាផ្លូវការ")) == [["ភាសាខ្មែរ", "ជា", "ភាសាផ្លូវការ"]]
    assert list(segment.for_language("my").phrases("မြန်မာဘာသာစကားသည်")) == [["မြန်မာဘာသာ", "စကား", "သည်"]]


def test_tibetan_is_counted_by_syllable_without_a_library():
    bo = segment.for_language("bo")
    assert bo.name == "syllable" and segment.SEGMENTERS["syllable"].modules == ()
    text = "བོད་ཡིག་ནི་བོད་ཀྱི་སྐད་ཡིག་ཡིན། བོད་ཡིག"  # a shad (།) ends the first phrase
    assert list(bo.phrases(text)) == [["བོད", "ཡིག", "ནི", "བོད", "ཀྱི", "སྐད", "ཡིག", "ཡིན"], ["བོད", "ཡིག"]]
    unigrams, bigrams = wikipedia.count_ngrams(text, bo)
    assert unigrams["བོད"] == 3 and bigrams["བོད ཡིག"] == 2 and "ཡིན བོད" not in bigrams
    assert segment.join_bigram("bo", "བོད ཡིག") == textnorm.normalize("བོད་ཡིག")  # the tsheg's normal form


def _refused(capsys, argv: list[str]) -> tuple[int, str]:
    """(exit code, the one line said) of a build-queries run that must stop before any work:
    usage errors exit 2 on stderr (WitParser), input errors exit 1 with the message."""
    from wit_pipeline.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["build-queries", *argv])
    err = capsys.readouterr().err
    code, said = (exc.value.code, err) if isinstance(exc.value.code, int) else (1, str(exc.value.code))
    assert said.strip() and "\n" not in said.strip() and "Traceback" not in said
    return code, said.strip()


def test_missing_segmenter_is_a_one_line_error_before_any_work(site, tmp_path, monkeypatch, capsys):
    out = tmp_path / "allowlist"
    monkeypatch.setitem(sys.modules, "icu4py", None)  # `import icu4py` now fails, as when it is absent
    monkeypatch.setitem(sys.modules, "icu4py.breakers", None)
    code, said = _refused(capsys, ["--language", "zh", "--wikipedia", _dump(site, "zh"), "--output", str(out)])
    assert code == 2 and said == ("wit build-queries: error: language zh needs the icu segmenter (icu4py==1.2.0), "
                                  "which is not installed: pip install -e '.[worldwide]' (see wit build-queries --help)")
    assert not out.exists()
    with pytest.raises(ValueError, match="needs the icu segmenter"):
        worldwide.build_language("ja", [_dump(site, "ja")], str(out))
    with pytest.raises(ValueError, match="the recipe is for en, not de"):
        worldwide.build_language("de", [_dump(site, "de")], str(out), recipe=build.Recipe())
    assert not out.exists()
    de = ["--wikipedia", _dump(site, "de"), "--output", str(out)]
    for argv, want in ((["--language", "bo", "--segmenter", "icu"], (2, "segmenter icu does not segment bo (use syllable)")),
                       (["--language", "de", "--segmenter", "jieba"], (2, "language de is written with spaces")),
                       (["--language", "x1"], (2, "'x1' is not a Wikipedia language code")),
                       (["--language", " "], (2, "'' is not a Wikipedia language code")),  # not English, not '.tsv'
                       (["--language", "de", "--wordnet", "/srv/wn"], (2, "--wordnet is English WordNet 3.0")),
                       ([], (1, f"{_dump(site, 'de')} is the de Wikipedia but the list is for en: give --language de")),
                       (["--language", "ar"], (1, f"{_dump(site, 'de')} is the de Wikipedia but the list is for ar")),
                       (["--language", "de", "--omw", str(tmp_path / "nowhere")], (1, "--omw "))):
        code, said = _refused(capsys, [*argv, *de])
        assert code == want[0] and want[1] in said, (argv, code, said)
    assert not out.exists()


def test_open_multilingual_wordnet_from_an_omw_folder(site):
    tally = DictTally()
    ja = omw.read_entries(str(site / "omw-1.4"), "ja", tally)
    words = sample_worldwide.LANGUAGES["ja"].words
    # 12 synsets, one lemma each, plus "a+b" second lemmas of 4 of them ("+" removed in Japanese),
    # one lemma listed twice for the same synset; definitions are not lemmas.
    assert len(ja) == 16 and ja[words[0]] == 1 and ja[words[0] + words[1]] == 1
    assert tally.as_dict() == {"wordnet:dropped.duplicate": 1, "wordnet:in": 17, "wordnet:out": 16}
    ar = omw.read_entries(str(site / "omw-1.4" / "arb"), "ar", DictTally())  # one language's folder
    arabic = sample_worldwide.LANGUAGES["ar"].words
    assert f"{arabic[0]} {arabic[1]}" in ar  # in a spaced language "+" is a space, not glue
    tab = site / "omw-1.4" / "tha" / "wn-data-tha.tab"
    assert omw.read_entries(str(tab), "th", DictTally()) == omw.read_entries(str(site / "omw-1.4"), "th", DictTally())
    assert omw.read_entries(str(site / "omw-1.4"), "de", DictTally()) == {}  # no deu data in the copy
    assert worldwide.wordnet_note("de", str(site / "omw-1.4")) == (
        f"--omw {site / 'omw-1.4'}: no WordNet of de there; the de list has no WordNet entries")
    assert worldwide.wordnet_note("ja", None) == "no --omw: the ja list has no WordNet entries"
    assert worldwide.wordnet_note("ja", str(site / "omw-1.4")) is None
    assert omw.WIKI_TO_OMW["sq"] == "als" and "als" not in omw.WIKI_TO_OMW  # OMW's als is Albanian
    assert omw.parse_line("00001740-n\tjpn:lemma\t実体", "jpn") == ("00001740-n", "実体")
    assert omw.parse_line("00001740-n\tjpn:def\t0\tx", "jpn") == ""
    assert omw.parse_line("garbage", "jpn") is None


def test_open_multilingual_wordnet_as_wn_lmf_and_wn_data(site, tmp_path, monkeypatch):
    lmf = tmp_path / "lmf"
    for code in ("ja", "zh"):
        sample_worldwide.write_omw_lmf(lmf, code)
    want = omw.read_entries(str(site / "omw-1.4"), "ja", DictTally())
    tally = DictTally()
    assert omw.read_entries(str(lmf), "ja", tally) == want  # a folder of LMF files, language tag `jpn`
    assert tally.as_dict() == {"wordnet:in": 16, "wordnet:out": 16}  # LMF lists each (lemma, synset) once
    assert omw.read_entries(str(lmf / "omw-zh.xml"), "zh", DictTally()) == omw.read_entries(
        str(site / "omw-1.4"), "zh", DictTally())  # `cmn-Hans` is Chinese
    assert omw.read_entries(str(lmf / "omw-zh.xml"), "ja", DictTally()) == {} and not omw.has_language(str(lmf), "th")
    broken = tmp_path / "broken.xml"
    broken.write_text('<LexicalResource><Lexicon id="x" language="ja"><LexicalEntry id="a"><Lemma writtenForm="犬"/>'
                      '</LexicalEntry></Lexicon></LexicalResource>', encoding="utf-8")
    tally = DictTally()
    assert omw.read_entries(str(broken), "ja", tally) == {} and tally.as_dict() == {
        "wordnet:dropped.malformed": 1, "wordnet:in": 1}

    wn = pytest.importorskip("wn")
    data = tmp_path / "wn_data"
    monkeypatch.setattr(wn.config, "data_directory", str(data))
    wn.add(str(lmf / "omw-ja.xml"), progress_handler=None)
    monkeypatch.setattr(wn.config, "data_directory", str(tmp_path / "elsewhere"))
    assert omw.read_entries(str(data), "ja", DictTally()) == want  # read through the wn package
    assert wn.config.data_directory == tmp_path / "elsewhere"  # and its setting left as it was
    assert omw.read_entries(str(data), "zh", DictTally()) == {}
    monkeypatch.setitem(sys.modules, "wn", None)
    with pytest.raises(ValueError, match="needs the wn package"):
        omw.has_language(str(data), "ja")


def test_metaclip2_caps_per_language():
    code = worldwide.worldwide_recipe("de")
    doc = worldwide.worldwide_recipe("de", bigram_quota="doc")
    small = {"unigram": 1_000, "bigram": 500_000, "title": 100}
    big = {"unigram": 5_000_000, "bigram": 9_000_000, "title": 2_000_000}
    assert code.caps(small) == {"unigram": 100, "bigram": 100_646, "title": 76}
    assert doc.caps(small) == {"unigram": 100, "bigram": 40, "title": 76}
    assert code.caps(big) == {"unigram": 251_465, "bigram": 100_646, "title": 61_235}
    assert doc.caps(big) == {"unigram": 251_465, "bigram": 100_586, "title": 61_235}
    assert build.Recipe().caps(big) == {}  # English: no caps unless --source-quotas
    assert (code.min_unigram_count, code.min_title_views, code.max_queries, code.max_chars) == (1, 1, 0, 256)
    english = build.Recipe()
    assert (english.min_unigram_count, english.min_title_views, english.max_queries, english.max_chars) == (
        100, 70, 500_000, 0)

    candidates = [("1", "number", None), ("x" * 257, "unigram", 9), ("katze", "unigram", 8), ("Katze", "unigram", 7),
                  ("hund", "unigram", 6), ("!!", "unigram", 5), ("katze", "title", 4), ("berlin", "title", 3)]
    tally = DictTally()
    rows = build.assemble(candidates, None, {"unigram": 1, "title": 5}, tally, max_chars=256)
    assert rows == [("1", "number", None), ("katze", "unigram", 8), ("berlin", "title", 3)]
    assert tally.as_dict() == {"allowlist:dropped.duplicate": 2, "allowlist:dropped.empty": 1,
                               "allowlist:dropped.over_cap": 1, "allowlist:dropped.too_long": 1,
                               "allowlist:in": 8, "allowlist:out": 3}


def test_titles_of_a_language_come_from_its_wiki_only(site):
    rule = pageviews.rule_for("wit", "ja", frozenset({"ノート", "ファイル"}))
    assert rule.domains == frozenset({"ja", "ja.m"})
    assert pageviews.rule_for("wit", "zh_yue").domains == frozenset({"zh-yue", "zh-yue.m"})
    assert pageviews.rule_for("wit") == pageviews.TITLE_RULES["wit"]
    tally = DictTally()
    views = pageviews.iter_views(str(next((site / "pageviews" / "ja").iterdir())), tally, rule)
    titles = pageviews.select_titles(views, 1, tally, rule)
    _balanced(tally)
    first = sample_worldwide.page_title("ja", 0)
    # ja and ja.m summed (the first title is percent-encoded on ja); ja.d (Wiktionary), another
    # wiki and the talk page (ノート, a namespace of the Japanese wiki) left out.
    assert titles[first] >= 2000 + 1001
    listed = [i for i in range(120) if i % 10 != 9 and i % 7 != 6]
    assert tally.as_dict()["pageviews:dropped.other_domain"] == len(listed) + 1
    assert len(titles) == len(listed)
    assert not [t for t in titles if t.startswith("ノート:")] and tally.as_dict()["titles:dropped.non_article"] == 1
    assert pageviews.rule_for("metaclip", "ja").any_colon and not rule.any_colon


def test_localised_file_and_category_links_show_no_text():
    text = "[[ファイル:X.jpg|サムネイル|猫]]東京[[Category:日本]]の[[大学]]"
    hidden = HIDDEN_NAMESPACES | {"ファイル"}
    assert wikitext_to_text(text, hidden) == "東京の大学"
    assert wikitext_to_text(text) == "サムネイル|猫東京の大学"  # English names only: the caption leaks


def _build(out: Path, dump: str, *extra: str) -> None:
    from wit_pipeline.cli import main

    assert main(["build-queries", "--wikipedia", dump, "--wordnet", "none", "--min-unigram-count", "20",
                 "--min-bigram-count", "5", "--min-pmi", "2", "--output", str(out), *extra]) == 0


@pytest.mark.slow
def test_english_is_byte_identical_with_or_without_language_en(tmp_path):
    dump = tmp_path / "enwiki-20240501-pages-articles.xml.bz2"
    sample_dump.write_plain(sample_dump.sample_pages(120, seed=5), str(dump))
    _build(tmp_path / "plain", str(dump))
    _build(tmp_path / "folder", str(dump), "--language", "en")
    want = (tmp_path / "plain" / "allowlist.tsv").read_bytes()
    assert (tmp_path / "folder" / "en.tsv").read_bytes() == want and want.count(b"\tbigram\t") >= 3
    tally = DictTally()
    recipe = build.Recipe(min_unigram_count=20, min_bigram_count=5, min_pmi=2)
    rows = build.build_allowlist([str(dump)], [], None, recipe, tally)
    from wit_pipeline.text.allowlist import write_allowlist

    write_allowlist(str(tmp_path / "inproc.tsv"), rows)
    assert (tmp_path / "inproc.tsv").read_bytes() == want
    assert sorted(p.name for p in (tmp_path / "folder").iterdir()) == ["build", "en.tsv"]
    assert sorted(p.name for p in (tmp_path / "folder" / "build" / "en").iterdir()) == [
        "dead_letter", "reads.jsonl", STATS]


@needs_icu
@pytest.mark.slow
def test_beam_job_per_language_matches_the_one_process_build(site, tmp_path):
    out = tmp_path / "allowlist"
    pv = str(site / "pageviews" / "ja" / "*.gz")
    _build(out, _dump(site, "ja"), "--language", "ja", "--pageviews", pv, "--omw", str(site / "omw-1.4"))
    recipe = worldwide.worldwide_recipe("ja", min_unigram_count=20, min_bigram_count=5, min_pmi=2)
    url = worldwide.build_language("ja", [_dump(site, "ja")], str(tmp_path / "inproc"),
                                   [str(p) for p in (site / "pageviews" / "ja").iterdir()], str(site / "omw-1.4"), recipe)
    assert (out / "ja.tsv").read_bytes() == Path(url).read_bytes()
    allow = load_allowlist(str(out / "ja.tsv"))
    assert allow.queries[:100] == [str(i) for i in range(100)]
    assert {"wordnet", "unigram", "bigram", "title"} <= set(allow.sources)
    assert "美しい庭園" in allow.queries


def test_an_output_is_written_only_where_build_queries_owns_it(tmp_path, capsys):
    """A hand-made <code>.tsv, or another job's stats.json where the English build would write its
    own, stops the build before any work; other languages' lists are never touched, and a
    rebuild over the build's own files is allowed."""
    dump = str(sample_worldwide.write_dump(tmp_path / "dumps", "de", pages=40))
    out = tmp_path / "allowlist"
    out.mkdir()
    (out / "de.tsv").write_text("my own list\n")
    (out / "fr.tsv").write_text("another language\n")
    argv = ["--wikipedia", dump, "--wordnet", "none", "--language", "de", "--output", str(out)]
    code, said = _refused(capsys, argv)
    assert code == 1 and "de.tsv exists and wit build-queries did not write it" in said
    assert (out / "de.tsv").read_text() == "my own list\n"

    (out / "de.tsv").unlink()
    _build(out, dump, "--language", "de")
    _build(out, dump, "--language", "de")  # its own: rebuilt
    assert (out / "fr.tsv").read_text() == "another language\n" and (out / "de.tsv").stat().st_size > 0

    harvest = tmp_path / "harvest"
    harvest.mkdir()
    (harvest / STATS).write_text('{"job": "harvest", "stages": []}')
    en = str(tmp_path / "enwiki-20240501-pages-articles.xml.bz2")
    sample_dump.write_plain(sample_dump.sample_pages(20, seed=1), en)
    code, said = _refused(capsys, ["--wikipedia", en, "--wordnet", "none", "--output", str(harvest)])
    assert code == 1 and "is not a wit build-queries stats.json" in said
    assert (harvest / STATS).read_text() == '{"job": "harvest", "stages": []}'


def test_a_dump_without_articles_writes_no_list(tmp_path, capsys):
    """A list of the numbers alone is no allowlist: an empty dump (or one of only redirects) fails."""
    dump = str(tmp_path / "frwiki-20240501-pages-articles.xml.bz2")
    sample_dump.write_plain([], dump)
    out = tmp_path / "allowlist"
    code, said = _refused(capsys, ["--wikipedia", dump, "--wordnet", "none", "--language", "fr", "--output", str(out)])
    assert code == 1 and said == "wit build-queries: --wikipedia gave no article (0 page(s) read, none an article): " \
                                 "no allowlist written"
    assert not (out / "fr.tsv").exists() and (out / "build" / "fr" / STATS).exists()
    with pytest.raises(ValueError, match="gave no article"):
        worldwide.build_language("fr", [dump], str(tmp_path / "inproc"))
    assert not (tmp_path / "inproc").exists()
