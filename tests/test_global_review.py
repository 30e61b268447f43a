"""Hostile review of the columnar harvest global half (fa7cc40) and parquet_io.read_parquet (388ae3a).

The promise: the same outputs and the same errors as the per-candidate code at 85ec600 on any
input. Each test states one place where that does not hold; the expected values are what the
code at 85ec600 gave on the same input.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from wit_pipeline.core import parquet_io
from wit_pipeline.stages.harvest import select as hg

TOP_BIT_KEY = 2**63 + 5  # 8000000000000005


def _lights(keys: list[int], query_ids: list[list[int]]) -> hg.Lights:
    n = len(keys)
    qstart = np.cumsum([0] + [len(ids) for ids in query_ids]).astype(np.int64)
    return hg.Lights(np.array(keys, np.uint64), np.arange(n, dtype=np.int64), np.zeros(n, np.int64),
                     np.arange(n, dtype=np.int64), qstart, np.array([q for ids in query_ids for q in ids], np.int32))


def test_a_count_of_zero_names_the_pair_as_before():
    """balance.keeping_queries' error named the pair: 'query 3 matched pair <key> but its count
    is 0'. The columnar rule says 'matched a pair': the key that tells which record is gone."""
    lights = _lights([TOP_BIT_KEY], [[3]])
    with pytest.raises(ValueError, match=r"^query 3 matched pair 8000000000000005 but its count is 0$"):
        hg.keep_by_probability(lights, {3: 0}, t=1, seed=0)


def test_the_first_bad_entry_decides_the_error_as_before():
    """Entries were checked in order: candidate 0's count of 0 raised ValueError before
    candidate 1's query missing from the counts was looked up. Now every lookup runs first,
    so the same input raises KeyError(4) instead."""
    lights = _lights([TOP_BIT_KEY, 7], [[3], [4]])
    with pytest.raises(ValueError, match="count is 0"):
        hg.keep_by_probability(lights, {3: 0}, t=1, seed=0)


def test_cap_kept_by_query_counts_a_query_once_per_pick():
    """A part row whose query_ids repeat a query (not what the matcher writes, but a valid
    CANDIDATES part) under --balance cap, t=1: the query picks the pair once (local_cap ->
    CapPerQuery gives (key, 5) once). 85ec600 counted kept_by_query {5: 1} = min(count, t);
    the mask marks both entries and reports {5: 2}, more than t, in query_counts.parquet."""
    lights = _lights([TOP_BIT_KEY], [[5, 5]])
    picks = [(key, q) for q, (_, key) in hg.local_cap(lights, 1, 0)]
    assert picks == [("8000000000000005", 5)]
    report = hg.selection_report(lights, hg.keep_picked(lights, picks), 1)
    assert report["kept_by_query"] == {5: 1}


def test_read_parquet_refuses_a_missing_column(tmp_path):
    """pq.read_table(f, columns=[...]) raised ArrowInvalid for a column the file lacks;
    pq.ParquetFile(f).read(columns=[...]) silently leaves it out, so read_parquet returns a
    table without it (here: no columns at all, 2 rows) and the caller finds out later, if ever."""
    path = tmp_path / "part.parquet"
    pq.write_table(pa.table({"key": ["8000000000000005", "0000000000000007"]}), path)
    with pytest.raises(pa.ArrowInvalid):
        parquet_io.read_parquet(str(path), columns=["page_url"])
