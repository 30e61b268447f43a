"""Balancing: cap how many pairs each query contributes (CLIP: "up to 20,000 pairs per query").

Two modes, both decided by hashes of the sample key, so any runner and any rerun agrees:

* prob (MetaCLIP): a query matched by `count` pairs keeps each with probability
  min(1, t / count), the coin being `keys.uniform(key, query_id, seed)`; a pair survives if
  ANY of its queries keeps it. One pass once the per-query counts are known; each query's
  expected kept count is min(count, t) (more through pairs that other queries keep).
* cap (exact): per query, the t pairs of smallest `cap_order` (rank, key) are kept, so a
  query matched by `count` pairs keeps `cap_kept(count, t)` of them; a pair survives if ANY
  of its queries keeps it.

This module is the rule's readable form, one pair and one set at a time, and the labelled
oracle the tests compare production with (as MetaCLIP keeps `balancing.py` beside
`balance_sampling.py`). Production runs the same draws over columns: harvest in numpy
(`stages.harvest.select.keep_by_probability`, `local_cap`), curate's --rebalance and cap
balancing's global step in Beam (`beam_jobs.transforms.CapPerQuery`, which ranks with
`cap_order`). `DEFAULT_T` is every stage's default t.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from wit_pipeline.core.keys import salted_hash, uniform

DEFAULT_T = 20_000  # the CLIP paper's "up to 20,000 (image, text) pairs per query"


def keep_probability(count: int, t: int) -> float:
    """min(1, t / count): the chance a query matched by `count` pairs keeps one of them."""
    if t < 0:
        raise ValueError(f"t must be >= 0, got {t}")
    if count <= 0:
        raise ValueError(f"count must be positive for a matched query, got {count}")
    return min(1.0, t / count)


def keeping_queries(key: str, query_ids: Sequence[int], counts: Mapping[int, int] | Sequence[int],
                    t: int, seed: int) -> list[int]:
    """The matched queries whose own coin keeps the pair (MetaCLIP balancing); the pair
    survives if this is not empty, and each query keeps about min(count, t) pairs itself."""
    kept = []
    for q in query_ids:
        count = counts[q]
        if count <= 0:
            raise ValueError(f"query {q} matched pair {key} but its count is {count}")
        if count <= t or uniform(key, q, seed) < t / count:
            kept.append(q)
    return kept


def keep_prob(key: str, query_ids: Sequence[int], counts: Mapping[int, int] | Sequence[int],
              t: int, seed: int) -> bool:
    """True when any matched query keeps the pair (MetaCLIP balancing)."""
    return bool(keeping_queries(key, query_ids, counts, t, seed))


def cap_rank(key: str, query_id: int, seed: int) -> str:
    """The order in which a query keeps its pairs under `--balance cap`: lowest first.

    16 hex chars of a salted hash: they sort as the 64-bit integer does, and cross a Beam
    shuffle with a deterministic string coder (Beam's integer coder stops at 2**63 and
    would fall back to pickle). Compare `cap_order` tuples: the key breaks the
    (astronomically rare) hash ties, so every runner keeps the same pairs.
    """
    return f"{salted_hash(key, query_id, seed):016x}"


def cap_order(key: str, query_id: int, seed: int) -> tuple[str, str]:
    """(cap_rank, key): what a query sorts its pairs by under cap balancing, smallest kept."""
    return cap_rank(key, query_id, seed), key


def cap_kept(count: int, t: int) -> int:
    """How many pairs cap balancing keeps for a query matched by `count` pairs."""
    return min(count, t)


def count_queries(pairs: Iterable[tuple[str, Sequence[int]]]) -> dict[int, int]:
    """Pairs matched per query id (query_counts.parquet's `count` column)."""
    counts: dict[int, int] = defaultdict(int)
    for _, ids in pairs:
        for q in ids:
            counts[q] += 1
    return dict(counts)


def select_prob(pairs: Iterable[tuple[str, Sequence[int]]], t: int, seed: int,
                counts: Mapping[int, int] | Sequence[int] | None = None) -> set[str]:
    """Keys kept by `prob` balancing; counts default to those of `pairs` themselves."""
    pairs = list(pairs)
    if counts is None:
        counts = count_queries(pairs)
    return {key for key, ids in pairs if keep_prob(key, ids, counts, t, seed)}


def select_cap(pairs: Iterable[tuple[str, Sequence[int]]], t: int, seed: int) -> set[str]:
    """Keys kept by `cap` balancing: per query the t pairs of smallest cap_order."""
    if t < 0:
        raise ValueError(f"t must be >= 0, got {t}")
    by_query: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for key, ids in pairs:
        for q in set(ids):
            by_query[q].append(cap_order(key, q, seed))
    kept: set[str] = set()
    for ranked in by_query.values():
        kept.update(key for _, key in heapq.nsmallest(t, ranked))
    return kept
