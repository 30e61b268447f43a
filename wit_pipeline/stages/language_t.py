"""Per-language balancing thresholds (MetaCLIP 2): English's t, carried to every language.

`--t` is English's t. Its p is the share of English matches that fall in entries matched
fewer than t times (`t_to_p`): how much of English is "tail", kept whole. Every other language
keeps the same share of its own matches as tail: its t is the count at which its cumulative
share, entries sorted by count, is closest to p (`p_to_t`). Both balancing modes then use the
language's t for every query of that language.

Choices where MetaCLIP 2's `curate.py` is loose: counts are those of matched entries only
(MetaCLIP's arrays hold every entry, and an unmatched entry's zero can win `p_to_t`'s argmin
and give t = 0, which keeps nothing); ties in the argmin go to the smaller count, as numpy's
argmin does; with no English match there is no p, and every language uses `--t` itself.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

REFERENCE = "en"


def t_to_p(counts: Iterable[int], t: int) -> float:
    """The share of all matches that fall in entries with fewer than t matches."""
    c = np.asarray(list(counts), dtype=np.int64)
    c = c[c > 0]
    if not len(c):
        raise ValueError("t_to_p needs at least one matched entry")
    return float(c[c < t].sum() / c.sum())


def p_to_t(counts: Iterable[int], p: float) -> int:
    """The count at which the cumulative share of matches (entries sorted by count) is closest to p."""
    c = np.sort(np.asarray(list(counts), dtype=np.int64))
    c = c[c > 0]
    if not len(c):
        raise ValueError("p_to_t needs at least one matched entry")
    share = np.cumsum(c) / c.sum()
    return int(c[int(np.argmin(np.abs(share - p)))])


def t_per_language(counts_by_language: Mapping[str, Iterable[int]], t: int,
                   reference: str = REFERENCE) -> tuple[float | None, dict[str, int]]:
    """(p, {language: t}) for every language with a matched entry; the reference keeps t."""
    counts = {lang: [n for n in c if n > 0] for lang, c in counts_by_language.items()}
    counts = {lang: c for lang, c in counts.items() if c}
    if reference not in counts:
        return None, {lang: t for lang in sorted(counts)}
    p = t_to_p(counts[reference], t)
    return p, {lang: (t if lang == reference else p_to_t(c, p)) for lang, c in sorted(counts.items())}


def query_t(query_counts: Mapping[int, int], language_of: Mapping[int, str] | Sequence[str], t: int,
            reference: str = REFERENCE) -> tuple[float | None, dict[str, int], dict[int, int]]:
    """(p, t per language, t per query id) from per-query match counts and each query's language."""
    by_language: dict[str, list[int]] = {}
    for q, n in query_counts.items():
        by_language.setdefault(language_of[q], []).append(n)
    p, per_language = t_per_language(by_language, t, reference)
    return p, per_language, {q: per_language.get(language_of[q], t) for q in query_counts}


def thresholds(query_counts: Mapping[int, int], query_languages: Sequence[str] | None, t: int,
               reference: str = REFERENCE) -> dict[str, Any]:
    """What a harvest balances by: {"p", "t_per_language", "t_by_query"}. Without query
    languages (a single allowlist serving every language) there is no p and t_by_query is
    None: every query uses t."""
    if query_languages is None:
        return {"p": None, "t_per_language": {}, "t_by_query": None}
    p, per_language, per_query = query_t(query_counts, query_languages, t, reference)
    return {"p": p, "t_per_language": per_language, "t_by_query": per_query}


def smallest_per_query(query_top: tuple[int, Iterable[tuple[str, str]]], t_by_query: Mapping[int, int]
                       ) -> Iterator[tuple[str, int]]:
    """(key, query) for the t_q smallest (rank, key) of a query's candidates (cap balancing
    with a t per query: what `CapPerQuery` does with one t)."""
    query, ranked = query_top
    for _, key in heapq.nsmallest(t_by_query[query], ranked):
        yield key, query
