"""The harvest's global half over columns (stages.harvest.select) gives the same outputs and
errors as the per-pair rules of stages.balance, on inputs at its edges."""

from __future__ import annotations

import numpy as np
import pytest

from wit_pipeline.stages.harvest import select as hg

TOP_BIT_KEY = 2**63 + 5  # 8000000000000005


def _lights(keys: list[int], query_ids: list[list[int]]) -> hg.Lights:
    n = len(keys)
    qstart = np.cumsum([0] + [len(ids) for ids in query_ids]).astype(np.int64)
    return hg.Lights(np.array(keys, np.uint64), np.arange(n, dtype=np.int64), np.zeros(n, np.int64),
                     np.arange(n, dtype=np.int64), qstart, np.array([q for ids in query_ids for q in ids], np.int32))


def test_a_count_of_zero_names_the_pair():
    """As balance.keeping_queries, the error names the pair: 'query 3 matched pair <key> but its
    count is 0' (the key tells which record it is)."""
    lights = _lights([TOP_BIT_KEY], [[3]])
    with pytest.raises(ValueError, match=r"^query 3 matched pair 8000000000000005 but its count is 0$"):
        hg.keep_by_probability(lights, {3: 0}, t=1, seed=0)


def test_the_first_bad_entry_decides_the_error():
    """As balance.keeping_queries checks entries in order, candidate 0's count of 0 raises
    ValueError before candidate 1's query missing from the counts (KeyError) is looked up."""
    lights = _lights([TOP_BIT_KEY, 7], [[3], [4]])
    with pytest.raises(ValueError, match="count is 0"):
        hg.keep_by_probability(lights, {3: 0}, t=1, seed=0)


def test_cap_kept_by_query_counts_a_query_once_per_pick():
    """A part row whose query_ids repeat a query (not what the matcher writes, but a valid
    CANDIDATES part) under --balance cap, t=1: the query picks the pair once (local_cap ->
    CapPerQuery gives (key, 5) once), so kept_by_query is {5: 1} = min(count, t), not one per
    entry ({5: 2}, more than t, in query_counts.parquet)."""
    lights = _lights([TOP_BIT_KEY], [[5, 5]])
    picks = [(key, q) for q, (_, key) in hg.local_cap(lights, 1, 0)]
    assert picks == [("8000000000000005", 5)]
    report = hg.selection_report(lights, hg.keep_picked(lights, picks), 1)
    assert report["kept_by_query"].as_dict() == {5: 1}
