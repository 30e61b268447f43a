"""Per-language t (MetaCLIP 2's t_to_p and p_to_t), against counts computed by hand."""

from __future__ import annotations

import pytest

from wit_pipeline.stages.language_t import p_to_t, query_t, t_per_language, t_to_p


def test_t_to_p_by_hand():
    # English entries matched 1, 2, 3, 4, 10 times (20 matches); t = 4: 1 + 2 + 3 = 6 are in
    # entries under 4, so p = 6 / 20.
    assert t_to_p([4, 1, 10, 3, 2], t=4) == pytest.approx(0.3)
    assert t_to_p([4, 1, 10, 3, 2], t=100) == 1.0
    assert t_to_p([4, 1, 10, 3, 2], t=1) == 0.0
    assert t_to_p([0, 4, 1, 10, 3, 2], t=4) == pytest.approx(0.3)  # unmatched entries change nothing


def test_p_to_t_by_hand():
    # counts 1, 1, 2, 6, 10 (20): cumulative shares .05 .10 .20 .50 1.0; closest to .3 is .20, at count 2.
    assert p_to_t([10, 1, 6, 2, 1], 0.3) == 2
    # closest to .45 is .50 (count 6); to .9 is 1.0 (count 10); to 0 is .05 (count 1).
    assert p_to_t([10, 1, 6, 2, 1], 0.45) == 6
    assert p_to_t([10, 1, 6, 2, 1], 0.9) == 10
    assert p_to_t([10, 1, 6, 2, 1], 0.0) == 1
    # MetaCLIP's arrays hold unmatched entries too; their zero would give t = 0 (keep nothing).
    assert p_to_t([0, 0, 0, 10, 1, 6, 2, 1], 0.0) == 1


def test_t_per_language():
    counts = {"en": [4, 1, 10, 3, 2], "zh": [10, 1, 6, 2, 1], "ja": [5]}
    p, ts = t_per_language(counts, t=4)
    assert p == pytest.approx(0.3)
    assert ts == {"en": 4, "ja": 5, "zh": 2}


def test_without_english_every_language_keeps_t():
    assert t_per_language({"zh": [10, 1], "ar": [3]}, t=7) == (None, {"ar": 7, "zh": 7})


def test_query_t():
    counts = {0: 4, 1: 1, 2: 10, 3: 3, 4: 2, 5: 10, 6: 1, 7: 6, 8: 2, 9: 1}
    language_of = ["en"] * 5 + ["zh"] * 5
    p, per_language, per_query = query_t(counts, language_of, t=4)
    assert per_language == {"en": 4, "zh": 2}
    assert per_query == {q: 4 if q < 5 else 2 for q in counts}


def test_empty_is_an_error():
    with pytest.raises(ValueError):
        t_to_p([], 4)
    with pytest.raises(ValueError):
        p_to_t([0, 0], 0.5)
