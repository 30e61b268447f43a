"""The harvest's global half over columns (stages.harvest.select) gives the same outputs and
errors as the per-pair rules of stages.balance, on inputs at its edges."""

from __future__ import annotations

import collections

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


@pytest.mark.parametrize("top", [50, 10**7])  # ids dense enough for an indexed array, and sparse ones
def test_counts_by_query_equal_a_counter(top):
    """count_ids, add_counts and lookup (an array indexed by id, or a binary search where ids
    are sparse) give what a Counter and dict.get give."""
    rng = np.random.default_rng(3)
    blocks = [rng.integers(0, top, n).astype(np.int32) for n in (0, 1, 40, 500)]
    counts = [hg.count_ids(ids) for ids in blocks]
    for ids, c in zip(blocks, counts):
        assert c.as_dict() == dict(collections.Counter(ids.tolist()))
        assert c.ids.tolist() == sorted(c.ids.tolist())
    total = hg.add_counts(counts)
    assert total.as_dict() == dict(sum((collections.Counter(ids.tolist()) for ids in blocks), collections.Counter()))
    asked = np.concatenate([blocks[3], [top + 5, 0, top - 1]]).astype(np.int32)
    expected = [total.as_dict().get(q, -1) for q in asked.tolist()]
    assert total.lookup(asked, -1).tolist() == expected
    assert total.lookup(asked[:2], -1).tolist() == expected[:2]  # few entries: the binary search
    assert hg.add_counts([]).lookup(asked, -1).tolist() == [-1] * len(asked)
    again = hg.ByQuery.of(dict(reversed(total.as_dict().items())))  # from a dict in any order
    assert again.ids.tolist() == total.ids.tolist() and again.values.tolist() == total.values.tolist()


def test_bucket_count_follows_the_run_size():
    """About BUCKET_TARGET candidates a bucket at most, up to 2**BUCKET_BITS buckets; by_bucket
    cuts a part along the top bits, keeping row order within a bucket."""
    target = hg.BUCKET_TARGET
    assert [hg.bucket_bits(n) for n in (0, 1, target, target + 1, 4 * target, 4 * target + 1)] == [0, 0, 0, 1, 2, 3]
    assert hg.bucket_bits(10**12) == hg.BUCKET_BITS
    keys = [TOP_BIT_KEY, 7, 2**62, 2**63 - 1, 3, 2**64 - 1]
    lights = _lights(keys, [[1], [2, 3], [], [4], [5], [6]])
    for bits in (0, 1, 3, 8):
        buckets = list(hg.by_bucket(lights, bits))
        for b, part in buckets:
            assert all(hg.bucket_of(f"{k:016x}", bits) == b for k in part.key.tolist())
            assert part.row.tolist() == sorted(part.row.tolist())
            assert part.query_ids() == [lights.query_ids()[r] for r in part.row.tolist()]
        assert sorted(r for _, part in buckets for r in part.row.tolist()) == list(range(len(keys)))
    assert len(list(hg.by_bucket(lights, 0))) == 1 and len(list(hg.by_bucket(lights, 1))) == 2


def test_lookup_answers_ids_outside_the_table():
    """An id above the largest (or below 0) is missing on both of lookup's paths."""
    counts = hg.ByQuery(np.array([2, 5], np.int64), np.array([7, 9], np.int64))
    asked = np.array([-2, -1, 0, 2, 5, 6, 10**9], np.int64)
    expected = [-1, -1, -1, 7, 9, -1, -1]
    assert counts.lookup(asked, -1).tolist() == expected  # the table indexed by id
    assert counts.lookup(asked[3:5], -1).tolist() == [7, 9]
    assert counts.lookup(np.array([10**9, 5]), -1).tolist() == [-1, 9]  # the binary search
