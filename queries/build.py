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

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from queries import omw, pageviews, pmi, segment, wikipedia, wordnet
from wit_pipeline.core.config_flags import flag_of, option
from wit_pipeline.core.stats import Drop, Tally
from wit_pipeline.text import textnorm

STAGE = "allowlist"
SOURCES = ("number", "wordnet", "unigram", "bigram", "title")
QUOTA_PRESETS: dict[str, dict[str, int]] = {
    "none": {}, "metaclip2": {"unigram": 251_465, "bigram": 100_646, "title": 61_235}}
PMI_DECIMALS = 4
# MetaCLIP 2's per-language caps (metadata/build_metadata.py): each source takes this share of
# its own candidates, at most the English count (QUOTA_PRESETS["metaclip2"]).
WORLDWIDE_SHARES: dict[str, float] = {"unigram": 0.1, "title": 0.76}
# Bigram quota: `code` (build_metadata.py: min(100,646, number of bigrams), i.e. the fixed cap)
# or `doc` (docs/metaclip2.md: 40% of the language's unigram quota, at most 100,646).
BIGRAM_QUOTAS = ("code", "doc")
DOC_BIGRAM_SHARE = 0.4
# A Wikipedia language code as wit writes it (MetaCLIP's and the dump names' `_` for `-`).
LANGUAGE_CODE = re.compile(r"[a-z]{2,3}(?:_[a-z]+)*|simple")
# The defaults that depend on the language: (English's, every other language's). English keeps
# wit's English recipe (MetaCLIP 2 reuses MetaCLIP 1's English list); the others take MetaCLIP
# 2's build_metadata.py: no word or view floor (the shares take the top of each source), the
# English counts as caps, no cap on the whole list (0), entries over 256 characters dropped.
# A Recipe field left None takes its language's default.
LANGUAGE_DEFAULTS: dict[str, tuple[Any, Any]] = {
    "min_unigram_count": (100, 1),
    "min_title_views": (70, 1),
    "max_queries": (500_000, 0),
    "max_chars": (0, 256),
    "quotas": ({}, QUOTA_PRESETS["metaclip2"]),
    "shares": ({}, WORLDWIDE_SHARES),
}

Row = tuple[str, str, float | int | None]  # (query, source, stat)


@dataclass(frozen=True)
class Recipe:
    """What goes into the list; MetaCLIP v1's values by default (min_bigram_count is ours:
    see queries.pmi). Validated once, here."""

    min_unigram_count: int | None = option(None, "minimum count of a word over all articles", show="100, CLIP's; "
                                           "other languages: 1, as the top 10%% by count are taken")
    min_bigram_count: int = option(100, "a bigram must occur this often before its PMI counts, as PMI overrates "
                                   "rare pairs")
    min_pmi: float = option(30.0, "minimum PMI as the ratio P(ab)/(P(a)P(b)), not its log (MetaCLIP: 30; see "
                            "queries/pmi.py)")
    min_title_views: int | None = option(None, "minimum page views of a title summed over all --pageviews files",
                                         show="70; other languages: 1, as the top 76%% by views are taken")
    title_rule: str = option("wit", "wit: all hours of en and en.m (xx and xx.m for --language xx), namespaces "
                             "out; metaclip: only en lines with >= 50 views that hour (other languages: every "
                             "line), titles with ':' out", choices=sorted(pageviews.TITLE_RULES))
    wordnet_entries: str = option("synsets", "synsets: each synset's name (MetaCLIP's); lemmas: every lemma of "
                                  "every synset (English WordNet)", choices=wordnet.MODES)
    numbers: int = option(100, "add the strings 0..N-1 first, as MetaCLIP does")
    max_queries: int | None = option(None, "cap on the list's length; 0: none", show="500000; other languages: 0")
    quotas: dict[str, int] | None = option(None, help=f"per-source caps: {' | '.join(QUOTA_PRESETS)} "
                                           "(MetaCLIP 2's English composition) | source=N,...",
                                           flag="--source-quotas", parse=lambda text: parse_quotas(text),
                                           show="none; other languages: metaclip2, each source also held to its "
                                           "share of its own candidates")
    # The worldwide fields (queries.worldwide). `language` comes from the job's --language.
    language: str = "en"
    segmenter: str | None = option(None, "how a language written without spaces is cut into words (zh: icu or "
                                   "jieba; ja: icu or mecab; th: icu or pythainlp; lo, km, my: icu; bo, dz: "
                                   "syllable)", choices=sorted(segment.SEGMENTERS), show="icu; bo, dz: syllable")
    bigram_quota: str = option("code", "other languages: code (MetaCLIP 2's build_metadata.py: at most 100,646 "
                               "bigrams) or doc (its docs: at most 40%% of the unigram quota)", choices=BIGRAM_QUOTAS)
    max_chars: int | None = option(None, "drop entries longer than this many characters; 0: no limit",
                                   show="0; other languages: 256")
    shares: dict[str, float] | None = None  # source -> share of its own candidates it may take
    namespaces: tuple[tuple[int, str], ...] = field(default=())  # the wiki's own namespace names (siteinfo)

    def __post_init__(self) -> None:
        if not LANGUAGE_CODE.fullmatch(self.language):
            raise ValueError(f"{self.language!r} is not a Wikipedia language code (e.g. en, de, ja, zh_yue)")
        for name, defaults in LANGUAGE_DEFAULTS.items():
            if getattr(self, name) is None:
                value = defaults[self.language != "en"]
                object.__setattr__(self, name, dict(value) if isinstance(value, dict) else value)
        for name in ("min_unigram_count", "min_title_views", "numbers", "max_queries", "max_chars"):
            if getattr(self, name) < 0:
                raise ValueError(f"{flag_of(Recipe, name)} must be >= 0, got {getattr(self, name)}")
        if self.min_bigram_count < 1:
            raise ValueError(f"--min-bigram-count must be >= 1, got {self.min_bigram_count}")
        if not self.min_pmi >= 0:
            raise ValueError(f"--min-pmi is a ratio P(ab)/(P(a)P(b)), so >= 0, got {self.min_pmi}")
        if self.title_rule not in pageviews.TITLE_RULES:
            raise ValueError(f"--title-rule must be one of {', '.join(pageviews.TITLE_RULES)}")
        if self.wordnet_entries not in wordnet.MODES:
            raise ValueError(f"--wordnet-entries must be one of {', '.join(wordnet.MODES)}")
        bad = {k: v for k, v in self.quotas.items() if k not in SOURCES or v < 0}
        if bad:
            raise ValueError(f"bad quotas {bad}: sources are {', '.join(SOURCES)}, values >= 0")
        bad_shares = {k: v for k, v in self.shares.items() if k not in SOURCES or not 0 <= v <= 1}
        if bad_shares:
            raise ValueError(f"bad shares {bad_shares}: sources are {', '.join(SOURCES)}, values in [0, 1]")
        if self.bigram_quota not in BIGRAM_QUOTAS:
            raise ValueError(f"--bigram-quota must be one of {', '.join(BIGRAM_QUOTAS)}")
        segment.check(self.language, self.segmenter or segment.default_segmenter(self.language))

    @property
    def titles(self) -> pageviews.TitleRule:
        return pageviews.rule_for(self.title_rule, self.language, frozenset(name for _, name in self.namespaces))

    @property
    def counting(self) -> wikipedia.Counting | None:
        """How articles are counted; None for English as it always was."""
        if self.language == "en" and not self.namespaces:
            return None
        hidden = wikipedia.HIDDEN_NAMESPACES | {name.lower() for key, name in self.namespaces if key in (-2, 6, 14)}
        return wikipedia.Counting(segment.for_language(self.language, self.segmenter), frozenset(hidden))

    def join_bigram(self, bigram: str) -> str:
        """A counted bigram `a b` as the list writes it (joined without a space in unspaced scripts)."""
        return segment.join_bigram(self.language, bigram)

    def caps(self, available: Mapping[str, int]) -> dict[str, int]:
        """Per-source caps: the fixed quotas, each share of its source's candidates (`available`),
        and the `doc` bigram quota (see WORLDWIDE_SHARES and BIGRAM_QUOTAS)."""
        caps = dict(self.quotas)
        for source, share in self.shares.items():
            n = int(available.get(source, 0) * share)
            caps[source] = min(caps.get(source, n), n)
        if self.bigram_quota == "doc":
            n = int(caps.get("unigram", available.get("unigram", 0)) * DOC_BIGRAM_SHARE)
            caps["bigram"] = min(caps.get("bigram", n), n)
        return caps


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
                      titles: Mapping[str, int], entries: Mapping[str, int], numbers: int = 0,
                      join: Callable[[str], str] | None = None) -> list[Row]:
    """Every candidate in the recipe's order (see the module docstring); `join` writes a
    counted bigram `a b` (Recipe.join_bigram)."""
    rows: list[Row] = [(str(i), "number", None) for i in range(numbers)]
    rows += [(q, "wordnet", n) for q, n in _by_stat(entries.items())]
    rows += [(q, "unigram", c) for q, c in _by_stat(unigrams.items())]
    rows += [(join(q) if join else q, "bigram", round(r, PMI_DECIMALS))
             for q, (r, _) in sorted(bigrams.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))]
    rows += [(q, "title", v) for q, v in _by_stat(titles.items())]
    return rows


def assemble(candidates: Iterable[Row], max_queries: int | None, quotas: Mapping[str, int], tally: Tally,
             max_chars: int | None = None) -> list[Row]:
    """Deduplicate by normal form, drop entries over max_chars characters, apply quotas and
    the cap (None: none), in the candidates' order."""
    if max_queries is not None and max_queries < 0:
        raise ValueError("max_queries must be >= 0")
    seen: set[str] = set()
    per_source: Counter[str] = Counter()
    rows: list[Row] = []
    for query, source, stat in candidates:
        tally.inc(STAGE, "in")
        norm = textnorm.normalize(query)
        limit = quotas.get(source)
        if not norm:  # pure punctuation and the like; sources drop these already
            tally.dropped(STAGE, "empty")
        elif max_chars is not None and len(query) > max_chars:
            tally.dropped(STAGE, "too_long")
        elif norm in seen:
            tally.dropped(STAGE, "duplicate")
        elif (limit is not None and per_source[source] >= limit) or (
                max_queries is not None and len(rows) >= max_queries):
            tally.dropped(STAGE, "over_cap")
        else:
            seen.add(norm)
            per_source[source] += 1
            rows.append((query, source, stat))
            tally.kept(STAGE)
    return rows


def count_dump(urls: Iterable[str], tally: Tally,
               counting: wikipedia.Counting | None = None) -> tuple[Counter[str], Counter[str]]:
    """Unigram and bigram counts of whole dump files in one process (stops at an error)."""
    unigrams: Counter[str] = Counter()
    bigrams: Counter[str] = Counter()
    for url in urls:
        for page in wikipedia.iter_pages(url, tally, wikipedia.raise_error):
            tally.inc(wikipedia.STAGE, "in")
            counts = wikipedia.article_ngrams(page, counting)
            if isinstance(counts, Drop):
                tally.dropped(wikipedia.STAGE, counts.reason)
                continue
            tally.kept(wikipedia.STAGE)
            unigrams.update(counts[0])
            bigrams.update(counts[1])
    return unigrams, bigrams


def finish(unigrams: Mapping[str, int], bigrams: Mapping[str, tuple[float, int]], titles: Mapping[str, int],
           entries: Mapping[str, int], recipe: Recipe, tally: Tally) -> list[Row]:
    """The kept candidates of every source -> the list (order, caps, dedup)."""
    caps = recipe.caps({"unigram": len(unigrams), "bigram": len(bigrams), "title": len(titles)})
    candidates = ranked_candidates(unigrams, bigrams, titles, entries, recipe.numbers,
                                   None if recipe.language == "en" else recipe.join_bigram)
    return assemble(candidates, recipe.max_queries or None, caps, tally, recipe.max_chars or None)


def read_wordnet(recipe: Recipe, wordnet_dir: str | None, omw_path: str | None, tally: Tally) -> dict[str, int]:
    """English: WordNet 3.0 (queries.wordnet); another language: its Open Multilingual WordNet."""
    if recipe.language == "en":
        return wordnet.read_entries(wordnet_dir, tally, recipe.wordnet_entries) if wordnet_dir else {}
    return omw.read_entries(omw_path, recipe.language, tally) if omw_path else {}


def build_allowlist(wikipedia_urls: Iterable[str], pageview_urls: Iterable[str], wordnet_dir: str | None,
                    recipe: Recipe, tally: Tally, omw_path: str | None = None) -> list[Row]:
    """The whole build in one process (small inputs, tests); beam_jobs.build_queries scales it."""
    unigrams, bigrams = count_dump(wikipedia_urls, tally, recipe.counting)
    kept_uni = pmi.select_unigrams(unigrams, recipe.min_unigram_count, tally)
    kept_bi = pmi.select_bigrams(bigrams, unigrams, recipe.min_bigram_count, recipe.min_pmi, tally)
    views = (tv for url in pageview_urls for tv in pageviews.iter_views(url, tally, recipe.titles))
    titles = pageviews.select_titles(views, recipe.min_title_views, tally, recipe.titles)
    entries = read_wordnet(recipe, wordnet_dir, omw_path, tally)
    return finish(kept_uni, kept_bi, titles, entries, recipe, tally)


def check_sources(stages: list[dict], numbers: int) -> None:
    """allowlist.in must be exactly what the sources kept (stats.json stages)."""
    by_name = {s["name"]: s for s in stages}
    kept = numbers + sum(by_name[name]["out"] for name in ("unigrams", "pmi", "titles", "wordnet"))
    if by_name[STAGE]["in"] != kept:
        raise ValueError(f"allowlist.in={by_name[STAGE]['in']} but the sources kept {kept}")


def unread_dumps(stages: list[dict]) -> dict[str, int] | None:
    """What of the dumps was not read (stats.json stages): dump files whose index failed
    (`dumps`) and reading units (a whole plain dump, or one stream of a multistream dump)
    that stopped early (`inputs`: corrupt bz2, broken XML). None when everything was read.
    A plain dump damaged halfway loses its second half: the counts, and so the list, are partial."""
    by_name = {s["name"]: s for s in stages}
    lost = {name: sum(by_name[name]["dropped"].values()) for name in ("dumps", "inputs") if name in by_name}
    if not any(lost.values()):
        return None
    return {"dump_files": lost.get("dumps", 0), "units": lost.get("inputs", 0),
            "units_read": by_name["inputs"]["in"] if "inputs" in by_name else 0}


__all__ = ["BIGRAM_QUOTAS", "LANGUAGE_DEFAULTS", "QUOTA_PRESETS", "Recipe", "Row", "SOURCES", "WORLDWIDE_SHARES",
           "assemble", "build_allowlist", "check_sources", "count_dump", "finish", "parse_quotas", "ranked_candidates",
           "read_wordnet", "unread_dumps"]
