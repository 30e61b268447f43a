"""Balancing: exact small cases, then statistics on a skewed (Zipf) set of 100k pairs."""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict

import pytest

from wit_pipeline.core.keys import salted_hash, salted_hashes, sample_key, shard_of, shards_of, uniform, uniforms
from wit_pipeline.stages.balance import (
    cap_kept,
    cap_order,
    cap_rank,
    count_queries,
    keep_prob,
    keep_probability,
    select_cap,
    select_prob,
)


def test_keep_probability():
    assert keep_probability(10, 20) == 1.0
    assert keep_probability(20, 20) == 1.0
    assert keep_probability(40, 20) == 0.5
    assert keep_probability(3, 0) == 0.0
    with pytest.raises(ValueError, match="count must be positive"):
        keep_probability(0, 20)
    with pytest.raises(ValueError, match="t must be >= 0"):
        keep_probability(5, -1)


def test_keep_prob_is_the_metaclip_coin():
    keys = [sample_key(f"http://example.com/{i}.jpg", f"pic {i}") for i in range(400)]
    for key in keys:
        assert keep_prob(key, [7], {7: 100}, t=25, seed=3) == (uniform(key, 7, 3) < 0.25)
        assert keep_prob(key, [7], {7: 25}, t=25, seed=3)  # at or under the cap: always
        # ANY matched query keeping the pair keeps it.
        either = uniform(key, 1, 3) < 0.1 or uniform(key, 2, 3) < 0.5
        assert keep_prob(key, [1, 2], {1: 100, 2: 20}, t=10, seed=3) == either
        # counts as a sequence indexed by id work the same as a mapping
        assert keep_prob(key, [1, 2], [0, 100, 20], t=10, seed=3) == either
        assert not keep_prob(key, [], {}, t=10, seed=3)
        assert not keep_prob(key, [1], {1: 5}, t=0, seed=3)
    with pytest.raises(ValueError, match="count is 0"):
        keep_prob(keys[0], [4], {4: 0}, t=10, seed=3)
    assert sum(keep_prob(k, [7], {7: 100}, 25, 3) for k in keys) == sum(uniform(k, 7, 3) < 0.25 for k in keys)


def test_cap_small_exact():
    keys = [f"{i:016x}" for i in range(6)]
    pairs = [(k, [0]) for k in keys[:5]] + [(keys[5], [1])]
    ranked = sorted(keys[:5], key=lambda k: cap_rank(k, 0, 9))
    assert cap_rank(keys[0], 0, 9) == f"{salted_hash(keys[0], 0, 9):016x}"
    assert cap_order(keys[0], 0, 9) == (cap_rank(keys[0], 0, 9), keys[0])
    # Fixed-width hex sorts as the integers do, including above 2**63.
    ranks = [cap_rank(k, 0, 9) for k in keys]
    assert sorted(ranks) == [f"{v:016x}" for v in sorted(int(r, 16) for r in ranks)]
    assert any(int(r, 16) >= 1 << 63 for r in ranks)
    assert select_cap(pairs, t=2, seed=9) == set(ranked[:2]) | {keys[5]}
    assert select_cap(pairs, t=0, seed=9) == set()
    assert select_cap(pairs, t=10, seed=9) == set(keys)
    # A pair kept by query 1 survives even when query 0 ranks it out.
    loser = ranked[-1]
    assert loser in select_cap(pairs + [(loser, [0, 1])], t=2, seed=9)
    assert count_queries(pairs) == {0: 5, 1: 1}


def zipf_pairs(n: int = 100_000, n_queries: int = 1000, seed: int = 0) -> list[tuple[str, list[int]]]:
    rng = random.Random(seed)
    cum, total = [], 0.0
    for rank in range(n_queries):
        total += 1 / (rank + 1) ** 1.1
        cum.append(total)
    population = range(n_queries)
    pairs = []
    for i in range(n):
        r = rng.random()
        k = 1 if r < 0.7 else 2 if r < 0.9 else 3
        ids = sorted(set(rng.choices(population, cum_weights=cum, k=k)))
        pairs.append((sample_key(f"http://img.example/{i}.jpg", f"caption {i}"), ids))
    return pairs


@pytest.fixture(scope="module")
def pairs():
    return zipf_pairs()


T = 200


def test_prob_statistics(pairs):
    counts = count_queries(pairs)
    assert max(counts.values()) > 50 * T and sum(c <= T for c in counts.values()) > 500  # skewed both ways
    kept = select_prob(pairs, T, seed=1)
    singles: dict[int, list[str]] = defaultdict(list)
    for key, ids in pairs:
        if len(ids) == 1:
            singles[ids[0]].append(key)
    total_dev, total_var = 0.0, 0.0
    for q, keys in singles.items():
        p = min(1.0, T / counts[q])
        got = sum(k in kept for k in keys)
        mean, var = len(keys) * p, len(keys) * p * (1 - p)
        assert abs(got - mean) <= 5 * math.sqrt(var) + 1e-9, (q, counts[q], len(keys), got, mean)
        total_dev += got - mean
        total_var += var
        if counts[q] <= T:
            assert got == len(keys)  # under the cap nothing is dropped
    assert abs(total_dev) <= 4 * math.sqrt(total_var)
    # Multi-query pairs survive when any query keeps them: the kept set is exactly that.
    assert kept == {key for key, ids in pairs if any(uniform(key, q, 1) < min(1.0, T / counts[q]) for q in ids)}
    assert select_prob(pairs, T, seed=1) == kept
    assert select_prob(pairs, T, seed=2) != kept
    assert select_prob(pairs, T, seed=1, counts=counts) == kept


def test_cap_statistics(pairs):
    counts = count_queries(pairs)
    kept = select_cap(pairs, T, seed=1)
    # An independent reference: sort each query's pairs by (rank, key), take the first T.
    by_query: dict[int, list[str]] = defaultdict(list)
    for key, ids in pairs:
        for q in ids:
            by_query[q].append(key)
    chosen: dict[int, set[str]] = {}
    for q, keys in by_query.items():
        chosen[q] = set(sorted(keys, key=lambda k: (int(cap_rank(k, q, 1), 16), k))[:T])
        assert len(chosen[q]) == cap_kept(counts[q], T)
    assert kept == set().union(*chosen.values())
    singles_kept = Counter(ids[0] for key, ids in pairs if len(ids) == 1 and key in kept)
    assert max(singles_kept.values()) <= T
    for q, c in counts.items():
        if c <= T:
            assert all(k in kept for k in by_query[q])
    assert select_cap(pairs, T, seed=1) == kept
    other = select_cap(pairs, T, seed=2)
    assert other != kept and len(other & kept) < 0.9 * len(kept)


def _expected_cap_pairs(pairs: list[tuple[str, list[int]]], t: int, seed: int) -> set[tuple[str, int]]:
    by_query: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for key, ids in pairs:
        for q in ids:
            by_query[q].append(cap_order(key, q, seed))
    return {(key, q) for q, ranked in by_query.items() for _, key in sorted(ranked)[:t]}


def test_cap_per_query_in_a_pipeline_equals_select_cap_with_deterministic_coders():
    import apache_beam as beam
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner
    from apache_beam.testing.util import assert_that, equal_to

    from beam_jobs.transforms import CapPerQuery

    pairs = zipf_pairs(n=3000, n_queries=40, seed=4)
    t, seed = 25, 7
    expected = _expected_cap_pairs(pairs, t, seed)
    assert {k for k, _ in expected} == select_cap(pairs, t, seed)
    assert len(expected) < sum(len(ids) for _, ids in pairs)  # some query was capped
    flat = [(q, key) for key, ids in pairs for q in ids]
    with beam.Pipeline(runner=FnApiRunner()) as p:
        elements = p | beam.Create(flat)
        kept = elements | "ByKey" >> CapPerQuery(t, seed=seed)
        assert_that(kept, equal_to(sorted(expected)), label="FromKeys")
        ranked = elements | beam.Map(lambda qk: (qk[0], cap_order(qk[1], qk[0], seed)))
        assert_that(ranked | "Precomputed" >> CapPerQuery(t), equal_to(sorted(expected)), label="FromRanks")
        # Every PCollection inside is typed: no FastPrimitives/pickle fallback for 64-bit ranks.
        inner: list = []

        class Collect(beam.pipeline.PipelineVisitor):
            def visit_transform(self, node):
                if node.full_label.startswith("ByKey/"):
                    inner.extend(node.outputs.values())

        p.visit(Collect())
    assert len(inner) >= 3
    for coll in inner:
        coder = beam.coders.registry.get_coder(coll.element_type)
        assert coder.is_deterministic(), (coll, coder)
        assert "FastPrimitives" not in repr(coder) and "Pickle" not in repr(coder), (coll, coder)

def test_cap_per_query_needs_a_seed_for_bare_keys_and_a_positive_t():
    from beam_jobs.transforms import CapPerQuery, _cap_ranked

    with pytest.raises(ValueError):
        CapPerQuery(0)
    with pytest.raises(TypeError, match="seed"):
        _cap_ranked((3, "00000000000000ab"), None)
    assert _cap_ranked((3, "00000000000000ab"), 1) == (3, cap_order("00000000000000ab", 3, 1))


def test_column_hashes_are_the_per_pair_hashes() -> None:
    """Balancing draws whole columns (keys.salted_hashes, uniforms); every value must be the
    per-pair salted_hash / uniform of the same (key, salt, seed), or the job and the per-pair
    rule (balance.keeping_queries) would disagree."""
    import numpy as np

    rng = np.random.default_rng(4)
    keys = rng.integers(0, 2**64, 2000, dtype=np.uint64)
    keys[:3] = [0, 1, 2**64 - 1]
    salts = rng.integers(0, 500_000, 2000)
    for seed in (0, 7, -3, 2**40):
        hashes = salted_hashes(keys, salts, seed)
        assert hashes.tolist() == [salted_hash(f"{k:016x}", s, seed) for k, s in zip(keys.tolist(), salts.tolist())]
        assert uniforms(keys, salts, seed).tolist() == [uniform(f"{k:016x}", s, seed) for k, s in zip(keys.tolist(), salts.tolist())]
    assert salted_hashes(keys[:0], salts[:0], 0).shape == (0,)
    hex_keys = [f"{k:016x}" for k in keys.tolist()]
    assert shards_of(hex_keys, 7, 3).tolist() == [shard_of(k, 7, 3) for k in hex_keys]


def test_local_cap_is_each_querys_smallest_cap_order() -> None:
    """harvest.select.local_cap (numpy) sends, per query, the t smallest cap_order of a bucket,
    duplicates and key ties included, exactly as a per-query heap over cap_order would."""
    import heapq

    import numpy as np

    from wit_pipeline.stages.harvest import select as hg

    rng = np.random.default_rng(5)
    for trial in range(60):
        n = int(rng.integers(0, 200))
        key = rng.integers(0, 2**64, n, dtype=np.uint64)
        if n and trial % 3 == 0:
            key[: n // 4] = key[0]  # ties in key: the rank alone decides
        lens = rng.integers(0, 5, n)
        qstart = np.zeros(n + 1, np.int64)
        np.cumsum(lens, out=qstart[1:])
        qids = rng.integers(0, 9, int(qstart[-1])).astype(np.int32)
        lights = hg.Lights(key, np.zeros(n, np.int64), np.zeros(n, np.int64), np.arange(n, dtype=np.int64), qstart, qids)
        t, seed = int(rng.integers(1, 40)), int(rng.integers(0, 99))
        ranked = defaultdict(list)
        for k, ids in zip(lights.keys_hex(), lights.query_ids()):
            for q in ids:
                ranked[q].append(cap_order(k, q, seed))
        expected = sorted((q, pair) for q, pairs in ranked.items() for pair in heapq.nsmallest(t, pairs))
        assert sorted(hg.local_cap(lights, t, seed)) == expected
