"""Assembly of the allowlist from its four sources: rank, deduplicate, apply quotas, cap.

The CLIP paper's base list is, in its words' order, Wikipedia words seen >= 100 times,
high-PMI bigrams, article titles above a search volume and "all WordNet synsets not
already in the list". The rows are written in this priority order, which also decides
who owns a query that two sources produce and who is cut when the cap bites:

1. unigrams, most frequent first;
2. bigrams, highest PMI first (then higher count);
3. titles, most viewed first;
4. WordNet lemmas, those naming the most synsets first;
ties broken by the query string (code-point order), so the list is the same on every run.

A candidate is dropped as `duplicate` when a row above it has the same normal form
(`textnorm.normalize`: "New York" and "new york" are one query), and as `over_cap` when
its source has filled its quota or the list has `max_queries` rows. Without quotas the cap
would fill 500k rows with English Wikipedia's ~1M frequent words and no title or WordNet
entry would survive, so by default each Wikipedia source is held to MetaCLIP's published
English composition (251,465 unigrams, 100,646 bigrams, 61,235 titles; WordNet fills the
rest, 86,654 of 500,000 in MetaCLIP). `quotas={}` gives strict priority instead.

`stat` per source: unigram = count, bigram = PMI ratio (queries.pmi, 4 decimals),
title = summed page views, wordnet = number of synsets.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from queries import pageviews, pmi, wikipedia, wordnet
from wit_pipeline.core.stats import Tally
from wit_pipeline.text import textnorm

STAGE = "allowlist"
SOURCES = ("unigram", "bigram", "title", "wordnet")
METACLIP_QUOTAS: dict[str, int] = {"unigram": 251_465, "bigram": 100_646, "title": 61_235}
PMI_DECIMALS = 4

Row = tuple[str, str, float | int]  # (query, source, stat)


@dataclass(frozen=True)
class Thresholds:
    """MetaCLIP's published values by default (min_bigram_count is ours: see queries.pmi)."""

    min_unigram_count: int = 100
    min_bigram_count: int = 100
    min_pmi: float = 30.0
    min_title_views: int = 70
    max_queries: int = 500_000
    quotas: Mapping[str, int] = field(default_factory=lambda: dict(METACLIP_QUOTAS))


def parse_quotas(text: str) -> dict[str, int]:
    """`metaclip` | `none` | `unigram=N,bigram=N,...` -> per-source quotas."""
    text = text.strip()
    if text.lower() == "metaclip":
        return dict(METACLIP_QUOTAS)
    if text.lower() in ("none", ""):
        return {}
    quotas: dict[str, int] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in SOURCES or not value.strip().isdigit():
            raise ValueError(f"bad quota {part!r}: expected source=N with source in {', '.join(SOURCES)}")
        quotas[name] = int(value)
    return quotas


def ranked_candidates(unigrams: Mapping[str, int], bigrams: Mapping[str, tuple[float, int]],
                      titles: Mapping[str, int], lemmas: Mapping[str, int]) -> list[Row]:
    """Every candidate in priority order (see the module docstring)."""
    rows: list[Row] = []
    rows += [(q, "unigram", c) for q, c in sorted(unigrams.items(), key=lambda kv: (-kv[1], kv[0]))]
    rows += [(q, "bigram", round(r, PMI_DECIMALS))
             for q, (r, _) in sorted(bigrams.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))]
    rows += [(q, "title", v) for q, v in sorted(titles.items(), key=lambda kv: (-kv[1], kv[0]))]
    rows += [(q, "wordnet", n) for q, n in sorted(lemmas.items(), key=lambda kv: (-kv[1], kv[0]))]
    return rows


def assemble(candidates: Iterable[Row], max_queries: int, quotas: Mapping[str, int], tally: Tally) -> list[Row]:
    """Deduplicate by normal form, apply quotas and the cap, in the candidates' order."""
    if max_queries < 0:
        raise ValueError("max_queries must be >= 0")
    seen: set[str] = set()
    per_source: Counter[str] = Counter()
    rows: list[Row] = []
    for query, source, stat in candidates:
        tally.inc(STAGE, "in")
        norm = textnorm.normalize(query)
        if not norm:  # sources drop these already; keep the invariant here too
            tally.inc(STAGE, "dropped.empty")
        elif norm in seen:
            tally.inc(STAGE, "dropped.duplicate")
        elif per_source[source] >= quotas.get(source, max_queries) or len(rows) >= max_queries:
            tally.inc(STAGE, "dropped.over_cap")
        else:
            seen.add(norm)
            per_source[source] += 1
            rows.append((query, source, stat))
            tally.inc(STAGE, "out")
    return rows


def build_allowlist(wikipedia_urls: Iterable[str], pageview_urls: Iterable[str], wordnet_dir: str | None,
                    thresholds: Thresholds, tally: Tally) -> list[Row]:
    """The whole build in one process (small inputs, tests); beam_jobs.build_queries scales it."""
    unigrams: Counter[str] = Counter()
    bigrams: Counter[str] = Counter()
    for url in wikipedia_urls:
        for _, text in wikipedia.iter_articles(url, tally):
            u, b = wikipedia.count_ngrams(text)
            unigrams.update(u)
            bigrams.update(b)
    kept_uni = pmi.select_unigrams(unigrams, thresholds.min_unigram_count, tally)
    kept_bi = pmi.select_bigrams(bigrams, unigrams, thresholds.min_bigram_count, thresholds.min_pmi, tally)
    views = (tv for url in pageview_urls for tv in pageviews.iter_views(url, tally))
    titles = pageviews.select_titles(views, thresholds.min_title_views, tally)
    lemmas = wordnet.read_lemmas(wordnet_dir, tally) if wordnet_dir else {}
    return assemble(ranked_candidates(kept_uni, kept_bi, titles, lemmas), thresholds.max_queries,
                    thresholds.quotas, tally)


__all__ = ["METACLIP_QUOTAS", "Row", "SOURCES", "Thresholds", "assemble", "build_allowlist", "parse_quotas",
           "ranked_candidates"]
