"""MetaCLIP 2's substring rule: an entry's edge in an unspaced script is not bounded by a token edge."""

from __future__ import annotations

import pytest

from wit_pipeline.text.matcher import QueryMatcher, substring_key, unspaced

QUERIES = ["東京", "タワー", "iPhone手机", "手机壳", "cat", "แมว", "東京 タワー", "ねこ", "ラーメンshop", "ສະບາຍດີ"]


@pytest.fixture(scope="module")
def matcher() -> QueryMatcher:
    return QueryMatcher.from_queries(QUERIES)


@pytest.mark.parametrize("text, expected", [
    ("東京タワーの夜景", [0, 1]),  # CJK and kana entries match inside an unspaced run
    ("买 iPhone手机壳", [2, 3]),  # Latin start bounded by a space, CJK end not bounded
    ("买iphone手机壳", [3]),  # no token edge before the Latin start: no match
    ("东京的 iphone手机", [2]),
    ("a cat", [4]), ("concatenate", []),  # Latin entries stay whole-token
    ("แมวดำนอนหลับ", [5]),  # Thai
    ("東京 タワー", [0, 1, 6]),
    ("かわいいねこです", [7]),  # an entry ending in kana (MetaCLIP's ranges omit kana)
    ("美味しいラーメンshop です", [8]),  # kana start unbounded, Latin end bounded
    ("美味しいラーメンshops", []),
    ("ສະບາຍດີທຸກຄົນ", [9]),  # Lao
    ("", []),
])
def test_substring_rule(matcher, text, expected):
    assert matcher.match(text) == expected


def test_batch_agrees_with_one_by_one(matcher):
    texts = ["東京タワーの夜景", "a cat", "买iphone手机壳", "", "かわいいねこです", "cat 東京"]
    assert matcher.match_many(texts) == [matcher.match(t) for t in texts]


def test_keys():
    assert substring_key("東京") == "東京"
    assert substring_key("iphone手机") == " iphone手机"
    assert substring_key("ラーメンshop") == "ラーメンshop "
    assert substring_key("cat") is None
    assert substring_key("قطة") is None  # Arabic is written with spaces
    assert all(map(unspaced, "漢かカ々ไລမកབ")) and not any(map(unspaced, "aé한ąب"))


def test_duplicate_forms_all_match():
    m = QueryMatcher.from_queries(["東京", "東 京", "（東京）"])
    assert m.match("東京都") == [0, 2]


def test_list_without_unspaced_entries_builds_no_automaton():
    m = QueryMatcher.from_queries(["cat", "new york"])
    assert m._automaton is None
    assert m.match("東京 cat") == [0]
