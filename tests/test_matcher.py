"""Whole-token allowlist matching: exact cases, both code paths agree, case-sensitive rules."""

from __future__ import annotations

import pickle
import random

import ahocorasick
import pytest

from wit_pipeline.text import textnorm
from wit_pipeline.text.allowlist import write_allowlist
from wit_pipeline.text.matcher import QueryMatcher, normalize_batch

QUERIES = ["cat", "new york", "York", "new york city", "a b", "b c", "don't", "fish", "rock'n'roll",
           "Apple", "3d", "naïve", "co op", "New-York"]


@pytest.fixture(scope="module")
def matcher() -> QueryMatcher:
    return QueryMatcher.from_queries(QUERIES)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a cat", [0]),
        ("cats and concatenate", []),  # whole tokens only
        ("CAT!", [0]),
        ("cat cat cat", [0]),  # one id however often it occurs
        ("I love New York City.", [1, 2, 3, 13]),  # nested and overlapping, "New-York" shares the form
        ("york", [2]),
        ("newyork", []),
        ("a b c", [4, 5]),  # overlapping matches all count
        ("DON'T panic", [6]),
        ("'cat'", [0]),  # apostrophes at token edges are dropped
        ("dont", []),
        ("\ufb01sh", [7]),  # NFKC: the fi ligature is "fi"
        ("rock'n'roll", [8]),
        ("rock n roll", []),
        ("apple pie", [9]),
        ("a 3D print", [10]),
        ("NAI\u0308VE", [11]),  # combining diaeresis composes under NFKC
        ("co-op", [12]),
        ("new_york", [1, 2, 13]),  # underscores separate tokens
        ("", []),
        ("?!", []),
        ("cat\x00fish", [0, 7]),
    ],
)
def test_match_exact(matcher, text, expected):
    assert matcher.match(text) == expected
    assert matcher.match_many([text]) == [expected]


def test_size_and_duplicate_forms(matcher):
    assert matcher.size == len(QUERIES) == len(matcher)
    # "new york" (1) and "New-York" (13) normalise alike: every such id matches wherever the form occurs.
    assert matcher.match("NEW YORK") == [1, 2, 13]


def test_case_sensitive_keeps_case_but_still_whole_tokens():
    m = QueryMatcher.from_queries(["Apple", "apple", "cat", "New York"], case_sensitive=True)
    assert m.match("Apple pie") == [0]
    assert m.match("apple pie") == [1]
    assert m.match("APPLE") == []
    assert m.match("Cat") == []
    assert m.match("concatenate") == []  # MetaCLIP's raw substring match would say "cat" here
    assert m.match("New-York, baby") == [3]
    assert m.match("new york") == []
    assert m.match_many(["Apple pie", "apple pie", "APPLE", "New-York, baby"]) == [[0], [1], [], [3]]


def aho_corasick_reference(queries, case_sensitive=False):
    """The textbook way: a space-padded automaton, all overlapping matches (pyahocorasick)."""
    automaton = ahocorasick.Automaton()
    for qid, q in enumerate(queries):
        form = textnorm.padded(q, case_sensitive)
        automaton.add_word(form, automaton.get(form, ()) + (qid,))
    automaton.make_automaton()
    return lambda text: sorted({i for _, ids in automaton.iter(textnorm.padded(text, case_sensitive)) for i in ids})


def test_match_many_equals_match_on_random_text(matcher):
    rng = random.Random(7)
    vocab = ["cat", "Cat", "new", "York", "city", "a", "b", "c", "don't", "'", "-", "_", " ", "\t", "\n",
             "\x00", "fish", "\ufb01sh", "Σ", "ß", "ﾊﾟ", "\u2028", "\xa0", "naïve", "3D", "co", "op", "…", "’"]
    texts = ["".join(rng.choice(vocab) + rng.choice(["", " ", ",", "."]) for _ in range(rng.randint(0, 12)))
             for _ in range(3000)]
    reference = aho_corasick_reference(QUERIES)
    expected = [reference(t) for t in texts]
    assert [matcher.match(t) for t in texts] == expected
    assert matcher.match_many(texts) == expected
    assert sum(map(len, expected)) > 3000  # the test text does match
    for start in range(0, 3000, 977):  # any batch split gives the same answer
        assert matcher.match_many(texts[start:start + 977]) == expected[start:start + 977]


def test_batch_normalisation_equals_textnorm():
    rng = random.Random(3)
    alphabet = list("abcXYZ '_-.\t\n\x00\x1f\x85\xa0\u2019\u02bc") + [
        "Σ", "σ", "ς", "é", "e\u0301", "\ufb01", "①", "½", "ǅ", "İ", "ß", "ﾊﾟ", "\u2028", "\u200b", "Ω",
        "a\u0345", "'''", "_'_", "٣", "漢", "😀", "\u0300", "\ufeff", "Ⅻ", "\u00ad"]
    alphabet += ["I\u0307\u0307", "\u0130\u0307", "A\u00b7\u03a3", "\u03a3.", "x\u2013y"]
    for case_sensitive in (False, True):
        for i in range(4000):
            texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(rng.randint(1, 5))]
            if i % 2:  # mostly ASCII batches, normalised text by text
                texts += ["".join(rng.choice("abcXYZ '_-.`\t") for _ in range(rng.randint(0, 12))) for _ in range(6)]
            segments = normalize_batch(texts, case_sensitive).split("\x00")
            assert len(segments) == len(texts)
            for seg, text in zip(segments, texts):
                assert seg[:1] == " " and seg[-1:] == " "
                assert seg.strip(" ") == textnorm.normalize(text.replace("\x00", " "), case_sensitive), repr(text)


def test_from_file_uses_row_indexes(tmp_path):
    url = str(tmp_path / "allow.tsv")
    write_allowlist(url, [("red", "unigram", 10), ("red circle", "bigram", 40.5), ("circle", "wordnet", None)])
    m = QueryMatcher.from_file(url)
    assert m.size == 3
    assert m.match_many(["A red circle.", "red", "Circles", ""]) == [[0, 1, 2], [0], [], []]


def test_edge_cases():
    with pytest.raises(ValueError, match=r"query 1 \('--'\) is empty after normalisation"):
        QueryMatcher.from_queries(["ok", "--"])
    empty = QueryMatcher.from_queries([])
    assert empty.size == 0 and empty.match("anything") == [] and empty.match_many(["a", "b"]) == [[], []]
    assert QueryMatcher.from_queries(["x"]).match_many([]) == []
    unigrams = QueryMatcher.from_queries(["cat", "dog"])
    assert unigrams.match_many(["Dog & cat", "x", "", "hotdog"]) == [[0, 1], [], [], []]


def test_refuses_to_be_pickled(matcher):
    # A 500k automaton pickles to ~100 MiB: build it per worker (from_file in Shared) instead.
    with pytest.raises(TypeError, match="from_file"):
        pickle.dumps(matcher)


def test_long_entries_and_shared_prefixes_agree_with_aho_corasick():
    rng = random.Random(11)
    vocab = ["the", "lord", "of", "rings", "new", "york", "city", "a", "b", "fellowship", "ring"]
    queries = sorted({" ".join(rng.choice(vocab) for _ in range(rng.randint(1, 6))) for _ in range(300)})
    queries += ["The Lord of the Rings", "the lord", "of the rings", "a a a a a a a a"]
    matcher = QueryMatcher.from_queries(queries)
    reference = aho_corasick_reference(queries)
    texts = [" ".join(rng.choice(vocab + ["x", "The", "RINGS,"]) for _ in range(rng.randint(0, 25)))
             for _ in range(1500)] + ["the lord of the rings", "a " * 20, ""]
    expected = [reference(t) for t in texts]
    assert sum(len(e) > 3 for e in expected) > 300
    assert matcher.match_many(texts) == expected
    assert [matcher.match(t) for t in texts[:200]] == expected[:200]


def test_typographic_apostrophes_match_the_ascii_one():
    m = QueryMatcher.from_queries(["don't", "o'brien", "stop"])
    assert m.match_many(["Don\u2019t stop", "don\u02bct", "O\u2019Brien's", "dont"]) == [[0, 2], [0], [], []]


def test_a_lone_surrogate_fails_the_batch_whatever_its_other_texts():
    """A batch of mostly ASCII texts is normalised text by text, a mostly non-ASCII one as a
    whole: a text that cannot be encoded fails either batch the same way."""
    m = QueryMatcher.from_queries(["cat"])
    for batch in (["\ud800 cat"], ["a cat", "the cat", "\ud800 cat"], ["\ud800 cat", "猫", "猫"]):
        with pytest.raises(UnicodeEncodeError):
            m.match_many(batch)
