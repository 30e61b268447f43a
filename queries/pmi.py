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


def select_unigrams(counts: Mapping[str, int], min_count: int, tally: Tally) -> dict[str, int]:
    """Unigrams seen at least min_count times (stage `unigrams`)."""
    kept: dict[str, int] = {}
    for word in sorted(counts):
        tally.inc(UNIGRAM_STAGE, "in")
        reason = count_drop_reason(counts[word], min_count)
        if reason:
            tally.inc(UNIGRAM_STAGE, f"dropped.{reason}")
        else:
            tally.inc(UNIGRAM_STAGE, "out")
            kept[word] = counts[word]
    return kept


def select_bigrams(bigrams: Mapping[str, int], unigrams: Mapping[str, int], min_count: int, min_pmi: float,
                   tally: Tally, totals: tuple[int, int] | None = None) -> dict[str, tuple[float, int]]:
    """Bigram -> (PMI, count) for those with count >= min_count (stage `bigrams`) and
    PMI >= min_pmi (stage `pmi`). totals: (U, B); by default the sums of the two count tables.
    """
    n_uni, n_bi = totals if totals is not None else (sum(unigrams.values()), sum(bigrams.values()))
    kept: dict[str, tuple[float, int]] = {}
    for bigram in sorted(bigrams):
        tally.inc(BIGRAM_STAGE, "in")
        c_ab = bigrams[bigram]
        reason = count_drop_reason(c_ab, min_count)
        if reason:
            tally.inc(BIGRAM_STAGE, f"dropped.{reason}")
            continue
        tally.inc(BIGRAM_STAGE, "out")
        tally.inc(PMI_STAGE, "in")
        a, b = bigram.split(" ")
        ratio = pmi(c_ab, unigrams[a], unigrams[b], n_uni, n_bi)
        if ratio < min_pmi:
            tally.inc(PMI_STAGE, "dropped.below_pmi")
        else:
            tally.inc(PMI_STAGE, "out")
            kept[bigram] = (ratio, c_ab)
    return kept


# The per-record steps of the distributed path (beam_jobs.build_queries), each a value or a Drop.


def floor(item: tuple[str, int], min_count: int) -> tuple[str, int] | Drop:
    """(n-gram, count) kept when count >= min_count."""
    return Drop(reason) if (reason := count_drop_reason(item[1], min_count)) else item


def by_first_word(item: tuple[str, int], min_count: int) -> tuple[str, tuple[str, int]] | Drop:
    """(a b, n) -> (a, (a b, n)), bigrams under the count floor dropped before the joins."""
    kept = floor(item, min_count)
    return kept if isinstance(kept, Drop) else (item[0].split(" ")[0], item)


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


__all__ = ["BIGRAM_STAGE", "PMI_STAGE", "UNIGRAM_STAGE", "by_first_word", "count_drop_reason", "floor", "join_word",
           "pmi", "pmi_bits", "select_bigrams", "select_unigrams", "with_pmi"]
