"""Normalisation on real-web cases: the caption side and the matcher's batch side agree."""

from __future__ import annotations

import pytest

from wit_pipeline.text import textnorm
from wit_pipeline.text.matcher import QueryMatcher, normalize_batch


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Apple™ Watch", "apple watch"),  # separators before NFKC: not "appletm"
        ("Chanel №5", "chanel 5"),  # not "no5"
        ("Acme® Tools℠", "acme tools"),
        ("don‘t", "don't"),
        ("Washington´s", "washington's"),  # an acute accent used as an apostrophe
        ("it`s", "it's"),
        ("Mayor’s office", "mayor's office"),
        ("Nuku\u02bbalofa", "nuku\u02bbalofa"),  # U+02BB okina is a letter and stays
        ("O′Neil", "o'neil"),
        ("हिन्दी किताब", "हिन्दी किताब"),  # vowel signs belong to their word
        ("தமிழ் புத்தகம்", "தமிழ் புத்தகம்"),
        ("İstanbul", "istanbul"),
        ("e\u0301cole", "\u00e9cole"),  # composed by NFKC
        ("Ｆｕｌｌ ｗｉｄｔｈ", "full width"),
        ("ﬁsh ﬂakes", "fish flakes"),
        ("½ price", "1 2 price"),  # NFKC makes separators too (U+2044)
        ("co\u00adop\u200bera\u200dtion", "cooperation"),  # in-word invisibles
        ("a\u00a0b\u3000c", "a b c"),
        ("781\u2014451", "781 451"),
        ("snake_case", "snake case"),
    ],
)
def test_real_web_cases(text: str, expected: str) -> None:
    assert textnorm.normalize(text) == expected
    assert normalize_batch([text]) == f" {expected} "


def test_case_sensitive_keeps_case_only() -> None:
    assert textnorm.normalize("İstanbul Apple™", case_sensitive=True) == "İstanbul Apple"
    assert normalize_batch(["İstanbul Apple™"], case_sensitive=True) == " İstanbul Apple "


def test_queries_now_match_these_captions() -> None:
    matcher = QueryMatcher.from_queries(["apple", "istanbul", "washington's", "किताब", "don't"])
    assert matcher.match_many(["Apple™ Watch", "İstanbul at night", "Washington´s monument", "हिन्दी किताब",
                               "don‘t stop", "hin dī ki tāb"]) == [[0], [1], [2], [3], [4], []]
