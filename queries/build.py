"""Assembly of the allowlist from its sources: order, deduplicate, optional quotas, cap.

The default is MetaCLIP v1's `build_metadata.py`: a union, in this order, of
0. the strings "0".."99" (`numbers`; MetaCLIP starts its set with them),
1. WordNet synset names (queries.wordnet; `wordnet_entries="lemmas"` takes every lemma),
2. Wikipedia unigrams seen >= 100 times, most frequent first,
3. bigrams with PMI >= 30 (queries.pmi), highest PMI first (then higher count),
4. article titles with >= 70 page views (queries.pageviews), most viewed first,
ties broken by the query string (code-point order), so the list is the same on every run.
There are no per-source quotas. MetaCLIP's script cannot cap either: it rewrites its file
after every entry once it holds 500,000, so its last file is the whole union; wit stops at
`max_queries` (500,000, the CLIP paper's size), so with a full dump the cap cuts the end
of the order (titles, then bigrams).

A candidate is dropped as `duplicate` when a row above it has the same normal form
(`textnorm.normalize`: "New York" and "new york" are one query), and as `over_cap` when
its source has filled its quota or the list has `max_queries` rows. Quotas are an option:
`metaclip2` is the English composition of MetaCLIP 2's worldwide builder (251,465
unigrams, 100,646 bigrams, 61,235 titles; numbers and WordNet uncapped).

`stat` per source: number = empty, wordnet = synsets with that name (or containing that
lemma), unigram = count, bigram = PMI ratio (4 decimals), title = summed page views.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from queries import pageviews, pmi, wikipedia, wordnet
from wit_pipeline.core.config_flags import flag_of, option
from wit_pipeline.core.stats import Drop, Tally
from wit_pipeline.text import textnorm

STAGE = "allowlist"
SOURCES = ("number", "wordnet", "unigram", "bigram", "title")
QUOTA_PRESETS: dict[str, dict[str, int]] = {
    "none": {}, "metaclip2": {"unigram": 251_465, "bigram": 100_646, "title": 61_235}}
PMI_DECIMALS = 4

Row = tuple[str, str, float | int | None]  # (query, source, stat)


@dataclass(frozen=True)
class Recipe:
    """What goes into the list; MetaCLIP v1's values by default (min_bigram_count is ours:
    see queries.pmi). Validated once, here."""

    min_unigram_count: int = option(100, "minimum count of a word over all articles (CLIP's 100)")
    min_bigram_count: int = option(100, "a bigram must occur this often before its PMI counts, as PMI overrates "
                                   "rare pairs")
    min_pmi: float = option(30.0, "minimum PMI as the ratio P(ab)/(P(a)P(b)), not its log (MetaCLIP: 30; see "
                            "queries/pmi.py)")
    min_title_views: int = option(70, "minimum page views of a title summed over all --pageviews files")
    title_rule: str = option("wit", "wit: all hours of en and en.m, namespaces out; metaclip: only en lines with "
                             ">= 50 views that hour, titles with ':' out", choices=sorted(pageviews.TITLE_RULES))
    wordnet_entries: str = option("synsets", "synsets: each synset's name (MetaCLIP's); lemmas: every lemma of "
                                  "every synset", choices=wordnet.MODES)
    numbers: int = option(100, "add the strings 0..N-1 first, as MetaCLIP does")
    max_queries: int = option(500_000, "cap on the list's length")
    quotas: dict[str, int] = option(default_factory=dict, help=f"per-source caps: {' | '.join(QUOTA_PRESETS)} "
                                    "(MetaCLIP 2's English composition) | source=N,...", flag="--source-quotas",
                                    parse=lambda text: parse_quotas(text), show="none")

    def __post_init__(self) -> None:
        for name in ("min_unigram_count", "min_title_views", "numbers"):
            if getattr(self, name) < 0:
                raise ValueError(f"{flag_of(Recipe, name)} must be >= 0, got {getattr(self, name)}")
        for name in ("min_bigram_count", "max_queries"):
            if getattr(self, name) < 1:
                raise ValueError(f"{flag_of(Recipe, name)} must be >= 1, got {getattr(self, name)}")
        if not self.min_pmi >= 0:
            raise ValueError(f"--min-pmi is a ratio P(ab)/(P(a)P(b)), so >= 0, got {self.min_pmi}")
        if self.title_rule not in pageviews.TITLE_RULES:
            raise ValueError(f"--title-rule must be one of {', '.join(pageviews.TITLE_RULES)}")
        if self.wordnet_entries not in wordnet.MODES:
            raise ValueError(f"--wordnet-entries must be one of {', '.join(wordnet.MODES)}")
        bad = {k: v for k, v in self.quotas.items() if k not in SOURCES or v < 0}
        if bad:
            raise ValueError(f"bad quotas {bad}: sources are {', '.join(SOURCES)}, values >= 0")

    @property
    def titles(self) -> pageviews.TitleRule:
        return pageviews.TITLE_RULES[self.title_rule]


def parse_quotas(text: str) -> dict[str, int]:
    """`none` | `metaclip2` | `unigram=N,bigram=N,...` -> per-source quotas."""
    text = text.strip()
    if text.lower() in QUOTA_PRESETS or not text:
        return dict(QUOTA_PRESETS[text.lower() or "none"])
    quotas: dict[str, int] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in SOURCES or not value.strip().isdigit():
            raise ValueError(f"bad quota {part!r}: expected source=N with source in {', '.join(SOURCES)}, "
                             f"or one of {', '.join(QUOTA_PRESETS)}")
        quotas[name] = int(value)
    return quotas


def _by_stat(items: Iterable[tuple[str, float | int]]) -> list[tuple[str, float | int]]:
    return sorted(items, key=lambda kv: (-kv[1], kv[0]))


def ranked_candidates(unigrams: Mapping[str, int], bigrams: Mapping[str, tuple[float, int]],
                      titles: Mapping[str, int], entries: Mapping[str, int], numbers: int = 0) -> list[Row]:
    """Every candidate in the recipe's order (see the module docstring)."""
    rows: list[Row] = [(str(i), "number", None) for i in range(numbers)]
    rows += [(q, "wordnet", n) for q, n in _by_stat(entries.items())]
    rows += [(q, "unigram", c) for q, c in _by_stat(unigrams.items())]
    rows += [(q, "bigram", round(r, PMI_DECIMALS))
             for q, (r, _) in sorted(bigrams.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))]
    rows += [(q, "title", v) for q, v in _by_stat(titles.items())]
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
            tally.dropped(STAGE, "empty")
        elif norm in seen:
            tally.dropped(STAGE, "duplicate")
        elif per_source[source] >= quotas.get(source, max_queries) or len(rows) >= max_queries:
            tally.dropped(STAGE, "over_cap")
        else:
            seen.add(norm)
            per_source[source] += 1
            rows.append((query, source, stat))
            tally.kept(STAGE)
    return rows


def count_dump(urls: Iterable[str], tally: Tally) -> tuple[Counter[str], Counter[str]]:
    """Unigram and bigram counts of whole dump files in one process (stops at an error)."""
    unigrams: Counter[str] = Counter()
    bigrams: Counter[str] = Counter()
    for url in urls:
        for page in wikipedia.iter_pages(url, tally, wikipedia.raise_error):
            tally.inc(wikipedia.STAGE, "in")
            counts = wikipedia.article_ngrams(page)
            if isinstance(counts, Drop):
                tally.dropped(wikipedia.STAGE, counts.reason)
                continue
            tally.kept(wikipedia.STAGE)
            unigrams.update(counts[0])
            bigrams.update(counts[1])
    return unigrams, bigrams


def build_allowlist(wikipedia_urls: Iterable[str], pageview_urls: Iterable[str], wordnet_dir: str | None,
                    recipe: Recipe, tally: Tally) -> list[Row]:
    """The whole build in one process (small inputs, tests); beam_jobs.build_queries scales it."""
    unigrams, bigrams = count_dump(wikipedia_urls, tally)
    kept_uni = pmi.select_unigrams(unigrams, recipe.min_unigram_count, tally)
    kept_bi = pmi.select_bigrams(bigrams, unigrams, recipe.min_bigram_count, recipe.min_pmi, tally)
    views = (tv for url in pageview_urls for tv in pageviews.iter_views(url, tally, recipe.titles))
    titles = pageviews.select_titles(views, recipe.min_title_views, tally, recipe.titles)
    entries = wordnet.read_entries(wordnet_dir, tally, recipe.wordnet_entries) if wordnet_dir else {}
    return assemble(ranked_candidates(kept_uni, kept_bi, titles, entries, recipe.numbers), recipe.max_queries,
                    recipe.quotas, tally)


def check_sources(stages: list[dict], numbers: int) -> None:
    """allowlist.in must be exactly what the sources kept (stats.json stages)."""
    by_name = {s["name"]: s for s in stages}
    kept = numbers + sum(by_name[name]["out"] for name in ("unigrams", "pmi", "titles", "wordnet"))
    if by_name[STAGE]["in"] != kept:
        raise ValueError(f"allowlist.in={by_name[STAGE]['in']} but the sources kept {kept}")


__all__ = ["QUOTA_PRESETS", "Recipe", "Row", "SOURCES", "assemble", "build_allowlist", "check_sources", "count_dump",
           "parse_quotas", "ranked_candidates"]
