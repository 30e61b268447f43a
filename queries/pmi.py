"""Which Wikipedia unigrams and bigrams become queries: counts and pointwise mutual information.

PMI here is the ratio, not its logarithm:

    PMI(a b) = P(a b) / (P(a) P(b)),   P(a b) = c(a b) / B,   P(a) = c(a) / U

where c() are counts over all articles, U the number of unigram tokens and B the number of
bigram tokens (adjacent token pairs inside a phrase; see queries.wikipedia). Why the ratio:
MetaCLIP's published threshold is 30, and no logarithmic PMI of 30 is reachable by a pair
worth listing: log2 PMI >= 30 needs P(a b) >= 2**30 P(a) P(b), which with U ~ 4e9 English
Wikipedia tokens only pairs seen a handful of times in total can meet, and ln >= 30 none at
all. A ratio of 30 (= 4.9 bits, log2 30) is the usual "strong collocation" range, so
`--min-pmi 30` reads as "the pair occurs 30 times more often than chance".
`pmi_bits()` gives the log2 value for readers who think in bits.

PMI favours rare pairs (two words seen once, together, get the largest ratio possible), so a
bigram must also occur at least `min_bigram_count` times before its PMI is considered.
The value is computed from exact integer products and one division, so every runner gets
the same float bit for bit.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping

from wit_pipeline.core.stats import Drop, Tally

UNIGRAM_STAGE = "unigrams"
BIGRAM_STAGE = "bigrams"  # the count floor: distinct bigrams in, those seen >= min_count out
PMI_STAGE = "pmi"  # those bigrams in, PMI >= min_pmi out


def pmi(c_ab: int, c_a: int, c_b: int, n_unigrams: int, n_bigrams: int) -> float:
    """P(a b) / (P(a) P(b)) from counts (see the module docstring)."""
    if min(c_ab, c_a, c_b, n_unigrams, n_bigrams) <= 0:
        raise ValueError(f"PMI needs positive counts, got c_ab={c_ab} c_a={c_a} c_b={c_b} "
                         f"U={n_unigrams} B={n_bigrams}")
    return (c_ab * n_unigrams * n_unigrams) / (n_bigrams * c_a * c_b)


def pmi_bits(ratio: float) -> float:
    """The same association in bits (log2), the textbook PMI."""
    return math.log2(ratio)


def count_drop_reason(count: int, min_count: int) -> str | None:
    """The count rule shared by unigrams and bigrams."""
    return "below_count" if count < min_count else None


def keep_counted(counts: Mapping[str, int], min_count: int, tally: Tally, stage: str) -> dict[str, int]:
    """The n-grams seen at least min_count times, in key order (stage `stage`: every distinct
    n-gram in, kept or below_count)."""
    kept: dict[str, int] = {}
    for key in sorted(counts):
        reason = count_drop_reason(counts[key], min_count)
        if reason:
            tally.dropped(stage, reason)
        else:
            kept[key] = counts[key]
    tally.inc(stage, "in", len(counts))
    tally.kept(stage, len(kept))
    return kept


def select_unigrams(counts: Mapping[str, int], min_count: int, tally: Tally) -> dict[str, int]:
    """Unigrams seen at least min_count times (stage `unigrams`)."""
    return keep_counted(counts, min_count, tally, UNIGRAM_STAGE)


def shard_of(key: str, shards: int) -> int:
    """A stable shard for an n-gram (the same on every worker and run)."""
    return zlib.crc32(key.encode("utf-8")) % shards


def split_counts(counts: Mapping[str, int], shards: int) -> dict[int, dict[str, int]]:
    """counts -> {shard: counts of that shard}: a worker's table becomes a few hundred elements."""
    parts: dict[int, dict[str, int]] = {}
    for key, n in counts.items():
        parts.setdefault(shard_of(key, shards), {})[key] = n
    return parts


def select_bigrams(bigrams: Mapping[str, int], unigrams: Mapping[str, int], min_count: int, min_pmi: float,
                   tally: Tally, totals: tuple[int, int] | None = None) -> dict[str, tuple[float, int]]:
    """Bigram -> (PMI, count) for those with count >= min_count (stage `bigrams`) and
    PMI >= min_pmi (stage `pmi`). totals: (U, B); by default the sums of the two count tables.
    """
    n_uni, n_bi = totals if totals is not None else (sum(unigrams.values()), sum(bigrams.values()))
    kept: dict[str, tuple[float, int]] = {}
    for bigram, c_ab in keep_counted(bigrams, min_count, tally, BIGRAM_STAGE).items():
        tally.inc(PMI_STAGE, "in")
        a, b = bigram.split(" ")
        ratio = pmi(c_ab, unigrams[a], unigrams[b], n_uni, n_bi)
        if ratio < min_pmi:
            tally.dropped(PMI_STAGE, "below_pmi")
        else:
            tally.kept(PMI_STAGE)
            kept[bigram] = (ratio, c_ab)
    return kept


# The per-record steps of the distributed path (beam_jobs.build_queries), each a value or a Drop.


def by_first_word(bigrams: Mapping[str, int]) -> list[tuple[str, tuple[str, int]]]:
    """{a b: n} -> [(a, (a b, n))], keyed for the join with the first word's count."""
    return [(bigram.split(" ")[0], (bigram, n)) for bigram, n in bigrams.items()]


def join_word(joined: tuple[str, dict[str, list]], position: int) -> list[tuple[str, tuple]] | Drop:
    """(w, {bigrams: [(a b, ...)], counts: [c_w]}) -> [(the other word or the bigram, (a b, ..., c_w))]."""
    _, groups = joined
    bigrams = list(groups["bigrams"])
    if not bigrams:
        return Drop("no_bigram")
    (c_w,) = groups["counts"]  # a surviving bigram's words always pass the floor: else a dead letter
    return [(bigram.split(" ")[1] if position == 0 else bigram, (bigram, *rest, c_w)) for bigram, *rest in bigrams]


def with_pmi(item: tuple[tuple[str, tuple[str, int, int, int]], tuple[int, int]],
             min_pmi: float) -> tuple[str, tuple[float, int]] | Drop:
    """((a b, (a b, c_ab, c_a, c_b)), (U, B)) -> (a b, (PMI, c_ab)), or below_pmi."""
    (bigram, (_, c_ab, c_a, c_b)), totals = item
    ratio = pmi(c_ab, c_a, c_b, *totals)
    return Drop("below_pmi") if ratio < min_pmi else (bigram, (ratio, c_ab))


__all__ = ["BIGRAM_STAGE", "PMI_STAGE", "UNIGRAM_STAGE", "by_first_word", "count_drop_reason", "join_word",
           "keep_counted", "pmi", "pmi_bits", "select_bigrams", "select_unigrams", "shard_of", "split_counts",
           "with_pmi"]
