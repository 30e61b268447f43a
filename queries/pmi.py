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

from wit_pipeline.core.stats import Tally

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


__all__ = ["BIGRAM_STAGE", "PMI_STAGE", "UNIGRAM_STAGE", "count_drop_reason", "pmi", "pmi_bits", "select_bigrams", "select_unigrams"]
